//! VOD and clip counters in the catalog, from analytics (issue 6 point 2: "views and
//! likes from analytics"). The catalog's `view_count`, `like_count` and
//! `share_count` are what the VOD and clip objects show and what `sort=watched` and
//! `sort=trending` order by; the numbers themselves are counted by the aggregator from
//! the players' events (METRICS.md §3). This job copies them over every
//! `count_sync_interval_ms` (default 1 min): per channel (at most
//! `count_sync_max_channels`, in id order), the all-time totals of its VODs and clips,
//! read from the configured store in one consistent snapshot per channel.
//!
//! A clip's likes are the larger of the two counts: `POST /api/clips/:id/like` writes
//! the catalog at once and sends an analytics event, players may send likes that only
//! analytics sees. Rows are written only when a number changed, so a quiet catalog sees
//! no writes.

use crate::QueryState;
use crate::catalog::Catalog;
use crate::error::QueryError;
use crate::store::ScopeKind;
use pulse_schemas::Id;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What one sync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub channels: usize,
    pub vods_changed: usize,
    pub clips_changed: usize,
}

/// One pass over the catalog's channels.
pub async fn sync_once(state: &QueryState, catalog: &Catalog) -> Result<SyncReport, QueryError> {
    let mut report = SyncReport::default();
    let limit = catalog.config().count_sync_max_channels;
    for channel in catalog.channel_ids(limit).await? {
        let Ok(channel) = Id::parse(&channel) else {
            continue;
        };
        report.channels += 1;
        let snap = state.snapshot().await?;
        let vods = state
            .with_timeout(snap.target_totals(&channel, ScopeKind::Vod, None))
            .await?;
        for v in vods {
            let t = v.totals;
            if catalog.set_vod_counts(&v.target, t.views, t.likes).await? {
                report.vods_changed += 1;
            }
        }
        let clips = state
            .with_timeout(snap.target_totals(&channel, ScopeKind::Clip, None))
            .await?;
        for c in clips {
            let t = c.totals;
            if catalog
                .set_clip_counts(&c.target, t.views, t.likes, t.shares)
                .await?
            {
                report.clips_changed += 1;
            }
        }
    }
    Ok(report)
}

/// Runs [`sync_once`] every `every` until `shutdown`; a failed pass is logged and the
/// next one tries again.
pub async fn run(
    state: QueryState,
    catalog: Catalog,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let pass = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = sync_once(&state, &catalog) => r,
        };
        match pass {
            Ok(r) => tracing::debug!(?r, "catalog counters synced from analytics"),
            Err(e) => tracing::warn!(error = %e, "syncing catalog counters from analytics failed"),
        }
    }
}
