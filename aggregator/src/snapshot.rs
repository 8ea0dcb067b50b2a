//! Snapshot and restore of the whole aggregator state (graceful shutdown → restart).
//!
//! The snapshot is JSON: the open sessions and windows, tombstones, counters, the
//! watermark, and the pending events as wire JSON lines (`Event::to_json`, read back
//! with `parse_event`). It is written to a temporary file, fsynced and renamed, so a
//! crash while writing leaves the previous state, never half of one. A restart that
//! finds it resumes exactly where the shutdown stopped.

use crate::AggregatorError;
use crate::config::AggregatorConfig;
use crate::engine::{Aggregator, Core};
use crate::pending::Pending;
use crate::tombstones::Tombstones;
use pulse_schemas::parse_event;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

const SNAPSHOT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    tick_ms: i64,
    session_timeout_ms: i64,
    watermark: i64,
    max_ts: i64,
    events: u64,
    late: u64,
    dropped_pending_full: u64,
    /// The time the state below stands at (every pending event before it applied);
    /// absent in older snapshots, whose state stood at the watermark.
    #[serde(default)]
    settled: Option<i64>,
    core: Core,
    graves: Tombstones,
    pending: Vec<String>,
}

fn snap_err(path: &Path, message: impl Into<String>) -> AggregatorError {
    AggregatorError::Snapshot {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> AggregatorError {
    AggregatorError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Aggregator {
    /// The state as JSON bytes.
    pub fn snapshot(&self) -> Result<Vec<u8>, AggregatorError> {
        // The base and the events after it: what is ahead of it is applied again.
        let (base, base_graves) = self.base();
        let snap = Snapshot {
            version: SNAPSHOT_VERSION,
            tick_ms: self.cfg.tick_ms,
            session_timeout_ms: self.cfg.session_timeout_ms,
            watermark: self.watermark,
            max_ts: self.max_ts,
            events: self.events,
            late: self.late,
            dropped_pending_full: self.dropped_pending_full,
            settled: Some(self.settled),
            core: {
                // What sessions hold back goes into the windows: a snapshot holds no
                // stage ([`crate::stage`]).
                let mut core = base.clone();
                for state in core.targets.values_mut() {
                    state.release_stages();
                }
                core
            },
            graves: base_graves.clone(),
            pending: self.pending.events().map(|e| e.to_json()).collect(),
        };
        serde_json::to_vec(&snap).map_err(|e| snap_err(Path::new("<memory>"), e.to_string()))
    }

    /// Rebuilds an aggregator from [`Aggregator::snapshot`] bytes. The tick and the
    /// session timeout must be those of the snapshot; bounds and node come from `cfg`.
    pub fn restore(cfg: AggregatorConfig, bytes: &[u8]) -> Result<Aggregator, AggregatorError> {
        let here = Path::new("<memory>");
        let snap: Snapshot =
            serde_json::from_slice(bytes).map_err(|e| snap_err(here, e.to_string()))?;
        if snap.version != SNAPSHOT_VERSION {
            return Err(snap_err(
                here,
                format!("version {} (expected {SNAPSHOT_VERSION})", snap.version),
            ));
        }
        if snap.tick_ms != cfg.tick_ms || snap.session_timeout_ms != cfg.session_timeout_ms {
            return Err(snap_err(
                here,
                format!(
                    "written with tick_ms {} and session_timeout_ms {}, configured {} and {}",
                    snap.tick_ms, snap.session_timeout_ms, cfg.tick_ms, cfg.session_timeout_ms
                ),
            ));
        }
        let mut pending = Vec::with_capacity(snap.pending.len());
        for line in &snap.pending {
            pending.push(
                parse_event(line).map_err(|e| snap_err(here, format!("pending event: {e}")))?,
            );
        }
        let mut core = snap.core;
        core.env.params.node = cfg.node_id.clone();
        core.env.sessions.max = cfg.max_sessions;
        core.env.viewer_minutes.max = cfg.max_viewer_minutes;
        core.max_targets = cfg.max_targets;
        let mut graves = snap.graves;
        graves.set_bounds(cfg.tombstone_ttl_ms, cfg.max_tombstones);
        let mut agg = Aggregator::new(cfg);
        agg.watermark = snap.watermark;
        agg.max_ts = snap.max_ts;
        agg.events = snap.events;
        agg.late = snap.late;
        agg.dropped_pending_full = snap.dropped_pending_full;
        agg.core = core;
        agg.graves = graves;
        agg.settled = snap.settled.unwrap_or(snap.watermark);
        agg.ahead = agg.settled;
        agg.pending = Pending::from_events(pending);
        Ok(agg)
    }

    /// Writes the snapshot to `path` (temporary file, fsync, rename).
    pub fn save_snapshot(&self, path: &Path) -> Result<(), AggregatorError> {
        let bytes = self.snapshot().map_err(|e| match e {
            AggregatorError::Snapshot { message, .. } => snap_err(path, message),
            other => other,
        })?;
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        }
        let tmp = tmp_path(path);
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        f.write_all(&bytes).map_err(|e| io_err(&tmp, e))?;
        f.sync_all().map_err(|e| io_err(&tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
        if let Some(dir) = path.parent()
            && let Ok(d) = std::fs::File::open(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            })
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Loads the snapshot at `path` if there is one, then renames it to `<path>.loaded`
    /// so that a later restart does not apply it twice. `Ok(None)` when there is none.
    pub fn load_snapshot(
        cfg: AggregatorConfig,
        path: &Path,
    ) -> Result<Option<Aggregator>, AggregatorError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path, e)),
        };
        let loaded = loaded_path(path);
        std::fs::rename(path, &loaded).map_err(|e| io_err(path, e))?;
        Aggregator::restore(cfg, &bytes)
            .map(Some)
            .map_err(|e| match e {
                AggregatorError::Snapshot { message, .. } => snap_err(path, message),
                other => other,
            })
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Where a loaded snapshot is moved (`<path>.loaded`).
pub fn loaded_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".loaded");
    PathBuf::from(s)
}
