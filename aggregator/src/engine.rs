//! `Aggregator`: the deterministic event-time core. No I/O, no clock: the caller
//! pushes events and moves the watermark; the same calls give the same rows.
//!
//! - `push` buffers an event (or counts it late / dropped);
//! - `advance(W)` commits the buffered events with `ts < W` in the total order of
//!   [`event_order`], samples every tick end `T ≤ W`, expires silent sessions and
//!   returns the windows closed at `W`;
//! - `move_ahead(now)` applies pending events ahead of `W` (kept, with marks to rewind
//!   to; see `crate::ahead`); `provisional(now)` runs the same code on a scratch copy
//!   from there to `now` to show open windows;
//! - `finish()` commits everything and closes every window (end of a replay).

use crate::ahead::Ahead;
use crate::config::AggregatorConfig;
use crate::pending::{Due, DueBuffers, Pass, Pending, give_back};
use crate::row_order::{sort_rows, sort_sessions, target_key};
use crate::sinks::Provisional;
use crate::target::{Counters, Env, Params, TargetState};
use crate::tombstones::{Graves, Overlay, Tombstones};
use crate::window::{Bound, MINUTE_MS, window_start};
use pulse_schemas::{ClosedWindows, Event, EventKind, Target};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Makes an empty `rows` hold `want` without growing, and gives back a buffer more
/// than four times too large (kept buffers stay near what flushes need).
fn fit<T>(rows: &mut Vec<T>, want: usize, peak: usize) {
    give_back(rows, peak);
    rows.reserve(want);
}

/// Rank of an event type among events of the same millisecond: a session starts
/// before it plays, plays before it stalls or pauses, and ends last.
pub fn kind_rank(kind: EventKind) -> u8 {
    match kind {
        EventKind::Viewstart => 0,
        EventKind::Playing => 1,
        EventKind::RebufferEnd => 2,
        EventKind::Seek => 3,
        EventKind::Heartbeat => 4,
        EventKind::RebufferStart => 5,
        EventKind::Pause => 6,
        EventKind::Follow => 7,
        EventKind::Chat => 8,
        EventKind::Like => 9,
        EventKind::Share => 10,
        EventKind::Clickthrough => 11,
        EventKind::Error => 12,
        EventKind::Viewend => 13,
    }
}

/// The total order events are committed in: time, type rank, target, session, viewer,
/// then every remaining field, so two events compare equal only when they are equal.
pub fn event_order(a: &Event, b: &Event) -> Ordering {
    a.ts.cmp(&b.ts)
        .then_with(|| kind_rank(a.kind).cmp(&kind_rank(b.kind)))
        .then_with(|| a.target.cmp(&b.target))
        .then_with(|| a.session.cmp(&b.session))
        .then_with(|| a.viewer.cmp(&b.viewer))
        .then_with(|| rest_order(a, b))
}

fn rest_order(a: &Event, b: &Event) -> Ordering {
    a.channel
        .cmp(&b.channel)
        .then_with(|| a.state.cmp(&b.state))
        .then_with(|| a.count.cmp(&b.count))
        .then_with(|| a.embed.cmp(&b.embed))
        .then_with(|| a.device.cmp(&b.device))
        .then_with(|| a.country.cmp(&b.country))
        .then_with(|| a.player.cmp(&b.player))
        .then_with(|| a.code.cmp(&b.code))
        .then_with(|| a.platform.cmp(&b.platform))
        .then_with(|| a.bitrate_kbps.cmp(&b.bitrate_kbps))
        .then_with(|| match (a.pos, b.pos) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (x, y) => x.is_some().cmp(&y.is_some()),
        })
}

/// What `push` did with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Buffered until the watermark passes it.
    Accepted,
    /// `ts` below the watermark: counted in `late`, dropped.
    Late,
    /// The pending buffer is full: counted in `dropped_pending_full`, dropped.
    Dropped,
}

/// Counters and sizes of the aggregator (cumulative since it was created or restored).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregatorStats {
    /// Events pushed (accepted, late and dropped).
    pub events: u64,
    pub late: u64,
    pub orphans: u64,
    pub dropped_pending_full: u64,
    /// Times the state was rewound to a mark: an event arrived behind the frontier.
    #[serde(default)]
    pub rewinds: u64,
    pub dropped_max_sessions: u64,
    pub dropped_max_targets: u64,
    /// Events counted in their tick but not in `viewer_minutes`.
    pub dropped_viewer_minutes: u64,
    /// Sessions booked into the `other` QoE group (past `max_qoe_groups`).
    pub qoe_groups_overflowed: u64,
    pub tombstones_evicted: u64,
    pub pending: usize,
    pub sessions: usize,
    pub tombstones: usize,
    pub targets: usize,
    pub viewer_minutes: usize,
    pub watermark: i64,
}

/// The committed state: cloned for provisional rows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Core {
    #[serde(with = "targets_as_list")]
    pub targets: foldhash::HashMap<Target, TargetState>,
    pub env: Env,
    /// Next tick end to sample; `None` while no target is open.
    pub next_sample: Option<i64>,
    pub max_targets: usize,
}

impl Core {
    fn new(cfg: &AggregatorConfig) -> Self {
        Core {
            targets: Default::default(),
            env: Env {
                params: Params {
                    node: cfg.node_id.clone(),
                    tick_ms: cfg.tick_ms,
                    timeout_ms: cfg.session_timeout_ms,
                    max_qoe_groups: cfg.max_qoe_groups,
                },
                sessions: Bound {
                    open: 0,
                    max: cfg.max_sessions,
                },
                viewer_minutes: Bound {
                    open: 0,
                    max: cfg.max_viewer_minutes,
                },
                counters: Counters::default(),
            },
            next_sample: None,
            max_targets: cfg.max_targets,
        }
    }

    /// Commits one event: first samples every tick end at or before its time.
    fn commit<G: Graves>(&mut self, e: &Event, graves: &mut G, out: &mut ClosedWindows) {
        self.sample_through(e.ts, graves, out);
        let tick = self.env.params.tick_ms;
        let state = match self.targets.get_mut(&e.target) {
            Some(s) => s,
            None => {
                if self.targets.len() >= self.max_targets {
                    self.env.counters.dropped_max_targets += 1;
                    return;
                }
                self.targets
                    .entry(e.target.clone())
                    .or_insert_with(|| TargetState::new(e.target.clone(), e.channel.clone(), tick))
            }
        };
        if self.next_sample.is_none() {
            self.next_sample = Some(window_start(e.ts, tick) + tick);
        }
        state.apply(e, &mut self.env, graves, out);
    }

    /// Starts loading the session `e` will be committed to.
    #[inline]
    fn prefetch(&self, e: &Event) {
        if let Some(session) = &e.session
            && let Some(state) = self.targets.get(&e.target)
        {
            state.sessions.prefetch(session);
        }
    }

    /// Samples every tick end `T ≤ limit` not sampled yet (all events before `T` are
    /// committed), closing what each sample makes final.
    fn sample_through<G: Graves>(&mut self, limit: i64, graves: &mut G, out: &mut ClosedWindows) {
        while let Some(t) = self.next_sample {
            if t > limit {
                break;
            }
            if self.targets.is_empty() {
                self.next_sample = None;
                break;
            }
            let close_before = t - self.env.params.timeout_ms;
            for (_, state) in in_order(&mut self.targets) {
                state.sample(t, &mut self.env, graves, out);
                state.close(close_before, &mut self.env, out);
            }
            self.targets.retain(|_, s| !s.is_idle());
            self.next_sample = Some(t + self.env.params.tick_ms);
        }
    }

    /// What a copy holds, roughly: open sessions, viewer-minutes and targets.
    pub(crate) fn items(&self) -> u64 {
        (self.env.sessions.open + self.env.viewer_minutes.open + self.targets.len()) as u64
    }

    fn close(&mut self, close_before: i64, out: &mut ClosedWindows) {
        for (_, state) in in_order(&mut self.targets) {
            state.close(close_before, &mut self.env, out);
        }
        self.targets.retain(|_, s| !s.is_idle());
    }
}

/// The targets in `(kind, id)` order: rows closed target by target then come out
/// nearly in their final order, which the row sort ([`crate::row_order`]) exploits.
fn in_order(
    targets: &mut foldhash::HashMap<Target, TargetState>,
) -> Vec<(&Target, &mut TargetState)> {
    let mut list: Vec<_> = targets
        .iter_mut()
        .map(|(t, s)| (target_key(t), t, s))
        .collect();
    list.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    list.into_iter().map(|(_, t, s)| (t, s)).collect()
}

/// The aggregator. See the crate documentation for the rules.
#[derive(Clone, Debug)]
pub struct Aggregator {
    pub(crate) cfg: AggregatorConfig,
    /// Events below it are late; everything below it is committed after `advance`.
    pub(crate) watermark: i64,
    /// Highest event time accepted (0 before any).
    pub(crate) max_ts: i64,
    /// Events waiting for the watermark, in arrival order, with their order keys.
    pub(crate) pending: Pending,
    /// Reused buffer of the due events ([`Pending::due`]: sorted by key; runs of equal
    /// keys are put in the commit order by [`Pending::each_in`]).
    pub(crate) order: Vec<Due>,
    pub(crate) due_buffers: DueBuffers,
    /// Rows of each table the last `advance` closed (a capacity hint).
    pub(crate) last_rows: [usize; 4],
    /// Rows per table of recent flushes, a maximum decaying by 1/16 a flush: kept row
    /// buffers are shrunk only below what recent flushes needed (flushes that close no
    /// minute alternate with ones that close many).
    row_peak: [usize; 4],
    /// The state: every retained event with `ts < ahead` applied (`ahead` may be
    /// past the watermark: [`crate::ahead`]).
    pub(crate) core: Core,
    pub(crate) graves: Tombstones,
    /// The frontier.
    pub(crate) ahead: i64,
    /// Marks to rewind to, rows held until the watermark passes them.
    pub(crate) look: Ahead,
    /// Everything before it is final: its rows released, its pending events forgotten
    /// (the watermark, or the base mark below it while the state is ahead).
    pub(crate) settled: i64,
    pub(crate) events: u64,
    pub(crate) late: u64,
    pub(crate) dropped_pending_full: u64,
}

impl Aggregator {
    pub fn new(cfg: AggregatorConfig) -> Self {
        Aggregator {
            core: Core::new(&cfg),
            graves: Tombstones::new(cfg.tombstone_ttl_ms, cfg.max_tombstones),
            cfg,
            watermark: 0,
            max_ts: 0,
            pending: Pending::default(),
            order: Vec::new(),
            due_buffers: DueBuffers::default(),
            last_rows: [0; 4],
            row_peak: [0; 4],
            ahead: 0,
            look: Ahead::default(),
            settled: 0,
            events: 0,
            late: 0,
            dropped_pending_full: 0,
        }
    }

    pub fn config(&self) -> &AggregatorConfig {
        &self.cfg
    }

    /// Current watermark: events with `ts` below it are late.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Highest event time accepted so far (0 before any).
    pub fn max_event_ts(&self) -> i64 {
        self.max_ts
    }

    /// Events waiting for the watermark.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Buffers one event until the watermark passes it.
    pub fn push(&mut self, e: Event) -> Admission {
        self.push_within(e, self.cfg.max_pending_events)
    }

    /// [`Self::push`] past `max_pending_events`, for the live loop's shutdown: what
    /// ingest already handed over (at most the channel's capacity) is kept, and saved
    /// in the snapshot, rather than dropped.
    pub fn push_over_bound(&mut self, e: Event) -> Admission {
        self.push_within(e, usize::MAX)
    }

    #[inline]
    fn push_within(&mut self, e: Event, max_pending: usize) -> Admission {
        self.events += 1;
        if e.ts < self.watermark {
            self.late += 1;
            return Admission::Late;
        }
        if self.pending.len() >= max_pending {
            self.dropped_pending_full += 1;
            return Admission::Dropped;
        }
        self.max_ts = self.max_ts.max(e.ts);
        if e.ts < self.ahead {
            self.look.note_behind(e.ts);
        }
        self.pending.push(e);
        Admission::Accepted
    }

    /// Raises the watermark without committing (commits happen at the next `advance`).
    /// Used by replay so that lateness is judged event by event.
    pub fn raise_watermark(&mut self, watermark: i64) {
        self.watermark = self.watermark.max(watermark);
    }

    /// Moves the watermark to `watermark` (never back), commits every pending event
    /// before it in the total order, samples tick ends, and returns the closed windows.
    pub fn advance(&mut self, watermark: i64) -> ClosedWindows {
        let mut out = ClosedWindows::default();
        self.advance_into(watermark, &mut out);
        out
    }

    /// [`Aggregator::advance`] into `out`, which is cleared first and whose buffers are
    /// reused: a live loop that keeps one allocates no row vectors in steady state
    /// (fresh ones, page-faulted in on every flush, were a tenth of the bench). A
    /// buffer far larger than what the last flushes needed is shrunk (after a burst).
    pub fn advance_into(&mut self, watermark: i64, out: &mut ClosedWindows) {
        let w = self.watermark.max(watermark);
        self.watermark = w;
        out.clear();
        // About as many rows as last time: grown once, not by doubling.
        let (last, peak) = (self.last_rows, self.row_peak);
        fit(&mut out.ticks, last[0], peak[0]);
        fit(&mut out.sessions, last[1], peak[1]);
        fit(&mut out.viewer_minutes, last[2], peak[2]);
        fit(&mut out.qoe_minutes, last[3], peak[3]);
        self.rewind();
        let settled = if self.ahead <= w || !self.look.has_base() {
            // Everything up to `w` is final: so are the rows held ahead of the base.
            self.look.release_all(out);
            self.apply_to(w, out);
            w
        } else {
            // Ahead of `w`: final up to the newest mark at or below it.
            self.look.settle(w, out).unwrap_or(self.settled)
        };
        if settled > self.settled {
            self.pending.drop_before(settled);
            self.settled = settled;
        }
        self.trim_order_buffers();
        self.finalize(out);
        self.last_rows = [
            out.ticks.len(),
            out.sessions.len(),
            out.viewer_minutes.len(),
            out.qoe_minutes.len(),
        ];
        for (peak, &n) in self.row_peak.iter_mut().zip(&self.last_rows) {
            *peak = n.max(*peak - *peak / 16);
        }
    }

    /// The commit-order buffers are sized by the largest replay (every pending event, in
    /// `provisional`); they are shrunk once pending has drained well below that.
    fn trim_order_buffers(&mut self) {
        give_back(&mut self.order, self.pending.len());
        self.due_buffers.trim(self.pending.len());
    }

    /// Applies every retained event with `ahead ≤ ts < to` (commit order), samples the
    /// tick ends up to `to` and closes what that closes; the frontier moves to `to`.
    pub(crate) fn apply_to(&mut self, to: i64, out: &mut ClosedWindows) {
        if to <= self.ahead {
            return;
        }
        let mut order = std::mem::take(&mut self.order);
        self.pending
            .due(self.ahead, to, &mut order, &mut self.due_buffers);
        let (core, graves) = (&mut self.core, &mut self.graves);
        self.pending.each_in(&mut order, |e, pass| match pass {
            Pass::Prefetch => core.prefetch(e),
            Pass::Commit => core.commit(e, graves, out),
        });
        self.look.since_mark += order.len() as u64;
        order.clear();
        self.order = order;
        self.core.sample_through(to, &mut self.graves, out);
        self.core.close(to - self.cfg.session_timeout_ms, out);
        self.graves.expire(to);
        self.ahead = to;
    }

    fn finalize(&self, out: &mut ClosedWindows) {
        out.closed_through =
            window_start(self.settled - self.cfg.session_timeout_ms, self.cfg.tick_ms);
        sort_rows(
            &mut out.ticks,
            &mut out.viewer_minutes,
            &mut out.qoe_minutes,
        );
        sort_sessions(&mut out.sessions);
    }

    /// Rows of the windows not final yet, as they would be if the watermark were
    /// `max(W, now + 1)`: the pending events from the frontier (wherever
    /// [`Aggregator::move_ahead`] left it; the watermark if never) up to `now` are
    /// applied on a scratch copy with the same code as `advance`; the rows held ahead
    /// of the watermark are included.
    pub fn provisional(&mut self, now: i64) -> Provisional {
        self.provisional_within(now, i64::MAX)
    }

    /// [`Aggregator::provisional`] with the scratch part bounded: it applies the pending
    /// events only up to `margin + reach` ms past the frontier (where a frontier that
    /// has caught up leaves `reach` ms past the newest event, so the rows are the exact
    /// ones then). A live loop that cannot keep up (the frontier seconds behind its
    /// front) would otherwise replay the whole lag on a copy at every flush, work thrown
    /// away, and fall further behind. When the bound stops the replay short of a
    /// pending event, the rows stop there: tick ends are sampled only up to it, and the
    /// tick rows not sampled yet (part of their events, no viewers) are left out, so a
    /// reader shows the newest sampled count, older, rather than 0.
    pub fn provisional_within(&mut self, now: i64, reach: i64) -> Provisional {
        // Back behind any straggler; the scratch copy starts where the state is.
        self.rewind();
        let limit = self
            .ahead
            .saturating_add(self.look.margin)
            .saturating_add(reach.max(0));
        let exact = self.watermark.max(now.saturating_add(1));
        // Every pending event below the limit: sampling the tick ends up to `now` needs
        // no replay, so a quiet stream's count reaches `now` whatever the reach.
        let w = if limit > self.max_ts {
            exact
        } else {
            exact.min(limit)
        };
        let mut core = self.core.clone();
        let mut graves = Overlay::new(&self.graves);
        let mut closed = ClosedWindows::default();
        let mut order = std::mem::take(&mut self.order);
        self.pending
            .due(self.ahead, w, &mut order, &mut self.due_buffers);
        self.pending.each_in(&mut order, |e, pass| match pass {
            Pass::Prefetch => core.prefetch(e),
            Pass::Commit => core.commit(e, &mut graves, &mut closed),
        });
        order.clear();
        self.order = order;
        core.sample_through(w, &mut graves, &mut closed);
        let mut p = Provisional {
            ticks: closed.ticks,
            viewer_minutes: closed.viewer_minutes,
            qoe_minutes: closed.qoe_minutes,
        };
        for rows in self.look.held_rows() {
            p.ticks.extend_from_slice(&rows.ticks);
            p.viewer_minutes.extend_from_slice(&rows.viewer_minutes);
            p.qoe_minutes.extend_from_slice(&rows.qoe_minutes);
        }
        for state in core.targets.values_mut() {
            state.dump(&core.env, &mut p);
        }
        if w < exact {
            // Stopped short: a tick whose end is not sampled holds part of its events
            // and no viewers. Readers fall back to the newest sampled tick (an older
            // count) instead of reading 0 from it.
            let tick = self.cfg.tick_ms;
            p.ticks.retain(|r| r.t.saturating_add(tick) <= w);
        }
        sort_rows(&mut p.ticks, &mut p.viewer_minutes, &mut p.qoe_minutes);
        self.trim_order_buffers();
        p
    }

    /// End of input: commits every pending event, ends every session (by timeout at
    /// its last event) and closes every window.
    pub fn finish(&mut self) -> ClosedWindows {
        let p = &self.core.env.params;
        let end = self.max_ts.max(self.watermark)
            + 2 * p.timeout_ms
            + MINUTE_MS.max(p.tick_ms)
            + p.tick_ms
            + self.cfg.allowed_lateness_ms;
        let mut out = self.advance(end);
        // Nothing should be left open; make sure of it.
        let mut rest = ClosedWindows::default();
        for state in self.core.targets.values_mut() {
            state.expire_all(&mut self.core.env, &mut self.graves, &mut rest);
            state.close(i64::MAX, &mut self.core.env, &mut rest);
        }
        self.core.targets.clear();
        self.core.next_sample = None;
        out.append_rows(&mut rest);
        self.finalize(&mut out);
        out
    }

    /// The state everything final stands on: the base mark while the state is ahead of
    /// the watermark, else the state itself (both at `settled`).
    pub(crate) fn base(&self) -> (&Core, &Tombstones) {
        match self.look.base() {
            Some(m) => (&m.core, &m.graves),
            None => (&self.core, &self.graves),
        }
    }

    /// Counters are those of the base (they never go back on a rewind); sizes are the
    /// state's.
    pub fn stats(&self) -> AggregatorStats {
        let (base, base_graves) = self.base();
        let c = &base.env.counters;
        AggregatorStats {
            events: self.events,
            late: self.late,
            orphans: c.orphans,
            dropped_pending_full: self.dropped_pending_full,
            rewinds: self.look.rewinds,
            dropped_max_sessions: c.dropped_max_sessions,
            dropped_max_targets: c.dropped_max_targets,
            dropped_viewer_minutes: c.dropped_viewer_minutes,
            qoe_groups_overflowed: c.qoe_groups_overflowed,
            tombstones_evicted: base_graves.evicted,
            pending: self.pending.len(),
            sessions: self.core.env.sessions.open,
            tombstones: self.graves.len(),
            targets: self.core.targets.len(),
            viewer_minutes: self.core.env.viewer_minutes.open,
            watermark: self.watermark,
        }
    }
}

/// JSON maps need string keys: targets are written as a list of their states.
mod targets_as_list {
    use super::*;
    use serde::{Deserializer, Serializer};

    type Map = foldhash::HashMap<Target, TargetState>;

    pub fn serialize<S: Serializer>(map: &Map, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        let list: Vec<TargetState> = Vec::deserialize(d)?;
        Ok(list.into_iter().map(|s| (s.target.clone(), s)).collect())
    }
}
