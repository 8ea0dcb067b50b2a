//! `AnalyticsStore`: the few reads the metrics need, answered the same by every
//! backend: [`embedded`] (DataFusion) and [`clickhouse`]; [`Store`] / [`StoreSnapshot`]
//! pick one at start-up. The health routes' reads of `health_ticks`/`alerts` live in
//! [`health_reads`] (embedded) and `clickhouse_health`, with the same rows and keys.
//!
//! A store value is *one consistent view* of the tables: the handlers take one per
//! request ([`embedded::EmbeddedStore::snapshot`]) and run every read of that request
//! against it, so a summary never mixes two generations of the data.
//!
//! Every read sums or merges across nodes (DESIGN.md decision 3): rows come back
//! per tick (or per bucket), never per node.

pub mod clickhouse;
mod clickhouse_health;
mod clickhouse_recent;
pub mod embedded;
mod file_spans;
mod memory_reads;
mod snapshot;
mod time_sliced;

pub use snapshot::{Store, StoreSnapshot};

pub mod content_reads;
pub mod health_reads;
pub mod qoe_reads;

use crate::error::QueryError;
use hdrhistogram::Histogram;
use pulse_schemas::Id;
use std::future::Future;

/// What kind of object a scope selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScopeKind {
    Stream,
    Channel,
    Vod,
    Clip,
}

impl ScopeKind {
    pub const ALL: [ScopeKind; 4] = [
        ScopeKind::Stream,
        ScopeKind::Channel,
        ScopeKind::Vod,
        ScopeKind::Clip,
    ];

    /// The query parameter / body field naming it (`stream=`, `channel=`, ...).
    pub fn param(self) -> &'static str {
        match self {
            ScopeKind::Stream => "stream",
            ScopeKind::Channel => "channel",
            ScopeKind::Vod => "vod",
            ScopeKind::Clip => "clip",
        }
    }
}

/// The rows a metric is computed over.
///
/// - stream / vod / clip: the rows of that one target (`kind` and `target`);
/// - channel: the rows of every target of the channel (streams, VODs, clips), except
///   for `viewers` and live ranges, which come from its streams only (a channel's
///   concurrency is the sum of its live streams' viewers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub kind: ScopeKind,
    pub id: Id,
}

/// Half-open time range `[from, to)` in epoch ms, applied to the table's time column
/// (`t` of a tick, `minute` of a viewer minute).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub from: i64,
    pub to: i64,
}

/// One tick of a scope, every counter summed across nodes (and across the targets
/// of a channel). Ticks without any row are absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickTotals {
    pub t: i64,
    pub viewers: i64,
    pub events: i64,
    pub views: i64,
    pub watch_ms: i64,
    pub rebuffer_ms: i64,
    pub rebuffer_count: i64,
    pub startups: i64,
    pub failures: i64,
    pub chat_messages: i64,
    pub follows: i64,
    pub likes: i64,
    pub shares: i64,
    pub embed_views: i64,
    pub clickthroughs: i64,
}

/// The live range of one target without a lifecycle record: the first and last
/// tick (start times) holding any of its events, over all time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveRange {
    pub target: String,
    pub channel: String,
    pub first_t: i64,
    pub last_t: i64,
}

/// Distinct viewers of a bucket, from `viewer_minutes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewerCounts {
    /// Bucket start (0 when the read was not bucketed).
    pub bucket: i64,
    /// `COUNT(DISTINCT viewer)`.
    pub unique_viewers: i64,
    /// `COUNT(DISTINCT viewer) WHERE followed`.
    pub followers: i64,
}

/// The merged startup-time histogram of a bucket.
#[derive(Clone, Debug)]
pub struct StartupHistogram {
    /// Bucket start (0 when the read was not bucketed).
    pub bucket: i64,
    pub hist: Histogram<u64>,
}

/// Bucketing of a read: `None` = one group over the whole range; `Some(step)` =
/// groups `[k·step, (k+1)·step)` aligned to the epoch.
pub type Bucketing = Option<i64>;

/// Start of the epoch-aligned bucket holding `t`.
pub fn bucket_start(t: i64, step: i64) -> i64 {
    t.div_euclid(step) * step
}

/// A distinct-viewer read finer than the minute: buckets come from the 5-second slice
/// masks of the minute rows (`viewer_minutes.seen_mask`, `follow_mask`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SliceRead {
    pub step: i64,
    /// The rows to read: the range widened out to whole minutes.
    pub minutes: Option<TimeRange>,
    /// The buckets to keep.
    pub range: Option<TimeRange>,
}

impl SliceRead {
    /// `Some` when `bucketing` is a step below one minute.
    pub fn of(range: Option<TimeRange>, bucketing: Bucketing) -> Option<SliceRead> {
        let step = bucketing.filter(|&s| s < 60_000)?;
        let minutes = range.map(|r| TimeRange {
            from: bucket_start(r.from, 60_000),
            to: bucket_start(r.to - 1, 60_000) + 60_000,
        });
        Some(SliceRead {
            step,
            minutes,
            range,
        })
    }

    /// Drops the buckets outside the requested range (read from its whole minutes).
    pub fn keep(&self, counts: &mut Vec<ViewerCounts>) {
        if let Some(r) = self.range {
            counts.retain(|c| c.bucket >= r.from && c.bucket < r.to);
        }
    }
}

/// A new, empty startup histogram: 1 ms to 10 min, 3 significant digits (METRICS.md §1),
/// growing if a stored one holds more.
pub fn empty_startup_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts (1 ≤ low, high ≥ 2·low, sigfig ≤ 5).
    let mut h = Histogram::new_with_bounds(1, 600_000, 3).expect("constant bounds are valid");
    h.auto(true);
    h
}

/// The reads behind every metric of this crate, on one consistent view of the data.
pub trait AnalyticsStore: Send + Sync {
    /// Every tick starting before this time is closed (final).
    fn closed_through(&self) -> i64;

    /// Per-tick totals of `scope` in `range` (all time when `None`), ordered by `t`.
    fn tick_totals(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
    ) -> impl Future<Output = Result<Vec<TickTotals>, QueryError>> + Send;

    /// Live ranges of the scope's targets (for a channel: its streams), over all time,
    /// ordered by target.
    fn live_ranges(
        &self,
        scope: &Scope,
    ) -> impl Future<Output = Result<Vec<LiveRange>, QueryError>> + Send {
        self.live_ranges_in(scope, None)
    }

    /// Live ranges counting only the ticks in `range` (all time when `None`): the series
    /// cache reads the closed part once and then only what closed since.
    fn live_ranges_in(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
    ) -> impl Future<Output = Result<Vec<LiveRange>, QueryError>> + Send;

    /// Distinct viewers and followers per bucket, ordered by bucket; buckets without
    /// any viewer minute are absent.
    fn viewer_counts(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
        bucketing: Bucketing,
    ) -> impl Future<Output = Result<Vec<ViewerCounts>, QueryError>> + Send;

    /// Startup histograms merged per bucket (across ticks, nodes and targets), ordered
    /// by bucket; buckets without any startup are absent.
    fn startup_histograms(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
        bucketing: Bucketing,
    ) -> impl Future<Output = Result<Vec<StartupHistogram>, QueryError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_align_to_the_epoch() {
        assert_eq!(bucket_start(0, 60_000), 0);
        let r = |from, to| Some(TimeRange { from, to });
        assert_eq!(SliceRead::of(r(65_000, 70_000), Some(60_000)), None);
        let s = SliceRead::of(r(65_000, 125_000), Some(5_000)).expect("sub-minute");
        assert_eq!((s.step, s.minutes), (5_000, r(60_000, 180_000)));
        let c = |bucket| ViewerCounts {
            bucket,
            unique_viewers: 1,
            followers: 0,
        };
        let mut counts = vec![c(60_000), c(65_000), c(120_000), c(125_000)];
        s.keep(&mut counts);
        assert_eq!(counts, vec![c(65_000), c(120_000)]);
        assert_eq!(bucket_start(59_999, 60_000), 0);
        assert_eq!(bucket_start(60_000, 60_000), 60_000);
        assert_eq!(bucket_start(-1, 60_000), -60_000);
    }

    #[test]
    fn startup_histogram_covers_ten_minutes() {
        let mut h = empty_startup_histogram();
        h.record(600_000).expect("in range");
        h.record(1_000_000).expect("auto-resized");
        assert_eq!(h.len(), 2);
    }
}
