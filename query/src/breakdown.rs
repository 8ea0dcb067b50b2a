//! QoE breakdowns (issue 4 point 5): a series of one playback-quality metric per value
//! of `device`, `country` or `player` (`GET /api/analytics/series?…&by=device`, and
//! `by` in the CSV export), from `qoe_minutes` ([`crate::store::qoe_reads`]). Pure.
//!
//! - **Metrics**: viewers, views, watch_minutes, rebuffer_ratio, rebuffer_count,
//!   rebuffer_frequency, startup_p50/p95/p99_ms, playback_failure_rate, each by the
//!   formula of the plain series over the group's own sums. Engagement metrics (chat,
//!   follows, unique viewers, conversion) belong to viewers, not playback sessions, and
//!   are refused with the list of those that break down.
//! - **Step** at least one minute (the rows are per minute).
//! - **Viewers**: a group's average concurrent is its concurrency samples in the bucket
//!   divided by the bucket's live ticks (the plain series' denominator); no `peak` (it
//!   would need per-tick rows per group). Samples taken after a stream's last event
//!   (a viewer still counted in the 30 s after) are outside the live range of the
//!   plain series but inside their minute, so groups may add up to slightly more.
//! - **Groups**: the values with the most watch time over the whole range (then views,
//!   then name) — at most `max_breakdown_groups` — in that order, then `other` holding
//!   the rest (and the aggregator's own overflow group); a value that players did not
//!   send is `unknown`. Every group has every bucket (dense, zeros included), `final`
//!   as in the plain series.

use crate::error::QueryError;
use crate::series::{Buckets, Metric, Point};
use crate::store::qoe_reads::{Dimension, GroupBucket, QoeTotals};
use crate::summary::{
    LiveTicks, Num, failure_rate, rebuffer_frequency, rebuffer_ratio, startup_percentiles,
    watch_minutes,
};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The metrics that break down, in the order of [`Metric::ALL`].
pub const METRICS: [Metric; 10] = [
    Metric::Viewers,
    Metric::Views,
    Metric::WatchMinutes,
    Metric::RebufferRatio,
    Metric::RebufferCount,
    Metric::RebufferFrequency,
    Metric::StartupP50Ms,
    Metric::StartupP95Ms,
    Metric::StartupP99Ms,
    Metric::PlaybackFailureRate,
];

/// The name of the group that holds every value past the bound.
pub const OTHER: &str = "other";

/// Refuses a metric or step a breakdown cannot answer.
pub fn check(metric: Metric, by: Dimension, step: i64) -> Result<(), QueryError> {
    if !METRICS.contains(&metric) {
        let names: Vec<&str> = METRICS.iter().map(|m| m.name()).collect();
        return Err(QueryError::invalid(
            "by",
            format!(
                "{} has no breakdown by {}; these do: {}",
                metric.name(),
                by.name(),
                names.join(", ")
            ),
        ));
    }
    if step < 60_000 {
        return Err(QueryError::invalid(
            "step",
            "breakdowns are kept per minute; use a step of at least 60000 ms",
        ));
    }
    Ok(())
}

/// One group's series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupSeries {
    pub key: String,
    pub points: Vec<Point>,
}

/// The answer of a broken-down series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Breakdown {
    pub metric: &'static str,
    pub step_ms: i64,
    pub by: &'static str,
    pub groups: Vec<GroupSeries>,
}

/// Sums of one group in one bucket.
#[derive(Clone, Debug, Default)]
struct Cell {
    totals: QoeTotals,
    hist: Option<Histogram<u64>>,
}

/// The groups kept (ranked) and what each stored value maps to.
fn rank(rows: &[GroupBucket], max_groups: usize) -> (Vec<String>, HashMap<String, String>) {
    let mut by_key: HashMap<&str, (i64, i64)> = HashMap::new();
    for r in rows.iter().filter(|r| r.key != OTHER) {
        let e = by_key.entry(&r.key).or_default();
        e.0 += r.totals.watch_ms;
        e.1 += r.totals.views;
    }
    let mut keys: Vec<(&str, (i64, i64))> = by_key.into_iter().collect();
    keys.sort_by(|a, b| (b.1).cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let kept: Vec<String> = keys
        .iter()
        .take(max_groups)
        .map(|(k, _)| (*k).to_owned())
        .collect();
    let mut map: HashMap<String, String> = kept.iter().map(|k| (k.clone(), k.clone())).collect();
    let mut order = kept;
    let folded = rows.iter().any(|r| !map.contains_key(&r.key));
    if folded {
        for r in rows {
            map.entry(r.key.clone()).or_insert_with(|| OTHER.to_owned());
        }
        order.push(OTHER.to_owned());
    }
    (order, map)
}

/// What a breakdown needs besides its metric and rows.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub by: Dimension,
    pub buckets: &'a Buckets,
    /// The scope's live ticks (the viewers' denominator).
    pub live: &'a LiveTicks,
    pub closed_through: i64,
    pub tick_ms: i64,
    pub max_groups: usize,
}

/// Pure: the breakdown of `metric` from the store's rows.
pub fn breakdown(metric: Metric, rows: Vec<GroupBucket>, f: &Frame<'_>) -> Breakdown {
    breakdowns(&[metric], rows, f)
        .pop()
        .unwrap_or_else(|| Breakdown {
            metric: metric.name(),
            step_ms: f.buckets.step,
            by: f.by.name(),
            groups: Vec::new(),
        })
}

/// Pure: one breakdown per metric over the same rows (ranked and merged once, so every
/// breakdown has the same groups in the same order, as the CSV export needs).
pub fn breakdowns(metrics: &[Metric], rows: Vec<GroupBucket>, f: &Frame<'_>) -> Vec<Breakdown> {
    let Frame {
        by,
        buckets,
        live,
        closed_through,
        tick_ms,
        max_groups,
    } = *f;
    let (order, map) = rank(&rows, max_groups);
    let mut cells: BTreeMap<(String, i64), Cell> = BTreeMap::new();
    for r in rows {
        let key = map.get(&r.key).cloned().unwrap_or_else(|| OTHER.to_owned());
        let cell = cells.entry((key, r.bucket)).or_default();
        cell.totals.add(&r.totals);
        if let Some(h) = r.hist {
            match &mut cell.hist {
                Some(into) => {
                    // Both come from `empty_startup_histogram` (auto-resizing): cannot fail.
                    let _ = into.add(&h);
                }
                None => cell.hist = Some(h),
            }
        }
    }
    let empty = Cell::default();
    metrics
        .iter()
        .map(|&metric| Breakdown {
            metric: metric.name(),
            step_ms: buckets.step,
            by: by.name(),
            groups: order
                .iter()
                .map(|key| GroupSeries {
                    key: key.clone(),
                    points: buckets
                        .starts()
                        .map(|b| {
                            let e = b + buckets.step;
                            let c = cells.get(&(key.clone(), b)).unwrap_or(&empty);
                            Point {
                                t: b,
                                value: value(metric, c, live.count_in(b, e, tick_ms)),
                                peak: None,
                                is_final: e <= closed_through,
                            }
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

fn value(metric: Metric, c: &Cell, live_ticks: i64) -> Num {
    let t = &c.totals;
    match metric {
        Metric::Viewers => Num::Float(if live_ticks > 0 {
            t.viewer_ticks as f64 / live_ticks as f64
        } else {
            0.0
        }),
        Metric::Views => Num::Int(t.views),
        Metric::WatchMinutes => Num::Float(watch_minutes(t.watch_ms)),
        Metric::RebufferRatio => Num::Float(rebuffer_ratio(t.rebuffer_ms, t.watch_ms)),
        Metric::RebufferCount => Num::Int(t.rebuffer_count),
        Metric::RebufferFrequency => Num::Float(rebuffer_frequency(t.rebuffer_count, t.watch_ms)),
        Metric::StartupP50Ms | Metric::StartupP95Ms | Metric::StartupP99Ms => {
            let p = startup_percentiles(c.hist.as_ref());
            let i = match metric {
                Metric::StartupP50Ms => 0,
                Metric::StartupP95Ms => 1,
                _ => 2,
            };
            Num::Int(i64::try_from(p[i]).unwrap_or(i64::MAX))
        }
        Metric::PlaybackFailureRate => Num::Float(failure_rate(t.failures, t.views)),
        // Refused by `check`.
        Metric::UniqueViewers
        | Metric::ChatMessages
        | Metric::NewFollowers
        | Metric::ConversionRate => Num::Int(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LiveRange, empty_startup_histogram};

    fn row(bucket: i64, key: &str, watch_ms: i64, rebuffer_ms: i64) -> GroupBucket {
        GroupBucket {
            bucket,
            key: key.into(),
            totals: QoeTotals {
                viewer_ticks: 6,
                views: 1,
                watch_ms,
                rebuffer_ms,
                ..QoeTotals::default()
            },
            hist: None,
        }
    }

    #[test]
    fn groups_rank_by_watch_time_and_the_rest_fold_into_other() {
        let b = Buckets::covering(0, 120_000, 60_000);
        let live = LiveTicks::new(&[LiveRange {
            target: "s".into(),
            channel: "c".into(),
            first_t: 0,
            last_t: 115_000,
        }]);
        let mut tv = row(60_000, "tv", 1_000, 0);
        let mut h = empty_startup_histogram();
        h.record(900).expect("in range");
        tv.hist = Some(h);
        tv.totals.startups = 1;
        let rows = vec![
            row(0, "mobile", 60_000, 6_000),
            row(60_000, "desktop", 90_000, 0),
            tv,
            row(0, "other", 500, 0),
        ];
        let frame = |closed_through, max_groups| Frame {
            by: Dimension::Device,
            buckets: &b,
            live: &live,
            closed_through,
            tick_ms: 5_000,
            max_groups,
        };
        let x = breakdown(Metric::RebufferRatio, rows.clone(), &frame(60_000, 2));
        let keys: Vec<&str> = x.groups.iter().map(|g| g.key.as_str()).collect();
        assert_eq!(keys, ["desktop", "mobile", "other"]);
        assert_eq!(x.groups[1].points[0].value, Num::Float(0.1));
        assert!(x.groups[1].points[0].is_final && !x.groups[1].points[1].is_final);
        let v = breakdown(Metric::Viewers, rows.clone(), &frame(0, 2));
        // "other" = tv (bucket 1) + stored other (bucket 0): 6 samples over 12 live ticks each.
        assert_eq!(v.groups[2].points[0].value, Num::Float(0.5));
        assert_eq!(v.groups[2].points[1].value, Num::Float(0.5));
        let p = breakdown(Metric::StartupP50Ms, rows, &frame(0, 10));
        let tv = p
            .groups
            .iter()
            .find(|g| g.key == "tv")
            .expect("tv kept with 10 groups");
        assert_eq!(tv.points[1].value, Num::Int(900));
        let json = serde_json::to_string(&p).expect("json");
        assert!(json.starts_with(r#"{"metric":"startup_p50_ms","step_ms":60000,"by":"device","groups":[{"key":"desktop","points":[{"t":0,"value":0,"final":false}"#), "{json}");
    }

    #[test]
    fn engagement_metrics_and_sub_minute_steps_are_refused() {
        let e = check(Metric::ChatMessages, Dimension::Country, 60_000)
            .expect_err("chat")
            .to_string();
        assert!(e.contains("viewers, views, watch_minutes"), "{e}");
        assert!(check(Metric::RebufferRatio, Dimension::Player, 5_000).is_err());
        assert!(check(Metric::RebufferRatio, Dimension::Player, 300_000).is_ok());
        assert!(Dimension::parse("os").is_err());
    }
}
