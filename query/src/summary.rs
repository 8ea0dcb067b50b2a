//! The stream summary (`GET /api/analytics/streams/:id`) and the metric formulas
//! shared with the series (METRICS.md §1–§2). The formulas are pure functions of
//! what the store returns; [`load_stream_summary`] only gathers those inputs.
//!
//! With lifecycle records in the catalog the status is `LIVE`/`ENDED`, `duration_s` is
//! Σ (ENDED − LIVE) (an open stream: to now) and the live ticks are those overlapping
//! its LIVE..ENDED intervals ([`crate::lifecycle`]). Without them the status is
//! `UNKNOWN` and its live range is the ticks from the one holding its first event to
//! the one holding its last; `duration_s` is that range's length (first tick start to
//! the end of the last tick). Average and peak concurrent are taken over the live
//! ticks, ticks without a row counting as 0 viewers.

use crate::catalog::analytics_records::StreamRecord;
use crate::error::QueryError;
use crate::lifecycle;
use crate::store::{
    AnalyticsStore, LiveRange, Scope, ScopeKind, StartupHistogram, TickTotals, ViewerCounts,
};
use hdrhistogram::Histogram;
use pulse_schemas::Id;
use serde::Serialize;
use std::fmt;

/// A JSON number that stays an integer when the metric is a count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Num::Int(i) => s.serialize_i64(i),
            Num::Float(f) => s.serialize_f64(f),
        }
    }
}

impl fmt::Display for Num {
    /// Shortest text that reads back to the same value (CSV cells).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Float(x) => write!(f, "{x}"),
        }
    }
}

/// Watch minutes = watch time / 60 s.
pub fn watch_minutes(watch_ms: i64) -> f64 {
    watch_ms as f64 / 60_000.0
}

/// `part / whole`, 0 when `whole` is not positive (every rate of METRICS.md is 0 then).
fn ratio(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 { 0.0 } else { part / whole }
}

/// Rebuffer time / watch time; 0 when there is no watch time.
pub fn rebuffer_ratio(rebuffer_ms: i64, watch_ms: i64) -> f64 {
    ratio(rebuffer_ms as f64, watch_ms as f64)
}

/// Rebuffer count per minute of watch time; 0 when there is no watch time.
pub fn rebuffer_frequency(rebuffer_count: i64, watch_ms: i64) -> f64 {
    ratio(rebuffer_count as f64, watch_minutes(watch_ms))
}

/// Sessions ended by `error` / views; 0 when there are no views.
pub fn failure_rate(failures: i64, views: i64) -> f64 {
    ratio(failures as f64, views as f64)
}

/// Distinct viewers who followed / unique viewers; 0 when there are no viewers.
pub fn conversion_rate(followers: i64, unique_viewers: i64) -> f64 {
    ratio(followers as f64, unique_viewers as f64)
}

/// Startup p50/p95/p99 in integer ms (0 when nothing started).
pub fn startup_percentiles(h: Option<&Histogram<u64>>) -> [u64; 3] {
    match h {
        Some(h) if !h.is_empty() => [
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.95),
            h.value_at_quantile(0.99),
        ],
        _ => [0; 3],
    }
}

/// The tick starts (inclusive intervals, merged) in which some target of a scope is live.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveTicks {
    intervals: Vec<(i64, i64)>,
}

impl LiveTicks {
    pub fn new(ranges: &[LiveRange]) -> Self {
        let mut iv: Vec<(i64, i64)> = ranges.iter().map(|r| (r.first_t, r.last_t)).collect();
        iv.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(iv.len());
        for (a, b) in iv {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        LiveTicks { intervals: merged }
    }

    /// The live intervals cut to `[from, to)`: two values with the same cut give the
    /// same live ticks (so the same viewers points) inside it.
    pub fn clipped(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        self.intervals
            .iter()
            .map(|&(first, last)| (first.max(from), last.min(to - 1)))
            .filter(|&(first, last)| first <= last)
            .collect()
    }

    pub fn contains(&self, t: i64) -> bool {
        let i = self.intervals.partition_point(|&(_, last)| last < t);
        self.intervals.get(i).is_some_and(|&(first, _)| first <= t)
    }

    /// Number of tick starts `k·tick_ms` in `[from, to)` that are live.
    pub fn count_in(&self, from: i64, to: i64, tick_ms: i64) -> i64 {
        self.intervals
            .iter()
            .map(|&(first, last)| {
                let lo = from.max(first);
                let hi = (to - 1).min(last);
                if lo > hi {
                    return 0;
                }
                let lo = lo.div_euclid(tick_ms) * tick_ms
                    + if lo.rem_euclid(tick_ms) > 0 {
                        tick_ms
                    } else {
                        0
                    };
                let hi = hi.div_euclid(tick_ms) * tick_ms;
                if lo > hi { 0 } else { (hi - lo) / tick_ms + 1 }
            })
            .sum()
    }
}

/// Average and peak concurrent viewers over the live ticks of `[from, to)`.
/// `ticks` may hold ticks outside the window; they are ignored.
pub fn concurrency(
    ticks: &[TickTotals],
    live: &LiveTicks,
    from: i64,
    to: i64,
    tick_ms: i64,
) -> (f64, i64) {
    let mut sum = 0i64;
    let mut peak = 0i64;
    for x in ticks
        .iter()
        .filter(|x| x.t >= from && x.t < to && live.contains(x.t))
    {
        sum += x.viewers;
        peak = peak.max(x.viewers);
    }
    let n = live.count_in(from, to, tick_ms);
    let avg = if n > 0 { sum as f64 / n as f64 } else { 0.0 };
    (avg, peak)
}

/// The `metrics` object of the stream summary, in the order of PROTOCOL.md §4.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamMetrics {
    pub duration_s: Num,
    pub peak_concurrent: i64,
    pub avg_concurrent: f64,
    pub views: i64,
    pub unique_viewers: i64,
    pub watch_minutes: f64,
    pub chat_messages: i64,
    pub new_followers: i64,
    pub conversion_rate: f64,
    pub rebuffer_ratio: f64,
    pub rebuffer_count: i64,
    pub rebuffer_frequency: f64,
    pub startup_p50_ms: u64,
    pub startup_p95_ms: u64,
    pub startup_p99_ms: u64,
    pub playback_failure_rate: f64,
}

/// The whole answer of `GET /api/analytics/streams/:id`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamSummary {
    pub stream: String,
    pub channel: String,
    pub status: &'static str,
    pub metrics: StreamMetrics,
}

/// Seconds as an integer when whole (the default 5 s tick), else fractional.
fn seconds(ms: i64) -> Num {
    if ms % 1000 == 0 {
        Num::Int(ms / 1000)
    } else {
        Num::Float(ms as f64 / 1000.0)
    }
}

/// When a target was live: the ticks (as ranges of tick starts) and the duration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Liveness {
    pub ranges: Vec<LiveRange>,
    pub duration_ms: i64,
}

impl Liveness {
    /// Without lifecycle records: the ticks from its first event's to its last event's.
    pub fn from_events(r: Option<&LiveRange>, tick_ms: i64) -> Self {
        Liveness {
            ranges: r.cloned().into_iter().collect(),
            duration_ms: r.map_or(0, |r| r.last_t + tick_ms - r.first_t),
        }
    }
}

/// Pure: a stream's metrics from all its ticks, when it was live, its distinct viewer
/// counts and its merged startup histogram.
pub fn stream_metrics(
    ticks: &[TickTotals],
    live: &Liveness,
    counts: ViewerCounts,
    startup: Option<&Histogram<u64>>,
    tick_ms: i64,
) -> StreamMetrics {
    let mut total = TickTotals::default();
    for x in ticks {
        total.views += x.views;
        total.watch_ms += x.watch_ms;
        total.rebuffer_ms += x.rebuffer_ms;
        total.rebuffer_count += x.rebuffer_count;
        total.failures += x.failures;
        total.chat_messages += x.chat_messages;
    }
    let from = live.ranges.iter().map(|r| r.first_t).min();
    let to = live.ranges.iter().map(|r| r.last_t + tick_ms).max();
    let (avg, peak) = match (from, to) {
        (Some(from), Some(to)) => {
            concurrency(ticks, &LiveTicks::new(&live.ranges), from, to, tick_ms)
        }
        _ => (0.0, 0),
    };
    let duration_ms = live.duration_ms;
    let [p50, p95, p99] = startup_percentiles(startup);
    StreamMetrics {
        duration_s: seconds(duration_ms),
        peak_concurrent: peak,
        avg_concurrent: avg,
        views: total.views,
        unique_viewers: counts.unique_viewers,
        watch_minutes: watch_minutes(total.watch_ms),
        chat_messages: total.chat_messages,
        new_followers: counts.followers,
        conversion_rate: conversion_rate(counts.followers, counts.unique_viewers),
        rebuffer_ratio: rebuffer_ratio(total.rebuffer_ms, total.watch_ms),
        rebuffer_count: total.rebuffer_count,
        rebuffer_frequency: rebuffer_frequency(total.rebuffer_count, total.watch_ms),
        startup_p50_ms: p50,
        startup_p95_ms: p95,
        startup_p99_ms: p99,
        playback_failure_rate: failure_rate(total.failures, total.views),
    }
}

/// Reads a stream's inputs from one store view and computes its summary; `NotFound`
/// when the store holds no row of it.
pub async fn load_stream_summary<S: AnalyticsStore>(
    store: &S,
    stream: &Id,
    record: Option<&StreamRecord>,
    now: i64,
    tick_ms: i64,
) -> Result<StreamSummary, QueryError> {
    let scope = Scope {
        kind: ScopeKind::Stream,
        id: stream.clone(),
    };
    let ticks = store.tick_totals(&scope, None).await?;
    let live = store.live_ranges(&scope).await?;
    let counts = store.viewer_counts(&scope, None, None).await?;
    if ticks.is_empty() && counts.is_empty() && record.is_none() {
        return Err(QueryError::NotFound(format!(
            "no data for stream {stream:?}"
        )));
    }
    let hists: Vec<StartupHistogram> = store.startup_histograms(&scope, None, None).await?;
    let live = live.into_iter().next();
    let counts = counts.into_iter().next().unwrap_or_default();
    let (status, channel, liveness) = match record {
        Some(rec) if !rec.lifecycle.is_empty() => {
            let iv = lifecycle::intervals(&rec.lifecycle);
            (
                lifecycle::status(&rec.lifecycle),
                rec.channel.clone(),
                Liveness {
                    ranges: lifecycle::tick_ranges(
                        &iv,
                        stream.as_str(),
                        &rec.channel,
                        now,
                        tick_ms,
                    ),
                    duration_ms: lifecycle::duration_ms(&iv, now),
                },
            )
        }
        _ => (
            "UNKNOWN",
            record
                .map(|r| r.channel.clone())
                .or_else(|| live.as_ref().map(|r| r.channel.clone()))
                .unwrap_or_default(),
            Liveness::from_events(live.as_ref(), tick_ms),
        ),
    };
    let metrics = stream_metrics(
        &ticks,
        &liveness,
        counts,
        hists.first().map(|h| &h.hist),
        tick_ms,
    );
    Ok(StreamSummary {
        stream: stream.as_str().to_owned(),
        channel,
        status,
        metrics,
    })
}

/// [`load_stream_summary`] with the stream's catalog record (status, lifecycle) when
/// the state has a catalog.
pub async fn load_stream_summary_with_records(
    state: &crate::QueryState,
    store: &crate::store::StoreSnapshot,
    stream: &Id,
) -> Result<StreamSummary, QueryError> {
    let record = match state.catalog() {
        Some(c) => c.stream_record(stream).await?,
        None => None,
    };
    let now = state.now_ms();
    state
        .with_timeout(load_stream_summary(
            store,
            stream,
            record.as_ref(),
            now,
            state.tick_ms(),
        ))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::empty_startup_histogram;

    fn tick(t: i64, viewers: i64, events: i64) -> TickTotals {
        TickTotals {
            t,
            viewers,
            events,
            ..TickTotals::default()
        }
    }

    fn range(first: i64, last: i64) -> LiveRange {
        LiveRange {
            target: "s".into(),
            channel: "c".into(),
            first_t: first,
            last_t: last,
        }
    }

    #[test]
    fn ratios_are_zero_without_a_denominator() {
        assert_eq!(rebuffer_ratio(10, 0), 0.0);
        assert_eq!(rebuffer_frequency(3, 0), 0.0);
        assert_eq!(failure_rate(1, 0), 0.0);
        assert_eq!(conversion_rate(1, 0), 0.0);
        assert_eq!(rebuffer_ratio(30, 120), 0.25);
        assert_eq!(rebuffer_frequency(3, 120_000), 1.5);
        assert_eq!(failure_rate(1, 4), 0.25);
        assert_eq!(conversion_rate(1, 8), 0.125);
        assert_eq!(watch_minutes(90_000), 1.5);
    }

    #[test]
    fn live_ticks_merge_and_count() {
        let live = LiveTicks::new(&[range(20, 40), range(0, 10), range(35, 50), range(100, 100)]);
        assert_eq!(live.intervals, vec![(0, 10), (20, 50), (100, 100)]);
        assert!(live.contains(0) && live.contains(10) && live.contains(45) && live.contains(100));
        assert!(!live.contains(15) && !live.contains(55) && !live.contains(-5));
        // ticks of 5: 0,5,10 | 20..=50 (7) | 100
        assert_eq!(live.count_in(0, 200, 5), 3 + 7 + 1);
        assert_eq!(live.count_in(5, 25, 5), 2 + 1);
        assert_eq!(live.count_in(60, 100, 5), 0);
        assert_eq!(live.count_in(3, 4, 5), 0);
    }

    #[test]
    fn concurrency_averages_over_live_ticks_with_gaps_as_zero() {
        // live 0..=15 (4 ticks of 5); tick 5 has no row; tick 20 is after the range.
        let ticks = [
            tick(0, 4, 1),
            tick(10, 8, 0),
            tick(15, 6, 2),
            tick(20, 9, 0),
        ];
        let live = LiveTicks::new(&[range(0, 15)]);
        assert_eq!(concurrency(&ticks, &live, 0, 25, 5), (18.0 / 4.0, 8));
        assert_eq!(concurrency(&ticks, &live, 10, 20, 5), (7.0, 8));
        assert_eq!(concurrency(&ticks, &live, 100, 200, 5), (0.0, 0));
    }

    #[test]
    fn stream_metrics_from_ticks() {
        let mut a = tick(5000, 2, 3);
        a.views = 2;
        a.watch_ms = 60_000;
        a.rebuffer_ms = 6_000;
        a.rebuffer_count = 2;
        a.chat_messages = 5;
        let mut b = tick(15_000, 4, 1);
        b.views = 2;
        b.watch_ms = 60_000;
        b.failures = 1;
        let mut h = empty_startup_histogram();
        for v in 1..=100u64 {
            h.record(v * 10).expect("in range");
        }
        let counts = ViewerCounts {
            bucket: 0,
            unique_viewers: 4,
            followers: 1,
        };
        let live = Liveness::from_events(Some(&range(5000, 15_000)), 5000);
        let m = stream_metrics(&[a, b], &live, counts, Some(&h), 5000);
        assert_eq!(m.duration_s, Num::Int(15));
        assert_eq!(m.peak_concurrent, 4);
        assert_eq!(m.avg_concurrent, 2.0); // (2 + 0 + 4) / 3
        assert_eq!(m.views, 4);
        assert_eq!(m.unique_viewers, 4);
        assert_eq!(m.watch_minutes, 2.0);
        assert_eq!(m.chat_messages, 5);
        assert_eq!(m.new_followers, 1);
        assert_eq!(m.conversion_rate, 0.25);
        assert_eq!(m.rebuffer_ratio, 0.05);
        assert_eq!(m.rebuffer_count, 2);
        assert_eq!(m.rebuffer_frequency, 1.0);
        assert_eq!(
            (m.startup_p50_ms, m.startup_p95_ms, m.startup_p99_ms),
            (500, 950, 990)
        );
        assert_eq!(m.playback_failure_rate, 0.25);
        let empty = stream_metrics(
            &[],
            &Liveness::default(),
            ViewerCounts::default(),
            None,
            5000,
        );
        assert_eq!(empty.duration_s, Num::Int(0));
        assert_eq!(empty.startup_p99_ms, 0);
        assert_eq!(seconds(2500), Num::Float(2.5));
    }

    #[test]
    fn numbers_serialize_as_ints_or_floats() {
        assert_eq!(serde_json::to_string(&Num::Int(3)).expect("json"), "3");
        assert_eq!(
            serde_json::to_string(&Num::Float(0.5)).expect("json"),
            "0.5"
        );
        assert_eq!(Num::Float(3.0).to_string(), "3");
        assert_eq!(Num::Float(0.1).to_string(), "0.1");
    }
}
