//! Event generators. Every event is built as a `pulse_schemas::Event` and written with
//! `Event::to_json`, so what we send is what the schema writes.
//!
//! - [`LoadEvents`]: the hot path of `frames` and `batched`. A bounded pool of sessions
//!   per connection (viewstart, playing, then heartbeats, a chat now and then), each
//!   event pre-rendered once with a sentinel `ts` and split around it: rendering an
//!   event is two copies and an integer, so the client does not eat the CPU the server
//!   needs. The pool bounds the aggregator state the run creates.
//! - [`Player`]: one realistic viewer (`viewers`): viewstart, playing after a startup
//!   delay, a heartbeat every 10 s with its state, occasional pause/resume, rebuffers,
//!   chat, likes, follows, rare errors, viewend at the end of a view and at the end of
//!   the run. Real time, a few events a minute.
//! - [`probe_events`]: the latency probe's fresh session.

use pulse_schemas::{Device, Event, EventKind, Id, PlayerState, Target, TargetKind};
use std::fmt::Write as _;

/// Heartbeat period of a player (PROTOCOL.md §1).
pub const HEARTBEAT_MS: i64 = 10_000;
/// A `ts` that cannot collide with anything else in a rendered event.
const TS_SENTINEL: i64 = 7_777_777_777_777;

/// An id built from parts we control (the alphabet is `[A-Za-z0-9_.:-]`).
pub fn id(s: &str) -> Id {
    Id::parse(s).unwrap_or_else(|_| Id::new_unchecked("invalid-id"))
}

/// A stream-target event with every optional field empty.
pub fn event(
    kind: EventKind,
    ts: i64,
    viewer: &Id,
    channel: &Id,
    stream: &Id,
    session: Option<&Id>,
) -> Event {
    let target = Target {
        kind: TargetKind::Stream,
        id: stream.clone(),
    };
    Event::new(
        kind,
        ts,
        viewer.clone(),
        channel.clone(),
        target,
        session.cloned(),
    )
}

/// One event rendered around its `ts`: `head` + ts + `tail`.
#[derive(Clone, Debug)]
struct Template {
    head: String,
    tail: String,
}

impl Template {
    fn new(mut e: Event) -> Template {
        e.ts = TS_SENTINEL;
        let json = e.to_json();
        let sentinel = TS_SENTINEL.to_string();
        let at = json.find(&sentinel).unwrap_or(json.len());
        let tail = json.get(at + sentinel.len()..).unwrap_or("").to_string();
        Template {
            head: json[..at].to_string(),
            tail,
        }
    }

    fn render(&self, ts: i64, out: &mut String) {
        out.push_str(&self.head);
        let _ = write!(out, "{ts}");
        out.push_str(&self.tail);
    }

    fn len(&self) -> usize {
        self.head.len() + self.tail.len() + 13
    }
}

struct PooledSession {
    viewstart: Template,
    playing: Template,
    heartbeat: Template,
    chat: Template,
    sent: u64,
}

/// The event source of one `frames`/`batched` connection: `sessions` sessions on one
/// stream, visited round-robin.
pub struct LoadEvents {
    pool: Vec<PooledSession>,
    next: usize,
    /// Longest rendered event, computed once: it sizes every frame's buffer (walking
    /// the pool's templates for each frame was most of the sender's own CPU).
    longest: usize,
}

impl LoadEvents {
    /// `run` makes ids unique per invocation; `conn` picks the stream (4 streams over
    /// 2 channels) and names the viewers.
    pub fn new(run: &str, conn: usize, sessions: usize) -> LoadEvents {
        let channel = id(&format!("ld{run}-c{}", conn % 2));
        let stream = id(&format!("ld{run}-s{}", conn % 4));
        let pool = (0..sessions.max(1))
            .map(|j| {
                let viewer = id(&format!("ld{run}-v{conn}.{j}"));
                let session = id(&format!("ld{run}-x{conn}.{j}"));
                let mk = |kind| event(kind, 0, &viewer, &channel, &stream, Some(&session));
                let mut viewstart = mk(EventKind::Viewstart);
                viewstart.device = Some(Device::ALL[j % Device::ALL.len()]);
                viewstart.country = Some(id(["US", "DE", "BR", "JP", "IN"][j % 5]));
                viewstart.player = Some("pulse-loadgen/1".into());
                let mut heartbeat = mk(EventKind::Heartbeat);
                heartbeat.state = Some(PlayerState::Playing);
                heartbeat.bitrate_kbps = Some(4500);
                heartbeat.pos = Some(12.5);
                let chat = event(EventKind::Chat, 0, &viewer, &channel, &stream, None);
                PooledSession {
                    viewstart: Template::new(viewstart),
                    playing: Template::new(mk(EventKind::Playing)),
                    heartbeat: Template::new(heartbeat),
                    chat: Template::new(chat),
                    sent: 0,
                }
            })
            .collect::<Vec<_>>();
        let longest = pool
            .iter()
            .flat_map(|s| [&s.viewstart, &s.playing, &s.heartbeat, &s.chat])
            .map(Template::len)
            .max()
            .unwrap_or(0);
        LoadEvents {
            pool,
            next: 0,
            longest,
        }
    }

    /// Appends the next event (JSON) to `out`.
    pub fn next_into(&mut self, ts: i64, out: &mut String) {
        let len = self.pool.len();
        let s = &mut self.pool[self.next];
        self.next = (self.next + 1) % len;
        let t = match s.sent {
            0 => &s.viewstart,
            1 => &s.playing,
            n if n % 50 == 0 => &s.chat,
            _ => &s.heartbeat,
        };
        s.sent += 1;
        t.render(ts, out);
    }

    /// Longest event this source renders, in bytes.
    pub fn max_event_len(&self) -> usize {
        self.longest
    }

    /// Writes `{"seq":N,"events":[…]}` with up to `max_events` events, stopping before
    /// the frame would exceed `max_bytes`. Returns the number of events written.
    pub fn envelope_into(
        &mut self,
        seq: u64,
        ts: i64,
        max_events: usize,
        max_bytes: usize,
        out: &mut String,
    ) -> usize {
        out.clear();
        let _ = write!(out, "{{\"seq\":{seq},\"events\":[");
        let room = self.max_event_len() + 1;
        let mut n = 0;
        while n < max_events && out.len() + room + 2 <= max_bytes {
            if n > 0 {
                out.push(',');
            }
            self.next_into(ts, out);
            n += 1;
        }
        out.push_str("]}");
        n
    }
}

/// The events of a latency probe: a fresh session on a probe stream (viewstart +
/// playing), then `viewend` once the tick it should show in has ended.
pub fn probe_events(run: &str, probe: usize, n: u64, ts: i64, end: bool) -> Vec<Event> {
    let channel = id(&format!("pr{run}-c"));
    let stream = probe_stream(run, probe);
    let viewer = id(&format!("pr{run}-v{probe}.{n}"));
    let session = id(&format!("pr{run}-x{probe}.{n}"));
    let mk = |kind| event(kind, ts, &viewer, &channel, &stream, Some(&session));
    if end {
        vec![mk(EventKind::Viewend)]
    } else {
        vec![mk(EventKind::Viewstart), mk(EventKind::Playing)]
    }
}

/// The stream a probe writes to (one per probe, so every viewer of it is ours).
pub fn probe_stream(run: &str, probe: usize) -> Id {
    id(&format!("pr{run}-s{probe}"))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// No view open; the next starts at `.0`.
    Between(i64),
    /// `viewstart` sent; first frame at `.0`.
    Starting(i64),
    Playing,
    /// Paused until `.0`.
    Paused(i64),
    /// Rebuffering until `.0`.
    Rebuffering(i64),
}

/// One viewer's player, driven in real time by [`Player::poll`].
pub struct Player {
    viewer: Id,
    channel: Id,
    stream: Id,
    device: Device,
    country: Id,
    session: Option<Id>,
    views: u32,
    phase: Phase,
    next_heartbeat: i64,
    view_end: i64,
    view_start: i64,
    rng: fastrand::Rng,
}

impl Player {
    /// Viewer `i` of `streams` streams (two per channel); its first view starts at `start_ms`.
    pub fn new(run: &str, i: usize, streams: usize, start_ms: i64, seed: u64) -> Player {
        let s = i % streams.max(1);
        let mut rng =
            fastrand::Rng::with_seed(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Player {
            viewer: id(&format!("vw{run}-v{i}")),
            channel: id(&format!("vw{run}-c{}", s / 2)),
            stream: id(&format!("vw{run}-s{s}")),
            device: Device::ALL[rng.usize(..Device::ALL.len())],
            country: id(["US", "DE", "BR", "JP", "IN", "FR", "GB"][rng.usize(..7)]),
            session: None,
            views: 0,
            phase: Phase::Between(start_ms),
            next_heartbeat: i64::MAX,
            view_end: i64::MAX,
            view_start: start_ms,
            rng,
        }
    }

    fn ev(&self, kind: EventKind, ts: i64) -> Event {
        let mut e = event(kind, ts, &self.viewer, &self.channel, &self.stream, None);
        if kind.is_playback() {
            e.session = self.session.clone();
            e.pos = Some(((ts - self.view_start).max(0) as f64) / 1000.0);
        }
        e
    }

    /// When [`Player::poll`] next has something to do.
    pub fn next_wake(&self) -> i64 {
        match self.phase {
            Phase::Between(t) => t,
            Phase::Starting(t) | Phase::Paused(t) | Phase::Rebuffering(t) => {
                t.min(self.next_heartbeat)
            }
            Phase::Playing => self.next_heartbeat.min(self.view_end),
        }
    }

    /// Events due at `now` (appended to `out`).
    pub fn poll(&mut self, now: i64, out: &mut Vec<Event>) {
        match self.phase {
            Phase::Between(t) if now >= t => {
                self.views += 1;
                self.session = Some(id(&format!("{}.{}", self.viewer, self.views)));
                self.view_start = now;
                let mut e = self.ev(EventKind::Viewstart, now);
                e.device = Some(self.device);
                e.country = Some(self.country.clone());
                e.player = Some("pulse-loadgen/1".into());
                e.embed = Some(self.rng.u8(..20) == 0);
                out.push(e);
                self.phase = Phase::Starting(now + self.rng.i64(300..3000));
                self.next_heartbeat = now + HEARTBEAT_MS;
                // Views last 1 to 20 minutes.
                self.view_end = now + self.rng.i64(60_000..1_200_000);
                return;
            }
            Phase::Starting(t) | Phase::Paused(t) if now >= t => {
                out.push(self.ev(EventKind::Playing, now));
                self.phase = Phase::Playing;
            }
            Phase::Rebuffering(t) if now >= t => {
                out.push(self.ev(EventKind::RebufferEnd, now));
                self.phase = Phase::Playing;
            }
            _ => {}
        }
        if matches!(self.phase, Phase::Between(_)) {
            return;
        }
        if self.phase == Phase::Playing && now >= self.view_end {
            self.end_view(now, out);
            return;
        }
        if now >= self.next_heartbeat {
            let mut hb = self.ev(EventKind::Heartbeat, now);
            hb.state = Some(match self.phase {
                Phase::Starting(_) => PlayerState::Starting,
                Phase::Paused(_) => PlayerState::Paused,
                Phase::Rebuffering(_) => PlayerState::Rebuffering,
                _ => PlayerState::Playing,
            });
            hb.bitrate_kbps = Some([1200, 2500, 4500, 6000][self.rng.usize(..4)]);
            out.push(hb);
            self.next_heartbeat += HEARTBEAT_MS;
            if self.phase == Phase::Playing {
                self.maybe_act(now, out);
            }
        }
    }

    fn maybe_act(&mut self, now: i64, out: &mut Vec<Event>) {
        let roll = self.rng.u32(..1000);
        match roll {
            0..30 => {
                out.push(self.ev(EventKind::Pause, now));
                self.phase = Phase::Paused(now + self.rng.i64(3_000..25_000));
            }
            30..70 => {
                out.push(self.ev(EventKind::RebufferStart, now));
                self.phase = Phase::Rebuffering(now + self.rng.i64(200..4_000));
            }
            70..120 => {
                let mut chat = self.ev(EventKind::Chat, now);
                chat.count = Some(self.rng.u32(1..4));
                out.push(chat);
            }
            120..130 => out.push(self.ev(EventKind::Like, now)),
            130..135 => out.push(self.ev(EventKind::Follow, now)),
            135..137 => {
                let mut err = self.ev(EventKind::Error, now);
                err.code = Some("MEDIA_ERR_DECODE".into());
                out.push(err);
                self.session = None;
                self.phase = Phase::Between(now + self.rng.i64(1_000..5_000));
            }
            _ => {}
        }
    }

    fn end_view(&mut self, now: i64, out: &mut Vec<Event>) {
        out.push(self.ev(EventKind::Viewend, now));
        self.session = None;
        self.phase = Phase::Between(now + self.rng.i64(1_000..5_000));
    }

    /// The end of the run: closes an open view with `viewend`.
    pub fn finish(&mut self, now: i64, out: &mut Vec<Event>) {
        if !matches!(self.phase, Phase::Between(_)) {
            self.end_view(now, out);
        }
        self.phase = Phase::Between(i64::MAX);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use pulse_schemas::parse_frame;

    const NOW: i64 = 1_764_000_000_000;

    #[test]
    fn load_events_are_valid() {
        let mut g = LoadEvents::new("r1", 3, 7);
        let mut kinds = std::collections::BTreeSet::new();
        let mut s = String::new();
        for i in 0..500 {
            s.clear();
            g.next_into(NOW + i, &mut s);
            let f = parse_frame(&s);
            assert_eq!(f.rejected, 0, "{s}: {:?}", f.reasons);
            assert_eq!(f.events.len(), 1);
            assert_eq!(f.events[0].ts, NOW + i);
            assert!(s.len() <= g.max_event_len(), "{s}");
            kinds.insert(f.events[0].kind);
        }
        for k in [
            EventKind::Viewstart,
            EventKind::Playing,
            EventKind::Heartbeat,
            EventKind::Chat,
        ] {
            assert!(kinds.contains(&k), "{k} never generated");
        }
    }

    #[test]
    fn envelopes_fit_the_frame_limit_and_carry_seq() {
        let mut g = LoadEvents::new("r1", 0, 100);
        let mut s = String::new();
        let n = g.envelope_into(42, NOW, 1000, 64 * 1024, &mut s);
        assert!(s.len() <= 64 * 1024, "{}", s.len());
        assert!(n > 100 && n < 1000, "{n}");
        let f = parse_frame(&s);
        assert_eq!(
            (f.seq, f.events.len(), f.rejected),
            (Some(42), n, 0),
            "{:?}",
            f.reasons
        );
        let n = g.envelope_into(43, NOW, 1000, 1 << 20, &mut s);
        assert_eq!(n, 1000);
        let f = parse_frame(&s);
        assert_eq!(
            (f.seq, f.events.len(), f.rejected),
            (Some(43), 1000, 0),
            "{:?}",
            f.reasons
        );
    }

    #[test]
    fn players_send_valid_realistic_sessions() {
        let mut all = Vec::new();
        for i in 0..200 {
            let mut p = Player::new("r1", i, 4, NOW + i as i64 * 10, 7);
            let mut now = NOW;
            let end = NOW + 30 * 60_000;
            let mut guard = 0;
            while now < end && guard < 10_000 {
                now = p.next_wake().max(now);
                p.poll(now, &mut all);
                guard += 1;
            }
            p.finish(end, &mut all);
        }
        let mut count = std::collections::BTreeMap::new();
        for e in &all {
            let f = parse_frame(&e.to_json());
            assert_eq!(f.rejected, 0, "{}: {:?}", e.to_json(), f.reasons);
            assert_eq!(&f.events[0], e);
            *count.entry(e.kind).or_insert(0u32) += 1;
        }
        for k in [
            EventKind::Viewstart,
            EventKind::Playing,
            EventKind::Heartbeat,
            EventKind::Pause,
            EventKind::RebufferStart,
            EventKind::RebufferEnd,
            EventKind::Viewend,
            EventKind::Chat,
        ] {
            assert!(
                count.get(&k).copied().unwrap_or(0) > 0,
                "{k} never generated: {count:?}"
            );
        }
        // Heartbeats dominate: about one per 10 s of open view.
        assert!(
            count[&EventKind::Heartbeat] > count[&EventKind::Viewstart] * 5,
            "{count:?}"
        );
        // Whole batches of generated events parse too.
        let batch = format!(
            "[{}]",
            all[..100]
                .iter()
                .map(Event::to_json)
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(parse_frame(&batch).events.len(), 100);
    }

    #[test]
    fn player_heartbeats_every_ten_seconds_and_ends_its_view() {
        let mut p = Player::new("r1", 0, 1, NOW, 1);
        let mut out = Vec::new();
        p.poll(NOW, &mut out);
        assert_eq!(out[0].kind, EventKind::Viewstart);
        let mut now = NOW;
        while now < NOW + 55_000 {
            now = p.next_wake();
            p.poll(now, &mut out);
        }
        let hb: Vec<i64> = out
            .iter()
            .filter(|e| e.kind == EventKind::Heartbeat)
            .map(|e| e.ts)
            .collect();
        assert!(hb.len() >= 4, "{out:?}");
        assert!(hb.windows(2).all(|w| w[1] - w[0] == HEARTBEAT_MS), "{hb:?}");
        let mut end = Vec::new();
        p.finish(now + 1, &mut end);
        assert!(
            end.is_empty()
                || end[0].kind == EventKind::Viewend
                || out.last().map(|e| e.kind) == Some(EventKind::Error)
        );
        assert_eq!(p.next_wake(), i64::MAX);
    }

    #[test]
    fn probe_events_are_valid_and_per_probe() {
        for end in [false, true] {
            for e in probe_events("r9", 2, 5, NOW, end) {
                let f = parse_frame(&e.to_json());
                assert_eq!(f.rejected, 0, "{:?}", f.reasons);
                assert_eq!(e.target.id, probe_stream("r9", 2));
            }
        }
    }
}
