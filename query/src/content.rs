//! VOD and clip analytics (METRICS.md §3): `GET /api/vods/:id/analytics`,
//! `/api/clips/:id/analytics`, `/api/clips/:id/stats`, `/api/channels/:id/top-vods`,
//! `/api/channels/:id/top-clips`. Pure formulas here, reads in [`load_target`] and
//! [`load_top`].
//!
//! Definitions where METRICS.md is silent:
//! - every number covers all time unless the route takes `from`/`to` (the top lists);
//! - **avg_watch_time_s** = watch time / views, in seconds (0 without views);
//! - **engagement_rate** = share of *finished* counted views (a view's session rows
//!   summed across nodes) whose watch time reaches min(60 s, 25 % of the duration):
//!   a view still open has no final watch time yet. The duration is the catalog's
//!   (a VOD's `duration_s`, a clip's `end_s − start_s`); unknown: the threshold is 60 s;
//! - likes, shares, embed views (views with `embed: true`) and clickthroughs are the
//!   sums of the target's beacon counters;
//! - **streams_by_clips** (top-clips) = catalog clips created in the range per stream,
//!   most first, then stream id.

use crate::QueryState;
use crate::error::QueryError;
use crate::store::content_reads::Engagement;
use crate::store::{AnalyticsStore, Scope, ScopeKind, StoreSnapshot, TickTotals, TimeRange};
use crate::summary::watch_minutes;
use pulse_schemas::Id;
use serde::Serialize;
use std::collections::BTreeMap;

/// Watch time that makes a view engaged: min(60 s, 25 % of the duration) in ms.
pub fn engagement_threshold_ms(duration_s: Option<f64>) -> i64 {
    match duration_s {
        Some(d) if d.is_finite() && d > 0.0 => ((d * 250.0).ceil() as i64).min(60_000),
        _ => 60_000,
    }
}

/// engaged / finished views; 0 without finished views.
pub fn engagement_rate(e: Engagement) -> f64 {
    if e.finished_views <= 0 {
        0.0
    } else {
        e.engaged_views as f64 / e.finished_views as f64
    }
}

/// Watch time / views in seconds; 0 without views.
pub fn avg_watch_time_s(watch_ms: i64, views: i64) -> f64 {
    if views <= 0 {
        0.0
    } else {
        watch_ms as f64 / 1000.0 / views as f64
    }
}

/// The analytics of one VOD or clip.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetAnalytics {
    pub views: i64,
    pub unique_viewers: i64,
    pub watch_minutes: f64,
    pub avg_watch_time_s: f64,
    pub engagement_rate: f64,
    pub likes: i64,
    pub shares: i64,
    pub embed_views: i64,
    pub clickthroughs: i64,
    pub trending_score: f64,
}

/// Sums ticks (pure).
pub fn sum_ticks(ticks: &[TickTotals]) -> TickTotals {
    ticks.iter().fold(TickTotals::default(), |mut a, x| {
        a.views += x.views;
        a.watch_ms += x.watch_ms;
        a.likes += x.likes;
        a.shares += x.shares;
        a.embed_views += x.embed_views;
        a.clickthroughs += x.clickthroughs;
        a.events += x.events;
        a
    })
}

/// Reads and computes one target's analytics; `NotFound` when neither the store nor
/// the catalog (`known`) knows it.
pub async fn load_target(
    state: &QueryState,
    snap: &StoreSnapshot,
    kind: ScopeKind,
    id: &Id,
    duration_s: Option<f64>,
    known: bool,
) -> Result<TargetAnalytics, QueryError> {
    let scope = Scope {
        kind,
        id: id.clone(),
    };
    let ticks = snap.tick_totals(&scope, None).await?;
    let counts = snap.viewer_counts(&scope, None, None).await?;
    if ticks.is_empty() && counts.is_empty() && !known {
        return Err(QueryError::NotFound(format!(
            "no data for {} {id}",
            kind.param()
        )));
    }
    let total = sum_ticks(&ticks);
    let engagement = snap
        .engagement(kind, id, engagement_threshold_ms(duration_s))
        .await?;
    let board = state.trending_cache().board(state, snap).await?;
    Ok(TargetAnalytics {
        views: total.views,
        unique_viewers: counts.first().map_or(0, |c| c.unique_viewers),
        watch_minutes: watch_minutes(total.watch_ms),
        avg_watch_time_s: avg_watch_time_s(total.watch_ms, total.views),
        engagement_rate: engagement_rate(engagement),
        likes: total.likes,
        shares: total.shares,
        embed_views: total.embed_views,
        clickthroughs: total.clickthroughs,
        trending_score: board.score(kind, id.as_str()),
    })
}

/// One entry of a top list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopEntry {
    pub id: String,
    pub title: String,
    pub views: i64,
    pub watch_minutes: f64,
    pub avg_watch_time_s: f64,
    pub likes: i64,
    pub shares: i64,
    pub embed_views: i64,
    pub clickthroughs: i64,
    pub trending_score: f64,
}

/// How a top list is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopSort {
    /// Views in the range, then watch time, then id.
    Views,
    /// Trending score now, then id.
    Trending,
}

/// Orders and cuts a top list (pure).
pub fn rank(mut entries: Vec<TopEntry>, sort: TopSort, limit: usize) -> Vec<TopEntry> {
    entries.sort_by(|a, b| match sort {
        TopSort::Views => b
            .views
            .cmp(&a.views)
            .then(b.watch_minutes.total_cmp(&a.watch_minutes))
            .then(a.id.cmp(&b.id)),
        TopSort::Trending => b
            .trending_score
            .total_cmp(&a.trending_score)
            .then(a.id.cmp(&b.id)),
    });
    entries.truncate(limit);
    entries
}

/// Clips created per stream, most first, then stream id (pure).
pub fn clips_per_stream<'a>(
    clips: impl Iterator<Item = &'a str>,
    limit: usize,
) -> Vec<(String, i64)> {
    let mut per: BTreeMap<&str, i64> = BTreeMap::new();
    for s in clips {
        *per.entry(s).or_default() += 1;
    }
    let mut v: Vec<(String, i64)> = per.into_iter().map(|(s, n)| (s.to_owned(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

/// The entries of a channel's VODs or clips: stored targets and catalog records
/// (`titles`: id → title), counters over `range`.
pub async fn load_top(
    state: &QueryState,
    snap: &StoreSnapshot,
    channel: &Id,
    kind: ScopeKind,
    range: Option<TimeRange>,
    titles: &BTreeMap<String, String>,
) -> Result<Vec<TopEntry>, QueryError> {
    let board = state.trending_cache().board(state, snap).await?;
    let mut totals: BTreeMap<String, TickTotals> = titles
        .keys()
        .map(|k| (k.clone(), TickTotals::default()))
        .collect();
    for t in snap.target_totals(channel, kind, range).await? {
        totals.insert(t.target, t.totals);
    }
    Ok(totals
        .into_iter()
        .map(|(id, t)| TopEntry {
            title: titles.get(&id).cloned().unwrap_or_default(),
            views: t.views,
            watch_minutes: watch_minutes(t.watch_ms),
            avg_watch_time_s: avg_watch_time_s(t.watch_ms, t.views),
            likes: t.likes,
            shares: t.shares,
            embed_views: t.embed_views,
            clickthroughs: t.clickthroughs,
            trending_score: board.score(kind, &id),
            id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn engagement_threshold_is_a_minute_or_a_quarter() {
        assert_eq!(engagement_threshold_ms(None), 60_000);
        assert_eq!(engagement_threshold_ms(Some(3600.0)), 60_000);
        assert_eq!(engagement_threshold_ms(Some(30.0)), 7_500);
        assert_eq!(engagement_threshold_ms(Some(0.0)), 60_000);
        assert_eq!(engagement_threshold_ms(Some(f64::NAN)), 60_000);
        assert_eq!(
            engagement_rate(Engagement {
                finished_views: 4,
                engaged_views: 1
            }),
            0.25
        );
        assert_eq!(engagement_rate(Engagement::default()), 0.0);
        assert_eq!(avg_watch_time_s(90_000, 3), 30.0);
        assert_eq!(avg_watch_time_s(90_000, 0), 0.0);
    }

    #[test]
    fn clips_per_stream_counts_and_orders() {
        let v = clips_per_stream(["s2", "s1", "s2", "s3", "s1", "s2"].into_iter(), 2);
        assert_eq!(v, vec![("s2".into(), 3), ("s1".into(), 2)]);
    }

    fn entry(id: u8, views: i64, score: u8) -> TopEntry {
        TopEntry {
            id: format!("x{id}"),
            title: String::new(),
            views,
            watch_minutes: 0.0,
            avg_watch_time_s: 0.0,
            likes: 0,
            shares: 0,
            embed_views: 0,
            clickthroughs: 0,
            trending_score: f64::from(score),
        }
    }

    proptest! {
        #[test]
        fn ranking_is_a_sorted_prefix(v in prop::collection::vec((0u8..50, 0i64..5, 0u8..5), 0..30), limit in 0usize..10) {
            let entries: Vec<TopEntry> = v.iter().map(|&(i, n, s)| entry(i, n, s)).collect();
            let top = rank(entries.clone(), TopSort::Views, limit);
            prop_assert_eq!(top.len(), limit.min(entries.len()));
            for w in top.windows(2) {
                prop_assert!(w[0].views > w[1].views || (w[0].views == w[1].views && w[0].id <= w[1].id));
            }
            // Nothing left out outranks the last one kept.
            if let Some(last) = top.last() {
                let kept = top.len();
                let all = rank(entries, TopSort::Views, usize::MAX);
                for e in &all[kept..] {
                    prop_assert!(e.views <= last.views);
                }
            }
        }
    }
}
