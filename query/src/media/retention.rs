//! The retention job: removes VODs older than `delete_after_days` and test recordings,
//! with their files in the media store (thumbnail, and the recording when it is ours).

use super::MediaStore;
use crate::QueryError;
use crate::catalog::Catalog;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// VODs looked at per pass (a larger backlog takes several passes).
pub const RETENTION_BATCH: i64 = 500;

/// One pass at `now_ms`; returns how many VODs were removed.
pub async fn run_once(
    catalog: &Catalog,
    media: &MediaStore,
    now_ms: i64,
) -> Result<u64, QueryError> {
    let cutoff = now_ms - i64::from(catalog.config().delete_after_days) * 86_400_000;
    let mut removed = 0;
    for (id, urls) in catalog.expired_vods(cutoff, RETENTION_BATCH).await? {
        for url in &urls {
            if let Some(key) = media.key_of(url) {
                media.delete(key).await?;
            }
        }
        catalog.purge_vod(&id).await?;
        removed += 1;
        crate::metrics::RETENTION_REMOVED.inc();
    }
    Ok(removed)
}

/// Runs [`run_once`] every `retention_interval_s` until `stop`.
pub async fn run(catalog: Catalog, media: MediaStore, stop: CancellationToken) {
    let every = Duration::from_secs(catalog.config().retention_interval_s.max(1));
    loop {
        match run_once(&catalog, &media, crate::catalog::now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "retention removed VODs"),
            Err(e) => tracing::warn!(error = %e, "retention pass failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
