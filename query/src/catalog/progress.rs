//! Watch progress, history, continue-watching and recommendations.

use super::vods::{VOD_COLUMNS, Vod, vod_from_row};
use super::{Catalog, now_ms};
use crate::QueryError;
use pulse_schemas::access::Principal;
use sqlx::Row;

/// A VOD is "finished" from this percentage on (left out of continue-watching).
pub const FINISHED_PCT: f64 = 95.0;

/// One user's progress in one VOD.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Progress {
    pub vod: String,
    pub position_s: f64,
    pub percentage: f64,
    pub updated_at: i64,
}

/// A history entry: the progress and the VOD.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HistoryEntry {
    #[serde(flatten)]
    pub progress: Progress,
    #[serde(rename = "vod_item")]
    pub vod_item: Vod,
}

/// Percentage of `duration_s` reached at `position_s`, in [0, 100] (0 for no duration).
pub fn percentage(position_s: f64, duration_s: f64) -> f64 {
    if duration_s <= 0.0 {
        return 0.0;
    }
    (position_s / duration_s * 100.0).clamp(0.0, 100.0)
}

impl Catalog {
    /// Saves `who`'s position in a VOD they can see (one row per user and VOD).
    pub async fn save_progress(
        &self,
        who: &Principal,
        vod: &str,
        position_s: f64,
    ) -> Result<Progress, QueryError> {
        if !position_s.is_finite() || position_s < 0.0 {
            return Err(QueryError::invalid(
                "position",
                format!("expected seconds ≥ 0, got {position_s}"),
            ));
        }
        let item = self.get_vod(Some(who), vod).await?;
        if item.duration_s > 0.0 && position_s > item.duration_s + 1.0 {
            return Err(QueryError::Unprocessable(format!(
                "position: {position_s} s is past the end of the VOD ({} s)",
                item.duration_s
            )));
        }
        let pct = percentage(position_s, item.duration_s);
        let now = now_ms();
        sqlx::query(
            "INSERT INTO watch_progress (user_id, vod, position_s, percentage, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, vod) DO UPDATE SET \
             position_s = excluded.position_s, percentage = excluded.percentage, updated_at = excluded.updated_at",
        )
        .bind(who.user.as_str().to_owned())
        .bind(vod.to_owned())
        .bind(position_s)
        .bind(pct)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(Progress {
            vod: vod.to_owned(),
            position_s,
            percentage: pct,
            updated_at: now,
        })
    }

    /// `who`'s progress in `vod`, `None` when never saved.
    pub async fn get_progress(
        &self,
        who: &Principal,
        vod: &str,
    ) -> Result<Option<Progress>, QueryError> {
        let row = sqlx::query(
            "SELECT vod, position_s, percentage, updated_at FROM watch_progress WHERE user_id = $1 AND vod = $2",
        )
        .bind(who.user.as_str().to_owned())
        .bind(vod.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Progress {
                vod: r.try_get("vod")?,
                position_s: r.try_get("position_s")?,
                percentage: r.try_get("percentage")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .transpose()
    }

    /// `who`'s history, newest first; `unfinished` keeps only started, under 95 %.
    pub async fn history(
        &self,
        who: &Principal,
        unfinished: bool,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<HistoryEntry>, i64), QueryError> {
        let mut filter = String::from(
            "p.user_id = $1 AND v.deleted_at IS NULL AND (v.is_public = 1 OR v.channel IN \
             (SELECT id FROM channels WHERE owner = $1))",
        );
        if unfinished {
            filter.push_str(&format!(
                " AND p.position_s > 0 AND p.percentage < {FINISHED_PCT}"
            ));
        }
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM watch_progress p JOIN vods v ON v.id = p.vod WHERE {filter}"
        ))
        .bind(who.user.as_str().to_owned())
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        let rows = sqlx::query(&format!(
            "SELECT {VOD_COLUMNS}, p.vod AS p_vod, p.position_s, p.percentage, p.updated_at AS p_updated \
             FROM watch_progress p JOIN vods v ON v.id = p.vod WHERE {filter} \
             ORDER BY p.updated_at DESC, p.vod LIMIT $2 OFFSET $3"
        ))
        .bind(who.user.as_str().to_owned())
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .iter()
            .map(|r| {
                Ok(HistoryEntry {
                    progress: Progress {
                        vod: r.try_get("p_vod")?,
                        position_s: r.try_get("position_s")?,
                        percentage: r.try_get("percentage")?,
                        updated_at: r.try_get("p_updated")?,
                    },
                    vod_item: vod_from_row(r)?,
                })
            })
            .collect::<Result<Vec<_>, QueryError>>()?;
        Ok((items, total))
    }

    /// Removes one VOD from `who`'s history; false when it was not there.
    pub async fn forget_progress(&self, who: &Principal, vod: &str) -> Result<bool, QueryError> {
        let n = sqlx::query("DELETE FROM watch_progress WHERE user_id = $1 AND vod = $2")
            .bind(who.user.as_str().to_owned())
            .bind(vod.to_owned())
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Clears `who`'s history; returns how many entries went.
    pub async fn clear_history(&self, who: &Principal) -> Result<u64, QueryError> {
        Ok(sqlx::query("DELETE FROM watch_progress WHERE user_id = $1")
            .bind(who.user.as_str().to_owned())
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// Public READY VODs of the channels `who` follows that they have not finished,
    /// newest first.
    pub async fn recommended(&self, who: &Principal, limit: i64) -> Result<Vec<Vod>, QueryError> {
        let rows = sqlx::query(&format!(
            "SELECT {VOD_COLUMNS} FROM vods v JOIN follows f ON f.channel = v.channel AND f.user_id = $1 \
             WHERE v.deleted_at IS NULL AND v.is_public = 1 AND v.status = 'READY' \
             AND NOT EXISTS (SELECT 1 FROM watch_progress p WHERE p.user_id = $1 AND p.vod = v.id \
             AND p.percentage >= {FINISHED_PCT}) \
             ORDER BY v.created_at DESC, v.id DESC LIMIT $2"
        ))
        .bind(who.user.as_str().to_owned())
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(vod_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn percentage_of_duration() {
        assert_eq!(percentage(30.0, 120.0), 25.0);
        assert_eq!(percentage(500.0, 120.0), 100.0);
        assert_eq!(percentage(10.0, 0.0), 0.0);
    }

    proptest! {
        #[test]
        fn percentage_is_bounded(pos in 0.0f64..1e6, dur in 0.0f64..1e6) {
            let p = percentage(pos, dur);
            prop_assert!((0.0..=100.0).contains(&p));
        }
    }
}
