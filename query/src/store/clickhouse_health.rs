//! Reads of the stream-health tables (`health_ticks`, `alerts`) on one ClickHouse
//! snapshot: the same rows, merges and JSON keys as [`super::health_reads`] gives on
//! the embedded store, so the health routes answer alike on both.
//!
//! Unlike the analytics reads, these are not cut at `closed_through`: a health tick or
//! an alert transition is written once, complete, by the node that holds the stream's
//! encoder (within one flush), so a row that is in the store is final. `FINAL` folds a
//! row inserted twice (a retried INSERT) into one.

use super::clickhouse::ClickHouseSnapshot;
use crate::error::QueryError;
use pulse_schemas::Id;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Health ticks merged per tick across nodes: report-weighted means, min of mins,
/// sums of counts (as `health_reads::health_ticks`). One `?` for the stream, one for `from`.
/// No aliases: ClickHouse aliases are visible query-wide, so `sum(reports) AS reports`
/// would turn `sum(bitrate_mean_kbps * reports)` into a nested aggregate. RowBinary
/// reads columns by position.
pub const HEALTH_TICKS_SQL: &str = "SELECT t, max(channel), sum(reports), sum(seconds_reported), \
     sum(bitrate_mean_kbps * reports) / sum(reports), min(bitrate_min_kbps), \
     max(target_bitrate_kbps), sum(fps_mean * reports) / sum(reports), max(resolution), \
     avg(latency_mean_ms), avg(packet_loss_mean_pct), sum(dropped_frames), max(status) \
     FROM health_ticks FINAL WHERE stream = ? AND t >= ? GROUP BY t ORDER BY t";

/// The newest alert transitions of a stream, newest first (reversed in Rust); the
/// limit is a number formatted in, the stream bound.
pub fn alert_history_sql(limit: usize) -> String {
    format!(
        "SELECT ts, node, channel, alert, severity, state, value, threshold, message \
         FROM alerts FINAL WHERE stream = ? \
         ORDER BY ts DESC, alert DESC, state DESC LIMIT {limit}"
    )
}

/// One merged health tick, as the health route shows it.
#[derive(Debug, Deserialize, Serialize, clickhouse::Row)]
struct HealthTickJson {
    t: i64,
    channel: String,
    reports: i64,
    seconds_reported: i64,
    bitrate_mean_kbps: f64,
    bitrate_min_kbps: i64,
    target_bitrate_kbps: Option<i64>,
    fps_mean: f64,
    resolution: Option<String>,
    latency_mean_ms: Option<f64>,
    packet_loss_mean_pct: Option<f64>,
    dropped_frames: i64,
    status: String,
}

/// One alert transition, as the alerts route shows it.
#[derive(Debug, Deserialize, Serialize, clickhouse::Row)]
struct AlertJson {
    ts: i64,
    node: String,
    channel: String,
    alert: String,
    severity: String,
    state: String,
    value: f64,
    threshold: f64,
    message: String,
}

fn to_values<T: Serialize>(rows: Vec<T>) -> Result<Vec<Value>, QueryError> {
    rows.into_iter()
        .map(|r| {
            serde_json::to_value(r)
                .map_err(|e| QueryError::Store(format!("health row to JSON: {e}")))
        })
        .collect()
}

impl ClickHouseSnapshot {
    /// Health ticks of `stream` from `from` on (epoch ms), merged per tick, by `t`.
    pub async fn health_ticks(&self, stream: &Id, from: i64) -> Result<Vec<Value>, QueryError> {
        let rows: Vec<HealthTickJson> = self
            .client()
            .query(HEALTH_TICKS_SQL)
            .bind(stream.as_str())
            .bind(from)
            .fetch_all()
            .await
            .map_err(super::clickhouse::ch)?;
        to_values(rows)
    }

    /// Alert transitions of `stream`, oldest first, at most `limit` (the newest ones).
    pub async fn alert_history(&self, stream: &Id, limit: usize) -> Result<Vec<Value>, QueryError> {
        let mut rows: Vec<AlertJson> = self
            .client()
            .query(&alert_history_sql(limit))
            .bind(stream.as_str())
            .fetch_all()
            .await
            .map_err(super::clickhouse::ch)?;
        rows.reverse();
        to_values(rows)
    }
}
