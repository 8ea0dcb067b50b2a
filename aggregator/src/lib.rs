//! pulse-aggregator (being written).

use pulse_schemas::Event;

pub mod sinks;

/// The bounded hand-off from ingest to the aggregator: one message is one accepted
/// batch (at most `MAX_BATCH_EVENTS` events). The channel's capacity in batches is
/// configured, so the queue is bounded by rows; a full channel makes ingest wait
/// (backpressure), it never grows.
pub type EventSender = tokio::sync::mpsc::Sender<Vec<Event>>;
pub type EventReceiver = tokio::sync::mpsc::Receiver<Vec<Event>>;

/// Errors of the aggregator and its sinks.
#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    #[error("store I/O on {path}: {source}")]
    Io { path: String, #[source] source: std::io::Error },
    #[error("Arrow/Parquet: {0}")]
    Arrow(String),
    #[error("snapshot {path}: {message}")]
    Snapshot { path: String, message: String },
}
