//! The cache of closed windows behind `GET /api/analytics/series` and
//! `/api/analytics/charts/viewers` (pure: no I/O, the clock is an argument).
//!
//! A point whose bucket ends at or before the store's `closed_through` is final: its rows
//! never change. Per [`SeriesKey`] (metric, scope, step) the cache keeps one contiguous
//! run of final points; a poll takes the part of its buckets that the run holds
//! ([`SeriesCache::plan`]) and reads only the rest from the store, then hands the whole
//! answer back ([`SeriesCache::keep`]), which extends the run with the points that
//! became final. A rolling dashboard window thus reads one or two open buckets a poll.
//!
//! What can still change a final point, and what the cache does about it:
//! - **Viewers** depend on the live ranges too (a stream without lifecycle records is
//!   live from its first to its last event, so a stream that resumes after a pause makes
//!   the paused ticks live). A viewers run remembers the live intervals cut to its span
//!   and is dropped when the current ones differ there (`evictions{reason="invalidated"}`).
//! - **`closed_through` moving back** (ClickHouse: it is the minimum over the nodes of
//!   `node_progress`, so it moves back only when a node appears there behind the
//!   others): when the number of nodes grows, every run is cut to that view's
//!   `closed_through`. A request on an older view (a lower `closed_through`, from a
//!   concurrent request) only takes the cached points final in its own view.
//! - **Retention** deletes whole days, and on ClickHouse a new node may insert rows
//!   below `closed_through` before its first progress row: neither is visible to the
//!   cache, so a run lives at most `series_cache_ttl_ms` after its first point was read
//!   (`evictions{reason="expired"}`), then the whole range is read again.
//!
//! Bounds: `series_cache_max_entries` runs and `series_cache_max_bytes` (estimated from
//! the points held); the least recently used run goes first (`evictions{reason=
//! "capacity"}`). A run holds at most `max_points` points (the newest).
//!
//! [`LiveRangeCache`] keeps, per scope, the store's live ranges over the closed ticks
//! (`t < closed_through`), so a viewers poll reads the ranges of the ticks closed since
//! and of the open ones, not all time ([`merge_ranges`]).

use crate::series::{Buckets, Metric, Point};
use crate::store::{LiveRange, Scope, ScopeKind};
use crate::summary::LiveTicks;
use pulse_schemas::Id;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// What identifies one cached run; a new request dimension (a breakdown) is a new field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub metric: Metric,
    pub kind: ScopeKind,
    pub id: Id,
    pub step: i64,
}

impl SeriesKey {
    pub fn new(metric: Metric, scope: &Scope, step: i64) -> SeriesKey {
        SeriesKey {
            metric,
            kind: scope.kind,
            id: scope.id.clone(),
            step,
        }
    }
}

/// The bounds of a [`SeriesCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheBounds {
    pub max_entries: usize,
    pub max_bytes: usize,
    pub ttl_ms: i64,
    pub max_points: usize,
}

/// The cached part of a request and what is left to read from the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Points of the first buckets of the request, from the cache.
    pub cached: Vec<Point>,
    /// The buckets after them (all of the request on a miss).
    pub rest: Buckets,
}

#[derive(Debug)]
struct Run {
    first: i64,
    points: Vec<Point>,
    /// Viewers: the live intervals cut to the run's span when its points were computed.
    live: Option<Vec<(i64, i64)>>,
    filled_at: i64,
}

impl Run {
    fn end(&self, step: i64) -> i64 {
        self.first + step * self.points.len() as i64
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Run>()
            + 64
            + self.points.len() * std::mem::size_of::<Point>()
            + self.live.as_ref().map_or(0, |l| l.len() * 16)
    }
}

/// A map bounded by entries and estimated bytes, least recently used out first.
#[derive(Debug)]
struct Lru<K, V> {
    map: HashMap<K, (V, usize, u64)>,
    bytes: usize,
    tick: u64,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    fn new() -> Self {
        Lru {
            map: HashMap::new(),
            bytes: 0,
            tick: 0,
        }
    }

    fn get(&mut self, k: &K) -> Option<&V> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(k).map(|e| {
            e.2 = tick;
            &e.0
        })
    }

    fn remove(&mut self, k: &K) -> Option<V> {
        self.map.remove(k).map(|(v, b, _)| {
            self.bytes -= b;
            v
        })
    }

    /// Inserts and evicts down to the bounds; returns how many entries were evicted.
    fn insert(&mut self, k: K, v: V, bytes: usize, max_entries: usize, max_bytes: usize) -> u64 {
        self.remove(&k);
        self.tick += 1;
        self.bytes += bytes;
        self.map.insert(k, (v, bytes, self.tick));
        let mut evicted = 0;
        while self.map.len() > max_entries || self.bytes > max_bytes {
            let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.2)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.remove(&oldest);
            evicted += 1;
        }
        evicted
    }
}

/// Counts of what the cache did, for `pulse_query_series_cache_*`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
    pub points_cached: u64,
    pub evicted_capacity: u64,
    pub evicted_expired: u64,
    pub invalidated: u64,
}

#[derive(Debug)]
struct State {
    runs: Lru<SeriesKey, Run>,
    /// Highest store generation seen; a higher one cuts every run to its `closed_through`.
    generation: u64,
    counts: CacheCounts,
    /// The part of `counts` already handed out by [`SeriesCache::take_new_counts`].
    reported: CacheCounts,
}

/// Final points per [`SeriesKey`]; shared by the requests of one query node.
#[derive(Debug)]
pub struct SeriesCache {
    bounds: CacheBounds,
    state: Mutex<State>,
}

impl SeriesCache {
    pub fn new(bounds: CacheBounds) -> SeriesCache {
        SeriesCache {
            bounds,
            state: Mutex::new(State {
                runs: Lru::new(),
                generation: 0,
                counts: CacheCounts::default(),
                reported: CacheCounts::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// What the cache has so far (monotonic counts).
    pub fn counts(&self) -> CacheCounts {
        self.lock().counts
    }

    /// What happened since the last call (each event is handed out once, so several
    /// requests may export into the same Prometheus counters).
    pub fn take_new_counts(&self) -> CacheCounts {
        let mut st = self.lock();
        let (c, r) = (st.counts, st.reported);
        st.reported = c;
        CacheCounts {
            hits: c.hits - r.hits,
            misses: c.misses - r.misses,
            points_cached: c.points_cached - r.points_cached,
            evicted_capacity: c.evicted_capacity - r.evicted_capacity,
            evicted_expired: c.evicted_expired - r.evicted_expired,
            invalidated: c.invalidated - r.invalidated,
        }
    }

    /// Runs held now.
    pub fn len(&self) -> usize {
        self.lock().runs.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached first points of `buckets` (only those final at this request's
    /// `closed_through`) and the buckets left to read. `generation`: the store's
    /// (see [`StoreSnapshot::generation`](crate::store::StoreSnapshot::generation));
    /// `live`: the current live ticks of the scope (viewers only).
    pub fn plan(
        &self,
        key: &SeriesKey,
        buckets: &Buckets,
        (generation, closed_through): (u64, i64),
        now: i64,
        live: Option<&LiveTicks>,
    ) -> Plan {
        let mut st = self.lock();
        observe(&mut st, generation, closed_through);
        let miss = |st: &mut State| {
            st.counts.misses += 1;
            Plan {
                cached: Vec::new(),
                rest: *buckets,
            }
        };
        let step = buckets.step;
        let Some(run) = st.runs.get(key) else {
            return miss(&mut st);
        };
        let expired = now.saturating_sub(run.filled_at) > self.bounds.ttl_ms;
        let changed = run
            .live
            .as_ref()
            .is_some_and(|cut| live.is_none_or(|l| l.clipped(run.first, run.end(step)) != *cut));
        if expired || changed {
            st.runs.remove(key);
            if expired {
                st.counts.evicted_expired += 1;
            } else {
                st.counts.invalidated += 1;
            }
            return miss(&mut st);
        }
        let (first, end) = (run.first, run.end(step));
        if buckets.count == 0 || buckets.first < first || buckets.first >= end {
            return miss(&mut st);
        }
        let skip = ((buckets.first - first) / step) as usize;
        // A request on an older view (a lower closed_through) uses only what it sees final.
        let n = run.points[skip..]
            .iter()
            .take(buckets.count)
            .take_while(|p| p.t + step <= closed_through)
            .count();
        if n == 0 {
            return miss(&mut st);
        }
        let cached = run.points[skip..skip + n].to_vec();
        st.counts.hits += 1;
        st.counts.points_cached += n as u64;
        Plan {
            cached,
            rest: buckets.slice(n, buckets.count),
        }
    }

    /// Keeps the final points of a whole answer (`points`, consecutive buckets of
    /// `step`), joined to the run of `key` when they touch it.
    pub fn keep(
        &self,
        key: SeriesKey,
        points: &[Point],
        step: i64,
        closed_through: i64,
        now: i64,
        live: Option<&LiveTicks>,
    ) {
        let finals = points
            .iter()
            .take_while(|p| p.t + step <= closed_through)
            .count();
        if finals == 0 || step <= 0 {
            return;
        }
        let mut st = self.lock();
        let new_first = points[0].t;
        let new_end = new_first + step * finals as i64;
        let old = st.runs.remove(&key);
        let mut run = match old {
            Some(old)
                if old.first <= new_end
                    && new_first <= old.end(step)
                    && old.live.as_ref().is_none_or(|cut| {
                        live.is_some_and(|l| l.clipped(old.first, old.end(step)) == *cut)
                    }) =>
            {
                let mut merged: Vec<Point> = old
                    .points
                    .iter()
                    .filter(|p| p.t < new_first)
                    .cloned()
                    .collect();
                merged.extend_from_slice(&points[..finals]);
                merged.extend(old.points.iter().filter(|p| p.t >= new_end).cloned());
                Run {
                    first: old.first.min(new_first),
                    points: merged,
                    live: None,
                    filled_at: old.filled_at.min(now),
                }
            }
            _ => Run {
                first: new_first,
                points: points[..finals].to_vec(),
                live: None,
                filled_at: now,
            },
        };
        let max = self.bounds.max_points.max(1);
        if run.points.len() > max {
            let cut = run.points.len() - max;
            run.points.drain(..cut);
            run.first += step * cut as i64;
        }
        if key.metric == Metric::Viewers {
            let Some(l) = live else {
                return;
            };
            run.live = Some(l.clipped(run.first, run.end(step)));
        }
        let bytes = run.bytes();
        let (max_entries, max_bytes) = (self.bounds.max_entries, self.bounds.max_bytes);
        st.counts.evicted_capacity += st.runs.insert(key, run, bytes, max_entries, max_bytes);
    }
}

/// Follows the store's generation; when it grows (`closed_through` may have moved back),
/// every run is cut to this view's `closed_through`. A lower `closed_through` alone is an
/// older view of a concurrent request, not a change: nothing is cut.
fn observe(st: &mut State, generation: u64, closed_through: i64) {
    if generation <= st.generation {
        return;
    }
    let first = st.generation == 0;
    st.generation = generation;
    if first {
        return;
    }
    let entries: Vec<_> = st.runs.map.drain().collect();
    st.runs.bytes = 0;
    for (key, (mut run, _, used)) in entries {
        run.points.retain(|p| p.t + key.step <= closed_through);
        if run.points.is_empty() {
            st.counts.invalidated += 1;
            continue;
        }
        let end = run.end(key.step);
        if let Some(cut) = run.live.as_mut() {
            cut.retain(|&(first, _)| first < end);
            for iv in cut.iter_mut() {
                iv.1 = iv.1.min(end - 1);
            }
        }
        let bytes = run.bytes();
        st.runs.bytes += bytes;
        st.runs.map.insert(key, (run, bytes, used));
    }
}

/// A scope's live ranges over the ticks before `through` (all final then).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedRanges {
    /// The store generation they were read in (a newer one drops them).
    pub generation: u64,
    pub through: i64,
    pub ranges: Vec<LiveRange>,
    /// When the oldest part was read (the entry expires `ttl_ms` after).
    pub filled_at: i64,
}

/// [`ClosedRanges`] per scope, under the same bounds as the runs.
#[derive(Debug)]
pub struct LiveRangeCache {
    bounds: CacheBounds,
    state: Mutex<Lru<(ScopeKind, Id), ClosedRanges>>,
}

impl LiveRangeCache {
    pub fn new(bounds: CacheBounds) -> LiveRangeCache {
        LiveRangeCache {
            bounds,
            state: Mutex::new(Lru::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru<(ScopeKind, Id), ClosedRanges>> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The closed ranges of `scope` for a view `(generation, closed_through)`; none when
    /// absent, expired, read in an older generation (all three: dropped) or past this
    /// view's `closed_through` (an older view: kept for the others).
    pub fn get(
        &self,
        scope: &Scope,
        (generation, closed_through): (u64, i64),
        now: i64,
    ) -> Option<ClosedRanges> {
        let key = (scope.kind, scope.id.clone());
        let mut st = self.lock();
        let entry = st.get(&key)?;
        if entry.generation < generation || now.saturating_sub(entry.filled_at) > self.bounds.ttl_ms
        {
            st.remove(&key);
            return None;
        }
        (entry.through <= closed_through).then(|| entry.clone())
    }

    /// Keeps `closed` unless the entry held covers more of the same generation.
    pub fn keep(&self, scope: &Scope, closed: ClosedRanges) {
        let key = (scope.kind, scope.id.clone());
        let mut st = self.lock();
        if st.get(&key).is_some_and(|held| {
            held.generation == closed.generation && held.through > closed.through
        }) {
            return;
        }
        let bytes = 128
            + closed
                .ranges
                .iter()
                .map(|r| 64 + r.target.len() + r.channel.len())
                .sum::<usize>();
        let (max_entries, max_bytes) = (self.bounds.max_entries, self.bounds.max_bytes);
        st.insert(key, closed, bytes, max_entries, max_bytes);
    }
}

/// Pure: the live ranges of two disjoint time spans as one (per target: the earliest
/// first tick, the latest last tick), ordered by target.
pub fn merge_ranges(a: &[LiveRange], b: &[LiveRange]) -> Vec<LiveRange> {
    let mut by_target: std::collections::BTreeMap<&str, LiveRange> =
        std::collections::BTreeMap::new();
    for r in a.iter().chain(b) {
        by_target
            .entry(r.target.as_str())
            .and_modify(|m| {
                m.first_t = m.first_t.min(r.first_t);
                m.last_t = m.last_t.max(r.last_t);
                if r.channel > m.channel {
                    m.channel.clone_from(&r.channel);
                }
            })
            .or_insert_with(|| r.clone());
    }
    by_target.into_values().collect()
}

#[cfg(test)]
mod tests;
