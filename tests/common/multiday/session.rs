//! How the multi-day trace's views are generated: one view session with its startup,
//! heartbeats, rebuffers, pauses, seeks, errors, silent ends and orphans, and the chat,
//! follows, likes, shares and clickthroughs around it.

use super::{Ev, Kind};

/// Shared viewers (any channel) are numbered from here.
const SHARED: u32 = 900_000;

pub struct Gen {
    pub rng: fastrand::Rng,
    pub events: Vec<Ev>,
    pub sessions: u32,
}

impl Gen {
    pub fn push(
        &mut self,
        ts: i64,
        kind: Kind,
        target: usize,
        viewer: u32,
        session: u32,
    ) -> &mut Ev {
        self.events.push(Ev {
            ts,
            kind,
            target,
            viewer,
            session,
            state: None,
            count: None,
            embed: false,
        });
        self.events.last_mut().expect("just pushed")
    }

    pub fn heartbeat(
        &mut self,
        ts: i64,
        target: usize,
        viewer: u32,
        session: u32,
        state: &'static str,
    ) {
        // Some players leave out the state of a playing heartbeat.
        let state = (state != "playing" || self.rng.bool()).then_some(state);
        self.push(ts, Kind::Heartbeat, target, viewer, session)
            .state = state;
    }

    pub fn viewer(&mut self, channel: usize, pool: u32) -> u32 {
        if self.rng.u32(0..10) == 0 {
            SHARED + self.rng.u32(0..120)
        } else {
            channel as u32 * 100_000 + self.rng.u32(0..pool)
        }
    }

    /// One view of `target` from `t0`, playing for about `len` ms; returns its last time.
    pub fn session(&mut self, target: usize, viewer: u32, t0: i64, len: i64, content: bool) -> i64 {
        self.sessions += 1;
        let s = self.sessions;
        let mut t = t0;
        if self.rng.u32(0..100) < 6 {
            // First seen mid-way (its viewstart went elsewhere): resumes in the stated state.
            let state = ["playing", "paused", "rebuffering", "starting"][self.rng.usize(..4)];
            self.push(t, Kind::Heartbeat, target, viewer, s).state = Some(state);
            t += self.rng.i64(500..9_000);
            match state {
                "paused" | "starting" => {
                    self.push(t, Kind::Playing, target, viewer, s);
                }
                "rebuffering" => {
                    self.push(t, Kind::RebufferEnd, target, viewer, s);
                }
                _ => self.heartbeat(t, target, viewer, s, "playing"),
            }
        } else {
            let embed = content && self.rng.u32(0..100) < 30;
            self.push(t, Kind::Viewstart, target, viewer, s).embed = embed;
            t += if self.rng.u32(0..100) < 6 {
                self.rng.i64(3_000..15_000)
            } else {
                self.rng.i64(150..2_500)
            };
            if self.rng.u32(0..100) < 3 {
                self.push(t, Kind::Error, target, viewer, s);
                if self.rng.bool() {
                    self.heartbeat(t + 1_500, target, viewer, s, "playing"); // orphan
                }
                return t;
            }
            self.push(t, Kind::Playing, target, viewer, s);
        }
        let end = t0 + len;
        while t < end {
            let roll = self.rng.u32(0..1000);
            if roll < 15 {
                t += self.rng.i64(500..9_000);
                let long = self.rng.u32(0..40) == 0;
                if long && self.rng.bool() {
                    // On a tick boundary: a tick end then falls exactly five minutes
                    // into the stall (still a viewer; the next one is not).
                    t = (t.div_euclid(5_000) + 1) * 5_000;
                }
                self.push(t, Kind::RebufferStart, target, viewer, s);
                let stall = if long {
                    self.rng.i64(301_000..420_000)
                } else {
                    self.rng.i64(300..25_000)
                };
                let until = t + stall;
                while t + 10_000 < until {
                    t += 10_000 - self.rng.i64(0..500);
                    self.heartbeat(t, target, viewer, s, "rebuffering");
                }
                t = until.max(t + 1);
                self.push(t, Kind::RebufferEnd, target, viewer, s);
            } else if roll < 25 {
                t += self.rng.i64(500..9_000);
                self.push(t, Kind::Pause, target, viewer, s);
                if self.rng.u32(0..8) == 0 {
                    // Paused without heartbeats past the timeout: ended at the pause;
                    // the resume is an orphan.
                    t += 31_000 + self.rng.i64(0..60_000);
                    self.push(t, Kind::Playing, target, viewer, s);
                    return t;
                }
                for _ in 0..self.rng.usize(0..6) {
                    t += 10_000 - self.rng.i64(0..800);
                    self.heartbeat(t, target, viewer, s, "paused");
                }
                t += self.rng.i64(500..9_000);
                self.push(t, Kind::Playing, target, viewer, s);
            } else if roll < 30 {
                t += self.rng.i64(500..9_000);
                self.push(t, Kind::Seek, target, viewer, s);
            } else if roll < 32 {
                t += self.rng.i64(500..9_000);
                self.push(t, Kind::Error, target, viewer, s);
                return t;
            } else if roll < 35 {
                // Silent for longer than the timeout: ended at its last event.
                if self.rng.bool() {
                    t += 30_500 + self.rng.i64(0..30_000);
                    self.heartbeat(t, target, viewer, s, "playing"); // orphan
                }
                return t;
            } else {
                // Now and then a heartbeat exactly 30 s after the last event: silent for
                // the timeout, not more, so the session goes on.
                let next = if self.rng.u32(0..100) == 0 {
                    t + 30_000
                } else {
                    t + 10_000 + self.rng.i64(-1_500..1_500)
                };
                if next >= end {
                    break;
                }
                t = next;
                self.heartbeat(t, target, viewer, s, "playing");
            }
        }
        // Two in three leave with viewend; the rest close the tab silently.
        if self.rng.u32(0..3) < 2 {
            t = t.max(end) + self.rng.i64(200..2_000);
            self.push(t, Kind::Viewend, target, viewer, s);
            if self.rng.u32(0..20) == 0 {
                self.heartbeat(t + 1_200, target, viewer, s, "playing"); // orphan
            }
        }
        t
    }

    /// Chat and follows of a viewer during `[t0, t1]` on a stream.
    pub fn engage_stream(&mut self, target: usize, viewer: u32, t0: i64, t1: i64) {
        let span = (t1 - t0).max(1);
        if self.rng.u32(0..100) < 35 {
            for _ in 0..self.rng.usize(1..6) {
                let count = self.rng.bool().then(|| self.rng.u32(1..6));
                let at = t0 + self.rng.i64(0..span);
                self.push(at, Kind::Chat, target, viewer, 0).count = count;
            }
        }
        if self.rng.u32(0..100) < 6 {
            let at = t0 + self.rng.i64(0..span);
            self.push(at, Kind::Follow, target, viewer, 0);
            if self.rng.u32(0..100) < 15 {
                let at = t0 + self.rng.i64(0..span);
                self.push(at, Kind::Follow, target, viewer, 0);
            }
        }
    }

    /// Likes, shares and clickthroughs of a viewer after a VOD or clip view.
    pub fn engage_content(&mut self, target: usize, viewer: u32, at: i64, clip: bool) {
        if self.rng.u32(0..100) < 20 {
            let at = at + self.rng.i64(1..5_000);
            self.push(at, Kind::Like, target, viewer, 0);
        }
        if self.rng.u32(0..100) < 8 {
            let at = at + self.rng.i64(1..5_000);
            self.push(at, Kind::Share, target, viewer, 0);
        }
        if self.rng.u32(0..100) < if clip { 10 } else { 4 } {
            let at = at + self.rng.i64(1..5_000);
            self.push(at, Kind::Clickthrough, target, viewer, 0);
        }
    }
}
