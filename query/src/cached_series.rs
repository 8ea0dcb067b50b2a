//! The points of one series answer, read through the [`SeriesCache`] when it is on
//! (`series_cache`): the cached final points of the first buckets, the rest from the
//! store. With it off (or for a bucket range the cache has nothing of) this is the plain
//! read of [`series::load_inputs`] over the whole range.
//!
//! Viewers also need the scope's live ranges; with the cache on they come from the
//! [`LiveRangeCache`](crate::series_cache::LiveRangeCache): the ranges of the closed
//! ticks are read once, then only those of the ticks closed since and of the open ones
//! (on ClickHouse, which serves closed windows only, just the former).

use crate::QueryState;
use crate::error::QueryError;
use crate::series::{self, Buckets, Metric, Point, load_inputs};
use crate::series_cache::{ClosedRanges, SeriesKey, merge_ranges};
use crate::store::{AnalyticsStore, LiveRange, Scope, StoreSnapshot, TimeRange};
use crate::summary::LiveTicks;

/// The points of `metric` over `buckets` of `scope`, from one store view.
pub async fn points(
    state: &QueryState,
    store: &StoreSnapshot,
    metric: Metric,
    scope: &Scope,
    buckets: &Buckets,
) -> Result<Vec<Point>, QueryError> {
    let Some(cache) = state.series_cache() else {
        let live = match metric {
            Metric::Viewers => Some(LiveTicks::new(
                &state
                    .with_timeout(crate::channel::scope_live_ranges(state, store, scope))
                    .await?,
            )),
            _ => None,
        };
        let inputs = state
            .with_timeout(load_inputs(store, scope, &[metric], buckets, live))
            .await?;
        return Ok(series::points(metric, buckets, &inputs, state.tick_ms()));
    };
    // Distinct-viewer buckets become final a minute at a time (`Metric::final_through`),
    // so the cache sees their view as closed through the minute.
    let closed_through = metric.final_through(store.closed_through());
    let now = state.now_ms();
    let view = (store.generation(), closed_through);
    let live = match metric {
        Metric::Viewers => Some(LiveTicks::new(
            &state
                .with_timeout(live_ranges(state, store, scope, view, now))
                .await?,
        )),
        _ => None,
    };
    let key = SeriesKey::new(metric, scope, buckets.step);
    let plan = cache.plan(&key, buckets, view, now, live.as_ref());
    let mut out = plan.cached;
    let from_store = plan.rest.count;
    if from_store > 0 {
        let inputs = state
            .with_timeout(load_inputs(
                store,
                scope,
                &[metric],
                &plan.rest,
                live.clone(),
            ))
            .await?;
        out.extend(series::points(metric, &plan.rest, &inputs, state.tick_ms()));
    }
    cache.keep(key, &out, buckets.step, closed_through, now, live.as_ref());
    let c = cache.take_new_counts();
    let m = &crate::metrics::SERIES_CACHE_REQUESTS;
    m.with_label_values(&["hit"]).inc_by(c.hits);
    m.with_label_values(&["miss"]).inc_by(c.misses);
    let p = &crate::metrics::SERIES_POINTS;
    p.with_label_values(&["cache"]).inc_by(c.points_cached);
    p.with_label_values(&["store"]).inc_by(from_store as u64);
    let e = &crate::metrics::SERIES_CACHE_EVICTIONS;
    e.with_label_values(&["capacity"])
        .inc_by(c.evicted_capacity);
    e.with_label_values(&["expired"]).inc_by(c.evicted_expired);
    e.with_label_values(&["invalidated"]).inc_by(c.invalidated);
    Ok(out)
}

/// The live ranges of `scope` (as [`crate::channel::scope_live_ranges`] answers them),
/// reading from the store only the ticks the cached closed ranges do not cover.
async fn live_ranges(
    state: &QueryState,
    store: &StoreSnapshot,
    scope: &Scope,
    (generation, closed_through): (u64, i64),
    now: i64,
) -> Result<Vec<LiveRange>, QueryError> {
    let cache = state.live_range_cache();
    let read = |from: i64, to: i64| store.live_ranges_in(scope, Some(TimeRange { from, to }));
    let closed = match cache.get(scope, (generation, closed_through), now) {
        Some(c) if c.through == closed_through => c,
        Some(c) => {
            let since = read(c.through, closed_through).await?;
            ClosedRanges {
                generation,
                through: closed_through,
                ranges: merge_ranges(&c.ranges, &since),
                filled_at: c.filled_at,
            }
        }
        // Event times are ≥ 0 (PROTOCOL.md).
        None => ClosedRanges {
            generation,
            through: closed_through,
            ranges: read(0, closed_through).await?,
            filled_at: now,
        },
    };
    let open = match store {
        StoreSnapshot::ClickHouse(_) => Vec::new(),
        StoreSnapshot::Embedded(_) => read(closed_through, i64::MAX).await?,
    };
    let from_events = merge_ranges(&closed.ranges, &open);
    cache.keep(scope, closed);
    crate::channel::with_lifecycle(state, scope, from_events).await
}
