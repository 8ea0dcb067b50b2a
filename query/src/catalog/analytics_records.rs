//! What the analytics routes read from the catalog: streams with their category and
//! lifecycle records, clips (stream, creation time, visibility) and VODs (duration,
//! visibility). Lists are bounded (`max_records`): the newest records are kept.

use super::Catalog;
use crate::QueryError;
use crate::lifecycle::LifecycleRecord;
use pulse_schemas::Id;
use pulse_schemas::access::StreamStatus;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A stream as the analytics see it.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamRecord {
    pub id: String,
    pub channel: String,
    pub title: String,
    pub category: String,
    /// Its LIVE/ENDED records, oldest first (empty: none recorded).
    pub lifecycle: Vec<LifecycleRecord>,
}

/// A clip as the analytics see it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipRecord {
    pub id: String,
    pub channel: String,
    pub stream: String,
    pub vod: Option<String>,
    pub title: String,
    pub created_at: i64,
    /// end_s − start_s.
    pub duration_s: f64,
    /// Published and not deleted: its public counts may be shown to anyone.
    pub public: bool,
}

/// A VOD as the analytics see it.
#[derive(Clone, Debug, PartialEq)]
pub struct VodRecord {
    pub id: String,
    pub channel: String,
    pub stream: String,
    pub title: String,
    pub duration_s: f64,
    /// Public, READY and not deleted.
    pub public: bool,
}

fn clip_from(row: &AnyRow) -> Result<ClipRecord, QueryError> {
    let status: String = row.try_get("status")?;
    let published: i64 = row.try_get("published")?;
    Ok(ClipRecord {
        id: row.try_get("id")?,
        channel: row.try_get("channel")?,
        stream: row.try_get("stream")?,
        vod: row.try_get("vod")?,
        title: row.try_get("title")?,
        created_at: row.try_get("created_at")?,
        duration_s: row.try_get::<f64, _>("end_s")? - row.try_get::<f64, _>("start_s")?,
        public: published == 1 && status != "DELETED",
    })
}

fn vod_from(row: &AnyRow) -> Result<VodRecord, QueryError> {
    let status: String = row.try_get("status")?;
    let is_public: i64 = row.try_get("is_public")?;
    let deleted: Option<i64> = row.try_get("deleted_at")?;
    Ok(VodRecord {
        id: row.try_get("id")?,
        channel: row.try_get("channel")?,
        stream: row.try_get("stream")?,
        title: row.try_get("title")?,
        duration_s: row.try_get("duration_s")?,
        public: is_public == 1 && status == "READY" && deleted.is_none(),
    })
}

const CLIP_COLS: &str =
    "id, channel, stream, vod, title, created_at, start_s, end_s, status, published";
const VOD_COLS: &str = "id, channel, stream, title, duration_s, status, is_public, deleted_at";

impl Catalog {
    async fn lifecycle_of(&self, stream: &str) -> Result<Vec<LifecycleRecord>, QueryError> {
        let rows = sqlx::query(
            // The newest `max_records` (the latest ENDED decides the status), oldest first.
            "SELECT status, ts FROM stream_lifecycle WHERE stream = $1 \
             ORDER BY ts DESC, status DESC LIMIT $2",
        )
        .bind(stream.to_owned())
        .bind(self.config().max_records as i64)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let status: String = r.try_get("status")?;
            let status = match status.as_str() {
                "LIVE" => StreamStatus::Live,
                "ENDED" => StreamStatus::Ended,
                _ => continue,
            };
            out.push(LifecycleRecord {
                status,
                ts: r.try_get("ts")?,
            });
        }
        out.reverse();
        Ok(out)
    }

    async fn stream_from(&self, row: &AnyRow) -> Result<StreamRecord, QueryError> {
        // One stream: its own lifecycle query.
        let id: String = row.try_get("id")?;
        let lifecycle = self.lifecycle_of(&id).await?;
        Ok(StreamRecord {
            channel: row.try_get("channel")?,
            title: row.try_get("title")?,
            category: row.try_get("category")?,
            lifecycle,
            id,
        })
    }

    /// One stream's record, `None` when the catalog does not know it.
    pub async fn stream_record(&self, id: &Id) -> Result<Option<StreamRecord>, QueryError> {
        let row = sqlx::query("SELECT id, channel, title, category FROM streams WHERE id = $1")
            .bind(id.as_str().to_owned())
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => Ok(Some(self.stream_from(&r).await?)),
            None => Ok(None),
        }
    }

    /// The channel's streams (the newest `max_records`), ordered by id, with their
    /// lifecycle records read in one query (at most `max_records` per stream on average).
    pub async fn stream_records(&self, channel: &Id) -> Result<Vec<StreamRecord>, QueryError> {
        let max = self.config().max_records as i64;
        let rows = sqlx::query(
            "SELECT id, channel, title, category FROM streams WHERE channel = $1 \
             ORDER BY created_at DESC, id LIMIT $2",
        )
        .bind(channel.as_str().to_owned())
        .bind(max)
        .fetch_all(self.pool())
        .await?;
        let mut out = std::collections::BTreeMap::new();
        for r in &rows {
            let id: String = r.try_get("id")?;
            out.insert(
                id.clone(),
                StreamRecord {
                    channel: r.try_get("channel")?,
                    title: r.try_get("title")?,
                    category: r.try_get("category")?,
                    lifecycle: Vec::new(),
                    id,
                },
            );
        }
        let changes = sqlx::query(
            "SELECT l.stream, l.status, l.ts FROM stream_lifecycle l \
             JOIN streams s ON s.id = l.stream WHERE s.channel = $1 \
             ORDER BY l.ts DESC, l.stream, l.status LIMIT $2",
        )
        .bind(channel.as_str().to_owned())
        .bind(max.saturating_mul(max))
        .fetch_all(self.pool())
        .await?;
        for r in changes.iter().rev() {
            let stream: String = r.try_get("stream")?;
            let status: String = r.try_get("status")?;
            let status = match status.as_str() {
                "LIVE" => StreamStatus::Live,
                "ENDED" => StreamStatus::Ended,
                _ => continue,
            };
            if let Some(rec) = out.get_mut(&stream) {
                rec.lifecycle.push(LifecycleRecord {
                    status,
                    ts: r.try_get("ts")?,
                });
            }
        }
        Ok(out.into_values().collect())
    }

    /// One clip's record, `None` when unknown.
    pub async fn clip_record(&self, id: &Id) -> Result<Option<ClipRecord>, QueryError> {
        let row = sqlx::query(&format!("SELECT {CLIP_COLS} FROM clips WHERE id = $1"))
            .bind(id.as_str().to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(clip_from).transpose()
    }

    /// The channel's clips (the newest `max_records`), deleted ones left out.
    pub async fn clip_records(&self, channel: &Id) -> Result<Vec<ClipRecord>, QueryError> {
        let rows = sqlx::query(&format!(
            "SELECT {CLIP_COLS} FROM clips WHERE channel = $1 AND status <> 'DELETED' \
             ORDER BY created_at DESC, id LIMIT $2"
        ))
        .bind(channel.as_str().to_owned())
        .bind(self.config().max_records as i64)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(clip_from).collect()
    }

    /// One VOD's record, `None` when unknown.
    pub async fn vod_record(&self, id: &Id) -> Result<Option<VodRecord>, QueryError> {
        let row = sqlx::query(&format!("SELECT {VOD_COLS} FROM vods WHERE id = $1"))
            .bind(id.as_str().to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(vod_from).transpose()
    }

    /// The channel's VODs (the newest `max_records`), deleted ones left out.
    pub async fn vod_records(&self, channel: &Id) -> Result<Vec<VodRecord>, QueryError> {
        let rows = sqlx::query(&format!(
            "SELECT {VOD_COLS} FROM vods WHERE channel = $1 AND deleted_at IS NULL \
             ORDER BY created_at DESC, id LIMIT $2"
        ))
        .bind(channel.as_str().to_owned())
        .bind(self.config().max_records as i64)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(vod_from).collect()
    }
}
