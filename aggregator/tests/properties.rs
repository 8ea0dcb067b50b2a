//! Property tests (issue 2): the numbers do not depend on the arrival order inside the
//! allowed lateness; watch time ≤ session length; rebuffer time ≤ watch time; a session
//! silent for 30 s stops counting as a viewer.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Rows, cfg, id};
use proptest::prelude::*;
use pulse_aggregator::{Aggregator, AggregatorConfig};
use pulse_schemas::{Device, Event, EventKind as K, PlayerState, Target, TargetKind};
use std::collections::BTreeMap;

const PLAYBACK: &[K] = &[
    K::Playing,
    K::Playing,
    K::Pause,
    K::RebufferStart,
    K::RebufferEnd,
    K::Seek,
    K::Heartbeat,
    K::Heartbeat,
    K::Heartbeat,
    K::Error,
    K::Viewend,
];
const ENGAGE: &[K] = &[K::Chat, K::Follow, K::Like, K::Share, K::Clickthrough];

fn event(kind: K, ts: i64, target: usize, session: Option<usize>, viewer: usize) -> Event {
    let target = Target {
        kind: TargetKind::Stream,
        id: id(&format!("t{target}")),
    };
    let session = session.map(|s| id(&format!("x{s}")));
    let mut e = Event::new(
        kind,
        ts,
        id(&format!("v{viewer}")),
        id("c1"),
        target,
        session,
    );
    e.code = (kind == K::Error).then(|| "E".into());
    e
}

/// One session: (target, start, first is viewstart, steps of (gap, kind index, heartbeat state)).
type SessionPlan = (usize, i64, bool, Vec<(i64, usize, u8)>);

fn session_plan() -> impl Strategy<Value = SessionPlan> {
    (
        0usize..3,
        0i64..90_000,
        proptest::bool::weighted(0.8),
        proptest::collection::vec(
            (
                prop_oneof![4 => 0i64..12_000, 1 => 12_000i64..45_000],
                0..PLAYBACK.len(),
                0u8..5,
            ),
            0..14,
        ),
    )
}

fn build(plans: &[SessionPlan], engagement: &[(usize, i64, usize, usize)]) -> Vec<Event> {
    let mut out = Vec::new();
    for (i, (target, start, viewstart, steps)) in plans.iter().enumerate() {
        let first = if *viewstart {
            K::Viewstart
        } else {
            K::Heartbeat
        };
        let mut e = event(first, *start, *target, Some(i), i);
        // Breakdown dimensions: some sessions send none (booked as `unknown`).
        e.device = (i % 3 != 0).then(|| Device::ALL[i % Device::ALL.len()]);
        e.country = (i % 2 == 0).then(|| id(["DE", "US"][i % 4 / 2]));
        e.player = (i % 4 == 1).then(|| "hls.js/1".into());
        out.push(e);
        let mut ts = *start;
        for (gap, k, st) in steps {
            ts += gap;
            let mut e = event(PLAYBACK[*k], ts, *target, Some(i), i);
            if e.kind == K::Heartbeat {
                e.state = [
                    None,
                    Some(PlayerState::Playing),
                    Some(PlayerState::Paused),
                    Some(PlayerState::Rebuffering),
                    Some(PlayerState::Starting),
                ][*st as usize];
            }
            out.push(e);
        }
    }
    for (target, ts, k, viewer) in engagement {
        let mut e = event(ENGAGE[*k], *ts, *target, None, *viewer);
        if e.kind == K::Chat {
            e.count = Some(1 + (*viewer as u32 % 3));
        }
        out.push(e);
    }
    out
}

/// Feeds events in the given order, advancing to (max ts − lateness) every `every` events.
fn feed(config: &AggregatorConfig, events: &[Event], every: usize) -> (Rows, Aggregator) {
    let mut agg = Aggregator::new(config.clone());
    let mut rows = Rows::default();
    for (n, e) in events.iter().enumerate() {
        agg.push(e.clone());
        if (n + 1) % every.max(1) == 0 {
            rows.add(&agg.advance(agg.max_event_ts() - config.allowed_lateness_ms));
        }
    }
    rows.add(&agg.finish());
    (rows.sorted(), agg)
}

/// What a reader sees after a flush: final rows before `closed_through` (minute rows:
/// before its minute), provisional rows from there; no final row may lie beyond it.
fn seen(written: &Rows, p: pulse_aggregator::Provisional, closed_through: i64) -> Rows {
    let minute = closed_through - closed_through.rem_euclid(60_000);
    assert!(written.ticks.iter().all(|r| r.t < closed_through));
    assert!(written.viewer_minutes.iter().all(|r| r.minute < minute));
    assert!(written.qoe_minutes.iter().all(|r| r.minute < minute));
    let mut rows = written.clone();
    rows.sessions.clear();
    rows.ticks
        .extend(p.ticks.into_iter().filter(|r| r.t >= closed_through));
    rows.viewer_minutes
        .extend(p.viewer_minutes.into_iter().filter(|r| r.minute >= minute));
    rows.qoe_minutes
        .extend(p.qoe_minutes.into_iter().filter(|r| r.minute >= minute));
    rows.sorted()
}

fn scenario() -> impl Strategy<Value = (Vec<Event>, Vec<i64>, usize, usize)> {
    (
        proptest::collection::vec(session_plan(), 1..8),
        proptest::collection::vec(
            (0usize..3, 0i64..150_000, 0..ENGAGE.len(), 0usize..6),
            0..10,
        ),
    )
        .prop_flat_map(|(plans, engagement)| {
            let events = build(&plans, &engagement);
            let n = events.len();
            (
                Just(events),
                proptest::collection::vec(0i64..10_000, n),
                1usize..40,
                1usize..40,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// (a) Shuffling with a displacement below the allowed lateness changes nothing.
    #[test]
    fn arrival_order_within_lateness_does_not_matter((events, jitter, every_a, every_b) in scenario()) {
        let config = cfg();
        let mut sorted = events.clone();
        sorted.sort_by_key(|e| e.ts);
        // Arrival time = ts + jitter (jitter < lateness): no event can be late.
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| (events[i].ts + jitter[i], i));
        let shuffled: Vec<Event> = order.iter().map(|&i| events[i].clone()).collect();
        let (a, agg_a) = feed(&config, &sorted, every_a);
        let (b, agg_b) = feed(&config, &shuffled, every_b);
        prop_assert_eq!(agg_b.stats().late, 0);
        prop_assert_eq!(agg_a.stats().orphans, agg_b.stats().orphans);
        prop_assert_eq!(a, b);
    }

    /// Going ahead of the watermark (in steps with input in between, then a provisional
    /// computation, after every advance, as the live loop does), with events arriving
    /// behind the frontier (rewinds) and a
    /// snapshot and restore (or a settle back to the base) on the way, gives the rows of a run that never went ahead;
    /// and after every flush a reader sees the same (final rows before `closed_through`,
    /// provisional ones from it: the state ahead releases rows later, from its base,
    /// and shows the rows it holds as provisional).
    #[test]
    fn going_ahead_changes_nothing((events, jitter, every, snap) in scenario()) {
        let config = cfg();
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by_key(|&i| (events[i].ts + jitter[i], i));
        let mut plain = Aggregator::new(config.clone());
        let mut ahead = Aggregator::new(config.clone());
        let (mut rows_plain, mut rows_ahead) = (Rows::default(), Rows::default());
        let (mut now, mut n, mut snapped) = (0, 0, false);
        let next = std::cell::Cell::new(0);
        // Arrivals: both take the same events at the same points.
        let arrive = |plain: &mut Aggregator, ahead: &mut Aggregator, now: &mut i64| {
            let i = order[next.get()];
            next.set(next.get() + 1);
            // The arrival time: the clock of the live loop.
            *now = (*now).max(events[i].ts + jitter[i]);
            plain.push(events[i].clone());
            ahead.push(events[i].clone());
        };
        while next.get() < order.len() {
            arrive(&mut plain, &mut ahead, &mut now);
            n += 1;
            if n % every == 0 {
                let w = plain.max_event_ts() - config.allowed_lateness_ms;
                let (a, b) = (plain.advance(w), ahead.advance(w));
                rows_plain.add(&a);
                rows_ahead.add(&b);
                // As the live loop: ahead in steps, taking input in between.
                while !ahead.move_ahead_step(now, 700) && next.get() < order.len() {
                    arrive(&mut plain, &mut ahead, &mut now);
                    n += 1;
                }
                // A plain run's own provisional computation goes ahead on a copy only.
                let want = seen(&rows_plain, plain.clone().provisional(now), a.closed_through);
                let got = seen(&rows_ahead, ahead.provisional(now), b.closed_through);
                prop_assert_eq!(got, want, "seen at {} after {} events", now, n);
            }
            if !snapped && n >= snap * events.len() / 40 {
                snapped = true;
                if snap % 2 == 0 {
                    let bytes = ahead.snapshot().unwrap();
                    ahead = Aggregator::restore(config.clone(), &bytes).unwrap();
                } else {
                    // As at shutdown: back to the base, applied again from there.
                    ahead.settle();
                }
            }
        }
        rows_plain.add(&plain.finish());
        rows_ahead.add(&ahead.finish());
        prop_assert_eq!(ahead.stats().late, 0);
        prop_assert_eq!(plain.stats().orphans, ahead.stats().orphans);
        prop_assert_eq!(rows_ahead.sorted(), rows_plain.sorted());
    }

    /// (b) watch ≤ session length, (c) rebuffer ≤ watch; ticks and sessions agree.
    #[test]
    fn watch_and_rebuffer_bounds((events, _j, every, _e) in scenario()) {
        let mut sorted = events.clone();
        sorted.sort_by_key(|e| e.ts);
        let (rows, agg) = feed(&cfg(), &sorted, every);
        for s in &rows.sessions {
            prop_assert!(s.watch_ms >= 0 && s.watch_ms <= s.end_ts - s.start_ts, "{s:?}");
            prop_assert!(s.rebuffer_ms >= 0 && s.rebuffer_ms <= s.watch_ms, "{s:?}");
        }
        for t in &rows.ticks {
            prop_assert!(t.rebuffer_ms <= t.watch_ms && t.watch_ms >= 0, "{t:?}");
        }
        let tick_watch: i64 = rows.ticks.iter().map(|t| t.watch_ms).sum();
        let session_watch: i64 = rows.sessions.iter().map(|s| s.watch_ms).sum();
        prop_assert_eq!(tick_watch, session_watch);
        let tick_rebuf: i64 = rows.ticks.iter().map(|t| t.rebuffer_ms).sum();
        let session_rebuf: i64 = rows.sessions.iter().map(|s| s.rebuffer_ms).sum();
        prop_assert_eq!(tick_rebuf, session_rebuf);
        prop_assert_eq!(agg.stats().sessions, 0);
    }

    /// The `qoe_minutes` groups of a target and minute add up to its ticks of that
    /// minute (issue 4 point 5: a breakdown loses and invents nothing).
    #[test]
    fn qoe_groups_add_up_to_the_ticks((events, _j, every, _e) in scenario()) {
        let mut sorted = events.clone();
        sorted.sort_by_key(|e| e.ts);
        let (rows, _) = feed(&cfg(), &sorted, every);
        type Sums = [i64; 7];
        let mut ticks: BTreeMap<(String, i64), Sums> = BTreeMap::new();
        for t in &rows.ticks {
            let s = ticks.entry((t.target.to_string(), t.t - t.t.rem_euclid(60_000))).or_default();
            for (i, v) in [t.viewers, t.views, t.watch_ms, t.rebuffer_ms, t.rebuffer_count, t.startups, t.failures].into_iter().enumerate() {
                s[i] += v;
            }
        }
        let mut groups: BTreeMap<(String, i64), Sums> = BTreeMap::new();
        for q in &rows.qoe_minutes {
            prop_assert_eq!(q.minute.rem_euclid(60_000), 0);
            let s = groups.entry((q.target.to_string(), q.minute)).or_default();
            for (i, v) in [q.viewer_ticks, q.views, q.watch_ms, q.rebuffer_ms, q.rebuffer_count, q.startups, q.failures].into_iter().enumerate() {
                s[i] += v;
            }
        }
        ticks.retain(|_, s| s.iter().any(|&v| v != 0));
        prop_assert_eq!(ticks, groups);
    }

    /// (d) A viewer at tick end T needs an event of its session in [T − 30 s, T): so a
    /// session silent for 30 s stops counting.
    #[test]
    fn silent_sessions_stop_counting((events, _j, every, _e) in scenario()) {
        let mut sorted = events.clone();
        sorted.sort_by_key(|e| e.ts);
        let (rows, _) = feed(&cfg(), &sorted, every);
        for t in &rows.ticks {
            let end = t.t + 5_000;
            let mut recent: Vec<&str> = sorted
                .iter()
                .filter(|e| e.target.id == t.target && e.session.is_some() && e.ts >= end - 30_000 && e.ts < end)
                .filter_map(|e| e.session.as_ref().map(|s| s.as_str()))
                .collect();
            recent.sort_unstable();
            recent.dedup();
            prop_assert!(t.viewers <= recent.len() as i64, "tick {} viewers {} recent {:?}", t.t, t.viewers, recent);
        }
    }
}
