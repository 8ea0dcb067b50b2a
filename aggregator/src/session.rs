//! The view-session state machine of METRICS.md §1, in event time. Pure: no I/O, no clock.
//!
//! | state | entered by | counts as |
//! |---|---|---|
//! | starting | `viewstart` | alive |
//! | playing | `playing`, `rebuffer_end`, `seek` | alive, watching |
//! | rebuffering | `rebuffer_start` | alive, watching, rebuffering |
//! | paused | `pause` | alive |
//! | ended | `viewend`, `error`, silence | — |
//!
//! The time between two consecutive events of a session is spent in the state the
//! earlier one left it in; it is only known when the later event comes. A session
//! silent for more than the timeout ended at its last event, so that last interval is
//! never watch time. `heartbeat` (and a repeated `viewstart`) only keeps the session
//! alive; a session first seen mid-way starts in the state its event implies
//! (a heartbeat's `state`, else playing) and is not a counted view.
//!
//! The caller (the target's window state) owns the table of sessions, checks the
//! timeout before [`ViewSession::apply`], and books the returned [`Step`] into ticks.

use crate::stage::Stage;
use pulse_schemas::{Device, EndReason, Event, EventKind, Id, PlayerState, SessionRow, TargetKind};
use serde::{Deserialize, Serialize};

/// A session rebuffering for longer than this at a tick end is not a concurrent viewer.
pub const REBUFFER_VIEWER_CUTOFF_MS: i64 = 300_000;

/// State of a view session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    Starting,
    Playing,
    Rebuffering,
    Paused,
    Ended,
}

impl SessionState {
    /// Playing or rebuffering: the time counts as watch time.
    pub fn is_watching(self) -> bool {
        matches!(self, SessionState::Playing | SessionState::Rebuffering)
    }

    /// The state a session first seen mid-way resumes in, from the event that shows it.
    pub fn implied_by(e: &Event) -> SessionState {
        match e.kind {
            EventKind::Viewstart => SessionState::Starting,
            EventKind::Pause => SessionState::Paused,
            EventKind::RebufferStart => SessionState::Rebuffering,
            EventKind::Heartbeat => match e.state {
                Some(PlayerState::Starting) => SessionState::Starting,
                Some(PlayerState::Paused) => SessionState::Paused,
                Some(PlayerState::Rebuffering) => SessionState::Rebuffering,
                Some(PlayerState::Playing) | None => SessionState::Playing,
            },
            EventKind::Error | EventKind::Viewend => SessionState::Ended,
            _ => SessionState::Playing,
        }
    }
}

/// A stretch of watch time `[from, to)` (ms); `rebuffering` when it is also rebuffer time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub from: i64,
    pub to: i64,
    pub rebuffering: bool,
}

/// What one event did to a session: the facts the tick windows book.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Watch time closed by this event (the interval since the previous event).
    pub interval: Option<Interval>,
    /// A `viewstart` that started a counted view.
    pub view: bool,
    /// ... played inside an embed (`embed: true`).
    pub embed_view: bool,
    /// First `playing` after a `viewstart`: startup time in ms.
    pub startup_ms: Option<i64>,
    /// A `rebuffer_start`.
    pub rebuffer_started: bool,
    /// Ended by an `error`.
    pub failed: bool,
    /// The session ended with this event.
    pub ended: Option<EndReason>,
    /// The session had already ended: the event started nothing.
    pub orphan: bool,
}

/// One view session.
///
/// `repr(C)` and aligned to a cache line, its fields in the order they are read:
/// - line 1: what the concurrency sample reads at every tick end (times, QoE group,
///   state) and what most events change (watch and rebuffer time);
/// - line 2: what every event reads for the target's minute windows (the stage, the
///   viewer it is compared with: see [`crate::stage`]), then the session's id, which
///   runs into line 3 (bytes 120–143; the lookup compares it, and a prefetch asks for
///   lines 1 to 3: see [`crate::session_table`]);
/// - then what only some events (startup), attributes, the end and the row read.
///
/// The sample visits every open session at every tick end, and the default layout
/// spread what it reads over the whole struct; in the aggregator bench, the sample
/// fields in one line removed 10 % of the first-level read misses (simulated by
/// callgrind). The cost: the struct is 256 bytes instead of 224 (an entry of its
/// target's table is the session alone, which carries its id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[repr(C, align(64))]
pub struct ViewSession {
    /// Time of its first event (the `viewstart`, or the first event seen mid-way).
    pub start_ts: i64,
    /// Time of its latest event.
    pub last_ts: i64,
    /// When the current rebuffering began (meaningful in `Rebuffering`).
    pub rebuffer_since: i64,
    /// Its (device, country, player) group id in the target's QoE window, cached;
    /// reset when an attribute arrives (see `crate::qoe`).
    #[serde(default)]
    pub qoe_group: Option<u32>,
    pub state: SessionState,
    /// A `playing` has been seen (the first one gives the startup time).
    pub seen_playing: bool,
    pub device: Option<Device>,
    pub embed: Option<bool>,
    pub watch_ms: i64,
    pub rebuffer_ms: i64,
    pub rebuffer_count: i64,
    /// What it holds back for the target's minute windows ([`crate::stage`]); never
    /// written to a snapshot (released into the windows first).
    #[serde(skip)]
    pub stage: Stage,
    pub viewer: Id,
    /// Its id: what its target's table finds it by ([`crate::session_table`]); never
    /// changed once the session is in a table (the table would no longer find it).
    pub session: Id,
    /// Time of the `viewstart` of a counted view; `None` for a session first seen mid-way.
    pub viewstart_ts: Option<i64>,
    pub startup_ms: Option<i64>,
    pub country: Option<Id>,
    pub player: Option<Box<str>>,
    /// How and when it ended (`end_ts` is the last event for a timeout).
    #[serde(with = "end_as_text")]
    pub end: Option<(i64, EndReason)>,
}

/// The leading bytes of a session that a commit reads (lines 1 to 3, see above): what
/// a prefetch asks for.
pub const READ_BY_A_COMMIT: usize = 192;

// The stage and the viewer it is compared with share the second line, and the id ends
// within the third (see above).
const _: () = assert!(
    std::mem::offset_of!(ViewSession, stage) >= 64
        && std::mem::offset_of!(ViewSession, viewer) + std::mem::size_of::<Id>() <= 128
        && std::mem::offset_of!(ViewSession, session) + std::mem::size_of::<Id>()
            <= READ_BY_A_COMMIT
);

impl ViewSession {
    /// Starts a session at its first event (a `viewstart`, or any playback event of a
    /// session first seen mid-way) and applies that event.
    pub fn begin(session: Id, e: &Event) -> (ViewSession, Step) {
        let state = SessionState::implied_by(e);
        let counted = e.kind == EventKind::Viewstart;
        let mut s = ViewSession {
            session,
            viewer: e.viewer.clone(),
            state,
            start_ts: e.ts,
            last_ts: e.ts,
            rebuffer_since: e.ts,
            viewstart_ts: counted.then_some(e.ts),
            seen_playing: e.kind == EventKind::Playing,
            startup_ms: None,
            watch_ms: 0,
            rebuffer_ms: 0,
            rebuffer_count: 0,
            device: None,
            country: None,
            player: None,
            embed: None,
            end: None,
            stage: Stage::default(),
            qoe_group: None,
        };
        s.note_attributes(e);
        let mut step = Step {
            view: counted,
            embed_view: counted && e.embed == Some(true),
            ..Step::default()
        };
        match e.kind {
            EventKind::RebufferStart => {
                s.rebuffer_count = 1;
                step.rebuffer_started = true;
            }
            EventKind::Error => {
                s.end = Some((e.ts, EndReason::Error));
                step.failed = true;
                step.ended = Some(EndReason::Error);
            }
            EventKind::Viewend => {
                s.end = Some((e.ts, EndReason::Viewend));
                step.ended = Some(EndReason::Viewend);
            }
            _ => {}
        }
        (s, step)
    }

    /// Applies the next event of this session. The caller guarantees `e.ts >= last_ts`
    /// and that the session has not timed out before `e.ts` ([`Self::timed_out_at`]).
    pub fn apply(&mut self, e: &Event) -> Step {
        let mut step = Step::default();
        if self.state == SessionState::Ended {
            step.orphan = true;
            return step;
        }
        let ts = e.ts.max(self.last_ts);
        if self.state.is_watching() && ts > self.last_ts {
            let rebuffering = self.state == SessionState::Rebuffering;
            self.watch_ms += ts - self.last_ts;
            if rebuffering {
                self.rebuffer_ms += ts - self.last_ts;
            }
            step.interval = Some(Interval {
                from: self.last_ts,
                to: ts,
                rebuffering,
            });
        }
        self.last_ts = ts;
        self.note_attributes(e);
        match e.kind {
            EventKind::Playing => {
                if !self.seen_playing {
                    self.seen_playing = true;
                    if let Some(vs) = self.viewstart_ts {
                        self.startup_ms = Some(ts - vs);
                        step.startup_ms = self.startup_ms;
                    }
                }
                self.state = SessionState::Playing;
            }
            EventKind::RebufferEnd | EventKind::Seek => self.state = SessionState::Playing,
            EventKind::RebufferStart => {
                self.rebuffer_count += 1;
                step.rebuffer_started = true;
                if self.state != SessionState::Rebuffering {
                    self.rebuffer_since = ts;
                }
                self.state = SessionState::Rebuffering;
            }
            EventKind::Pause => self.state = SessionState::Paused,
            EventKind::Error => {
                self.finish(ts, EndReason::Error);
                step.failed = true;
                step.ended = Some(EndReason::Error);
            }
            EventKind::Viewend => {
                self.finish(ts, EndReason::Viewend);
                step.ended = Some(EndReason::Viewend);
            }
            // heartbeat, a repeated viewstart, engagement: keep alive only
            _ => {}
        }
        step
    }

    /// True when the session, seen up to `t` (exclusive), has been silent for more than
    /// `timeout_ms`: it ended at its last event.
    pub fn timed_out_at(&self, t: i64, timeout_ms: i64) -> bool {
        t - self.last_ts > timeout_ms
    }

    /// Ends the session by silence: at its last event, whose interval is not watch time.
    pub fn expire(&mut self) {
        self.finish(self.last_ts, EndReason::Timeout);
    }

    fn finish(&mut self, ts: i64, reason: EndReason) {
        self.state = SessionState::Ended;
        self.end = Some((ts, reason));
    }

    /// The concurrency sample of METRICS.md §2 at tick end `t` (events before `t` applied):
    /// started before `t`, not ended, an event in `[t − timeout, t)`, not paused, not
    /// rebuffering for more than 5 minutes.
    pub fn is_viewer_at(&self, t: i64, timeout_ms: i64) -> bool {
        match self.state {
            SessionState::Ended | SessionState::Paused => false,
            _ if self.start_ts >= t => false,
            _ if self.timed_out_at(t, timeout_ms) => false,
            SessionState::Rebuffering => t - self.rebuffer_since <= REBUFFER_VIEWER_CUTOFF_MS,
            SessionState::Starting | SessionState::Playing => true,
        }
    }

    /// Device, country, player and embed: the first value seen wins.
    /// The event is tested first: most carry no attribute, and the session's country
    /// and player lie past the two lines most events read ([`ViewSession`]'s layout).
    fn note_attributes(&mut self, e: &Event) {
        if e.device.is_some() && self.device.is_none() {
            self.device = e.device;
            self.qoe_group = None;
        }
        if e.country.is_some() && self.country.is_none() {
            self.country = e.country.clone();
            self.qoe_group = None;
        }
        if e.player.is_some() && self.player.is_none() {
            self.player = e.player.clone();
            self.qoe_group = None;
        }
        if self.embed.is_none() {
            self.embed = e.embed;
        }
    }

    /// The `view_sessions` row of an ended session (`end_ts` = last event if still open).
    pub fn to_row(&self, node: &Id, kind: TargetKind, target: &Id, channel: &Id) -> SessionRow {
        let (end_ts, end_reason) = self.end.unwrap_or((self.last_ts, EndReason::Timeout));
        SessionRow {
            node: node.clone(),
            kind,
            target: target.clone(),
            channel: channel.clone(),
            session: self.session.clone(),
            viewer: self.viewer.clone(),
            start_ts: self.start_ts,
            end_ts,
            end_reason,
            counted_view: self.viewstart_ts.is_some(),
            watch_ms: self.watch_ms,
            rebuffer_ms: self.rebuffer_ms,
            rebuffer_count: self.rebuffer_count,
            startup_ms: self.startup_ms,
            device: self.device.map(Device::as_str),
            country: self.country.clone(),
            player: self.player.clone(),
            embed: self.embed.unwrap_or(false),
        }
    }
}

/// `EndReason` (from pulse-schemas) has no serde: it is written by its name.
mod end_as_text {
    use pulse_schemas::EndReason;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        end: &Option<(i64, EndReason)>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        end.map(|(ts, r)| (ts, r.as_str())).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<(i64, EndReason)>, D::Error> {
        let v: Option<(i64, String)> = Option::deserialize(d)?;
        match v {
            None => Ok(None),
            Some((ts, r)) => {
                let reason = [EndReason::Viewend, EndReason::Error, EndReason::Timeout]
                    .into_iter()
                    .find(|x| x.as_str() == r)
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown end reason {r:?}")))?;
                Ok(Some((ts, reason)))
            }
        }
    }
}
