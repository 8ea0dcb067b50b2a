//! Sinks: where closed windows go. One file per store: `embedded.rs` (with its file
//! layout, WAL and Parquet parts in `embedded_files.rs`) and `clickhouse.rs` (the scale
//! path, with its bounded on-disk queue in `spool.rs`); `hot_ticks.rs` is the embedded store's
//! in-memory copy of the newest `stream_ticks` rows of its Parquet parts.

use pulse_schemas::{ClosedWindows, TickRow, ViewerMinuteRow};

pub mod clickhouse;
pub mod embedded;
mod embedded_files;
pub mod hot_ticks;
pub mod spool;
pub mod with_health;

/// Rows of windows that are still open: shown with `final: false`, replaced at every flush.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provisional {
    pub ticks: Vec<TickRow>,
    pub viewer_minutes: Vec<ViewerMinuteRow>,
    pub qoe_minutes: Vec<pulse_schemas::QoeMinuteRow>,
}

/// A store writer, called from the aggregator's own thread once per flush (about
/// every second). Blocking I/O is fine here: it never runs on a tokio worker.
pub trait WindowSink: Send {
    /// Makes `closed` durable (or spools it) and publishes `provisional`.
    fn write(
        &mut self,
        closed: &ClosedWindows,
        provisional: &Provisional,
    ) -> Result<(), crate::AggregatorError>;

    /// Whether `write` uses its `provisional` rows; when not, the live loop does not
    /// compute them.
    fn wants_provisional(&self) -> bool {
        true
    }

    /// Final flush on graceful shutdown: everything accepted is durable when this returns.
    fn shutdown(&mut self) -> Result<(), crate::AggregatorError>;

    /// Retention: drop every stored UTC day that ends at or before `cutoff_ms`. May run
    /// in the background (the ClickHouse sink hands it to its sender). Returns the days
    /// dropped now. Default: a sink that stores nothing drops nothing.
    fn drop_days_before(&mut self, _cutoff_ms: i64) -> Result<usize, crate::AggregatorError> {
        Ok(0)
    }
}
