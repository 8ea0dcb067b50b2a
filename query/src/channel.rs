//! Channel analytics (`GET /api/analytics/channels/:id?from=&to=`, PROTOCOL.md §4 and
//! METRICS.md §3). The formulas are pure functions ([`channel_metrics`]); [`load`]
//! gathers their inputs from one store snapshot and the catalog.
//!
//! Definitions where METRICS.md is silent (range = `[from, to)`):
//! - **a stream's live intervals**: its LIVE..ENDED intervals from the catalog's
//!   lifecycle records ([`crate::lifecycle`]); without records, from the start of the
//!   tick holding its first event to the end of the tick holding its last.
//!   A stream *in the range* is one whose intervals overlap it.
//! - **hours_streamed** = Σ over the channel's streams of the part of their live
//!   intervals inside the range, in hours (an open stream runs to now).
//! - **total_views** = views of every stream, VOD and clip of the channel, all time
//!   (not limited to the range, as METRICS.md says "all time").
//! - **avg_peak_viewers** = mean over the streams in the range of each one's peak
//!   concurrent over its live ticks inside the range; 0 without streams.
//! - **growth** = (current − previous) / previous × 100, 0 when previous is 0. Windows
//!   end at `to`: week over week compares `[to − 7 d, to)` with `[to − 14 d, to − 7 d)`,
//!   month over month `[to − 30 d, to)` with `[to − 60 d, to − 30 d)`. New followers of
//!   a window = distinct viewers who followed on any target of the channel in it;
//!   average viewers = the channel's average concurrent (per-tick sum over its streams,
//!   averaged over the ticks in which any of them is live) in the window.
//! - **most_watched_category** = the catalog category whose streams have the most watch
//!   minutes in the range (ties: name ascending); `""` when no stream in the range has
//!   a category.
//! - **best_streams** = streams in the range by watch minutes in the range, then peak
//!   concurrent, then id; the first `limit` (default 10).
//! - **top_clips** = the channel's clips (stored rows and catalog records) by views in
//!   the range, then trending score (now, [`crate::trending`]), then id; the first
//!   `limit`.

use crate::QueryState;
use crate::error::QueryError;
use crate::lifecycle::{self, Interval};
use crate::store::{
    AnalyticsStore, LiveRange, Scope, ScopeKind, StoreSnapshot, TickTotals, TimeRange,
};
use crate::summary::{LiveTicks, concurrency, watch_minutes};
use pulse_schemas::Id;
use serde::Serialize;
use std::collections::BTreeMap;

pub const DAY_MS: i64 = 86_400_000;

/// One stream of the channel with what the formulas need.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamInput {
    pub stream: String,
    pub category: String,
    pub intervals: Vec<Interval>,
    /// Its ticks inside the range.
    pub ticks: Vec<TickTotals>,
}

/// `best_streams` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BestStream {
    pub stream: String,
    pub watch_minutes: f64,
    pub peak_concurrent: i64,
}

/// `top_clips` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopClip {
    pub clip: String,
    pub views: i64,
    pub trending_score: f64,
}

/// The `metrics` object, in PROTOCOL.md's order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelMetrics {
    pub hours_streamed: f64,
    pub total_views: i64,
    pub avg_peak_viewers: f64,
    pub follower_growth_wow_pct: f64,
    pub follower_growth_mom_pct: f64,
    pub avg_viewers_growth_wow_pct: f64,
    pub avg_viewers_growth_mom_pct: f64,
    pub most_watched_category: String,
    pub best_streams: Vec<BestStream>,
    pub top_clips: Vec<TopClip>,
}

/// The whole answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelAnswer {
    pub channel: String,
    pub from: i64,
    pub to: i64,
    pub metrics: ChannelMetrics,
}

/// (current − previous) / previous × 100; 0 when previous is not positive.
pub fn growth_pct(current: f64, previous: f64) -> f64 {
    if previous <= 0.0 {
        0.0
    } else {
        (current - previous) / previous * 100.0
    }
}

/// The live ticks of a stream's intervals.
pub fn live_ranges(s: &StreamInput, now: i64, tick_ms: i64) -> Vec<LiveRange> {
    lifecycle::tick_ranges(&s.intervals, &s.stream, "", now, tick_ms)
}

/// Everything but growth and top clips, from the streams' inputs (pure).
pub fn stream_part(
    streams: &[StreamInput],
    range: TimeRange,
    now: i64,
    tick_ms: i64,
    limit: usize,
) -> (f64, f64, String, Vec<BestStream>) {
    let mut hours_ms = 0i64;
    let mut best = Vec::new();
    let mut by_category: BTreeMap<&str, i64> = BTreeMap::new();
    for s in streams {
        let overlap = lifecycle::overlap_ms(&s.intervals, range.from, range.to, now);
        if overlap <= 0 {
            continue;
        }
        hours_ms += overlap;
        let live = LiveTicks::new(&live_ranges(s, now, tick_ms));
        let (_, peak) = concurrency(&s.ticks, &live, range.from, range.to, tick_ms);
        let watch_ms: i64 = s
            .ticks
            .iter()
            .filter(|x| x.t >= range.from && x.t < range.to)
            .map(|x| x.watch_ms)
            .sum();
        if !s.category.is_empty() {
            *by_category.entry(&s.category).or_default() += watch_ms;
        }
        best.push((watch_ms, peak, s.stream.clone()));
    }
    let avg_peak = if best.is_empty() {
        0.0
    } else {
        best.iter().map(|b| b.1 as f64).sum::<f64>() / best.len() as f64
    };
    best.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let category = by_category
        .iter()
        .fold(None::<(&str, i64)>, |acc, (&c, &w)| match acc {
            Some((_, bw)) if bw >= w => acc,
            _ => Some((c, w)),
        })
        .map(|(c, _)| c.to_owned())
        .unwrap_or_default();
    let best = best
        .into_iter()
        .take(limit)
        .map(|(w, peak, stream)| BestStream {
            stream,
            watch_minutes: watch_minutes(w),
            peak_concurrent: peak,
        })
        .collect();
    (hours_ms as f64 / 3_600_000.0, avg_peak, category, best)
}

/// The channel's average concurrent in `[from, to)` from its per-tick totals and the
/// live ticks of all its streams.
pub fn channel_avg_viewers(
    ticks: &[TickTotals],
    live: &LiveTicks,
    from: i64,
    to: i64,
    tick_ms: i64,
) -> f64 {
    concurrency(ticks, live, from, to, tick_ms).0
}

/// Top clips from (clip, views in range) and their trending scores (pure).
pub fn top_clips(mut clips: Vec<TopClip>, limit: usize) -> Vec<TopClip> {
    clips.sort_by(|a, b| {
        b.views
            .cmp(&a.views)
            .then(b.trending_score.total_cmp(&a.trending_score))
            .then(a.clip.cmp(&b.clip))
    });
    clips.truncate(limit);
    clips
}

/// The live ranges of a scope for the viewers average: a stream's (a channel's streams')
/// lifecycle intervals where the catalog has LIVE/ENDED records, else the store's
/// first-to-last-event ranges; VODs and clips: the store's.
pub async fn scope_live_ranges(
    state: &QueryState,
    snap: &StoreSnapshot,
    scope: &Scope,
) -> Result<Vec<LiveRange>, QueryError> {
    let from_events = snap.live_ranges(scope).await?;
    with_lifecycle(state, scope, from_events).await
}

/// The live ranges of `scope` from the catalog's lifecycle records where a target has
/// some, else `from_events` (the store's ranges of the scope's targets).
pub async fn with_lifecycle(
    state: &QueryState,
    scope: &Scope,
    from_events: Vec<LiveRange>,
) -> Result<Vec<LiveRange>, QueryError> {
    let Some(cat) = state.catalog() else {
        return Ok(from_events);
    };
    let records = match scope.kind {
        ScopeKind::Stream => cat.stream_record(&scope.id).await?.into_iter().collect(),
        ScopeKind::Channel => cat.stream_records(&scope.id).await?,
        ScopeKind::Vod | ScopeKind::Clip => return Ok(from_events),
    };
    let (now, tick_ms) = (state.now_ms(), state.tick_ms());
    let mut out: Vec<LiveRange> = Vec::new();
    let mut recorded = std::collections::BTreeSet::new();
    for r in records.iter().filter(|r| !r.lifecycle.is_empty()) {
        let iv = lifecycle::intervals(&r.lifecycle);
        out.extend(lifecycle::tick_ranges(&iv, &r.id, &r.channel, now, tick_ms));
        recorded.insert(r.id.as_str());
    }
    out.extend(
        from_events
            .iter()
            .filter(|r| !recorded.contains(r.target.as_str()))
            .cloned(),
    );
    Ok(out)
}

/// Gathers the inputs and computes the answer.
pub async fn load(
    state: &QueryState,
    snap: &StoreSnapshot,
    channel: &Id,
    range: TimeRange,
    limit: usize,
) -> Result<ChannelAnswer, QueryError> {
    let now = state.now_ms();
    let tick_ms = state.tick_ms();
    let scope = Scope {
        kind: ScopeKind::Channel,
        id: channel.clone(),
    };
    let max_records = state
        .catalog()
        .map_or(usize::MAX, |c| c.config().max_records);
    let records = match state.catalog() {
        Some(c) => c.stream_records(channel).await?,
        None => Vec::new(),
    };
    let clip_records = match state.catalog() {
        Some(c) => c.clip_records(channel).await?,
        None => Vec::new(),
    };
    if records.len() >= max_records || clip_records.len() >= max_records {
        crate::metrics::RECORDS_TRUNCATED.inc();
    }
    let from_events = snap.live_ranges(&scope).await?;
    // Streams: the catalog's, plus those only the store knows.
    let mut streams: BTreeMap<String, (String, Vec<Interval>)> = BTreeMap::new();
    for r in &records {
        streams.insert(
            r.id.clone(),
            (r.category.clone(), lifecycle::intervals(&r.lifecycle)),
        );
    }
    for r in &from_events {
        let entry = streams
            .entry(r.target.clone())
            .or_insert_with(|| (String::new(), Vec::new()));
        if entry.1.is_empty() {
            entry.1 = vec![Interval {
                start: r.first_t,
                end: Some(r.last_t + tick_ms),
            }];
        }
    }
    let mut inputs = Vec::with_capacity(streams.len());
    for (stream, (category, intervals)) in streams {
        let mut ticks = Vec::new();
        if lifecycle::overlap_ms(&intervals, range.from, range.to, now) > 0 {
            let id = Id::parse(&stream).map_err(|e| QueryError::Store(e.to_string()))?;
            let s = Scope {
                kind: ScopeKind::Stream,
                id,
            };
            ticks = snap.tick_totals(&s, Some(range)).await?;
        }
        inputs.push(StreamInput {
            stream,
            category,
            intervals,
            ticks,
        });
    }
    let (hours, avg_peak, category, best) = stream_part(&inputs, range, now, tick_ms, limit);

    let mut total_views = 0;
    for kind in [ScopeKind::Stream, ScopeKind::Vod, ScopeKind::Clip] {
        total_views += snap
            .target_totals(channel, kind, None)
            .await?
            .iter()
            .map(|t| t.totals.views)
            .sum::<i64>();
    }

    // Growth: one tick read over the two months before `to`, four distinct counts.
    let all_live: Vec<LiveRange> = inputs
        .iter()
        .flat_map(|s| live_ranges(s, now, tick_ms))
        .collect();
    let live = LiveTicks::new(&all_live);
    let span = TimeRange {
        from: (range.to - 60 * DAY_MS).max(0),
        to: range.to,
    };
    let ticks = snap.tick_totals(&scope, Some(span)).await?;
    let mut followers = Vec::with_capacity(4);
    let mut viewers = Vec::with_capacity(4);
    for (a, b) in [(7, 0), (14, 7), (30, 0), (60, 30)] {
        let w = TimeRange {
            from: (range.to - a * DAY_MS).max(0),
            to: (range.to - b * DAY_MS).max(0),
        };
        let counts = snap.viewer_counts(&scope, Some(w), None).await?;
        followers.push(counts.first().map_or(0, |c| c.followers) as f64);
        viewers.push(channel_avg_viewers(&ticks, &live, w.from, w.to, tick_ms));
    }

    let board = state.trending_cache().board(state, snap).await?;
    let mut clips: BTreeMap<String, i64> = clip_records.iter().map(|c| (c.id.clone(), 0)).collect();
    for t in snap
        .target_totals(channel, ScopeKind::Clip, Some(range))
        .await?
    {
        *clips.entry(t.target).or_default() += t.totals.views;
    }
    let clips = clips
        .into_iter()
        .map(|(clip, views)| TopClip {
            trending_score: board.score(ScopeKind::Clip, &clip),
            clip,
            views,
        })
        .collect();

    Ok(ChannelAnswer {
        channel: channel.as_str().to_owned(),
        from: range.from,
        to: range.to,
        metrics: ChannelMetrics {
            hours_streamed: hours,
            total_views,
            avg_peak_viewers: avg_peak,
            follower_growth_wow_pct: growth_pct(followers[0], followers[1]),
            follower_growth_mom_pct: growth_pct(followers[2], followers[3]),
            avg_viewers_growth_wow_pct: growth_pct(viewers[0], viewers[1]),
            avg_viewers_growth_mom_pct: growth_pct(viewers[2], viewers[3]),
            most_watched_category: category,
            best_streams: best,
            top_clips: top_clips(clips, limit),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(t: i64, viewers: i64, watch_ms: i64) -> TickTotals {
        TickTotals {
            t,
            viewers,
            watch_ms,
            ..TickTotals::default()
        }
    }

    #[test]
    fn growth_is_relative_to_the_previous_window() {
        assert_eq!(growth_pct(15.0, 10.0), 50.0);
        assert_eq!(growth_pct(5.0, 10.0), -50.0);
        assert_eq!(growth_pct(5.0, 0.0), 0.0);
    }

    #[test]
    fn streams_give_hours_peaks_category_and_ranking() {
        let iv = |a, b| vec![Interval { start: a, end: b }];
        let streams = vec![
            StreamInput {
                stream: "s1".into(),
                category: "Chess".into(),
                intervals: iv(0, Some(20_000)),
                ticks: vec![tick(0, 3, 60_000), tick(5_000, 7, 60_000)],
            },
            StreamInput {
                stream: "s2".into(),
                category: "Art".into(),
                intervals: iv(10_000, None),
                ticks: vec![tick(10_000, 9, 30_000)],
            },
            StreamInput {
                stream: "s3".into(),
                category: "Art".into(),
                intervals: iv(100_000, Some(200_000)),
                ticks: vec![],
            },
        ];
        let range = TimeRange {
            from: 0,
            to: 50_000,
        };
        let (hours, avg_peak, cat, best) = stream_part(&streams, range, 30_000, 5_000, 10);
        assert_eq!(hours, (20_000 + 20_000) as f64 / 3_600_000.0);
        assert_eq!(avg_peak, 8.0);
        assert_eq!(cat, "Chess");
        assert_eq!(
            best.iter().map(|b| b.stream.as_str()).collect::<Vec<_>>(),
            vec!["s1", "s2"]
        );
        assert_eq!(best[0].watch_minutes, 2.0);
        let (_, _, _, one) = stream_part(&streams, range, 30_000, 5_000, 1);
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn top_clips_rank_by_views_then_score_then_id() {
        let c = |clip: &str, views, s| TopClip {
            clip: clip.into(),
            views,
            trending_score: s,
        };
        let top = top_clips(
            vec![
                c("b", 5, 1.0),
                c("a", 5, 1.0),
                c("c", 5, 2.0),
                c("d", 9, 0.0),
            ],
            3,
        );
        let ids: Vec<&str> = top.iter().map(|t| t.clip.as_str()).collect();
        assert_eq!(ids, vec!["d", "c", "a"]);
    }
}
