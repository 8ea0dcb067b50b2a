//! Unit tests and a proptest of the closed-window cache against uncached answers.

use super::*;
use crate::series::{SeriesInputs, points};
use crate::store::TickTotals;
use crate::summary::Num;
use proptest::prelude::*;

const TICK: i64 = 5_000;

fn bounds() -> CacheBounds {
    CacheBounds {
        max_entries: 100,
        max_bytes: 1 << 20,
        ttl_ms: 600_000,
        max_points: 10_000,
    }
}

fn scope(id: &str) -> Scope {
    Scope {
        kind: ScopeKind::Stream,
        id: Id::new_unchecked(id),
    }
}

fn point(t: i64, v: i64, is_final: bool) -> Point {
    Point {
        t,
        value: Num::Int(v),
        peak: None,
        is_final,
    }
}

/// Points of `step` from `first`, `n` of them, final when they end by `ct`.
fn answer(first: i64, n: usize, step: i64, ct: i64) -> Vec<Point> {
    (0..n as i64)
        .map(|i| {
            let t = first + i * step;
            point(t, t / step, t + step <= ct)
        })
        .collect()
}

#[test]
fn a_rolling_poll_reads_only_the_open_buckets() {
    let c = SeriesCache::new(bounds());
    let key = SeriesKey::new(Metric::Views, &scope("s"), 60_000);
    let b = Buckets::covering(0, 600_000, 60_000);
    let first = c.plan(&key, &b, (1, 300_000), 0, None);
    assert_eq!(first.rest, b);
    assert!(first.cached.is_empty());
    c.keep(
        key.clone(),
        &answer(0, 10, 60_000, 300_000),
        60_000,
        300_000,
        0,
        None,
    );
    // One minute later, the window moved by one bucket and one more bucket closed.
    let b2 = Buckets::covering(60_000, 660_000, 60_000);
    let p = c.plan(&key, &b2, (1, 360_000), 60_000, None);
    assert_eq!(p.cached, answer(60_000, 4, 60_000, 300_000));
    assert_eq!(p.rest, b2.slice(4, 10));
    let counts = c.counts();
    assert_eq!(
        (counts.hits, counts.misses, counts.points_cached),
        (1, 1, 4)
    );
    assert_eq!(c.take_new_counts().hits, 1);
    assert_eq!(c.take_new_counts(), CacheCounts::default());
}

#[test]
fn open_points_are_never_kept() {
    let c = SeriesCache::new(bounds());
    let key = SeriesKey::new(Metric::Views, &scope("s"), 60_000);
    c.keep(
        key.clone(),
        &answer(0, 5, 60_000, 59_999),
        60_000,
        59_999,
        0,
        None,
    );
    assert!(c.is_empty());
    let b = Buckets::covering(0, 300_000, 60_000);
    assert_eq!(c.plan(&key, &b, (1, 59_999), 0, None).rest, b);
}

#[test]
fn bounds_evict_the_least_recently_used_run() {
    let c = SeriesCache::new(CacheBounds {
        max_entries: 2,
        ..bounds()
    });
    let keys: Vec<SeriesKey> = ["a", "b", "c"]
        .iter()
        .map(|s| SeriesKey::new(Metric::Views, &scope(s), 60_000))
        .collect();
    let b = Buckets::covering(0, 120_000, 60_000);
    c.keep(
        keys[0].clone(),
        &answer(0, 2, 60_000, 120_000),
        60_000,
        120_000,
        0,
        None,
    );
    c.keep(
        keys[1].clone(),
        &answer(0, 2, 60_000, 120_000),
        60_000,
        120_000,
        0,
        None,
    );
    assert_eq!(c.plan(&keys[0], &b, (1, 120_000), 0, None).cached.len(), 2);
    c.keep(
        keys[2].clone(),
        &answer(0, 2, 60_000, 120_000),
        60_000,
        120_000,
        0,
        None,
    );
    assert_eq!(c.len(), 2);
    assert_eq!(c.counts().evicted_capacity, 1);
    // "b" was the least recently used.
    assert!(
        c.plan(&keys[1], &b, (1, 120_000), 0, None)
            .cached
            .is_empty()
    );
    assert_eq!(c.plan(&keys[0], &b, (1, 120_000), 0, None).cached.len(), 2);

    let tiny = SeriesCache::new(CacheBounds {
        max_bytes: 100,
        ..bounds()
    });
    tiny.keep(
        keys[0].clone(),
        &answer(0, 2, 60_000, 120_000),
        60_000,
        120_000,
        0,
        None,
    );
    assert!(
        tiny.is_empty(),
        "a run larger than the byte bound is not kept"
    );
}

#[test]
fn a_run_expires_after_its_ttl_and_is_cut_when_closed_through_moves_back() {
    let c = SeriesCache::new(bounds());
    let key = SeriesKey::new(Metric::Views, &scope("s"), 60_000);
    let b = Buckets::covering(0, 600_000, 60_000);
    c.keep(
        key.clone(),
        &answer(0, 10, 60_000, 600_000),
        60_000,
        600_000,
        0,
        None,
    );
    // An older view (closed_through 180 000) takes only the buckets final in it...
    let p = c.plan(&key, &b, (1, 180_000), 1_000, None);
    assert_eq!(p.cached, answer(0, 3, 60_000, 180_000));
    assert_eq!(p.rest, b.slice(3, 10));
    // ...and cuts nothing: a newer view still gets all ten.
    assert_eq!(c.plan(&key, &b, (1, 600_000), 1_000, None).cached.len(), 10);
    // A node appears behind the others: the runs are cut to its closed_through.
    assert_eq!(c.plan(&key, &b, (2, 180_000), 1_000, None).cached.len(), 3);
    assert_eq!(c.plan(&key, &b, (2, 600_000), 1_000, None).cached.len(), 3);
    assert_eq!(c.plan(&key, &b, (2, 600_000), 600_001, None).cached, vec![]);
    assert_eq!(c.counts().evicted_expired, 1);
}

#[test]
fn a_run_is_trimmed_to_max_points_keeping_the_newest() {
    let c = SeriesCache::new(CacheBounds {
        max_points: 3,
        ..bounds()
    });
    let key = SeriesKey::new(Metric::Views, &scope("s"), 60_000);
    c.keep(
        key.clone(),
        &answer(0, 10, 60_000, 600_000),
        60_000,
        600_000,
        0,
        None,
    );
    let b = Buckets::covering(420_000, 600_000, 60_000);
    assert_eq!(c.plan(&key, &b, (1, 600_000), 0, None).cached.len(), 3);
    let early = Buckets::covering(0, 600_000, 60_000);
    assert!(
        c.plan(&key, &early, (1, 600_000), 0, None)
            .cached
            .is_empty()
    );
}

#[test]
fn viewers_runs_are_dropped_when_the_live_ticks_change_inside_them() {
    let c = SeriesCache::new(bounds());
    let key = SeriesKey::new(Metric::Viewers, &scope("s"), 60_000);
    let range = |last_t| LiveRange {
        target: "s".into(),
        channel: "c".into(),
        first_t: 0,
        last_t,
    };
    let paused = LiveTicks::new(&[range(100_000)]);
    let b = Buckets::covering(0, 240_000, 60_000);
    c.keep(
        key.clone(),
        &answer(0, 4, 60_000, 240_000),
        60_000,
        240_000,
        0,
        Some(&paused),
    );
    assert_eq!(
        c.plan(&key, &b, (1, 240_000), 0, Some(&paused))
            .cached
            .len(),
        4
    );
    // The stream resumed: ticks after 100 000 are live now, so those points changed.
    let resumed = LiveTicks::new(&[range(400_000)]);
    assert!(
        c.plan(&key, &b, (1, 240_000), 0, Some(&resumed))
            .cached
            .is_empty()
    );
    assert_eq!(c.counts().invalidated, 1);
    // Without live ticks a viewers answer is not kept at all.
    c.keep(
        key.clone(),
        &answer(0, 4, 60_000, 240_000),
        60_000,
        240_000,
        0,
        None,
    );
    assert!(c.is_empty());
}

#[test]
fn live_ranges_merge_per_target_and_expire() {
    let r = |target: &str, first_t, last_t| LiveRange {
        target: target.into(),
        channel: "c".into(),
        first_t,
        last_t,
    };
    let merged = merge_ranges(
        &[r("b", 0, 50), r("a", 10, 20)],
        &[r("b", 60, 90), r("c", 5, 5)],
    );
    assert_eq!(merged, vec![r("a", 10, 20), r("b", 0, 90), r("c", 5, 5)]);

    let cache = LiveRangeCache::new(bounds());
    let s = scope("s");
    let closed = ClosedRanges {
        generation: 1,
        through: 100,
        ranges: vec![r("s", 0, 95)],
        filled_at: 0,
    };
    cache.keep(&s, closed.clone());
    assert_eq!(cache.get(&s, (1, 200), 10), Some(closed.clone()));
    assert_eq!(cache.get(&s, (1, 50), 10), None, "an older view");
    let older = ClosedRanges {
        through: 50,
        ..closed.clone()
    };
    cache.keep(&s, older);
    assert_eq!(
        cache.get(&s, (1, 100), 10),
        Some(closed.clone()),
        "kept the newer"
    );
    assert_eq!(cache.get(&s, (2, 200), 10), None, "a node appeared");
    cache.keep(&s, closed);
    assert_eq!(cache.get(&s, (1, 200), 600_001), None, "expired");
}

/// A deterministic stream of numbers for the provisional rows of one poll.
fn mix(seed: u64, i: u64) -> u64 {
    let mut x = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x
}

/// The rows a store shows at one poll: final rows below `ct`, provisional ones
/// (different at every poll) from it on.
fn visible(world: &[Option<(i64, i64, i64)>], ct: i64, seed: u64) -> Vec<TickTotals> {
    world
        .iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let t = i as i64 * TICK;
            let row = if t < ct {
                *row
            } else {
                let x = mix(seed, i as u64);
                (!x.is_multiple_of(3)).then_some((
                    (x >> 8) as i64 % 5,
                    (x >> 16) as i64 % 2,
                    (x >> 24) as i64 % 4,
                ))
            };
            row.map(|(viewers, events, views)| TickTotals {
                t,
                viewers,
                events,
                views,
                watch_ms: viewers * TICK,
                ..TickTotals::default()
            })
        })
        .collect()
}

fn live_of(rows: &[TickTotals]) -> LiveTicks {
    let live: Vec<i64> = rows.iter().filter(|r| r.events > 0).map(|r| r.t).collect();
    match (live.first(), live.last()) {
        (Some(&first_t), Some(&last_t)) => LiveTicks::new(&[LiveRange {
            target: "s".into(),
            channel: "c".into(),
            first_t,
            last_t,
        }]),
        _ => LiveTicks::default(),
    }
}

/// What the store would hand `points` for `b` (only rows in its range, as a read does).
fn inputs(rows: &[TickTotals], b: &Buckets, live: &LiveTicks, ct: i64) -> SeriesInputs {
    let r = b.range();
    SeriesInputs {
        ticks: rows
            .iter()
            .filter(|x| x.t >= r.from && x.t < r.to)
            .copied()
            .collect(),
        live: live.clone(),
        closed_through: ct,
        ..SeriesInputs::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn cached_and_fresh_points_equal_uncached_points(
        world in prop::collection::vec(prop::option::of((0i64..5, 0i64..2, 0i64..4)), 240),
        polls in prop::collection::vec(
            (-3i64..12, 0i64..240, 0i64..120, 0usize..3, 0usize..3, any::<u64>()),
            1..40,
        ),
        max_points in 1usize..50,
    ) {
        let c = SeriesCache::new(CacheBounds { max_points, max_entries: 4, ..bounds() });
        let metrics = [Metric::Viewers, Metric::Views, Metric::WatchMinutes];
        let steps = [5_000, 15_000, 60_000];
        let mut ct: i64 = 0;
        for (i, (advance, from_tick, len_ticks, m, s, seed)) in polls.into_iter().enumerate() {
            // Mostly forward, sometimes back (an older view of a concurrent request).
            ct = (ct + advance * TICK).max(0);
            let (metric, step) = (metrics[m], steps[s]);
            let from = from_tick * TICK;
            let b = Buckets::covering(from, from + len_ticks * TICK, step);
            let rows = visible(&world, ct, seed);
            let live = live_of(&rows);
            let uncached = points(metric, &b, &inputs(&rows, &b, &live, ct), TICK);
            let key = SeriesKey::new(metric, &scope("s"), step);
            let now = i as i64 * 1_000;
            let l = (metric == Metric::Viewers).then_some(&live);
            let plan = c.plan(&key, &b, (1, ct), now, l);
            let mut got = plan.cached;
            got.extend(points(metric, &plan.rest, &inputs(&rows, &plan.rest, &live, ct), TICK));
            c.keep(key, &got, step, ct, now, l);
            prop_assert_eq!(got, uncached);
        }
    }
}
