//! The catalog side of the counter sync ([`crate::content_counts`]): which channels
//! exist, and the counters of one VOD or clip. Counters are not edits: `updated_at`
//! stays as it is, and a row is written only when a number changed.

use super::Catalog;
use crate::QueryError;
use sqlx::Row;

impl Catalog {
    /// Channel ids in id order, at most `limit`.
    pub async fn channel_ids(&self, limit: usize) -> Result<Vec<String>, QueryError> {
        let rows = sqlx::query("SELECT id FROM channels ORDER BY id LIMIT $1")
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(QueryError::from))
            .collect()
    }

    /// A VOD's views and likes as analytics counts them; whether the row changed.
    pub async fn set_vod_counts(
        &self,
        id: &str,
        views: i64,
        likes: i64,
    ) -> Result<bool, QueryError> {
        let done = sqlx::query(
            "UPDATE vods SET view_count = $2, like_count = $3 \
             WHERE id = $1 AND (view_count <> $2 OR like_count <> $3)",
        )
        .bind(id.to_owned())
        .bind(views)
        .bind(likes)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A clip's views and shares as analytics counts them, and its likes as the larger
    /// of the catalog's (`POST /api/clips/:id/like`) and analytics' (which also counts
    /// likes sent by players); whether the row changed.
    pub async fn set_clip_counts(
        &self,
        id: &str,
        views: i64,
        likes: i64,
        shares: i64,
    ) -> Result<bool, QueryError> {
        let done = sqlx::query(
            "UPDATE clips SET view_count = $2, share_count = $4, \
             like_count = CASE WHEN like_count < $3 THEN $3 ELSE like_count END \
             WHERE id = $1 AND (view_count <> $2 OR share_count <> $4 OR like_count < $3)",
        )
        .bind(id.to_owned())
        .bind(views)
        .bind(likes)
        .bind(shares)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
