//! Event-time windows of one target: 5 s ticks (`stream_ticks`), and what the minute
//! windows share ([`MINUTE_MS`], [`window_start`], the global [`Bound`]); per-viewer
//! minutes are in [`crate::minute`].
//!
//! Ticks are aligned to the epoch (`t = ts − ts mod tick`). A [`TickWindow`] holds the
//! open ticks of a target in a `VecDeque` indexed from its oldest open tick; a stretch
//! of watch time is split exactly at tick boundaries. A tick or a minute is closed (its
//! row written once, never changed) when everything that can still change it is known:
//! `end + session_timeout ≤ W` (see lib.rs). Rows are written only for windows with
//! something nonzero. Startup times stay raw (`Vec<u32>`) until the row is built.

use crate::histogram::encode_startups;
use crate::qoe::RowContext;
use crate::session::Interval;
use pulse_schemas::TickRow;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How many of the newest open ticks [`TickWindow`] looks through before it divides.
const NEAR_TICKS: usize = 4;

/// Length of a viewer minute (ms).
pub const MINUTE_MS: i64 = 60_000;

/// Start of the window of length `len` holding `ts` (aligned to the epoch).
pub fn window_start(ts: i64, len: i64) -> i64 {
    ts - ts.rem_euclid(len)
}

/// Counters of one target in one tick `[t, t + tick)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TickAcc {
    /// Concurrency sample at the tick's end.
    pub viewers: i64,
    pub events: i64,
    pub views: i64,
    pub watch_ms: i64,
    pub rebuffer_ms: i64,
    pub rebuffer_count: i64,
    /// Raw startup times (ms, clamped to u32) whose first `playing` fell in the tick.
    pub startups: Vec<u32>,
    pub failures: i64,
    pub chat_messages: i64,
    pub follows: i64,
    pub likes: i64,
    pub shares: i64,
    pub embed_views: i64,
    pub clickthroughs: i64,
}

impl TickAcc {
    /// Nothing happened and nobody watched: no row.
    pub fn is_empty(&self) -> bool {
        self.viewers == 0
            && self.events == 0
            && self.views == 0
            && self.watch_ms == 0
            && self.rebuffer_ms == 0
            && self.rebuffer_count == 0
            && self.startups.is_empty()
            && self.failures == 0
            && self.chat_messages == 0
            && self.follows == 0
            && self.likes == 0
            && self.shares == 0
            && self.embed_views == 0
            && self.clickthroughs == 0
    }

    /// The `stream_ticks` row (builds the startup histogram).
    pub fn to_row(&self, ctx: &RowContext<'_>, t: i64) -> TickRow {
        TickRow {
            node: ctx.node.clone(),
            kind: ctx.kind,
            target: ctx.target.clone(),
            channel: ctx.channel.clone(),
            t,
            viewers: self.viewers,
            events: self.events,
            views: self.views,
            watch_ms: self.watch_ms,
            rebuffer_ms: self.rebuffer_ms,
            rebuffer_count: self.rebuffer_count,
            startups: self.startups.len() as i64,
            startup_hist: encode_startups(&self.startups),
            failures: self.failures,
            chat_messages: self.chat_messages,
            follows: self.follows,
            likes: self.likes,
            shares: self.shares,
            embed_views: self.embed_views,
            clickthroughs: self.clickthroughs,
        }
    }
}

/// The open ticks of one target, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TickWindow {
    tick_ms: i64,
    /// Start of `ticks[0]`.
    base: i64,
    ticks: VecDeque<TickAcc>,
}

impl TickWindow {
    pub fn new(tick_ms: i64) -> Self {
        TickWindow {
            tick_ms: tick_ms.max(1),
            base: 0,
            ticks: VecDeque::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ticks.is_empty()
    }

    /// Number of open ticks.
    pub fn len(&self) -> usize {
        self.ticks.len()
    }

    /// The accumulator of the tick holding `ts`, created if needed.
    pub fn at(&mut self, ts: i64) -> &mut TickAcc {
        let i = self.open(ts);
        &mut self.ticks[i]
    }

    /// Opens the tick holding `ts` (and every tick between it and the open ones);
    /// returns its index.
    #[inline]
    fn open(&mut self, ts: i64) -> usize {
        // Fast path, no division: most times fall in the newest open ticks (an event in
        // the newest, the start of a heartbeat's interval a few before it).
        let n = self.ticks.len();
        if n > 0 {
            let mut i = n - 1;
            let mut start = self.base + i as i64 * self.tick_ms;
            for _ in 0..NEAR_TICKS {
                if ts >= start {
                    if ts < start + self.tick_ms {
                        return i;
                    }
                    break;
                }
                if i == 0 {
                    break;
                }
                i -= 1;
                start -= self.tick_ms;
            }
        }
        self.open_far(ts)
    }

    /// [`Self::open`] for a time not among the newest open ticks (or none open).
    #[cold]
    #[inline(never)]
    fn open_far(&mut self, ts: i64) -> usize {
        let t = window_start(ts, self.tick_ms);
        if self.ticks.is_empty() {
            self.base = t;
        }
        while t < self.base {
            self.ticks.push_front(TickAcc::default());
            self.base -= self.tick_ms;
        }
        let i = ((t - self.base) / self.tick_ms) as usize;
        while self.ticks.len() <= i {
            self.ticks.push_back(TickAcc::default());
        }
        i
    }

    /// Books a stretch of watch (and maybe rebuffer) time, split at tick boundaries.
    pub fn add_interval(&mut self, iv: Interval) {
        if iv.from >= iv.to {
            return;
        }
        // Open the older end first (it may add ticks in front, moving indexes), then
        // the newer one (it only adds behind), and walk the ticks between.
        let first = self.open(iv.from);
        let last = self.open(iv.to - 1);
        let mut start = self.base + first as i64 * self.tick_ms;
        for i in first..=last {
            let (from, end) = (iv.from.max(start), iv.to.min(start + self.tick_ms));
            if let Some(acc) = self.ticks.get_mut(i) {
                acc.watch_ms += end - from;
                if iv.rebuffering {
                    acc.rebuffer_ms += end - from;
                }
            }
            start += self.tick_ms;
        }
    }

    /// Removes every tick `[t, t + tick)` with `t + tick <= close_before`, oldest first,
    /// handing each to `f` with its start.
    pub fn pop_closed(&mut self, close_before: i64, mut f: impl FnMut(i64, TickAcc)) {
        while !self.ticks.is_empty() && self.base + self.tick_ms <= close_before {
            if let Some(acc) = self.ticks.pop_front() {
                f(self.base, acc);
            }
            self.base += self.tick_ms;
        }
    }

    /// Every open tick with its start, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &TickAcc)> {
        let (base, tick) = (self.base, self.tick_ms);
        self.ticks
            .iter()
            .enumerate()
            .map(move |(i, a)| (base + i as i64 * tick, a))
    }
}

/// A global bound on open entries (viewer-minutes, sessions): `open` counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    pub open: usize,
    pub max: usize,
}

impl Bound {
    /// Takes one slot; false when the bound is reached.
    pub fn take(&mut self) -> bool {
        if self.open >= self.max {
            return false;
        }
        self.open += 1;
        true
    }

    pub fn release(&mut self, n: usize) {
        self.open = self.open.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn edge() -> impl Strategy<Value = i64> {
        prop_oneof![Just(0i64), Just(1), Just(999), 0i64..1_000]
    }

    proptest! {
        /// Watch time split at tick boundaries equals, tick by tick, the overlap of
        /// every interval with the tick, whatever the order the ticks were opened in
        /// (before the oldest open tick, far past the newest, or near it).
        #[test]
        fn intervals_split_exactly_at_ticks(
            raw in proptest::collection::vec((0i64..200, edge(), 0i64..40, edge(), any::<bool>()), 1..30)
        ) {
            // Whole seconds plus an offset that is often 0 or next to a second: tick
            // boundaries (every 5 s) are hit often.
            let spans: Vec<(i64, i64, bool)> = raw
                .iter()
                .map(|&(s, so, l, lo, r)| (s * 1_000 + so, l * 1_000 + lo, r))
                .collect();
            let tick = 5_000;
            let mut w = TickWindow::new(tick);
            for &(from, len, rebuffering) in &spans {
                w.add_interval(Interval { from, to: from + len, rebuffering });
            }
            let overlap = |t: i64, only_rebuffer: bool| -> i64 {
                spans
                    .iter()
                    .filter(|s| s.2 || !only_rebuffer)
                    .map(|&(from, len, _)| ((from + len).min(t + tick) - from.max(t)).max(0))
                    .sum()
            };
            let mut booked = 0;
            for (t, acc) in w.iter() {
                prop_assert_eq!(t.rem_euclid(tick), 0);
                prop_assert_eq!(acc.watch_ms, overlap(t, false), "tick {}", t);
                prop_assert_eq!(acc.rebuffer_ms, overlap(t, true), "tick {}", t);
                booked += acc.watch_ms;
            }
            prop_assert_eq!(booked, spans.iter().map(|s| s.1).sum::<i64>());
        }
    }
}
