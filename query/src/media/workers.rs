//! The media worker pool: `media_workers` tasks, each claiming one job at a time from
//! the catalog's queue (so at most that many ffmpeg run at once). A job holds a lease;
//! a worker that dies mid-job (crash, kill) leaves it RUNNING and another worker takes
//! it again when the lease passes. A graceful stop hands the running job back at once.

use super::ffmpeg::{self, CutMode};
use super::smart_cut;
use super::store::MediaStore;
use crate::QueryError;
use crate::catalog::Catalog;
use crate::catalog::jobs::{FailOutcome, Job, JobKind};
use std::path::PathBuf;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The running pool.
#[derive(Debug)]
pub struct MediaPool {
    stop: CancellationToken,
    workers: Vec<JoinHandle<()>>,
}

impl MediaPool {
    /// Stops taking jobs, hands running ones back to the queue, and joins every worker.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for w in self.workers {
            let _ = w.await;
        }
    }

    /// Kills every worker at once, as a crash would: running jobs stay RUNNING until
    /// their lease passes (for crash-recovery tests).
    pub async fn kill(self) {
        for w in &self.workers {
            w.abort();
        }
        for w in self.workers {
            let _ = w.await;
        }
    }
}

/// Starts `catalog.config().media_workers` workers; `stop` ends them.
pub fn spawn_pool(catalog: Catalog, media: MediaStore, stop: CancellationToken) -> MediaPool {
    let n = catalog.config().media_workers.max(1);
    let workers = (0..n)
        .map(|i| {
            let worker = Worker {
                catalog: catalog.clone(),
                media: media.clone(),
                stop: stop.clone(),
                index: i,
            };
            tokio::spawn(worker.run())
        })
        .collect();
    MediaPool { stop, workers }
}

struct Worker {
    catalog: Catalog,
    media: MediaStore,
    stop: CancellationToken,
    index: usize,
}

impl Worker {
    async fn run(self) {
        let cfg = self.catalog.config().clone();
        let poll = Duration::from_millis(cfg.media_poll_ms.max(10));
        let lease_ms = (cfg.media_lease_s.max(1) * 1000) as i64;
        while !self.stop.is_cancelled() {
            let job = match self
                .catalog
                .claim_job(crate::catalog::now_ms(), lease_ms)
                .await
            {
                Ok(Some(job)) => job,
                Ok(None) => {
                    tokio::select! {
                        _ = self.stop.cancelled() => break,
                        _ = tokio::time::sleep(poll) => continue,
                    }
                }
                Err(e) => {
                    tracing::warn!(worker = self.index, error = %e, "media queue unavailable");
                    tokio::select! {
                        _ = self.stop.cancelled() => break,
                        _ = tokio::time::sleep(poll * 4) => continue,
                    }
                }
            };
            let result = tokio::select! {
                r = self.process(&job) => Some(r),
                _ = self.stop.cancelled() => None,
            };
            match result {
                // Stopped mid-job: the ffmpeg child died with the future; hand it back.
                None => {
                    if let Err(e) = self.catalog.release_job(&job.id).await {
                        tracing::warn!(job = %job.id, error = %e, "could not hand a job back; its lease will");
                    }
                    break;
                }
                Some(Ok(())) => {
                    crate::metrics::MEDIA_JOBS
                        .with_label_values(&["done"])
                        .inc();
                    if let Err(e) = self.catalog.job_done(&job.id).await {
                        tracing::warn!(job = %job.id, error = %e, "could not mark a job done");
                    }
                }
                Some(Err(err)) => {
                    let reason = err.to_string();
                    match self.catalog.job_failed(&job, &reason).await {
                        Ok(FailOutcome::Requeued) => {
                            crate::metrics::MEDIA_JOBS
                                .with_label_values(&["requeued"])
                                .inc();
                            tracing::info!(job = %job.id, attempt = job.attempts, error = %reason, "media job will be retried");
                        }
                        Ok(FailOutcome::Failed) => {
                            crate::metrics::MEDIA_JOBS
                                .with_label_values(&["failed"])
                                .inc();
                            tracing::warn!(job = %job.id, error = %reason, "media job failed");
                        }
                        Err(e) => {
                            tracing::warn!(job = %job.id, error = %e, "could not record a job failure")
                        }
                    }
                }
            }
        }
    }

    async fn process(&self, job: &Job) -> Result<(), QueryError> {
        let dir = std::env::temp_dir().join(format!("pulse-media-{}", job.id));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| QueryError::Media(format!("creating {}: {e}", dir.display())))?;
        let result = self.process_in(job, &dir).await;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        result
    }

    /// Cuts [start, end) of `src` into `out`: stream copy when both ends are keyframes,
    /// else the smart cut when the source allows it (`media_smart_cut`), else a full
    /// re-encode — also the fallback when the smart cut fails. Returns how.
    async fn cut(
        &self,
        src: &str,
        start: f64,
        end: f64,
        dir: &std::path::Path,
        out: &std::path::Path,
    ) -> Result<&'static str, QueryError> {
        let cfg = self.catalog.config();
        let keys = ffmpeg::keyframes(src).await?;
        let mode = ffmpeg::cut_mode(&keys, start, end);
        if mode == CutMode::Reencode && cfg.media_smart_cut {
            match smart_cut::prepare(&cfg.ffprobe, src, start, end).await {
                Ok(Some(prep)) => {
                    match smart_cut::cut(&cfg.ffmpeg, src, &prep, start, end, dir, out).await {
                        Ok(()) => return Ok("smart cut"),
                        Err(e) => {
                            tracing::warn!(src, error = %e, "smart cut failed; re-encoding the whole range")
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(src, error = %e, "smart cut not possible; re-encoding"),
            }
        }
        ffmpeg::cut(&cfg.ffmpeg, src, start, end, mode, out).await?;
        Ok(match mode {
            CutMode::StreamCopy => "stream copy",
            CutMode::Reencode => "re-encode",
        })
    }

    async fn process_in(&self, job: &Job, dir: &std::path::Path) -> Result<(), QueryError> {
        let cfg = self.catalog.config();
        match job.kind {
            JobKind::Clip => {
                let clip = self.catalog.clip_row(&job.target).await?;
                if clip.status == "DELETED" {
                    return Ok(());
                }
                let mp4: PathBuf = dir.join("clip.mp4");
                let how = self
                    .cut(&clip.source_url, clip.start_s, clip.end_s, dir, &mp4)
                    .await?;
                let jpg = dir.join("thumb.jpg");
                ffmpeg::thumbnail(&cfg.ffmpeg, &mp4.display().to_string(), 0.0, &jpg).await?;
                let mp4_key = format!("clips/{}.mp4", clip.id);
                let jpg_key = format!("clips/{}.jpg", clip.id);
                self.media.put_file(&mp4_key, &mp4).await?;
                self.media.put_file(&jpg_key, &jpg).await?;
                tracing::debug!(clip = %clip.id, how, "clip generated");
                self.catalog
                    .clip_ready(
                        &clip.id,
                        &self.media.url(&mp4_key),
                        &self.media.url(&jpg_key),
                    )
                    .await
            }
            JobKind::ClipThumbnail => {
                let clip = self.catalog.clip_row(&job.target).await?;
                let jpg = dir.join("thumb.jpg");
                ffmpeg::thumbnail(&cfg.ffmpeg, &clip.source_url, clip.start_s + job.at_s, &jpg)
                    .await?;
                let key = format!(
                    "clips/{}-{}.jpg",
                    clip.id,
                    (job.at_s * 1000.0).round() as i64
                );
                self.media.put_file(&key, &jpg).await?;
                self.catalog
                    .set_clip_thumbnail(&clip.id, &self.media.url(&key))
                    .await
            }
            JobKind::VodThumbnail => {
                let Some(hls) = self.catalog.vod_media_url(&job.target).await? else {
                    return Ok(());
                };
                let jpg = dir.join("thumb.jpg");
                ffmpeg::thumbnail(&cfg.ffmpeg, &hls, job.at_s, &jpg).await?;
                let key = format!("vods/{}.jpg", job.target);
                self.media.put_file(&key, &jpg).await?;
                self.catalog
                    .set_vod_thumbnail(&job.target, &self.media.url(&key))
                    .await
            }
        }
    }
}
