//! The platform mirror (users, channels, follows), streams with their keys, and the
//! lifecycle records that archive a finished stream as a VOD.

use super::{Catalog, new_id, new_secret, now_ms, secret_hash};
use crate::QueryError;
use pulse_schemas::Id;
use pulse_schemas::access::{LifecycleChange, Principal, StreamStatus};
use sqlx::Row;

/// The fields of `PUT /api/streams/:id`.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamInput {
    pub channel: Id,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub category: String,
    /// The live HLS playlist (clips from a live stream are cut from it).
    #[serde(default)]
    pub playback_url: String,
    /// A test recording: its VOD is removed by the retention job.
    #[serde(default)]
    pub is_test: bool,
}

impl Catalog {
    /// Creates or renames a user (platform mirror).
    pub async fn put_user(&self, id: &Id, name: &str) -> Result<(), QueryError> {
        sqlx::query(
            "INSERT INTO users (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at",
        )
        .bind(id.as_str().to_owned())
        .bind(name.to_owned())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn ensure_user(&self, id: &Id) -> Result<(), QueryError> {
        sqlx::query(
            "INSERT INTO users (id, name, created_at, updated_at) VALUES ($1, '', $2, $2) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.as_str().to_owned())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Creates or updates a channel and its owner (platform mirror).
    pub async fn put_channel(&self, id: &Id, name: &str, owner: &Id) -> Result<(), QueryError> {
        self.ensure_user(owner).await?;
        sqlx::query(
            "INSERT INTO channels (id, name, owner, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, owner = excluded.owner, \
             updated_at = excluded.updated_at",
        )
        .bind(id.as_str().to_owned())
        .bind(name.to_owned())
        .bind(owner.as_str().to_owned())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records that `user` follows `channel` (idempotent).
    pub async fn put_follow(&self, user: &Id, channel: &Id) -> Result<(), QueryError> {
        if self.channel_owner(channel).await?.is_none() {
            return Err(QueryError::NotFound(format!("no channel {channel}")));
        }
        self.ensure_user(user).await?;
        sqlx::query(
            "INSERT INTO follows (user_id, channel, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, channel) DO NOTHING",
        )
        .bind(user.as_str().to_owned())
        .bind(channel.as_str().to_owned())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Creates or updates a stream. Returns its new stream key when it was created (the
    /// only time the key is shown; `rotate_stream_key` makes a new one).
    pub async fn put_stream(
        &self,
        who: &Principal,
        id: &Id,
        input: &StreamInput,
    ) -> Result<Option<String>, QueryError> {
        if self.channel_owner(&input.channel).await?.is_none() {
            return Err(QueryError::Unprocessable(format!(
                "channel: no channel {}",
                input.channel
            )));
        }
        if !self.may_manage_channel(who, input.channel.as_str()).await? {
            return Err(QueryError::Forbidden(format!(
                "only the creator of channel {} or an admin may change its streams",
                input.channel
            )));
        }
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query("SELECT channel FROM streams WHERE id = $1")
            .bind(id.as_str().to_owned())
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            let channel: String = row.try_get("channel")?;
            if channel != input.channel.as_str() {
                return Err(QueryError::Unprocessable(format!(
                    "channel: stream {id} belongs to channel {channel}, got {}",
                    input.channel
                )));
            }
            sqlx::query(
                "UPDATE streams SET title = $2, category = $3, playback_url = $4, is_test = $5, \
                 updated_at = $6 WHERE id = $1",
            )
            .bind(id.as_str().to_owned())
            .bind(input.title.clone())
            .bind(input.category.clone())
            .bind(input.playback_url.clone())
            .bind(i64::from(input.is_test))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(None);
        }
        sqlx::query(
            "INSERT INTO streams (id, channel, title, category, playback_url, is_test, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(id.as_str().to_owned())
        .bind(input.channel.as_str().to_owned())
        .bind(input.title.clone())
        .bind(input.category.clone())
        .bind(input.playback_url.clone())
        .bind(i64::from(input.is_test))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let key = new_secret();
        sqlx::query("INSERT INTO stream_keys (stream, key_hash, created_at) VALUES ($1, $2, $3)")
            .bind(id.as_str().to_owned())
            .bind(secret_hash(&key))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(key))
    }

    /// The channel of a stream, `None` when unknown.
    pub async fn stream_channel(&self, id: &Id) -> Result<Option<String>, QueryError> {
        let row = sqlx::query("SELECT channel FROM streams WHERE id = $1")
            .bind(id.as_str().to_owned())
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("channel")?),
            None => None,
        })
    }

    /// Replaces a stream's key; the old one stops working at once.
    pub async fn rotate_stream_key(&self, who: &Principal, id: &Id) -> Result<String, QueryError> {
        let channel = self
            .stream_channel(id)
            .await?
            .ok_or_else(|| QueryError::NotFound(format!("no stream {id}")))?;
        if !self.may_manage_channel(who, &channel).await? {
            return Err(QueryError::Forbidden(format!(
                "only the creator of channel {channel} or an admin may rotate its stream keys"
            )));
        }
        let key = new_secret();
        sqlx::query(
            "INSERT INTO stream_keys (stream, key_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (stream) DO UPDATE SET key_hash = excluded.key_hash, created_at = excluded.created_at",
        )
        .bind(id.as_str().to_owned())
        .bind(secret_hash(&key))
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(key)
    }

    /// Applies one lifecycle change once. A LIVE → ENDED lasting at least
    /// `min_vod_duration_s` creates the stream's VOD in PROCESSING; its id is returned.
    pub async fn apply_lifecycle(
        &self,
        change: &LifecycleChange,
    ) -> Result<Option<Id>, QueryError> {
        let owner = self.channel_owner(&change.channel).await?;
        if owner.is_none() {
            return Err(QueryError::Unprocessable(format!(
                "channel: no channel {}",
                change.channel
            )));
        }
        let mut tx = self.begin_write().await?;
        let existing =
            sqlx::query("SELECT channel, title, is_test, live_at FROM streams WHERE id = $1")
                .bind(change.stream.as_str().to_owned())
                .fetch_optional(&mut *tx)
                .await?;
        let (title, is_test, live_at) = match existing {
            Some(row) => {
                let channel: String = row.try_get("channel")?;
                if channel != change.channel.as_str() {
                    return Err(QueryError::Unprocessable(format!(
                        "channel: stream {} belongs to channel {channel}, got {}",
                        change.stream, change.channel
                    )));
                }
                (
                    row.try_get::<String, _>("title")?,
                    row.try_get::<i64, _>("is_test")?,
                    row.try_get::<Option<i64>, _>("live_at")?,
                )
            }
            None => {
                let now = now_ms();
                sqlx::query(
                    "INSERT INTO streams (id, channel, created_at, updated_at) VALUES ($1, $2, $3, $3)",
                )
                .bind(change.stream.as_str().to_owned())
                .bind(change.channel.as_str().to_owned())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                (String::new(), 0, None)
            }
        };
        let status = match change.status {
            StreamStatus::Live => "LIVE",
            StreamStatus::Ended => "ENDED",
        };
        let source = serde_json::to_value(change.source)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let inserted = sqlx::query(
            "INSERT INTO stream_lifecycle (stream, status, ts, source) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (stream, status, ts) DO NOTHING",
        )
        .bind(change.stream.as_str().to_owned())
        .bind(status)
        .bind(change.ts)
        .bind(source)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.commit().await?;
            return Ok(None);
        }
        let mut vod = None;
        match change.status {
            StreamStatus::Live => {
                sqlx::query(
                    "UPDATE streams SET status = 'LIVE', live_at = $2, ended_at = NULL, updated_at = $3 WHERE id = $1",
                )
                .bind(change.stream.as_str().to_owned())
                .bind(change.ts)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            }
            StreamStatus::Ended => {
                sqlx::query(
                    "UPDATE streams SET status = 'ENDED', ended_at = $2, updated_at = $3 WHERE id = $1",
                )
                .bind(change.stream.as_str().to_owned())
                .bind(change.ts)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                let min_ms = (self.config().min_vod_duration_s * 1000.0) as i64;
                if let Some(live_at) = live_at
                    && change.ts - live_at >= min_ms
                {
                    let id = new_id("v");
                    let created = sqlx::query(
                        "INSERT INTO vods (id, stream, channel, title, search_text, is_test, duration_s, \
                         live_at, ended_at, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9) ON CONFLICT (stream) DO NOTHING",
                    )
                    .bind(id.as_str().to_owned())
                    .bind(change.stream.as_str().to_owned())
                    .bind(change.channel.as_str().to_owned())
                    .bind(title.clone())
                    .bind(title.to_lowercase())
                    .bind(is_test)
                    .bind((change.ts - live_at) as f64 / 1000.0)
                    .bind(live_at)
                    .bind(change.ts)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if created == 1 {
                        vod = Some(id);
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(vod)
    }
}
