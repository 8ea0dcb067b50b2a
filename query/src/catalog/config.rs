//! `CatalogConfig`: the `[catalog]` section (defaults in each field's comment).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Connections in the pool. Default 8 (SQLite writes still go one at a time).
    pub max_connections: u32,
    /// A stream must have been LIVE this long for its end to archive a VOD. Default 60 s.
    pub min_vod_duration_s: f64,
    /// VODs older than this are removed by the retention job, files included. Default 365.
    pub delete_after_days: u32,
    /// How often the retention job runs. Default 3600 s.
    pub retention_interval_s: u64,
    /// VODs per page by default / at most. Defaults 12 / 100.
    pub per_page: u32,
    pub max_per_page: u32,
    /// Length of a clip from a live stream when no range is given. Default 30 s.
    pub live_clip_s: f64,
    /// Bounds of a clip's length. Defaults 5 s and 60 s.
    pub min_clip_s: f64,
    pub max_clip_s: f64,
    /// Webhook timestamps further than this from now are refused. Default 300 s.
    pub webhook_tolerance_s: i64,
    /// Largest JSON body of a catalog route. Default 64 KiB (413 beyond).
    pub max_body_bytes: usize,
    /// Media workers running at once (each runs one ffmpeg). Default 2.
    pub media_workers: usize,
    /// Attempts of a media job before it is FAILED. Default 3.
    pub media_max_attempts: u32,
    /// A running job not finished within this is taken again (crash recovery). Default 300 s.
    pub media_lease_s: u64,
    /// How long an idle worker sleeps before polling the queue. Default 500 ms.
    pub media_poll_ms: u64,
    /// Queued + running media jobs at most; a clip beyond this gets 503. Default 1000.
    pub max_queued_jobs: u64,
    /// Cut clips off keyframes by the smart cut (copy the whole HLS segments inside,
    /// re-encode only the partial GOPs at the edges) when the source is a local
    /// playlist of TS segments; false re-encodes the whole clip. Default true.
    pub media_smart_cut: bool,
    /// The ffmpeg and ffprobe programs. Defaults `ffmpeg`, `ffprobe` (on PATH).
    pub ffmpeg: String,
    pub ffprobe: String,
    /// Base URL under which `media_dir` is served (clip_url, thumbnail). Default `/media`.
    pub media_base_url: String,
    /// Streams, clips or VODs of one channel (and lifecycle records of one stream) that
    /// an analytics answer reads at most; the newest are kept. Default 1000.
    pub max_records: usize,
    /// How often VOD and clip counters (views, likes, shares) are copied from the
    /// analytics store into the catalog, in ms. Default 60 000.
    pub count_sync_interval_ms: u64,
    /// Channels one counter sync visits at most (in id order). Default 10 000.
    pub count_sync_max_channels: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            max_connections: 8,
            min_vod_duration_s: 60.0,
            delete_after_days: 365,
            retention_interval_s: 3600,
            per_page: 12,
            max_per_page: 100,
            live_clip_s: 30.0,
            min_clip_s: 5.0,
            max_clip_s: 60.0,
            webhook_tolerance_s: 300,
            max_body_bytes: 64 * 1024,
            media_workers: 2,
            media_max_attempts: 3,
            media_lease_s: 300,
            media_poll_ms: 500,
            max_queued_jobs: 1000,
            media_smart_cut: true,
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            media_base_url: "/media".into(),
            max_records: 1000,
            count_sync_interval_ms: 60_000,
            count_sync_max_channels: 10_000,
        }
    }
}
