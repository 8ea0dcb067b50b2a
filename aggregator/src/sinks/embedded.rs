//! The embedded store's writer: closed windows into memory (Arrow), a write-ahead log and
//! day-partitioned Parquet files, published to readers through [`EmbeddedTables`].
//!
//! **Layout** (path helpers in `embedded_files.rs`, re-exported here):
//! ```text
//! <data_dir>/wal/<node>-<seq>-<table>.arrows                  WAL segment <seq>, one Arrow IPC stream per table
//! <data_dir>/<table>/day=YYYY-MM-DD/part-<node>-<seq>.parquet  rows of segment <seq> whose time column
//!                                                              (Table::time_column) is on that UTC day
//! ```
//! A part file takes the number of the WAL segment it was written from, so "have the rows
//! of segment S, table T, day D reached Parquet?" is "does `part-<node>-S.parquet` exist in
//! `T/day=D`?". Numbers are never reused: a new segment gets 1 + the highest number found
//! in this node's WAL files and Parquet files.
//!
//! **Write** (once per aggregator flush, about every second): the closed rows of each table
//! are encoded as one IPC message, appended to the table's file of the active segment, and
//! every touched file is fsynced; only then are the batches added to the segment in memory
//! and one [`EmbeddedTables::update`] publishes recent rows, the `provisional_*` batches
//! (replaced, never persisted) and `closed_through` (never moves back). If the WAL append
//! fails, the files are cut back to their length before the write, the segment is sealed,
//! nothing closed is published and `write` returns the error (the caller may retry the same
//! windows without duplicating them).
//!
//! **Compaction**, when in-memory rows exceed `max_recent_rows`, when the oldest segment is
//! `compact_after_ms` old, and at `shutdown`: every segment is sealed (later writes start a
//! new one); for each segment, table and UTC day a zstd Parquet file, its rows sorted by
//! `Table::sort_key` (ClickHouse's `ORDER BY`: one target's rows contiguous) in row
//! groups of 64 Ki rows so a one-target read skips the rest by statistics, is written to a
//! `.tmp` name, fsynced, renamed, and its directory fsynced; then ONE `update` adds the
//! files and drops the segments' batches from `recent`; then the WAL files are deleted. A
//! reader holding any generation sees each row exactly once: before the update in
//! `recent`, after it in a file. Readers must take files from `TablesView::files`, never by
//! listing directories (a renamed part is on disk before it is published). Compaction
//! runs on the caller's (aggregator) thread, so the flush that triggers it takes longer by
//! the Parquet write (`pulse_store_compaction_seconds`).
//!
//! **Open**: this node's stale `.tmp` parts are deleted; every finished Parquet file is
//! listed into the view; each WAL segment is read (a message cut by a crash ends that
//! file's read and is logged and counted in `pulse_store_wal_truncated_total`) and its
//! rows are split by day; the days whose part file of that segment already exists (a crash
//! between rename and WAL delete, even half way through a segment's days) are skipped, the
//! rest go to `recent` as sealed segments compacted later. Restarting serves the old data.
//!
//! **What `kill -9` (or power loss) loses**: only the closed windows of a `write` that had
//! not returned, i.e. at most one flush interval (~1 s); if it died inside the WAL append,
//! the tables whose message was complete come back and a cut message is dropped. Provisional
//! rows and `closed_through` are not persisted (the aggregator republishes them at its
//! first flush). Events of windows still open live in the aggregator's state, which only a
//! graceful shutdown snapshots: that is the aggregator's part, not this sink's. A crash at
//! any point of a compaction neither loses nor duplicates rows (see Open).
//!
//! **Hot tail** (`hot_ticks.rs`): a compaction keeps a copy of its segments' newest
//! `stream_ticks` rows (within `hot_ticks_ms` of the newest, at most `hot_ticks_max_rows`)
//! in memory, published as `TablesView::hot_ticks` with the parts they mirror, and the
//! open reads them back from the newest parts; readers of the last hours then skip
//! Parquet. These copies are extra memory beside `max_recent_rows`, bounded on their own.
//!
//! **Bounds**: closed rows in memory stay under `max_recent_rows` while Parquet writing
//! works. If it fails (disk full, permissions), the error is logged and counted
//! (`pulse_store_write_errors_total{op="parquet"}`), the WAL keeps the rows, and
//! compaction is retried every `compaction_retry_ms`. Hard cap: above `max_memory_rows`
//! the oldest segments leave memory ("spilled", `pulse_store_unserved_rows`): they stay in
//! their WAL files (durable, reloaded by the next compaction or at restart) but readers do
//! not see them until Parquet writing recovers. Memory never grows past the cap; disk is
//! the remaining bound: when the WAL append itself fails, `write` returns the error.

use super::embedded_files::{self as files, Segment};
use super::hot_ticks;
use super::{Provisional, WindowSink};
use crate::AggregatorError;
use arrow::array::RecordBatch;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};
use pulse_schemas::{ClosedWindows, EmbeddedTables, HotTicks, Id, Table, TableRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

pub use super::embedded_files::{
    day_dir, list_parquet_files, parquet_dir, parse_part_name, parse_wal_name, part_path, utc_day,
    wal_dir, wal_segment_path,
};

/// Settings of the embedded store writer (`[store.embedded]`-style TOML section).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedStoreConfig {
    /// Root of the store: `wal/` and one directory per table. Default `./data`.
    pub data_dir: PathBuf,
    /// Closed rows held in memory before they are compacted into Parquet. Default 500 000.
    pub max_recent_rows: usize,
    /// Oldest age of rows in memory before compaction, in ms. Default 300 000 (5 min).
    pub compact_after_ms: u64,
    /// Hard cap on closed rows in memory when Parquet writing keeps failing; above it the
    /// oldest rows are served from nowhere until they reach Parquet (they stay in the WAL).
    /// Never below `max_recent_rows`. Default 2 000 000.
    pub max_memory_rows: usize,
    /// Wait after a failed compaction before trying again, in ms. Default 10 000.
    pub compaction_retry_ms: u64,
    /// How far back from its newest row the hot tail keeps compacted `stream_ticks` rows
    /// in memory (`hot_ticks.rs`), in ms; 0 turns it off. Default 7 200 000 (2 h: the
    /// open bucket of an hourly chart).
    pub hot_ticks_ms: u64,
    /// Rows the hot tail may hold (whole parts leave, oldest first). Default 500 000.
    pub hot_ticks_max_rows: usize,
}

impl Default for EmbeddedStoreConfig {
    fn default() -> Self {
        EmbeddedStoreConfig {
            data_dir: PathBuf::from("./data"),
            max_recent_rows: 500_000,
            compact_after_ms: 300_000,
            max_memory_rows: 2_000_000,
            compaction_retry_ms: 10_000,
            hot_ticks_ms: 7_200_000,
            hot_ticks_max_rows: 500_000,
        }
    }
}

/// The embedded store writer. See the module notes for the layout and guarantees.
pub struct EmbeddedSink {
    config: EmbeddedStoreConfig,
    node: Id,
    tables: Arc<EmbeddedTables>,
    /// Oldest first; the last one is active unless sealed.
    segments: Vec<Segment>,
    next_seq: u64,
    retry_at: Option<Instant>,
    /// In-memory copies of the newest compacted `stream_ticks` rows (`hot_ticks.rs`).
    hot: Vec<HotTicks>,
}

impl EmbeddedSink {
    /// Opens (or creates) the store in `config.data_dir` for `node` and publishes what it
    /// holds into `tables` (this sink is the only writer of `files` and `recent`).
    pub fn open(
        config: EmbeddedStoreConfig,
        node: Id,
        tables: Arc<EmbeddedTables>,
    ) -> Result<Self, AggregatorError> {
        let dir = config.data_dir.clone();
        files::create_dir_durable(&files::wal_dir(&dir))?;
        let me = node.as_str();
        let mut max_seq = 0;
        let mut listed = BTreeMap::new();
        for &table in Table::ALL {
            let removed = files::remove_temp_parts(&dir, table, me)?;
            if removed > 0 {
                tracing::info!(
                    table = table.name(),
                    removed,
                    "deleted unfinished Parquet parts"
                );
            }
            let list = files::list_parquet_files(&dir, table)?;
            for path in &list {
                if let Some((n, seq)) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(parse_part_name)
                    && n == me
                {
                    max_seq = max_seq.max(seq);
                }
            }
            listed.insert(table, list);
        }
        let wal = files::list_wal(&dir, me)?;
        if let Some((&seq, _)) = wal.last_key_value() {
            max_seq = max_seq.max(seq);
        }
        let mut sink = EmbeddedSink {
            config,
            node,
            tables,
            segments: Vec::new(),
            next_seq: max_seq + 1,
            retry_at: None,
            hot: Vec::new(),
        };
        let cap = sink.memory_cap();
        let (mut loaded, mut spilled) = (0, 0);
        for (seq, paths) in wal {
            let Some(mut seg) = sink.recover_segment(seq, paths)? else {
                continue;
            };
            if loaded + seg.rows > cap {
                seg.batches = None;
                spilled += seg.rows;
            } else {
                loaded += seg.rows;
            }
            sink.segments.push(seg);
        }
        if !sink.segments.is_empty() {
            tracing::info!(
                segments = sink.segments.len(),
                rows = loaded,
                spilled,
                "recovered closed rows from the WAL"
            );
        }
        let recent = sink.recent_batches();
        sink.hot = hot_ticks::load(
            listed
                .get(&Table::StreamTicks)
                .map(Vec::as_slice)
                .unwrap_or_default(),
            sink.config.hot_ticks_ms,
            sink.config.hot_ticks_max_rows,
        );
        let hot = sink.hot.clone();
        sink.tables.update(move |v| {
            v.files = listed;
            v.recent = recent;
            v.hot_ticks = hot;
        });
        sink.publish_gauges();
        Ok(sink)
    }

    /// The store's root directory.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// Retention: drops every Parquet day directory (`<table>/day=YYYY-MM-DD`) whose UTC
    /// day ends at or before `cutoff_ms`. Readers stop seeing its files first (a new view
    /// is published), then the directories are deleted. Returns `(table, day)` of each.
    /// Rows still in the WAL are not touched (retention is meant for days long compacted).
    pub fn drop_days_before(
        &mut self,
        cutoff_ms: i64,
    ) -> Result<Vec<(Table, String)>, AggregatorError> {
        let first_kept = format!("day={}", utc_day(cutoff_ms));
        let mut dropped = Vec::new();
        let mut dirs = Vec::new();
        for &table in Table::ALL {
            let root = parquet_dir(&self.config.data_dir, table);
            let entries = match std::fs::read_dir(&root) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(files::io_err(&root, e)),
            };
            for entry in entries {
                let path = entry.map_err(|e| files::io_err(&root, e))?.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if name.starts_with("day=") && name < first_kept.as_str() && path.is_dir() {
                    dropped.push((table, name["day=".len()..].to_owned()));
                    dirs.push(path);
                }
            }
        }
        if dirs.is_empty() {
            return Ok(dropped);
        }
        let gone = dirs.clone();
        self.hot.retain(|h| {
            !h.files
                .iter()
                .any(|f| gone.iter().any(|d| f.starts_with(d)))
        });
        let hot = self.hot.clone();
        self.tables.update(move |v| {
            for list in v.files.values_mut() {
                list.retain(|f| !gone.iter().any(|d| f.starts_with(d)));
            }
            v.hot_ticks = hot;
        });
        self.publish_gauges();
        for d in &dirs {
            std::fs::remove_dir_all(d).map_err(|e| files::io_err(d, e))?;
        }
        dropped.sort();
        tracing::info!(days = dropped.len(), "retention dropped day partitions");
        Ok(dropped)
    }

    /// Compacts every segment into Parquet now; returns the number of part files
    /// published. On error the rows stay in memory and in the WAL.
    pub fn compact_now(&mut self) -> Result<usize, AggregatorError> {
        if self.segments.is_empty() {
            return Ok(0);
        }
        let timer = Instant::now();
        let mut published = Vec::new();
        let mut hot_files = Vec::new();
        let mut done = vec![false; self.segments.len()];
        let mut failure = None;
        for seg in &mut self.segments {
            seg.seal();
        }
        for (i, seg) in self.segments.iter().enumerate() {
            match self.write_parts(seg) {
                Ok(paths) => {
                    hot_files.push(
                        paths
                            .iter()
                            .filter(|(t, _)| *t == Table::StreamTicks)
                            .map(|(_, p)| p.clone())
                            .collect::<Vec<_>>(),
                    );
                    published.extend(paths);
                    done[i] = true;
                }
                Err(e) => {
                    hot_files.push(Vec::new());
                    tracing::error!(segment = seg.seq, error = %e, "compaction into Parquet failed; rows stay in the WAL");
                    failure = Some(e);
                }
            }
        }
        let mut compacted = Vec::new();
        let mut kept = Vec::new();
        for ((seg, ok), files) in self.segments.drain(..).zip(done).zip(hot_files) {
            if ok {
                compacted.push((seg, files))
            } else {
                kept.push(seg)
            }
        }
        self.segments = kept;
        let count = published.len();
        if !compacted.is_empty() {
            self.keep_hot(&compacted);
            let recent = self.recent_batches();
            let hot = self.hot.clone();
            self.tables.update(move |v| {
                for (table, path) in published {
                    let list = v.files.entry(table).or_default();
                    if !list.contains(&path) {
                        list.push(path);
                    }
                }
                v.recent = recent;
                v.hot_ticks = hot;
            });
            for (seg, _) in compacted {
                for path in seg.wal.values() {
                    if let Err(e) = std::fs::remove_file(path) {
                        METRICS
                            .write_errors
                            .with_label_values(&["wal_delete"])
                            .inc();
                        tracing::warn!(path = %path.display(), error = %e, "cannot delete a compacted WAL file (skipped at next open)");
                    }
                }
            }
        }
        self.publish_gauges();
        METRICS
            .compaction_seconds
            .observe(timer.elapsed().as_secs_f64());
        match failure {
            Some(e) => {
                METRICS.write_errors.with_label_values(&["parquet"]).inc();
                self.retry_at =
                    Some(Instant::now() + Duration::from_millis(self.config.compaction_retry_ms));
                Err(e)
            }
            None => {
                self.retry_at = None;
                Ok(count)
            }
        }
    }

    /// Adds the `stream_ticks` rows of just compacted segments (with the tick parts they
    /// went to) to the hot tail and trims it. A failure only leaves those parts out of
    /// it (readers then read them from Parquet).
    fn keep_hot(&mut self, compacted: &[(Segment, Vec<PathBuf>)]) {
        let (window, max_rows) = (self.config.hot_ticks_ms, self.config.hot_ticks_max_rows);
        if window == 0 || max_rows == 0 {
            return;
        }
        let result = (|| -> Result<(), AggregatorError> {
            let mut newest: Option<i64> = None;
            for last in self.hot.iter().filter_map(|h| h.batches.last()) {
                newest = newest.max(hot_ticks::newest(std::slice::from_ref(last))?);
            }
            let ticks = |seg: &Segment| {
                seg.batches
                    .as_ref()
                    .and_then(|b| b.get(&Table::StreamTicks))
                    .cloned()
                    .unwrap_or_default()
            };
            for (seg, _) in compacted {
                newest = newest.max(hot_ticks::newest(&ticks(seg))?);
            }
            let Some(newest) = newest else {
                return Ok(());
            };
            let cutoff = newest.saturating_sub(i64::try_from(window).unwrap_or(i64::MAX));
            let mut new = Vec::new();
            for (seg, files) in compacted {
                // A spilled segment's rows are not in memory: its parts stay cold.
                if files.is_empty() || seg.batches.is_none() {
                    continue;
                }
                let batches = hot_ticks::tail(&ticks(seg), cutoff)?;
                if batches.is_empty() {
                    continue;
                }
                let whole = batches.iter().map(|b| b.num_rows()).sum::<usize>()
                    == ticks(seg).iter().map(|b| b.num_rows()).sum::<usize>();
                new.push(HotTicks {
                    files: files.clone(),
                    // A segment kept whole mirrors its parts whole.
                    from: if whole { i64::MIN } else { cutoff },
                    batches,
                });
            }
            self.hot.extend(new);
            Ok(())
        })();
        if let Err(e) = result {
            tracing::warn!(error = %e, "hot tail not updated; the new parts are read from Parquet");
        }
        hot_ticks::trim(&mut self.hot, window, max_rows);
    }

    fn memory_cap(&self) -> usize {
        self.config.max_memory_rows.max(self.config.max_recent_rows)
    }

    fn memory_rows(&self) -> usize {
        self.segments.iter().map(Segment::memory_rows).sum()
    }

    fn recent_batches(&self) -> BTreeMap<Table, Vec<RecordBatch>> {
        let mut out: BTreeMap<Table, Vec<RecordBatch>> = BTreeMap::new();
        for batches in self.segments.iter().filter_map(|s| s.batches.as_ref()) {
            for (table, list) in batches {
                out.entry(*table).or_default().extend(list.iter().cloned());
            }
        }
        out
    }

    fn publish_gauges(&self) {
        let memory = self.memory_rows();
        let all: usize = self.segments.iter().map(|s| s.rows).sum();
        METRICS.recent_rows.set(memory as i64);
        METRICS
            .hot_rows
            .set(self.hot.iter().map(HotTicks::rows).sum::<usize>() as i64);
        METRICS.unserved_rows.set((all - memory) as i64);
        METRICS
            .wal_bytes
            .set(self.segments.iter().map(|s| s.wal_bytes).sum::<u64>() as i64);
    }

    /// Loads one WAL segment at open, leaving out the days already in Parquet. `None` when
    /// nothing is left (its files are then deleted).
    fn recover_segment(
        &self,
        seq: u64,
        wal: BTreeMap<Table, PathBuf>,
    ) -> Result<Option<Segment>, AggregatorError> {
        let (dir, me) = (&self.config.data_dir, self.node.as_str());
        let mut seg = Segment::new(seq);
        seg.sealed = true;
        let kept = seg.batches.get_or_insert_with(BTreeMap::new);
        for (&table, path) in &wal {
            seg.wal_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            for (day, batches) in files::split_by_day(table, &read_wal_counted(path, table)?)? {
                if files::part_path(dir, table, files::day_start_ms(day), me, seq).exists() {
                    continue;
                }
                seg.rows += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
                kept.entry(table).or_default().extend(batches);
            }
        }
        seg.wal = wal;
        if seg.rows > 0 {
            return Ok(Some(seg));
        }
        for path in seg.wal.values() {
            std::fs::remove_file(path).map_err(|e| files::io_err(path, e))?;
        }
        Ok(None)
    }

    /// Writes (or finds already written) the Parquet parts of one sealed segment.
    fn write_parts(&self, seg: &Segment) -> Result<Vec<(Table, PathBuf)>, AggregatorError> {
        let (dir, me) = (&self.config.data_dir, self.node.as_str());
        let reloaded;
        let batches = match &seg.batches {
            Some(b) => b,
            None => {
                let mut from_wal = BTreeMap::new();
                for (&table, path) in &seg.wal {
                    from_wal.insert(table, read_wal_counted(path, table)?);
                }
                reloaded = from_wal;
                &reloaded
            }
        };
        let mut out = Vec::new();
        for (&table, list) in batches {
            for (day, day_batches) in files::split_by_day(table, list)? {
                let path = files::part_path(dir, table, files::day_start_ms(day), me, seg.seq);
                // An earlier attempt that failed on another day may have finished this one,
                // from the same rows.
                if !path.exists() {
                    files::write_part(&path, table, &day_batches)?;
                    METRICS.parquet_files_written.inc();
                }
                out.push((table, path));
            }
        }
        Ok(out)
    }

    fn maybe_compact(&mut self) {
        let now = Instant::now();
        if self.retry_at.is_some_and(|t| now < t) {
            return;
        }
        let too_old = self.segments.first().is_some_and(|s| {
            now.duration_since(s.started) >= Duration::from_millis(self.config.compact_after_ms)
        });
        let spilled = self.segments.iter().any(|s| s.batches.is_none());
        if too_old || spilled || self.memory_rows() > self.config.max_recent_rows {
            // Logged and counted inside; the rows stay in memory and in the WAL.
            let _ = self.compact_now();
        }
    }

    /// Above the hard cap, the oldest segments leave memory (they stay in the WAL).
    fn enforce_memory_cap(&mut self) {
        let cap = self.memory_cap();
        let mut memory = self.memory_rows();
        if memory <= cap {
            return;
        }
        for seg in &mut self.segments {
            if memory <= cap {
                break;
            }
            seg.seal();
            if seg.batches.take().is_some() {
                memory -= seg.rows;
                tracing::warn!(
                    segment = seg.seq,
                    rows = seg.rows,
                    "memory cap reached while Parquet writing fails: rows kept only in the WAL until it recovers"
                );
            }
        }
        let recent = self.recent_batches();
        self.tables.update(move |v| v.recent = recent);
        self.publish_gauges();
    }
}

fn read_wal_counted(path: &Path, table: Table) -> Result<Vec<RecordBatch>, AggregatorError> {
    let contents = files::read_wal(path, table)?;
    if contents.truncated {
        METRICS.wal_truncated.inc();
        tracing::warn!(path = %path.display(), batches = contents.batches.len(), "WAL file ends in a cut message (crash during a write); the cut message is ignored");
    }
    Ok(contents.batches)
}

impl WindowSink for EmbeddedSink {
    fn write(
        &mut self,
        closed: &ClosedWindows,
        provisional: &Provisional,
    ) -> Result<(), AggregatorError> {
        let timer = Instant::now();
        let batches = closed.batches();
        if !batches.is_empty() {
            if self.segments.last().is_none_or(|s| s.sealed) {
                self.segments.push(Segment::new(self.next_seq));
                self.next_seq += 1;
            }
            let (dir, me) = (&self.config.data_dir, self.node.as_str());
            let appended = match self.segments.last_mut() {
                Some(seg) => seg.append(dir, me, &batches),
                None => Err(AggregatorError::Arrow("no active WAL segment".into())),
            };
            if let Err(e) = appended {
                METRICS.write_errors.with_label_values(&["wal"]).inc();
                return Err(e);
            }
            for (table, batch) in &batches {
                METRICS
                    .rows_written
                    .with_label_values(&[table.name()])
                    .inc_by(batch.num_rows() as u64);
            }
        }
        let recent = (!batches.is_empty()).then(|| self.recent_batches());
        let ticks = nonempty_batch(&provisional.ticks);
        let minutes = nonempty_batch(&provisional.viewer_minutes);
        let qoe = nonempty_batch(&provisional.qoe_minutes);
        let closed_through = closed.closed_through;
        self.tables.update(move |v| {
            if let Some(recent) = recent {
                v.recent = recent;
            }
            v.provisional_ticks = ticks;
            v.provisional_viewer_minutes = minutes;
            v.provisional_qoe_minutes = qoe;
            v.closed_through = v.closed_through.max(closed_through);
        });
        self.publish_gauges();
        METRICS.flush_seconds.observe(timer.elapsed().as_secs_f64());
        self.maybe_compact();
        self.enforce_memory_cap();
        Ok(())
    }

    /// Compacts everything into Parquet. If that fails the rows are still durable in the
    /// WAL (loaded at the next open), so this logs the failure and returns `Ok`.
    fn drop_days_before(&mut self, cutoff_ms: i64) -> Result<usize, AggregatorError> {
        EmbeddedSink::drop_days_before(self, cutoff_ms).map(|d| d.len())
    }

    fn shutdown(&mut self) -> Result<(), AggregatorError> {
        if let Err(e) = self.compact_now() {
            tracing::error!(error = %e, "final compaction failed; closed rows stay in the WAL for the next start");
        }
        Ok(())
    }
}

fn nonempty_batch<R: TableRow>(rows: &[R]) -> Vec<RecordBatch> {
    if rows.is_empty() {
        Vec::new()
    } else {
        vec![R::to_batch(rows)]
    }
}

/// Prometheus metrics of the store writer (default registry, prefix `pulse_store_`).
struct StoreMetrics {
    rows_written: IntCounterVec,
    parquet_files_written: IntCounter,
    wal_bytes: IntGauge,
    recent_rows: IntGauge,
    hot_rows: IntGauge,
    unserved_rows: IntGauge,
    flush_seconds: Histogram,
    compaction_seconds: Histogram,
    write_errors: IntCounterVec,
    wal_truncated: IntCounter,
}

static METRICS: LazyLock<StoreMetrics> = LazyLock::new(StoreMetrics::register);

impl StoreMetrics {
    // Metric names and buckets are constants: construction cannot fail at run time.
    #[allow(clippy::expect_used)]
    fn register() -> StoreMetrics {
        let counter = |n: &str, h: &str| IntCounter::new(n, h).expect("valid metric");
        let gauge = |n: &str, h: &str| IntGauge::new(n, h).expect("valid metric");
        let hist = |n: &str, h: &str, start: f64, count: usize| {
            let buckets =
                prometheus::exponential_buckets(start, 2.0, count).expect("valid buckets");
            Histogram::with_opts(HistogramOpts::new(n, h).buckets(buckets)).expect("valid metric")
        };
        let m = StoreMetrics {
            rows_written: IntCounterVec::new(
                Opts::new(
                    "pulse_store_rows_written_total",
                    "Closed rows made durable in the WAL, by table",
                ),
                &["table"],
            )
            .expect("valid metric"),
            parquet_files_written: counter(
                "pulse_store_parquet_files_written_total",
                "Parquet part files written",
            ),
            wal_bytes: gauge(
                "pulse_store_wal_bytes",
                "Bytes in this node's WAL segments not yet compacted",
            ),
            recent_rows: gauge(
                "pulse_store_recent_rows",
                "Closed rows held in memory, not yet in Parquet",
            ),
            hot_rows: gauge(
                "pulse_store_hot_rows",
                "Compacted stream_ticks rows also held in memory (the hot tail)",
            ),
            unserved_rows: gauge(
                "pulse_store_unserved_rows",
                "Closed rows spilled out of memory (only in the WAL) while Parquet writing fails",
            ),
            flush_seconds: hist(
                "pulse_store_flush_seconds",
                "WAL append + fsync + publish per write",
                0.0005,
                15,
            ),
            compaction_seconds: hist(
                "pulse_store_compaction_seconds",
                "Compaction of recent rows into Parquet",
                0.01,
                12,
            ),
            write_errors: IntCounterVec::new(
                Opts::new(
                    "pulse_store_write_errors_total",
                    "Failed store writes, by operation (wal, parquet, wal_delete)",
                ),
                &["op"],
            )
            .expect("valid metric"),
            wal_truncated: counter(
                "pulse_store_wal_truncated_total",
                "WAL files found ending in a cut message at open",
            ),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(m.rows_written.clone()),
            Box::new(m.parquet_files_written.clone()),
            Box::new(m.wal_bytes.clone()),
            Box::new(m.recent_rows.clone()),
            Box::new(m.hot_rows.clone()),
            Box::new(m.unserved_rows.clone()),
            Box::new(m.flush_seconds.clone()),
            Box::new(m.compaction_seconds.clone()),
            Box::new(m.write_errors.clone()),
            Box::new(m.wal_truncated.clone()),
        ];
        for c in collectors {
            if let Err(e) = prometheus::register(c) {
                tracing::warn!(error = %e, "store metric not registered");
            }
        }
        m
    }
}
