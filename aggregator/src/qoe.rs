//! Playback quality of one target per minute and (device, country, player) group: the
//! `qoe_minutes` rows behind the `&by=` breakdowns (issue 4 point 5). Pure, no I/O.
//!
//! - A session's group is its device, country and player as known when something is
//!   booked (the first value seen of each wins, as on its `view_sessions` row; one not
//!   sent yet is `unknown`). A session caches its group id, reset when an attribute
//!   arrives, so booking costs one small integer-keyed lookup.
//! - Everything a session's [`Step`] books into its ticks (watch and rebuffer time,
//!   views, rebuffer count, failures, startup times) is booked here too, split at
//!   minute boundaries instead of tick boundaries; the concurrency sample of each tick
//!   end adds 1 to the viewer's group (`viewer_ticks`). So, per minute, the groups add
//!   up to the minute's ticks (a property test holds the engine to it). The samples of
//!   a minute are summed per group in a dense vector and booked into the minute's
//!   accumulators once, at its last tick end (or before it closes, in a dump; the sums
//!   are part of a snapshot): booked at every tick end, they visited every group's
//!   accumulator 12 times a minute, lines that were cold each time (4 % of the
//!   aggregator bench's wall time).
//! - Groups are interned per target, in first-seen (commit) order, so ids and rows are
//!   deterministic. At most `max_groups` per target: a session of a group past the
//!   bound is booked into the [`OTHER`] group and counted (`qoe_groups_overflowed`).
//! - A minute is closed by the same rule as a viewer minute (`end ≤ close_before`).

use crate::histogram::encode_startups;
use crate::session::{Step, ViewSession};
use crate::window::{MINUTE_MS, window_start};
use pulse_schemas::qoe_tables::{Label, OTHER, UNKNOWN};
use pulse_schemas::{Id, QoeMinuteRow, TargetKind};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The dimensions of one group ([`Label`]s: every row of the group copies them, inline
/// when short). Written as three strings in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    pub device: Label,
    pub country: Label,
    pub player: Label,
}

impl GroupKey {
    /// The dimensions of a session's group, borrowed (a lookup copies nothing).
    fn parts(s: &ViewSession) -> [&str; 3] {
        [
            s.device.map_or(UNKNOWN, |d| d.as_str()),
            s.country.as_ref().map_or(UNKNOWN, Id::as_str),
            s.player.as_deref().unwrap_or(UNKNOWN),
        ]
    }

    fn is(&self, parts: [&str; 3]) -> bool {
        [&*self.device, &*self.country, &*self.player] == parts
    }

    fn labels(&self) -> [Label; 3] {
        [
            self.device.clone(),
            self.country.clone(),
            self.player.clone(),
        ]
    }

    fn other() -> GroupKey {
        GroupKey {
            device: OTHER.into(),
            country: OTHER.into(),
            player: OTHER.into(),
        }
    }
}

/// What one group did in one minute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QoeAcc {
    pub viewer_ticks: i64,
    pub views: i64,
    pub watch_ms: i64,
    pub rebuffer_ms: i64,
    pub rebuffer_count: i64,
    /// Raw startup times (ms), histogram built with the row.
    pub startups: Vec<u32>,
    pub failures: i64,
}

/// The open QoE minutes of one target and its interned groups.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QoeWindow {
    /// Group keys by id, first seen first.
    keys: Vec<GroupKey>,
    /// Fingerprint of a key's three strings → the first id with it (a colliding key
    /// is found by a scan of `keys`); rebuilt from `keys` after a snapshot is loaded.
    /// A fingerprint, not the key, so a lookup borrows the session's strings instead of
    /// copying them.
    #[serde(skip)]
    index: foldhash::HashMap<u64, u32>,
    /// Viewers per group of the concurrency sample being taken (scratch, kept zeroed
    /// between samples).
    #[serde(skip)]
    viewers: Vec<i32>,
    /// Viewer ticks per group sampled in the minute starting at `sampled_minute` and not
    /// yet added to its accumulators: added once, when its last tick end is sampled
    /// (or before it closes, a dump or a snapshot), instead of at every tick end.
    #[serde(default)]
    sampled: Vec<i64>,
    #[serde(default)]
    sampled_minute: i64,
    /// Start of `minutes[0]`.
    base: i64,
    /// Open minutes, oldest first; each holds its accumulators indexed by group id
    /// (dense: ids are small and few per target, and an index is cheaper than a hash).
    minutes: VecDeque<Vec<QoeAcc>>,
}

impl QoeWindow {
    /// No open minute and no viewer tick waiting to be booked into one.
    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty() && !self.summing()
    }

    /// Viewer ticks are summed and not booked yet.
    fn summing(&self) -> bool {
        self.sampled.iter().any(|&n| n != 0)
    }

    /// The session's group id (interned on first use; the session caches it).
    /// `overflowed` counts sessions put into [`OTHER`] because of `max_groups`.
    #[inline]
    pub fn group_of(
        &mut self,
        s: &mut ViewSession,
        max_groups: usize,
        overflowed: &mut u64,
    ) -> u32 {
        match s.qoe_group {
            Some(g) => g,
            None => self.assign_group(s, max_groups, overflowed),
        }
    }

    /// [`Self::group_of`] for a session with no cached group (kept out of line: the
    /// cached answer is the one taken on nearly every call).
    #[cold]
    #[inline(never)]
    fn assign_group(
        &mut self,
        s: &mut ViewSession,
        max_groups: usize,
        overflowed: &mut u64,
    ) -> u32 {
        let g = self.intern(GroupKey::parts(s), max_groups, overflowed);
        s.qoe_group = Some(g);
        g
    }

    fn fingerprint(parts: [&str; 3]) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(0x0051_0e6a_0b5e_ed00).hash_one(parts)
    }

    /// The id of the group with these dimensions, if interned.
    fn find(&self, parts: [&str; 3]) -> Option<u32> {
        let g = *self.index.get(&Self::fingerprint(parts))?;
        if self.keys[g as usize].is(parts) {
            return Some(g);
        }
        // Two keys with one fingerprint: the index holds the first.
        (0u32..)
            .zip(&self.keys)
            .find(|(_, k)| k.is(parts))
            .map(|(g, _)| g)
    }

    fn index_key(&mut self, g: u32) {
        let k = &self.keys[g as usize];
        let f = Self::fingerprint([&k.device, &k.country, &k.player]);
        self.index.entry(f).or_insert(g);
    }

    fn intern(&mut self, parts: [&str; 3], max_groups: usize, overflowed: &mut u64) -> u32 {
        self.rebuild();
        if let Some(g) = self.find(parts) {
            return g;
        }
        let key = if self.keys.len() >= max_groups.max(1) {
            *overflowed += 1;
            if let Some(g) = self.find([OTHER; 3]) {
                return g;
            }
            GroupKey::other()
        } else {
            GroupKey {
                device: parts[0].into(),
                country: parts[1].into(),
                player: parts[2].into(),
            }
        };
        let g = self.keys.len() as u32;
        self.keys.push(key);
        self.index_key(g);
        g
    }

    /// Rebuilds the index after a snapshot load.
    fn rebuild(&mut self) {
        // Kept in step by `intern`; empty only after a load (never serialized).
        if self.index.is_empty() && !self.keys.is_empty() {
            for g in 0..self.keys.len() as u32 {
                self.index_key(g);
            }
        }
    }

    #[inline]
    fn at(&mut self, ts: i64, group: u32) -> &mut QoeAcc {
        let n = self.minutes.len();
        let i = if n > 0
            && ts >= self.base + (n as i64 - 1) * MINUTE_MS
            && ts < self.base + n as i64 * MINUTE_MS
        {
            n - 1 // most bookings fall in the newest open minute
        } else {
            self.open(ts)
        };
        let accs = &mut self.minutes[i];
        let g = group as usize;
        if accs.len() <= g {
            accs.resize_with(g + 1, QoeAcc::default);
        }
        &mut accs[g]
    }

    /// Opens the minute holding `ts` (and every minute between it and the open ones);
    /// returns its index. Out of line: [`Self::at`] rarely needs it.
    #[cold]
    #[inline(never)]
    fn open(&mut self, ts: i64) -> usize {
        let m = window_start(ts, MINUTE_MS);
        if self.minutes.is_empty() {
            self.base = m;
        }
        while m < self.base {
            self.minutes.push_front(Vec::new());
            self.base -= MINUTE_MS;
        }
        let i = ((m - self.base) / MINUTE_MS) as usize;
        while self.minutes.len() <= i {
            // Sized like the minute before it (the same groups mostly carry on), so
            // the accumulators are not regrown group by group every minute.
            let like = self.minutes.back().map_or(0, Vec::len);
            self.minutes.push_back(Vec::with_capacity(like));
        }
        i
    }

    /// Books what a session's step counts (at event time `ts`) into its group, all at
    /// once (the engine holds the watch time back first: [`crate::stage`]).
    #[cfg(test)]
    pub fn book(&mut self, group: u32, ts: i64, step: &Step) {
        if let Some(iv) = step.interval {
            self.book_interval(group, iv.from, iv.to, iv.rebuffering);
        }
        self.book_counts(group, ts, step);
    }

    /// Books watch time `[from, to)` (also rebuffer time when `rebuffering`) into the
    /// group, split at minute boundaries.
    pub fn book_interval(&mut self, group: u32, mut from: i64, to: i64, rebuffering: bool) {
        while from < to {
            let end = (window_start(from, MINUTE_MS) + MINUTE_MS).min(to);
            let acc = self.at(from, group);
            acc.watch_ms += end - from;
            if rebuffering {
                acc.rebuffer_ms += end - from;
            }
            from = end;
        }
    }

    /// Books a step's views, rebuffers, failures and startup (at event time `ts`).
    #[inline]
    pub fn book_counts(&mut self, group: u32, ts: i64, step: &Step) {
        if step.view || step.rebuffer_started || step.failed || step.startup_ms.is_some() {
            self.add_counts(group, ts, step);
        }
    }

    /// [`Self::book_counts`] for a step that counts something (out of line: most are
    /// heartbeats).
    #[inline(never)]
    fn add_counts(&mut self, group: u32, ts: i64, step: &Step) {
        let acc = self.at(ts, group);
        acc.views += i64::from(step.view);
        acc.rebuffer_count += i64::from(step.rebuffer_started);
        acc.failures += i64::from(step.failed);
        if let Some(ms) = step.startup_ms {
            acc.startups.push(ms.clamp(0, i64::from(u32::MAX)) as u32);
        }
    }

    /// Adds watch and rebuffer time a session held back ([`crate::stage`]) to the
    /// group's accumulator of the minute starting at `minute`.
    pub fn add_time(&mut self, minute: i64, group: u32, watch_ms: i64, rebuffer_ms: i64) {
        let acc = self.at(minute, group);
        acc.watch_ms += watch_ms;
        acc.rebuffer_ms += rebuffer_ms;
    }

    /// Counts one viewer of `group` for the concurrency sample being taken.
    #[inline]
    pub fn count_viewer(&mut self, group: u32) {
        let g = group as usize;
        if self.viewers.len() <= g {
            self.viewers.resize(g + 1, 0);
        }
        self.viewers[g] += 1;
    }

    /// Books the viewers counted since the last sample as the sample at the tick end
    /// `t`, in the minute holding `t − 1`: summed per group over the minute (a dense
    /// vector of the target's groups) and added to the minute's accumulators when its
    /// last tick end is sampled, so the accumulators are visited once a minute, not at
    /// every tick end.
    pub fn sample(&mut self, t: i64) {
        let minute = window_start(t - 1, MINUTE_MS);
        if minute != self.sampled_minute {
            self.book_sampled();
            self.sampled_minute = minute;
        }
        if self.sampled.len() < self.viewers.len() {
            self.sampled.resize(self.viewers.len(), 0);
        }
        for (sum, n) in self.sampled.iter_mut().zip(self.viewers.iter_mut()) {
            *sum += i64::from(*n);
            *n = 0;
        }
        if t == minute + MINUTE_MS {
            self.book_sampled();
        }
    }

    /// Adds the viewer ticks summed so far to their minute's accumulators.
    fn book_sampled(&mut self) {
        let Some(last) = self.sampled.iter().rposition(|&n| n != 0) else {
            return;
        };
        // Open the minute (sized for the highest group counted), then book every group
        // into it directly.
        let minute = self.sampled_minute;
        self.at(minute, last as u32);
        let i = ((minute - self.base) / MINUTE_MS) as usize;
        let Some(accs) = self.minutes.get_mut(i) else {
            return;
        };
        for (acc, n) in accs.iter_mut().zip(self.sampled.iter_mut()) {
            acc.viewer_ticks += *n;
            *n = 0;
        }
    }

    /// True when [`Self::close`] with `close_before` would close a minute.
    pub fn closes_any(&self, close_before: i64) -> bool {
        let closes = |minute: i64| minute + MINUTE_MS <= close_before;
        (!self.minutes.is_empty() && closes(self.base))
            || (self.summing() && closes(self.sampled_minute))
    }

    /// Removes the minutes ending at or before `close_before`, writing their rows.
    pub fn close(&mut self, close_before: i64, row: &RowContext<'_>, out: &mut Vec<QoeMinuteRow>) {
        self.rebuild();
        if self.sampled_minute + MINUTE_MS <= close_before {
            self.book_sampled();
        }
        while !self.minutes.is_empty() && self.base + MINUTE_MS <= close_before {
            if let Some(groups) = self.minutes.pop_front() {
                self.rows(self.base, &groups, row, out);
            }
            self.base += MINUTE_MS;
        }
    }

    /// Rows of every open minute (provisional output; viewer ticks summed so far are
    /// added first).
    pub fn dump(&mut self, row: &RowContext<'_>, out: &mut Vec<QoeMinuteRow>) {
        self.book_sampled();
        for (i, groups) in self.minutes.iter().enumerate() {
            self.rows(self.base + i as i64 * MINUTE_MS, groups, row, out);
        }
    }

    fn rows(
        &self,
        minute: i64,
        groups: &[QoeAcc],
        ctx: &RowContext<'_>,
        out: &mut Vec<QoeMinuteRow>,
    ) {
        for (g, acc) in groups.iter().enumerate() {
            if *acc == QoeAcc::default() {
                continue; // a group that booked nothing in this minute
            }
            let Some([device, country, player]) = self.keys.get(g).map(GroupKey::labels) else {
                continue;
            };
            out.push(QoeMinuteRow {
                node: ctx.node.clone(),
                kind: ctx.kind,
                target: ctx.target.clone(),
                channel: ctx.channel.clone(),
                minute,
                device,
                country,
                player,
                viewer_ticks: acc.viewer_ticks,
                views: acc.views,
                watch_ms: acc.watch_ms,
                rebuffer_ms: acc.rebuffer_ms,
                rebuffer_count: acc.rebuffer_count,
                startups: acc.startups.len() as i64,
                startup_hist: encode_startups(&acc.startups),
                failures: acc.failures,
            });
        }
    }
}

/// The columns every row of one target shares.
pub struct RowContext<'a> {
    pub node: &'a Id,
    pub kind: TargetKind,
    pub target: &'a Id,
    pub channel: &'a Id,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Interval;

    fn session(device: Option<pulse_schemas::Device>) -> ViewSession {
        let e = pulse_schemas::parse_event(
            r#"{"type":"viewstart","ts":1000,"viewer":"u","session":"s","stream":"st","channel":"c"}"#,
        )
        .expect("valid");
        let (mut s, _) = ViewSession::begin(Id::new_unchecked("s"), &e);
        s.device = device;
        s
    }

    /// Node, target and channel ids for a [`RowContext`] ([`ctx`]).
    fn names() -> [Id; 3] {
        ["n", "st", "c"].map(Id::new_unchecked)
    }

    fn ctx(names: &[Id; 3]) -> RowContext<'_> {
        RowContext {
            node: &names[0],
            kind: TargetKind::Stream,
            target: &names[1],
            channel: &names[2],
        }
    }

    #[test]
    fn intervals_split_at_minutes_and_groups_are_bounded() {
        let mut w = QoeWindow::default();
        let mut over = 0;
        let mut a = session(Some(pulse_schemas::Device::Mobile));
        let mut b = session(None);
        let ga = w.group_of(&mut a, 2, &mut over);
        let gb = w.group_of(&mut b, 2, &mut over);
        assert_ne!(ga, gb);
        let step = Step {
            interval: Some(Interval {
                from: 50_000,
                to: 70_000,
                rebuffering: true,
            }),
            view: true,
            ..Step::default()
        };
        w.book(ga, 70_000, &step);
        w.count_viewer(gb);
        w.sample(60_000);
        // A third group is past the bound of 2: it goes to `other`, counted.
        let mut c = session(Some(pulse_schemas::Device::Tv));
        let gc = w.group_of(&mut c, 2, &mut over);
        assert_eq!(over, 1);
        w.count_viewer(gc);
        w.sample(65_000);
        let names = names();
        let ctx = ctx(&names);
        let mut rows = Vec::new();
        w.close(60_000, &ctx, &mut rows);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(
            (&*rows[0].device, rows[0].watch_ms, rows[0].rebuffer_ms),
            ("mobile", 10_000, 10_000)
        );
        assert_eq!((&*rows[1].device, rows[1].viewer_ticks), ("unknown", 1));
        rows.clear();
        w.close(i64::MAX, &ctx, &mut rows);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!((rows[0].watch_ms, rows[0].views), (10_000, 1));
        assert_eq!((&*rows[1].device, &*rows[1].player), (OTHER, OTHER));
        assert!(w.is_empty());
    }

    /// Viewer ticks are summed over a minute and booked once: a window holding only
    /// such sums is not empty, a dump and a snapshot in mid-minute keep them, and the
    /// closed row has every tick end's viewers.
    #[test]
    fn viewer_ticks_summed_in_a_minute_are_shown_kept_and_closed() {
        let mut w = QoeWindow::default();
        let mut over = 0;
        let g = w.group_of(&mut session(None), 5, &mut over);
        for t in [65_000, 70_000] {
            w.count_viewer(g);
            w.count_viewer(g);
            w.sample(t);
        }
        assert!(!w.is_empty(), "two samples are waiting to be booked");
        assert!(!w.closes_any(119_999) && w.closes_any(120_000));
        let names = names();
        let ctx = ctx(&names);
        let mut shown = Vec::new();
        w.clone().dump(&ctx, &mut shown);
        assert_eq!(
            (shown.len(), shown[0].minute, shown[0].viewer_ticks),
            (1, 60_000, 4)
        );
        let json = serde_json::to_string(&w).expect("json");
        let mut back: QoeWindow = serde_json::from_str(&json).expect("back");
        back.count_viewer(g);
        back.sample(120_000); // the minute's last tick end: booked now
        back.count_viewer(g);
        back.sample(125_000); // the next minute
        let mut rows = Vec::new();
        back.close(120_000, &ctx, &mut rows);
        assert_eq!(
            (rows.len(), rows[0].minute, rows[0].viewer_ticks),
            (1, 60_000, 5)
        );
        rows.clear();
        back.close(i64::MAX, &ctx, &mut rows);
        assert_eq!(
            (rows.len(), rows[0].minute, rows[0].viewer_ticks),
            (1, 120_000, 1)
        );
        assert!(back.is_empty());
    }

    #[test]
    fn a_snapshot_round_trip_keeps_group_ids() {
        let mut w = QoeWindow::default();
        let mut over = 0;
        let mut a = session(Some(pulse_schemas::Device::Desktop));
        let g = w.group_of(&mut a, 10, &mut over);
        let json = serde_json::to_string(&w).expect("json");
        let mut back: QoeWindow = serde_json::from_str(&json).expect("back");
        let mut a2 = session(Some(pulse_schemas::Device::Desktop));
        assert_eq!(back.group_of(&mut a2, 10, &mut over), g);
    }
}
