//! Applying events ahead of the watermark (lib.rs, "Applied ahead"): the marks to
//! rewind to when an event arrives behind the frontier, and the rows closed ahead of
//! the watermark, held until it passes them ([`Ahead`], bookkeeping); and the
//! engine's moves ahead, rewinds and settling, which apply through the engine.

use crate::engine::{Aggregator, Core};
use crate::tombstones::Tombstones;
use pulse_schemas::ClosedWindows;
use std::collections::VecDeque;

/// At most this many marks are kept (with the default spacing, an eighth of the
/// lateness, about nine are alive); past it the frontier moves without new ones and a
/// rewind goes further back.
const MAX_MARKS: usize = 12;

/// The frontier stays at least this far (ms) behind the newest event time: events
/// stamped a moment before a flush that arrive just after it are common.
pub(crate) const MIN_MARGIN_MS: i64 = 100;

/// A copy of the state as it was with every event before `at` applied.
#[derive(Clone, Debug)]
pub(crate) struct Mark {
    pub at: i64,
    pub core: Core,
    pub graves: Tombstones,
}

/// Rows closed while the frontier moved up to `at`.
#[derive(Clone, Debug)]
struct Held {
    at: i64,
    rows: ClosedWindows,
}

#[derive(Clone, Debug)]
pub(crate) struct Ahead {
    /// Oldest first. While the frontier is past the watermark the first one is at or
    /// below it (the base: what the released rows and a snapshot stand on).
    marks: VecDeque<Mark>,
    held: VecDeque<Held>,
    /// The smallest time of an event accepted behind the frontier since the last rewind.
    behind: Option<i64>,
    /// How far (ms) the frontier stays behind the newest event time: twice the deepest
    /// straggler seen, decaying by 1/32 a move, between `MIN_MARGIN_MS` and the lateness.
    pub margin: i64,
    /// Rewinds so far (an event arrived behind the frontier).
    pub rewinds: u64,
    /// Events applied since the newest mark.
    pub since_mark: u64,
}

impl Default for Ahead {
    fn default() -> Self {
        Ahead {
            marks: VecDeque::new(),
            held: VecDeque::new(),
            behind: None,
            margin: MIN_MARGIN_MS,
            rewinds: 0,
            since_mark: 0,
        }
    }
}

impl Ahead {
    /// An event came behind the frontier since the last rewind.
    pub fn has_behind(&self) -> bool {
        self.behind.is_some()
    }

    /// An event at `ts` was accepted behind the frontier.
    pub fn note_behind(&mut self, ts: i64) {
        self.behind = Some(self.behind.map_or(ts, |b| b.min(ts)));
    }

    /// If an event arrived behind `frontier`: the newest mark at or before it (newer
    /// marks and rows held past it are dropped), and the margin grows to twice how far
    /// behind it came.
    pub fn rewind(&mut self, frontier: i64, lateness: i64) -> Option<&Mark> {
        let t = self.behind.take()?;
        if t >= frontier {
            return None;
        }
        self.rewinds += 1;
        self.since_mark = 0;
        self.margin = self
            .margin
            .max(frontier.saturating_sub(t).saturating_mul(2))
            .min(lateness.max(MIN_MARGIN_MS));
        while self.marks.len() > 1 && self.marks.back().is_some_and(|m| m.at > t) {
            self.marks.pop_back();
        }
        let at = self.marks.back()?.at;
        // The base is at or below every accepted event's time (they are not late).
        debug_assert!(at <= t, "no mark at or before a straggler at {t}");
        if at > t {
            return None;
        }
        while self.held.back().is_some_and(|h| h.at > at) {
            self.held.pop_back();
        }
        self.marks.back()
    }

    /// Where the frontier may move to at time `now`: `margin` behind the newest
    /// event time (not past `now`).
    pub fn front(&self, now: i64, max_ts: i64) -> i64 {
        now.min(max_ts)
            .saturating_add(1)
            .saturating_sub(self.margin)
    }

    /// The frontier got where it may: the margin decays a little.
    pub fn decay(&mut self, lateness: i64) {
        self.margin =
            (self.margin - self.margin / 32).clamp(MIN_MARGIN_MS, lateness.max(MIN_MARGIN_MS));
    }

    /// Whether the state is ahead of the watermark with a base to go back to.
    pub fn has_base(&self) -> bool {
        !self.marks.is_empty()
    }

    pub fn base(&self) -> Option<&Mark> {
        self.marks.front()
    }

    /// Keeps a copy of the state at `at`: always the first (the base); then one once
    /// `spacing` of frontier has passed and the events applied since the last mark
    /// outnumber `items` (the open sessions, minutes and targets a copy holds: a copy
    /// costs about what the events it lets go of do), or four spacings have passed.
    /// So a small state at a high rate is marked often (pending is let go of soon) and
    /// a large state at a low rate rarely (few copies).
    pub fn mark(
        &mut self,
        at: i64,
        spacing: i64,
        items: u64,
        copy: impl FnOnce() -> (Core, Tombstones),
    ) {
        let due = match self.marks.back() {
            None => true,
            Some(m) => {
                let apart = at - m.at;
                self.marks.len() < MAX_MARKS
                    && apart >= spacing
                    && (self.since_mark >= items || apart >= 4 * spacing)
            }
        };
        if due {
            self.since_mark = 0;
            let (core, graves) = copy();
            self.marks.push_back(Mark { at, core, graves });
        }
    }

    /// Holds the rows closed while the frontier moved to `at`.
    pub fn hold(&mut self, at: i64, rows: ClosedWindows) {
        if !rows.is_empty() {
            self.held.push_back(Held { at, rows });
        }
    }

    /// The watermark reached `w` while the frontier is past it: the newest mark at or
    /// below `w` becomes the base (older ones go), the rows held up to it are released
    /// into `out`. Returns the base's time (everything before it is final).
    pub fn settle(&mut self, w: i64, out: &mut ClosedWindows) -> Option<i64> {
        while self.marks.len() > 1 && self.marks.get(1).is_some_and(|m| m.at <= w) {
            self.marks.pop_front();
        }
        let at = self.marks.front()?.at;
        while self.held.front().is_some_and(|h| h.at <= at) {
            if let Some(mut h) = self.held.pop_front() {
                out.append_rows(&mut h.rows);
            }
        }
        Some(at)
    }

    /// The state is final up to its frontier: every held row goes to `out`, the marks go.
    pub fn release_all(&mut self, out: &mut ClosedWindows) {
        for mut h in self.held.drain(..) {
            out.append_rows(&mut h.rows);
        }
        self.marks.clear();
    }

    /// The rows held (closed ahead of the watermark, not released): provisional rows.
    pub fn held_rows(&self) -> impl Iterator<Item = &ClosedWindows> {
        self.held.iter().map(|h| &h.rows)
    }

    /// Forgets everything ahead (after a restore: the state is the base).
    pub fn clear(&mut self) {
        self.marks.clear();
        self.held.clear();
        self.behind = None;
    }
}

impl Aggregator {
    /// An event arrived behind the frontier: back to the newest mark before it.
    pub(crate) fn rewind(&mut self) {
        let lateness = self.cfg.allowed_lateness_ms;
        if let Some(m) = self.look.rewind(self.ahead, lateness) {
            (self.core, self.graves, self.ahead) = (m.core.clone(), m.graves.clone(), m.at);
        }
    }

    /// Moves the state ahead of the watermark as far as stragglers allow (see
    /// `crate::ahead`), holding the rows that closes and marking the way (after a
    /// rewind, if an event came behind it). This is commit work `advance` would do
    /// later anyway (the live loop calls it, in steps, at every flush, before
    /// [`Aggregator::provisional`], whose scratch part alone is rationed, and in single
    /// steps between flushes).
    pub fn move_ahead(&mut self, now: i64) {
        while !self.move_ahead_step(now, i64::MAX) {}
    }

    /// How far (ms of event time) the frontier is behind where
    /// [`Aggregator::move_ahead`]`(now)` would put it (0 when it is there). Cheap: the
    /// live loop asks it between flushes to spend idle time applying ahead.
    pub fn ahead_lag(&self, now: i64) -> i64 {
        let front = self.look.front(now, self.max_ts);
        front.saturating_sub(self.ahead.max(self.watermark)).max(0)
    }

    /// An event came behind the frontier since the last rewind: the next move starts
    /// with a rewind (a copy of a mark and the events since it applied again).
    pub fn rewind_pending(&self) -> bool {
        self.look.has_behind()
    }

    /// [`Aggregator::move_ahead`] by at most `step` ms of event time at a time, so a
    /// caller can take input in between (the live loop: a long move would otherwise
    /// hold up ingest behind a full channel). True once the frontier got where
    /// `move_ahead` would put it.
    pub fn move_ahead_step(&mut self, now: i64, step: i64) -> bool {
        self.rewind();
        let lateness = self.cfg.allowed_lateness_ms;
        let front = self.look.front(now, self.max_ts);
        if front <= self.ahead || front <= self.watermark {
            self.look.decay(lateness);
            return true;
        }
        let to = front.min(self.ahead.max(self.watermark).saturating_add(step.max(1)));
        let spacing = (lateness / 8).max(1);
        let (core, graves) = (&self.core, &self.graves);
        self.look.mark(self.ahead, spacing, core.items(), || {
            (core.clone(), graves.clone())
        });
        let mut rows = ClosedWindows::default();
        self.apply_to(to, &mut rows);
        self.look.hold(to, rows);
        let (core, graves) = (&self.core, &self.graves);
        self.look
            .mark(to, spacing, core.items(), || (core.clone(), graves.clone()));
        if to < front {
            return false;
        }
        self.look.decay(lateness);
        true
    }

    /// Drops what is ahead of the watermark (back to the base), so that the next
    /// `advance` makes everything up to the watermark final (shutdown).
    pub fn settle(&mut self) {
        // (Held rows past the base were closed by the state being dropped: they come
        // again as the next `advance` applies from the base.)
        if let Some(m) = self.look.base()
            && self.ahead > m.at
        {
            (self.core, self.graves, self.ahead) = (m.core.clone(), m.graves.clone(), m.at);
        }
        self.look.clear();
    }
}
