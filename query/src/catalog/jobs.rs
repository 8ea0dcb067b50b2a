//! The durable media job queue. A worker claims the oldest QUEUED job, or a RUNNING one
//! whose lease has passed (its worker crashed), with a compare-and-set UPDATE that only
//! one claimer can win on either backend; a failure requeues it until its attempts run
//! out, then the job and its clip are FAILED with the reason.

use super::{Catalog, new_id, now_ms};
use crate::QueryError;
use sqlx::Row;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Cut a clip's MP4 and its first thumbnail.
    Clip,
    /// A clip's thumbnail at `at_s`.
    ClipThumbnail,
    /// A VOD's thumbnail at `at_s` (25 % of its length).
    VodThumbnail,
}

impl JobKind {
    pub fn name(self) -> &'static str {
        match self {
            JobKind::Clip => "clip",
            JobKind::ClipThumbnail => "clip_thumbnail",
            JobKind::VodThumbnail => "vod_thumbnail",
        }
    }

    fn parse(s: &str) -> Option<JobKind> {
        match s {
            "clip" => Some(JobKind::Clip),
            "clip_thumbnail" => Some(JobKind::ClipThumbnail),
            "vod_thumbnail" => Some(JobKind::VodThumbnail),
            _ => None,
        }
    }
}

/// A claimed job.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: String,
    pub kind: JobKind,
    pub target: String,
    pub at_s: f64,
    /// Attempts including this one.
    pub attempts: i64,
}

/// What happened to a failed job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    Requeued,
    Failed,
}

pub(crate) async fn enqueue_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    kind: JobKind,
    target: &str,
    at_s: f64,
) -> Result<String, QueryError> {
    let id = new_id("j");
    let now = now_ms();
    sqlx::query(
        "INSERT INTO media_jobs (id, kind, target, at_s, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(id.as_str().to_owned())
    .bind(kind.name())
    .bind(target.to_owned())
    .bind(at_s)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id.as_str().to_owned())
}

impl Catalog {
    /// Queues a job outside any other change.
    pub async fn enqueue_job(
        &self,
        kind: JobKind,
        target: &str,
        at_s: f64,
    ) -> Result<String, QueryError> {
        let mut tx = self.begin_write().await?;
        let id = enqueue_in(&mut tx, kind, target, at_s).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Jobs queued or running.
    pub async fn pending_jobs(&self) -> Result<i64, QueryError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM media_jobs WHERE status IN ('QUEUED', 'RUNNING')",
        )
        .fetch_one(self.pool())
        .await?
        .try_get("n")?)
    }

    /// 503 `busy` when the queue holds `max_queued_jobs` already.
    pub(crate) async fn check_queue_room(&self) -> Result<(), QueryError> {
        let pending = self.pending_jobs().await?;
        if pending >= self.config().max_queued_jobs as i64 {
            crate::metrics::media_jobs_refused();
            return Err(QueryError::Busy(format!(
                "the media queue is full ({pending} jobs); try again later"
            )));
        }
        Ok(())
    }

    /// Claims the next job for `lease_ms`, or `None` when nothing is due.
    pub async fn claim_job(&self, now: i64, lease_ms: i64) -> Result<Option<Job>, QueryError> {
        for _ in 0..4 {
            let row = sqlx::query(
                "SELECT id, kind, target, at_s, attempts, status, lease_until FROM media_jobs \
                 WHERE status = 'QUEUED' OR (status = 'RUNNING' AND lease_until < $1) \
                 ORDER BY created_at, id LIMIT 1",
            )
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
            let Some(row) = row else { return Ok(None) };
            let id: String = row.try_get("id")?;
            let status: String = row.try_get("status")?;
            let lease: i64 = row.try_get("lease_until")?;
            let attempts: i64 = row.try_get("attempts")?;
            let won = sqlx::query(
                "UPDATE media_jobs SET status = 'RUNNING', attempts = attempts + 1, lease_until = $2, \
                 updated_at = $3 WHERE id = $1 AND status = $4 AND lease_until = $5",
            )
            .bind(id.clone())
            .bind(now + lease_ms)
            .bind(now)
            .bind(status.clone())
            .bind(lease)
            .execute(self.pool())
            .await?
            .rows_affected()
                == 1;
            if !won {
                continue;
            }
            if status == "RUNNING" {
                crate::metrics::media_jobs_resumed();
            }
            let kind: String = row.try_get("kind")?;
            let Some(kind) = JobKind::parse(&kind) else {
                self.finish_job(&id, "FAILED", &format!("unknown job kind {kind:?}"))
                    .await?;
                continue;
            };
            return Ok(Some(Job {
                id,
                kind,
                target: row.try_get("target")?,
                at_s: row.try_get("at_s")?,
                attempts: attempts + 1,
            }));
        }
        Ok(None)
    }

    async fn finish_job(&self, id: &str, status: &str, error: &str) -> Result<(), QueryError> {
        sqlx::query(
            "UPDATE media_jobs SET status = $2, last_error = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id.to_owned())
        .bind(status.to_owned())
        .bind(error.chars().take(1000).collect::<String>())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Hands a claimed job back to the queue (graceful stop), without using an attempt.
    pub async fn release_job(&self, id: &str) -> Result<(), QueryError> {
        sqlx::query(
            "UPDATE media_jobs SET status = 'QUEUED', lease_until = 0, attempts = attempts - 1, \
             updated_at = $2 WHERE id = $1 AND status = 'RUNNING'",
        )
        .bind(id.to_owned())
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The HLS URL of a VOD that still exists, for its thumbnail job.
    pub async fn vod_media_url(&self, vod: &str) -> Result<Option<String>, QueryError> {
        let row = sqlx::query("SELECT hls_url FROM vods WHERE id = $1 AND deleted_at IS NULL")
            .bind(vod.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| Ok(r.try_get("hls_url")?)).transpose()
    }

    /// Marks a job done.
    pub async fn job_done(&self, id: &str) -> Result<(), QueryError> {
        self.finish_job(id, "DONE", "").await
    }

    /// Requeues a failed job, or fails it (and its clip) once its attempts are used up.
    pub async fn job_failed(&self, job: &Job, error: &str) -> Result<FailOutcome, QueryError> {
        if job.attempts < i64::from(self.config().media_max_attempts.max(1)) {
            sqlx::query(
                "UPDATE media_jobs SET status = 'QUEUED', lease_until = 0, last_error = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(job.id.clone())
            .bind(error.chars().take(1000).collect::<String>())
            .bind(now_ms())
            .execute(self.pool())
            .await?;
            return Ok(FailOutcome::Requeued);
        }
        self.finish_job(&job.id, "FAILED", error).await?;
        if job.kind == JobKind::Clip {
            self.clip_failed(&job.target, error).await?;
        }
        Ok(FailOutcome::Failed)
    }

    /// A job's (status, attempts, last_error), for tests and operators.
    pub async fn job_state(&self, id: &str) -> Result<Option<(String, i64, String)>, QueryError> {
        let row = sqlx::query("SELECT status, attempts, last_error FROM media_jobs WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok((
                r.try_get("status")?,
                r.try_get("attempts")?,
                r.try_get("last_error")?,
            ))
        })
        .transpose()
    }

    /// Jobs of a target, oldest first: (id, kind, status).
    pub async fn jobs_of(&self, target: &str) -> Result<Vec<(String, String, String)>, QueryError> {
        let rows = sqlx::query(
            "SELECT id, kind, status FROM media_jobs WHERE target = $1 ORDER BY created_at, id",
        )
        .bind(target.to_owned())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("kind")?, r.try_get("status")?)))
            .collect()
    }

    /// Sets a VOD's thumbnail.
    pub async fn set_vod_thumbnail(&self, vod: &str, thumbnail: &str) -> Result<(), QueryError> {
        sqlx::query("UPDATE vods SET thumbnail = $2, updated_at = $3 WHERE id = $1")
            .bind(vod.to_owned())
            .bind(thumbnail.to_owned())
            .bind(now_ms())
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
