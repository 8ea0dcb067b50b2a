//! Clips: creation from a live stream or a VOD range (with validation), editing,
//! publishing, likes, per-channel lists, and the media results of their jobs.

use super::jobs::JobKind;
use super::{Catalog, new_id, now_ms};
use crate::QueryError;
use pulse_schemas::Id;
use pulse_schemas::access::Principal;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A clip as the API shows it (PROTOCOL.md §4).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Clip {
    pub id: String,
    pub vod: Option<String>,
    pub stream: String,
    pub channel: String,
    pub creator: String,
    pub title: String,
    pub description: String,
    pub start_s: f64,
    pub end_s: f64,
    pub duration_s: f64,
    pub clip_url: String,
    pub thumbnail: String,
    pub view_count: i64,
    pub like_count: i64,
    pub share_count: i64,
    pub status: String,
    /// Why generation failed (empty otherwise).
    pub failure: String,
    pub published: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// The HLS the clip is cut from (internal: not serialized).
    #[serde(skip)]
    pub source_url: String,
}

const CLIP_COLUMNS: &str = "id, vod, stream, channel, creator, title, description, start_s, end_s, \
    source_url, clip_url, thumbnail, view_count, like_count, share_count, status, failure, published, \
    created_at, updated_at";

fn clip_from_row(row: &AnyRow) -> Result<Clip, QueryError> {
    let start_s: f64 = row.try_get("start_s")?;
    let end_s: f64 = row.try_get("end_s")?;
    Ok(Clip {
        id: row.try_get("id")?,
        vod: row.try_get("vod")?,
        stream: row.try_get("stream")?,
        channel: row.try_get("channel")?,
        creator: row.try_get("creator")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        start_s,
        end_s,
        duration_s: end_s - start_s,
        clip_url: row.try_get("clip_url")?,
        thumbnail: row.try_get("thumbnail")?,
        view_count: row.try_get("view_count")?,
        like_count: row.try_get("like_count")?,
        share_count: row.try_get("share_count")?,
        status: row.try_get("status")?,
        failure: row.try_get("failure")?,
        published: row.try_get::<i64, _>("published")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        source_url: row.try_get("source_url")?,
    })
}

/// `POST /api/clips`.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClip {
    pub stream: Option<Id>,
    pub vod: Option<String>,
    pub start: Option<f64>,
    pub end: Option<f64>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
}

/// `PUT /api/clips/:id`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipUpdate {
    pub title: Option<String>,
    pub description: Option<String>,
}

/// Checks a clip range against the bounds and the source length (pure).
pub fn check_range(
    start: f64,
    end: f64,
    source_len_s: f64,
    min_s: f64,
    max_s: f64,
) -> Result<(), String> {
    if !start.is_finite() || !end.is_finite() || start < 0.0 {
        return Err(format!(
            "start and end must be seconds ≥ 0, got {start} and {end}"
        ));
    }
    if start >= end {
        return Err(format!("start ({start}) must be before end ({end})"));
    }
    let len = end - start;
    if len < min_s || len > max_s {
        return Err(format!(
            "a clip lasts between {min_s} s and {max_s} s, got {len} s"
        ));
    }
    if end > source_len_s + 1e-6 {
        return Err(format!(
            "end ({end} s) is past the end of the source ({source_len_s} s)"
        ));
    }
    Ok(())
}

impl Catalog {
    /// Creates a clip in PROCESSING and queues its generation job.
    pub async fn create_clip(&self, who: &Principal, new: &NewClip) -> Result<Clip, QueryError> {
        let cfg = self.config();
        let (vod, stream, channel, source, start, end) = match (&new.vod, &new.stream) {
            (Some(vod_id), None) => {
                let vod = self.get_vod(Some(who), vod_id).await?;
                if vod.status != "READY" || vod.hls_url.is_empty() {
                    return Err(QueryError::Unprocessable(format!(
                        "VOD {vod_id} is {} and has no media to clip yet",
                        vod.status
                    )));
                }
                let start = new
                    .start
                    .ok_or_else(|| QueryError::invalid("start", "required with vod"))?;
                let end = new
                    .end
                    .ok_or_else(|| QueryError::invalid("end", "required with vod"))?;
                check_range(start, end, vod.duration_s, cfg.min_clip_s, cfg.max_clip_s)
                    .map_err(QueryError::Unprocessable)?;
                (
                    Some(vod.id),
                    vod.stream,
                    vod.channel,
                    vod.hls_url,
                    start,
                    end,
                )
            }
            (None, Some(stream)) => {
                let row = sqlx::query(
                    "SELECT channel, status, live_at, playback_url FROM streams WHERE id = $1",
                )
                .bind(stream.as_str().to_owned())
                .fetch_optional(self.pool())
                .await?
                .ok_or_else(|| QueryError::NotFound(format!("no stream {stream}")))?;
                let status: String = row.try_get("status")?;
                let live_at: Option<i64> = row.try_get("live_at")?;
                let playback: String = row.try_get("playback_url")?;
                let (Some(live_at), "LIVE") = (live_at, status.as_str()) else {
                    return Err(QueryError::Unprocessable(format!(
                        "stream {stream} is not live (clip its VOD instead)"
                    )));
                };
                if playback.is_empty() {
                    return Err(QueryError::Unprocessable(format!(
                        "stream {stream} has no playback_url to clip from"
                    )));
                }
                let live_len = (now_ms() - live_at).max(0) as f64 / 1000.0;
                let end = new.end.unwrap_or(live_len);
                let start = new.start.unwrap_or((end - cfg.live_clip_s).max(0.0));
                check_range(start, end, live_len, cfg.min_clip_s, cfg.max_clip_s)
                    .map_err(QueryError::Unprocessable)?;
                (
                    None,
                    stream.as_str().to_owned(),
                    row.try_get("channel")?,
                    playback,
                    start,
                    end,
                )
            }
            _ => {
                return Err(QueryError::invalid(
                    "stream|vod",
                    "exactly one of stream and vod is required",
                ));
            }
        };
        check_text(&new.title, &new.description)?;
        self.check_queue_room().await?;
        let id = new_id("k");
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO clips (id, vod, stream, channel, creator, title, description, start_s, end_s, \
             source_url, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        )
        .bind(id.as_str().to_owned())
        .bind(vod.clone())
        .bind(stream)
        .bind(channel)
        .bind(who.user.as_str().to_owned())
        .bind(new.title.clone())
        .bind(new.description.clone())
        .bind(start)
        .bind(end)
        .bind(source)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(vod) = &vod {
            sqlx::query("UPDATE vods SET clip_count = clip_count + 1 WHERE id = $1")
                .bind(vod.clone())
                .execute(&mut *tx)
                .await?;
        }
        super::jobs::enqueue_in(&mut tx, JobKind::Clip, id.as_str(), 0.0).await?;
        tx.commit().await?;
        self.clip_row(id.as_str()).await
    }

    /// A clip by id, whatever its state (deleted ones included).
    pub async fn clip_row(&self, id: &str) -> Result<Clip, QueryError> {
        let row = sqlx::query(&format!("SELECT {CLIP_COLUMNS} FROM clips WHERE id = $1"))
            .bind(id.to_owned())
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| QueryError::NotFound(format!("no clip {id}")))?;
        clip_from_row(&row)
    }

    /// Whether `who` manages `clip` (its creator, its channel's creator, an admin).
    pub async fn may_manage_clip(&self, who: &Principal, clip: &Clip) -> Result<bool, QueryError> {
        Ok(
            clip.creator == who.user.as_str()
                || self.may_manage_channel(who, &clip.channel).await?,
        )
    }

    /// A clip as `who` may see it: deleted clips are unknown, unpublished ones are
    /// only seen by those who manage them.
    pub async fn get_clip(&self, who: Option<&Principal>, id: &str) -> Result<Clip, QueryError> {
        let clip = self.clip_row(id).await?;
        if clip.status == "DELETED" {
            return Err(QueryError::NotFound(format!("no clip {id}")));
        }
        if !clip.published {
            let ok = match who {
                Some(p) => self.may_manage_clip(p, &clip).await?,
                None => false,
            };
            if !ok {
                return Err(QueryError::NotFound(format!("no clip {id}")));
            }
        }
        Ok(clip)
    }

    async fn managed_clip(
        &self,
        who: &Principal,
        id: &str,
        action: &str,
    ) -> Result<Clip, QueryError> {
        let clip = self.get_clip(Some(who), id).await?;
        if !self.may_manage_clip(who, &clip).await? {
            return Err(QueryError::Forbidden(format!(
                "only the clip's creator or the channel's creator may {action} it"
            )));
        }
        Ok(clip)
    }

    pub async fn update_clip(
        &self,
        who: &Principal,
        id: &str,
        u: &ClipUpdate,
    ) -> Result<Clip, QueryError> {
        let clip = self.managed_clip(who, id, "edit").await?;
        let title = u.title.clone().unwrap_or(clip.title);
        let description = u.description.clone().unwrap_or(clip.description);
        check_text(&title, &description)?;
        sqlx::query("UPDATE clips SET title = $2, description = $3, updated_at = $4 WHERE id = $1")
            .bind(id.to_owned())
            .bind(title)
            .bind(description)
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        self.clip_row(id).await
    }

    /// Marks a clip DELETED; returns its media object paths for removal.
    pub async fn delete_clip(&self, who: &Principal, id: &str) -> Result<Clip, QueryError> {
        let clip = self.managed_clip(who, id, "delete").await?;
        sqlx::query(
            "UPDATE clips SET status = 'DELETED', published = 0, updated_at = $2 WHERE id = $1",
        )
        .bind(id.to_owned())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(clip)
    }

    /// Publishes a READY clip.
    pub async fn publish_clip(&self, who: &Principal, id: &str) -> Result<Clip, QueryError> {
        let clip = self.managed_clip(who, id, "publish").await?;
        if clip.status != "READY" {
            return Err(QueryError::Unprocessable(format!(
                "clip {id} is {}: only a READY clip can be published",
                clip.status
            )));
        }
        sqlx::query("UPDATE clips SET published = 1, updated_at = $2 WHERE id = $1")
            .bind(id.to_owned())
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        self.clip_row(id).await
    }

    /// Queues the clip's generation again (after FAILED, or to redo it).
    pub async fn regenerate_clip(&self, who: &Principal, id: &str) -> Result<Clip, QueryError> {
        self.managed_clip(who, id, "generate").await?;
        self.check_queue_room().await?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE clips SET status = 'PROCESSING', failure = '', updated_at = $2 WHERE id = $1",
        )
        .bind(id.to_owned())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        super::jobs::enqueue_in(&mut tx, JobKind::Clip, id, 0.0).await?;
        tx.commit().await?;
        self.clip_row(id).await
    }

    /// Queues a new thumbnail at `at_s` seconds into a READY clip.
    pub async fn clip_thumbnail(
        &self,
        who: &Principal,
        id: &str,
        at_s: f64,
    ) -> Result<Clip, QueryError> {
        let clip = self
            .managed_clip(who, id, "change the thumbnail of")
            .await?;
        if !at_s.is_finite() || at_s < 0.0 || at_s >= clip.duration_s {
            return Err(QueryError::Unprocessable(format!(
                "at: expected a second in [0, {}), got {at_s}",
                clip.duration_s
            )));
        }
        if clip.status != "READY" {
            return Err(QueryError::Unprocessable(format!(
                "clip {id} is {}, not READY",
                clip.status
            )));
        }
        self.check_queue_room().await?;
        let mut tx = self.begin_write().await?;
        super::jobs::enqueue_in(&mut tx, JobKind::ClipThumbnail, id, at_s).await?;
        tx.commit().await?;
        Ok(clip)
    }

    /// Likes a clip once per user; returns the clip and whether this like was new.
    pub async fn like_clip(&self, who: &Principal, id: &str) -> Result<(Clip, bool), QueryError> {
        self.get_clip(Some(who), id).await?;
        let mut tx = self.begin_write().await?;
        let new = sqlx::query(
            "INSERT INTO clip_likes (clip, user_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (clip, user_id) DO NOTHING",
        )
        .bind(id.to_owned())
        .bind(who.user.as_str().to_owned())
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if new {
            sqlx::query("UPDATE clips SET like_count = like_count + 1 WHERE id = $1")
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((self.clip_row(id).await?, new))
    }

    /// One page of a channel's clips, newest first: published READY ones for everyone,
    /// every non-deleted one for the channel's creator.
    pub async fn list_clips(
        &self,
        who: Option<&Principal>,
        channel: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Clip>, i64), QueryError> {
        let owner = match who {
            Some(p) => self.may_manage_channel(p, channel).await?,
            None => false,
        };
        let filter = if owner {
            "channel = $1 AND status <> 'DELETED'"
        } else {
            "channel = $1 AND status = 'READY' AND published = 1"
        };
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM clips WHERE {filter}"))
            .bind(channel.to_owned())
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        let rows = sqlx::query(&format!(
            "SELECT {CLIP_COLUMNS} FROM clips WHERE {filter} ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
        ))
        .bind(channel.to_owned())
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        let items = rows
            .iter()
            .map(clip_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, total))
    }

    /// Records a generated clip's media and makes it READY.
    pub async fn clip_ready(
        &self,
        id: &str,
        clip_url: &str,
        thumbnail: &str,
    ) -> Result<(), QueryError> {
        sqlx::query(
            "UPDATE clips SET clip_url = $2, thumbnail = $3, status = 'READY', failure = '', updated_at = $4 \
             WHERE id = $1 AND status <> 'DELETED'",
        )
        .bind(id.to_owned())
        .bind(clip_url.to_owned())
        .bind(thumbnail.to_owned())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Sets a clip's thumbnail.
    pub async fn set_clip_thumbnail(&self, id: &str, thumbnail: &str) -> Result<(), QueryError> {
        sqlx::query("UPDATE clips SET thumbnail = $2, updated_at = $3 WHERE id = $1")
            .bind(id.to_owned())
            .bind(thumbnail.to_owned())
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Marks a clip FAILED with the reason.
    pub async fn clip_failed(&self, id: &str, reason: &str) -> Result<(), QueryError> {
        sqlx::query(
            "UPDATE clips SET status = 'FAILED', failure = $2, updated_at = $3 WHERE id = $1 AND status <> 'DELETED'",
        )
        .bind(id.to_owned())
        .bind(reason.chars().take(500).collect::<String>())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Points clips cut from a stream's live playlist at its VOD once the VOD exists
    /// (start_s counts from LIVE in both, so the moment stays the same).
    pub async fn attach_clips_to_vod(
        &self,
        stream: &str,
        vod: &str,
        hls_url: &str,
    ) -> Result<(), QueryError> {
        sqlx::query("UPDATE clips SET vod = $2, source_url = $3 WHERE stream = $1 AND vod IS NULL")
            .bind(stream.to_owned())
            .bind(vod.to_owned())
            .bind(hls_url.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

fn check_text(title: &str, description: &str) -> Result<(), QueryError> {
    if title.chars().count() > 200 || description.chars().count() > 5000 {
        return Err(QueryError::Unprocessable(
            "title is at most 200 characters and description at most 5000".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges() {
        assert!(check_range(10.0, 40.0, 100.0, 5.0, 60.0).is_ok());
        assert!(check_range(40.0, 10.0, 100.0, 5.0, 60.0).is_err());
        assert!(check_range(10.0, 12.0, 100.0, 5.0, 60.0).is_err());
        assert!(check_range(10.0, 80.0, 100.0, 5.0, 60.0).is_err());
        assert!(check_range(90.0, 110.0, 100.0, 5.0, 60.0).is_err());
        assert!(check_range(-1.0, 10.0, 100.0, 5.0, 60.0).is_err());
    }

    proptest! {
        #[test]
        fn accepted_ranges_are_inside(start in -10.0f64..200.0, len in -10.0f64..100.0, src in 0.0f64..200.0) {
            let end = start + len;
            if check_range(start, end, src, 5.0, 60.0).is_ok() {
                prop_assert!(start >= 0.0 && end <= src + 1e-6 && (5.0..=60.0).contains(&(end - start)));
            }
        }
    }
}
