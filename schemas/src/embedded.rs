//! The in-memory half of the embedded store, shared by its writer (the aggregator's
//! embedded sink) and its reader (the query service's DataFusion tables).
//!
//! The writer publishes a new immutable [`TablesView`] after each flush
//! (copy-on-write behind an `RwLock<Arc<…>>`); a reader takes one `Arc` and sees one
//! consistent generation: the Parquet files already written plus the recent Arrow
//! batches not yet in a Parquet file, never both for the same rows and never neither.

use crate::tables::Table;
use arrow::array::RecordBatch;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// One consistent generation of the embedded store.
#[derive(Clone, Debug, Default)]
pub struct TablesView {
    /// Increases with every published change (readers key caches on it).
    pub version: u64,
    /// Parquet files written, per table (`<data_dir>/<table>/day=YYYY-MM-DD/*.parquet`).
    pub files: BTreeMap<Table, Vec<PathBuf>>,
    /// Closed rows not yet compacted into Parquet, per table.
    pub recent: BTreeMap<Table, Vec<RecordBatch>>,
    /// Rows of `stream_ticks` for windows still open (`final: false`); replaced at each flush.
    pub provisional_ticks: Vec<RecordBatch>,
    /// Rows of `viewer_minutes` for minutes still open; replaced at each flush.
    pub provisional_viewer_minutes: Vec<RecordBatch>,
    /// Rows of `qoe_minutes` for minutes still open; replaced at each flush.
    pub provisional_qoe_minutes: Vec<RecordBatch>,
    /// Every tick starting before this time is closed (final).
    pub closed_through: i64,
    /// In-memory copies of the newest rows of `stream_ticks` Parquet parts (the "hot
    /// tail"), so that reads of the last hours (a dashboard's open buckets) need no
    /// Parquet decoding. Extra copies, never the only home of a row: a reader may use
    /// them instead of the files they mirror, never beside them.
    pub hot_ticks: Vec<HotTicks>,
}

/// Every row with `t >= from` of the `stream_ticks` parts `files`, in memory: batches
/// ordered by `t`, a few thousand rows each, so a reader of a short range touches few.
#[derive(Clone, Debug, Default)]
pub struct HotTicks {
    pub files: Vec<PathBuf>,
    pub from: i64,
    pub batches: Vec<RecordBatch>,
}

impl HotTicks {
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

impl TablesView {
    /// Rows held in memory (recent + provisional), the figure bounded by the writer.
    pub fn rows_in_memory(&self) -> usize {
        self.recent
            .values()
            .flatten()
            .map(RecordBatch::num_rows)
            .sum::<usize>()
            + self
                .provisional_ticks
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>()
            + self
                .provisional_viewer_minutes
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>()
            + self
                .provisional_qoe_minutes
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>()
    }
}

/// Shared handle to the current [`TablesView`].
#[derive(Debug, Default)]
pub struct EmbeddedTables {
    current: RwLock<Arc<TablesView>>,
}

impl EmbeddedTables {
    pub fn new() -> Arc<Self> {
        Arc::new(EmbeddedTables::default())
    }

    /// The current generation.
    pub fn view(&self) -> Arc<TablesView> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Applies `change` to a copy of the current generation and publishes it.
    pub fn update(&self, change: impl FnOnce(&mut TablesView)) {
        let mut guard = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut next = TablesView::clone(&guard);
        change(&mut next);
        next.version = guard.version + 1;
        *guard = Arc::new(next);
    }
}
