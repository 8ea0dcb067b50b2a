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
