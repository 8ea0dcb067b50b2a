//! Trending scores (METRICS.md §5) as pure logic, plus the cache that refreshes them.
//!
//! score(t) = Σ over a target's events of weight × 2^(−(t − event time) / 6 h), with
//! weights view 1, embed view 1, like 3, share 5 (clips); VODs count views and likes
//! the same way. Choices where METRICS.md is silent:
//! - an embedded view is a view *and* an embed view, so it weighs 1 + 1 = 2;
//! - the store keeps counts per 5 s tick, not single events: an event's time is taken
//!   as its tick's start, which makes a score at most 2^(5 s / 6 h) − 1 ≈ 0.016 % high;
//! - events after `t` do not count; events older than `trending_window_ms` (default
//!   7 days, weight ≤ 2^−28) are left out;
//! - ranking: score descending, ties by target id ascending;
//! - a board is computed for all VODs and clips at once and served until it is
//!   `trending_refresh_ms` old (default 60 s), so a served score is at most a minute
//!   old; answers carry the board's time `at`.

use crate::QueryState;
use crate::error::QueryError;
use crate::store::content_reads::ContentTick;
use crate::store::{ScopeKind, StoreSnapshot, TimeRange};
use std::collections::HashMap;
use std::sync::Arc;

/// Half-life of an event's weight: 6 hours.
pub const HALF_LIFE_MS: f64 = 6.0 * 3_600_000.0;

/// The weight of one tick's activity of a target of `kind`.
pub fn weight(kind: ScopeKind, views: i64, embed_views: i64, likes: i64, shares: i64) -> f64 {
    match kind {
        ScopeKind::Clip => (views + embed_views + 3 * likes + 5 * shares) as f64,
        _ => (views + 3 * likes) as f64,
    }
}

/// 2^(−(now − t) / 6 h): how much an event at `t` still weighs at `now`.
pub fn decay(now: i64, t: i64) -> f64 {
    (-((now - t) as f64) / HALF_LIFE_MS).exp2()
}

/// One scored VOD or clip.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub kind: ScopeKind,
    pub target: String,
    pub channel: String,
    pub score: f64,
}

/// Every scored target at one time, ranked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Board {
    pub at: i64,
    /// Score descending, then target ascending.
    pub entries: Vec<Entry>,
    index: HashMap<(u8, String), usize>,
    /// The activity read was cut at the row bound (scores may be low).
    pub truncated: bool,
}

fn key(kind: ScopeKind) -> u8 {
    match kind {
        ScopeKind::Clip => 0,
        ScopeKind::Vod => 1,
        ScopeKind::Stream => 2,
        ScopeKind::Channel => 3,
    }
}

impl Board {
    /// Scores at `now` from per-tick activity (ticks after `now` are left out).
    pub fn build(rows: &[ContentTick], now: i64) -> Board {
        let mut acc: HashMap<(u8, String), Entry> = HashMap::new();
        for r in rows.iter().filter(|r| r.t <= now) {
            let w = weight(r.kind, r.views, r.embed_views, r.likes, r.shares);
            if w == 0.0 {
                continue;
            }
            let e = acc
                .entry((key(r.kind), r.target.clone()))
                .or_insert_with(|| Entry {
                    kind: r.kind,
                    target: r.target.clone(),
                    channel: r.channel.clone(),
                    score: 0.0,
                });
            e.score += w * decay(now, r.t);
        }
        let mut entries: Vec<Entry> = acc.into_values().collect();
        entries.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.target.cmp(&b.target))
        });
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, e)| ((key(e.kind), e.target.clone()), i))
            .collect();
        Board {
            at: now,
            entries,
            index,
            truncated: false,
        }
    }

    /// The score of one target (0 without activity).
    pub fn score(&self, kind: ScopeKind, target: &str) -> f64 {
        self.index
            .get(&(key(kind), target.to_owned()))
            .and_then(|&i| self.entries.get(i))
            .map_or(0.0, |e| e.score)
    }

    /// The top `limit` targets of `kind`, of one channel or of all.
    pub fn top(&self, kind: ScopeKind, channel: Option<&str>, limit: usize) -> Vec<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.kind == kind && channel.is_none_or(|c| e.channel == c))
            .take(limit)
            .collect()
    }
}

/// Whether a board computed at `at` must be recomputed at `now`.
pub fn needs_refresh(at: Option<i64>, now: i64, refresh_ms: u64) -> bool {
    match at {
        None => true,
        Some(at) => now < at || now - at >= refresh_ms as i64,
    }
}

/// The last board, recomputed when stale (one refresh at a time; others wait for it).
#[derive(Debug, Default)]
pub struct TrendingCache {
    board: tokio::sync::Mutex<Option<Arc<Board>>>,
}

impl TrendingCache {
    /// The current board, refreshed from `snap` when older than `trending_refresh_ms`.
    pub async fn board(
        &self,
        state: &QueryState,
        snap: &StoreSnapshot,
    ) -> Result<Arc<Board>, QueryError> {
        let cfg = state.config();
        let now = state.now_ms();
        let mut slot = self.board.lock().await;
        if let Some(b) = slot.as_ref()
            && !needs_refresh(Some(b.at), now, cfg.trending_refresh_ms)
        {
            return Ok(b.clone());
        }
        let range = TimeRange {
            from: now.saturating_sub(cfg.trending_window_ms).max(0),
            to: now.saturating_add(1),
        };
        let max = cfg.trending_max_rows;
        let mut rows = state
            .with_timeout(snap.content_activity(range, max))
            .await?;
        let truncated = rows.len() > max;
        if truncated {
            rows.truncate(max);
            crate::metrics::TRENDING_TRUNCATED.inc();
        }
        let mut board = Board::build(&rows, now);
        board.truncated = truncated;
        crate::metrics::TRENDING_REFRESHES.inc();
        let board = Arc::new(board);
        *slot = Some(board.clone());
        Ok(board)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: i64 = 6 * 3_600_000;

    fn row(kind: ScopeKind, target: &str, t: i64, v: i64, e: i64, l: i64, s: i64) -> ContentTick {
        ContentTick {
            kind,
            target: target.into(),
            channel: "c".into(),
            t,
            views: v,
            embed_views: e,
            likes: l,
            shares: s,
        }
    }

    #[test]
    fn weights_halve_every_six_hours() {
        let now = 10 * H;
        let rows = [
            row(ScopeKind::Clip, "a", now, 1, 0, 0, 0),         // 1
            row(ScopeKind::Clip, "a", now - H, 0, 0, 1, 0),     // 3/2
            row(ScopeKind::Clip, "a", now - 2 * H, 0, 0, 0, 1), // 5/4
            row(ScopeKind::Clip, "a", now - H, 1, 1, 0, 0),     // 2/2
            row(ScopeKind::Clip, "a", now + 1, 100, 0, 0, 0),   // future: no
            row(ScopeKind::Vod, "v", now, 2, 2, 1, 9),          // 2 + 3
        ];
        let b = Board::build(&rows, now);
        assert!((b.score(ScopeKind::Clip, "a") - (1.0 + 1.5 + 1.25 + 1.0)).abs() < 1e-12);
        assert!((b.score(ScopeKind::Vod, "v") - 5.0).abs() < 1e-12);
        assert_eq!(b.score(ScopeKind::Clip, "v"), 0.0);
        assert_eq!(b.top(ScopeKind::Clip, None, 10).len(), 1);
        assert_eq!(b.top(ScopeKind::Vod, Some("other"), 10).len(), 0);
    }

    #[test]
    fn refresh_at_least_every_interval() {
        assert!(needs_refresh(None, 0, 60_000));
        assert!(!needs_refresh(Some(1_000), 60_999, 60_000));
        assert!(needs_refresh(Some(1_000), 61_000, 60_000));
        assert!(needs_refresh(Some(1_000), 999, 60_000));
    }

    fn rows() -> impl Strategy<Value = Vec<ContentTick>> {
        prop::collection::vec(
            (0u8..4, 0i64..(3 * H), 0i64..5, 0i64..3, 0i64..3, 0i64..3),
            0..40,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(id, t, views, e, l, s)| {
                    let name = format!("k{id}");
                    row(ScopeKind::Clip, &name, t, views, e.min(views), l, s)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn scores_are_the_decayed_sum_ranked_with_ties_by_id(rs in rows(), dt in 0i64..H) {
            let now = 3 * H;
            let b = Board::build(&rs, now);
            let mut rev = rs.clone();
            rev.reverse();
            prop_assert_eq!(&b.entries.iter().map(|e| e.target.clone()).collect::<Vec<_>>(),
                &Board::build(&rev, now).entries.iter().map(|e| e.target.clone()).collect::<Vec<_>>());
            for e in &b.entries {
                let want: f64 = rs.iter().filter(|r| r.target == e.target)
                    .map(|r| (r.views + r.embed_views + 3 * r.likes + 5 * r.shares) as f64
                        * 0.5f64.powf((now - r.t) as f64 / (6.0 * 3_600_000.0)))
                    .sum();
                prop_assert!((e.score - want).abs() <= 1e-9 * want.max(1.0));
            }
            for w in b.entries.windows(2) {
                prop_assert!(w[0].score > w[1].score
                    || (w[0].score == w[1].score && w[0].target < w[1].target));
            }
            // Without new events a score only decays, by exactly 2^(-dt/6h).
            let later = Board::build(&rs, now + dt);
            for e in &b.entries {
                let s = later.score(ScopeKind::Clip, &e.target);
                prop_assert!((s - e.score * decay(now + dt, now)).abs() <= 1e-9 * e.score.max(1.0));
            }
        }
    }
}
