//! VODs: listing (paging, sort, date range, search), reading, editing, soft delete,
//! the recording-ready update and the retention job.

use super::{Catalog, now_ms};
use crate::QueryError;
use pulse_schemas::access::Principal;
use sqlx::Row;
use sqlx::any::AnyRow;

/// A VOD as the API shows it (PROTOCOL.md §4).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Vod {
    pub id: String,
    pub stream: String,
    pub channel: String,
    pub title: String,
    pub description: String,
    pub thumbnail: String,
    pub hls_url: String,
    pub mp4_url: String,
    pub duration_s: f64,
    pub file_size: i64,
    pub resolution: String,
    pub view_count: i64,
    pub like_count: i64,
    pub clip_count: i64,
    pub is_public: bool,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) const VOD_COLUMNS: &str = "v.id, v.stream, v.channel, v.title, v.description, v.thumbnail, \
    v.hls_url, v.mp4_url, v.duration_s, v.file_size, v.resolution, v.view_count, v.like_count, \
    v.clip_count, v.is_public, v.status, v.created_at, v.updated_at";

pub(crate) fn vod_from_row(row: &AnyRow) -> Result<Vod, QueryError> {
    Ok(Vod {
        id: row.try_get("id")?,
        stream: row.try_get("stream")?,
        channel: row.try_get("channel")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        thumbnail: row.try_get("thumbnail")?,
        hls_url: row.try_get("hls_url")?,
        mp4_url: row.try_get("mp4_url")?,
        duration_s: row.try_get("duration_s")?,
        file_size: row.try_get("file_size")?,
        resolution: row.try_get("resolution")?,
        view_count: row.try_get("view_count")?,
        like_count: row.try_get("like_count")?,
        clip_count: row.try_get("clip_count")?,
        is_public: row.try_get::<i64, _>("is_public")? != 0,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Order of a VOD list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VodSort {
    Newest,
    /// (views + 3 × likes) divided by (1 + age in 6 h units): the trending weights of
    /// METRICS.md §5 over the catalog's counts, with a hyperbolic instead of exponential
    /// decay because SQLite has no `exp`.
    Trending,
    Watched,
}

/// A VOD list query.
#[derive(Clone, Debug)]
pub struct VodQuery {
    pub page: u32,
    pub per_page: u32,
    pub sort: VodSort,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub q: Option<String>,
}

/// The fields of `PUT /api/vods/:id`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VodUpdate {
    pub title: Option<String>,
    pub description: Option<String>,
    /// `public` or `private`.
    pub visibility: Option<String>,
}

/// The facts of a finished recording (`POST /api/webhooks/recording-ready`).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct RecordingReady {
    pub hls_url: String,
    #[serde(default)]
    pub mp4_url: String,
    pub duration_s: f64,
    #[serde(default)]
    pub size_bytes: i64,
    #[serde(default)]
    pub resolution: String,
}

impl Catalog {
    /// Whether `who` sees a VOD of `channel` that is private or not READY.
    async fn sees_hidden(
        &self,
        who: Option<&Principal>,
        channel: &str,
    ) -> Result<bool, QueryError> {
        match who {
            Some(p) => self.may_manage_channel(p, channel).await,
            None => Ok(false),
        }
    }

    /// One page of a channel's VODs, and the total matching.
    pub async fn list_vods(
        &self,
        who: Option<&Principal>,
        channel: &str,
        query: &VodQuery,
    ) -> Result<(Vec<Vod>, i64), QueryError> {
        let owner = self.sees_hidden(who, channel).await?;
        let mut filter = String::from("v.channel = $1 AND v.deleted_at IS NULL");
        if !owner {
            filter.push_str(" AND v.is_public = 1 AND v.status = 'READY'");
        }
        let mut binds: Vec<Bind> = vec![Bind::Text(channel.to_owned())];
        if let Some(from) = query.from {
            binds.push(Bind::Int(from));
            filter.push_str(&format!(" AND v.created_at >= ${}", binds.len()));
        }
        if let Some(to) = query.to {
            binds.push(Bind::Int(to));
            filter.push_str(&format!(" AND v.created_at < ${}", binds.len()));
        }
        let words = query
            .q
            .as_deref()
            .map(super::search::terms)
            .unwrap_or_default();
        if let Some(expr) = super::search::match_expression(self.backend(), &words) {
            binds.push(Bind::Text(expr));
            filter.push_str(&super::search::condition(self.backend(), binds.len()));
        }
        let order = match query.sort {
            VodSort::Newest => "v.created_at DESC, v.id DESC".to_owned(),
            VodSort::Watched => "v.view_count DESC, v.created_at DESC, v.id DESC".to_owned(),
            VodSort::Trending => format!(
                // `now` is our own clock reading, spliced as a number (no client text).
                "CAST(v.view_count + 3 * v.like_count AS DOUBLE PRECISION) / \
                 (1.0 + CAST({} - v.created_at AS DOUBLE PRECISION) / 21600000.0) DESC, v.id DESC",
                now_ms()
            ),
        };
        let count_sql = format!("SELECT COUNT(*) AS n FROM vods v WHERE {filter}");
        let mut count = sqlx::query(&count_sql);
        for b in &binds {
            count = b.bind(count);
        }
        let total: i64 = count.fetch_one(self.pool()).await?.try_get("n")?;
        let offset = i64::from(query.page.saturating_sub(1)) * i64::from(query.per_page);
        binds.push(Bind::Int(i64::from(query.per_page)));
        binds.push(Bind::Int(offset));
        let n = binds.len();
        let sql = format!(
            "SELECT {VOD_COLUMNS} FROM vods v WHERE {filter} ORDER BY {order} LIMIT ${} OFFSET ${n}",
            n - 1
        );
        let mut list = sqlx::query(&sql);
        for b in &binds {
            list = b.bind(list);
        }
        let rows = list.fetch_all(self.pool()).await?;
        let items = rows
            .iter()
            .map(vod_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, total))
    }

    /// A VOD as `who` may see it: deleted ones are unknown; private or unfinished ones
    /// are unknown to all but their channel's creator and admins.
    pub async fn get_vod(&self, who: Option<&Principal>, id: &str) -> Result<Vod, QueryError> {
        let row = sqlx::query(&format!(
            "SELECT {VOD_COLUMNS} FROM vods v WHERE v.id = $1 AND v.deleted_at IS NULL"
        ))
        .bind(id.to_owned())
        .fetch_optional(self.pool())
        .await?;
        let vod = match row {
            Some(r) => vod_from_row(&r)?,
            None => return Err(QueryError::NotFound(format!("no VOD {id}"))),
        };
        if (!vod.is_public || vod.status != "READY") && !self.sees_hidden(who, &vod.channel).await?
        {
            return Err(QueryError::NotFound(format!("no VOD {id}")));
        }
        Ok(vod)
    }

    /// Edits title, description, visibility (the channel's creator or an admin).
    pub async fn update_vod(
        &self,
        who: &Principal,
        id: &str,
        update: &VodUpdate,
    ) -> Result<Vod, QueryError> {
        let vod = self.get_vod(Some(who), id).await?;
        if !self.may_manage_channel(who, &vod.channel).await? {
            return Err(QueryError::Forbidden(format!(
                "only the creator of channel {} may edit its VODs",
                vod.channel
            )));
        }
        let is_public = match update.visibility.as_deref() {
            None => vod.is_public,
            Some("public") => true,
            Some("private") => false,
            Some(other) => {
                return Err(QueryError::invalid(
                    "visibility",
                    format!("expected public or private, got {other:?}"),
                ));
            }
        };
        let title = update.title.clone().unwrap_or(vod.title);
        let description = update.description.clone().unwrap_or(vod.description);
        if title.chars().count() > 200 || description.chars().count() > 5000 {
            return Err(QueryError::Unprocessable(
                "title is at most 200 characters and description at most 5000".into(),
            ));
        }
        sqlx::query(
            "UPDATE vods SET title = $2, description = $3, search_text = $4, is_public = $5, \
             updated_at = $6 WHERE id = $1",
        )
        .bind(id.to_owned())
        .bind(title.clone())
        .bind(description.clone())
        .bind(format!(
            "{} {}",
            title.to_lowercase(),
            description.to_lowercase()
        ))
        .bind(i64::from(is_public))
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        self.get_vod(Some(who), id).await
    }

    /// Soft-deletes a VOD (the channel's creator or an admin).
    pub async fn delete_vod(&self, who: &Principal, id: &str) -> Result<(), QueryError> {
        let vod = self.get_vod(Some(who), id).await?;
        if !self.may_manage_channel(who, &vod.channel).await? {
            return Err(QueryError::Forbidden(format!(
                "only the creator of channel {} may delete its VODs",
                vod.channel
            )));
        }
        sqlx::query("UPDATE vods SET deleted_at = $2, updated_at = $2 WHERE id = $1")
            .bind(id.to_owned())
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Fills a stream's VOD from its finished recording and makes it READY. Returns the
    /// VOD, or `None` when the stream has no VOD (too short, or never LIVE).
    pub async fn recording_ready(
        &self,
        stream: &str,
        rec: &RecordingReady,
    ) -> Result<Option<Vod>, QueryError> {
        let updated = sqlx::query(
            "UPDATE vods SET hls_url = $2, mp4_url = $3, duration_s = $4, file_size = $5, \
             resolution = $6, status = 'READY', updated_at = $7 WHERE stream = $1",
        )
        .bind(stream.to_owned())
        .bind(rec.hls_url.clone())
        .bind(rec.mp4_url.clone())
        .bind(rec.duration_s)
        .bind(rec.size_bytes)
        .bind(rec.resolution.clone())
        .bind(now_ms())
        .execute(self.pool())
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {VOD_COLUMNS} FROM vods v WHERE v.stream = $1"
        ))
        .bind(stream.to_owned())
        .fetch_one(self.pool())
        .await?;
        Ok(Some(vod_from_row(&row)?))
    }

    /// The VOD of a stream (any state), for the media side.
    pub async fn vod_of_stream(&self, stream: &str) -> Result<Option<Vod>, QueryError> {
        let row = sqlx::query(&format!(
            "SELECT {VOD_COLUMNS} FROM vods v WHERE v.stream = $1"
        ))
        .bind(stream.to_owned())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(vod_from_row).transpose()
    }

    /// VODs to remove: created before `cutoff_ms`, or test recordings. Returns each
    /// one's id and URLs (thumbnail, HLS, MP4) so their files can go too.
    pub async fn expired_vods(
        &self,
        cutoff_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, [String; 3])>, QueryError> {
        let rows = sqlx::query(
            "SELECT id, thumbnail, hls_url, mp4_url FROM vods WHERE created_at < $1 OR is_test = 1 \
             ORDER BY created_at LIMIT $2",
        )
        .bind(cutoff_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    [
                        r.try_get("thumbnail")?,
                        r.try_get("hls_url")?,
                        r.try_get("mp4_url")?,
                    ],
                ))
            })
            .collect()
    }

    /// Deletes a VOD row (its progress rows go with it; its clips keep their own media).
    pub async fn purge_vod(&self, id: &str) -> Result<(), QueryError> {
        sqlx::query("DELETE FROM vods WHERE id = $1")
            .bind(id.to_owned())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// A bind value of a dynamically built query.
#[derive(Clone, Debug)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

impl Bind {
    pub(crate) fn bind<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        match self {
            Bind::Text(s) => q.bind(s.clone()),
            Bind::Int(i) => q.bind(*i),
        }
    }
}
