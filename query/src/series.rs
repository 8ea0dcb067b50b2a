//! Time series of one metric (`GET /api/analytics/series`, the viewers chart, the CSV
//! export): epoch-aligned buckets of a fixed step, each point computed by the same
//! formulas as the stream summary ([`crate::summary`]) over the bucket's ticks.
//!
//! - `viewers`: average concurrent over the bucket's live ticks (ticks without a row
//!   count as 0), `peak` the max; a channel sums its streams per tick and averages over
//!   the ticks in which any of its streams is live.
//! - counts and ratios: the bucket's sums; distinct-viewer metrics come from
//!   `viewer_minutes`, at a step below the minute through its 5-second slice masks.
//! - `final` is false while any tick of the bucket is still open: bucket end
//!   `> closed_through`. Provisional rows count in such buckets.
//!
//! The series is dense: every bucket of the range is present (zeros included), so the
//! number of points is known (and bounded) before the store is read.

use crate::error::QueryError;
use crate::store::{AnalyticsStore, Scope, StartupHistogram, TickTotals, TimeRange, ViewerCounts};
use crate::summary::{
    LiveTicks, Num, concurrency, conversion_rate, failure_rate, rebuffer_frequency, rebuffer_ratio,
    startup_percentiles, watch_minutes,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// A metric that has a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    Viewers,
    Views,
    UniqueViewers,
    WatchMinutes,
    ChatMessages,
    NewFollowers,
    ConversionRate,
    RebufferRatio,
    RebufferCount,
    RebufferFrequency,
    StartupP50Ms,
    StartupP95Ms,
    StartupP99Ms,
    PlaybackFailureRate,
}

impl Metric {
    pub const ALL: [Metric; 14] = [
        Metric::Viewers,
        Metric::Views,
        Metric::UniqueViewers,
        Metric::WatchMinutes,
        Metric::ChatMessages,
        Metric::NewFollowers,
        Metric::ConversionRate,
        Metric::RebufferRatio,
        Metric::RebufferCount,
        Metric::RebufferFrequency,
        Metric::StartupP50Ms,
        Metric::StartupP95Ms,
        Metric::StartupP99Ms,
        Metric::PlaybackFailureRate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Viewers => "viewers",
            Metric::Views => "views",
            Metric::UniqueViewers => "unique_viewers",
            Metric::WatchMinutes => "watch_minutes",
            Metric::ChatMessages => "chat_messages",
            Metric::NewFollowers => "new_followers",
            Metric::ConversionRate => "conversion_rate",
            Metric::RebufferRatio => "rebuffer_ratio",
            Metric::RebufferCount => "rebuffer_count",
            Metric::RebufferFrequency => "rebuffer_frequency",
            Metric::StartupP50Ms => "startup_p50_ms",
            Metric::StartupP95Ms => "startup_p95_ms",
            Metric::StartupP99Ms => "startup_p99_ms",
            Metric::PlaybackFailureRate => "playback_failure_rate",
        }
    }

    /// Parses a metric name; the error lists the known ones.
    pub fn parse(s: &str) -> Result<Metric, QueryError> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                QueryError::invalid(
                    "metric",
                    format!("unknown metric {s:?}; expected one of {}", names.join(", ")),
                )
            })
    }

    /// Counted from `viewer_minutes` (distinct viewers), so kept per minute.
    pub fn needs_viewer_minutes(self) -> bool {
        matches!(
            self,
            Metric::UniqueViewers | Metric::NewFollowers | Metric::ConversionRate
        )
    }

    /// Up to where this metric's buckets are final: `closed_through` for the per-tick
    /// metrics; for the distinct-viewer ones the start of its minute, since a viewer
    /// minute is written (on ClickHouse: at all) only once its whole minute is closed, so
    /// a 5 s bucket below `closed_through` in an open minute may still grow.
    pub fn final_through(self, closed_through: i64) -> i64 {
        if self.needs_viewer_minutes() {
            crate::store::bucket_start(closed_through, 60_000)
        } else {
            closed_through
        }
    }

    pub fn needs_histograms(self) -> bool {
        matches!(
            self,
            Metric::StartupP50Ms | Metric::StartupP95Ms | Metric::StartupP99Ms
        )
    }

    pub fn needs_ticks(self) -> bool {
        !self.needs_viewer_minutes() && !self.needs_histograms()
    }
}

/// One point of a series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// Bucket start, epoch ms.
    pub t: i64,
    pub value: Num,
    /// Max concurrent in the bucket (viewers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak: Option<i64>,
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// The answer of the series and chart routes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    pub metric: &'static str,
    pub step_ms: i64,
    pub points: Vec<Point>,
}

/// `count` epoch-aligned buckets of `step` ms starting at `first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buckets {
    pub first: i64,
    pub step: i64,
    pub count: usize,
}

impl Buckets {
    /// The buckets covering `[from, to)`, rounded out to whole buckets.
    pub fn covering(from: i64, to: i64, step: i64) -> Buckets {
        let first = crate::store::bucket_start(from, step);
        let end = crate::store::bucket_start(to - 1, step) + step;
        let count = if to > from {
            ((end - first) / step) as usize
        } else {
            0
        };
        Buckets { first, step, count }
    }

    pub fn end(&self) -> i64 {
        self.first + self.step * self.count as i64
    }

    pub fn range(&self) -> TimeRange {
        TimeRange {
            from: self.first,
            to: self.end(),
        }
    }

    pub fn starts(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.count as i64).map(move |i| self.first + i * self.step)
    }

    /// The first `n` buckets from bucket `skip` on.
    pub fn slice(&self, skip: usize, n: usize) -> Buckets {
        let skip = skip.min(self.count);
        Buckets {
            first: self.first + self.step * skip as i64,
            step: self.step,
            count: n.min(self.count - skip),
        }
    }
}

/// What the store returned for a set of buckets; any part may be empty when no
/// requested metric needs it.
#[derive(Clone, Debug, Default)]
pub struct SeriesInputs {
    pub ticks: Vec<TickTotals>,
    pub live: LiveTicks,
    pub counts: Vec<ViewerCounts>,
    pub histograms: Vec<StartupHistogram>,
    pub closed_through: i64,
}

/// Pure: the points of `metric` over `buckets`.
pub fn points(
    metric: Metric,
    buckets: &Buckets,
    inputs: &SeriesInputs,
    tick_ms: i64,
) -> Vec<Point> {
    let final_through = metric.final_through(inputs.closed_through);
    let counts: BTreeMap<i64, &ViewerCounts> =
        inputs.counts.iter().map(|c| (c.bucket, c)).collect();
    let hists: BTreeMap<i64, &StartupHistogram> =
        inputs.histograms.iter().map(|h| (h.bucket, h)).collect();
    let mut out = Vec::with_capacity(buckets.count);
    let mut next_tick = 0usize;
    for b in buckets.starts() {
        let e = b + buckets.step;
        // Ticks are sorted by t: walk them once across all buckets.
        while next_tick < inputs.ticks.len() && inputs.ticks[next_tick].t < b {
            next_tick += 1;
        }
        let start = next_tick;
        while next_tick < inputs.ticks.len() && inputs.ticks[next_tick].t < e {
            next_tick += 1;
        }
        let ticks = &inputs.ticks[start..next_tick];
        let sum = |f: fn(&TickTotals) -> i64| ticks.iter().map(f).sum::<i64>();
        let c = counts.get(&b).copied().copied().unwrap_or_default();
        let mut peak = None;
        let value = match metric {
            Metric::Viewers => {
                let (avg, p) = concurrency(ticks, &inputs.live, b, e, tick_ms);
                peak = Some(p);
                Num::Float(avg)
            }
            Metric::Views => Num::Int(sum(|x| x.views)),
            Metric::UniqueViewers => Num::Int(c.unique_viewers),
            Metric::WatchMinutes => Num::Float(watch_minutes(sum(|x| x.watch_ms))),
            Metric::ChatMessages => Num::Int(sum(|x| x.chat_messages)),
            Metric::NewFollowers => Num::Int(c.followers),
            Metric::ConversionRate => Num::Float(conversion_rate(c.followers, c.unique_viewers)),
            Metric::RebufferRatio => {
                Num::Float(rebuffer_ratio(sum(|x| x.rebuffer_ms), sum(|x| x.watch_ms)))
            }
            Metric::RebufferCount => Num::Int(sum(|x| x.rebuffer_count)),
            Metric::RebufferFrequency => Num::Float(rebuffer_frequency(
                sum(|x| x.rebuffer_count),
                sum(|x| x.watch_ms),
            )),
            Metric::StartupP50Ms | Metric::StartupP95Ms | Metric::StartupP99Ms => {
                let p = startup_percentiles(hists.get(&b).map(|h| &h.hist));
                let i = match metric {
                    Metric::StartupP50Ms => 0,
                    Metric::StartupP95Ms => 1,
                    _ => 2,
                };
                Num::Int(i64::try_from(p[i]).unwrap_or(i64::MAX))
            }
            Metric::PlaybackFailureRate => {
                Num::Float(failure_rate(sum(|x| x.failures), sum(|x| x.views)))
            }
        };
        out.push(Point {
            t: b,
            value,
            peak,
            is_final: e <= final_through,
        });
    }
    out
}

/// Reads, from one store view, what `metrics` need over `buckets` (each input once).
/// `live`: live ranges already read for this scope (a chunked export reads them once).
pub async fn load_inputs<S: AnalyticsStore>(
    store: &S,
    scope: &Scope,
    metrics: &[Metric],
    buckets: &Buckets,
    live: Option<LiveTicks>,
) -> Result<SeriesInputs, QueryError> {
    let range = Some(buckets.range());
    let mut inputs = SeriesInputs {
        closed_through: store.closed_through(),
        ..SeriesInputs::default()
    };
    if buckets.count == 0 {
        return Ok(inputs);
    }
    if metrics.iter().any(|m| m.needs_ticks()) {
        inputs.ticks = store.tick_totals(scope, range).await?;
    }
    if metrics.contains(&Metric::Viewers) {
        inputs.live = match live {
            Some(live) => live,
            None => LiveTicks::new(&store.live_ranges(scope).await?),
        };
    }
    if metrics.iter().any(|m| m.needs_viewer_minutes()) {
        inputs.counts = store
            .viewer_counts(scope, range, Some(buckets.step))
            .await?;
    }
    if metrics.iter().any(|m| m.needs_histograms()) {
        inputs.histograms = store
            .startup_histograms(scope, range, Some(buckets.step))
            .await?;
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LiveRange, empty_startup_histogram};

    #[test]
    fn buckets_round_out_to_whole_steps() {
        let b = Buckets::covering(61_000, 179_000, 60_000);
        assert_eq!(
            b,
            Buckets {
                first: 60_000,
                step: 60_000,
                count: 2
            }
        );
        assert_eq!(b.end(), 180_000);
        assert_eq!(b.starts().collect::<Vec<_>>(), vec![60_000, 120_000]);
        assert_eq!(Buckets::covering(60_000, 180_001, 60_000).count, 3);
        assert_eq!(Buckets::covering(5, 5, 60_000).count, 0);
        assert_eq!(
            b.slice(1, 10),
            Buckets {
                first: 120_000,
                step: 60_000,
                count: 1
            }
        );
        assert_eq!(b.slice(5, 10).count, 0);
    }

    #[test]
    fn metric_names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.name()).expect("known"), m);
        }
        let e = Metric::parse("viewer").expect_err("unknown").to_string();
        assert!(e.contains("viewers, views"), "{e}");
    }

    fn inputs() -> SeriesInputs {
        let t = |t, viewers, views, watch_ms| TickTotals {
            t,
            viewers,
            events: 1,
            views,
            watch_ms,
            ..TickTotals::default()
        };
        let mut h = empty_startup_histogram();
        h.record(700).expect("in range");
        SeriesInputs {
            // live ticks 0..=50_000 at 5 s; bucket [0, 60 000) has 11 live ticks.
            ticks: vec![
                t(0, 1, 1, 0),
                t(5_000, 3, 1, 30_000),
                t(55_000, 5, 0, 60_000),
                t(60_000, 2, 0, 0),
            ],
            live: LiveTicks::new(&[LiveRange {
                target: "s".into(),
                channel: "c".into(),
                first_t: 0,
                last_t: 50_000,
            }]),
            counts: vec![ViewerCounts {
                bucket: 0,
                unique_viewers: 4,
                followers: 1,
            }],
            histograms: vec![StartupHistogram { bucket: 0, hist: h }],
            closed_through: 60_000,
        }
    }

    #[test]
    fn viewers_points_average_live_ticks_and_flag_final() {
        let b = Buckets::covering(0, 120_000, 60_000);
        let p = points(Metric::Viewers, &b, &inputs(), 5_000);
        assert_eq!(p.len(), 2);
        // ticks 55 000 and 60 000 are outside the live range.
        assert_eq!(
            p[0],
            Point {
                t: 0,
                value: Num::Float(4.0 / 11.0),
                peak: Some(3),
                is_final: true
            }
        );
        assert_eq!(
            p[1],
            Point {
                t: 60_000,
                value: Num::Float(0.0),
                peak: Some(0),
                is_final: false
            }
        );
        let json = serde_json::to_string(&p[1]).expect("json");
        assert_eq!(json, r#"{"t":60000,"value":0.0,"peak":0,"final":false}"#);
    }

    #[test]
    fn distinct_viewer_buckets_turn_final_a_minute_at_a_time() {
        let mut i = inputs();
        i.closed_through = 95_000;
        let b = Buckets::covering(60_000, 120_000, 5_000);
        let finals = |m, i: &SeriesInputs| {
            points(m, &b, i, 5_000)
                .iter()
                .filter(|p| p.is_final)
                .count()
        };
        // Views: [60 s, 95 s) is closed, 7 buckets. Viewer minutes close whole minutes.
        assert_eq!(finals(Metric::Views, &i), 7);
        for m in [
            Metric::UniqueViewers,
            Metric::NewFollowers,
            Metric::ConversionRate,
        ] {
            assert_eq!(finals(m, &i), 0, "{}", m.name());
            assert_eq!(m.final_through(95_000), 60_000);
        }
        i.closed_through = 120_000;
        assert_eq!(finals(Metric::UniqueViewers, &i), 12);
    }

    #[test]
    fn other_metrics_sum_their_bucket() {
        let b = Buckets::covering(0, 120_000, 60_000);
        let i = inputs();
        let v = |m| {
            points(m, &b, &i, 5_000)
                .into_iter()
                .map(|p| p.value)
                .collect::<Vec<_>>()
        };
        assert_eq!(v(Metric::Views), vec![Num::Int(2), Num::Int(0)]);
        assert_eq!(
            v(Metric::WatchMinutes),
            vec![Num::Float(1.5), Num::Float(0.0)]
        );
        assert_eq!(v(Metric::UniqueViewers), vec![Num::Int(4), Num::Int(0)]);
        assert_eq!(
            v(Metric::ConversionRate),
            vec![Num::Float(0.25), Num::Float(0.0)]
        );
        assert_eq!(v(Metric::StartupP50Ms), vec![Num::Int(700), Num::Int(0)]);
        assert_eq!(
            v(Metric::PlaybackFailureRate),
            vec![Num::Float(0.0), Num::Float(0.0)]
        );
        let p = points(Metric::Views, &b, &i, 5_000);
        assert_eq!(
            serde_json::to_string(&p[0]).expect("json"),
            r#"{"t":0,"value":2,"final":true}"#
        );
    }
}
