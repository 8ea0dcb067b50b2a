//! `HealthConfig`: the `[health]` section (encoder sockets, health engine, alert fan-out).

use serde::{Deserialize, Serialize};

/// Settings of encoder ingest and the health component. Every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// After `connection_lost`, a stream with no encoder back within this long is ENDED (ms).
    /// Default 60 000.
    pub grace_ms: i64,
    /// Reports a rule window must hold before an alert can fire. Default 5.
    pub min_window_samples: usize,
    /// A connection whose first report is further than this from server time has its
    /// report times shifted by the difference (ms). Default 300 000.
    pub skew_threshold_ms: i64,
    /// Most streams tracked at once (live or in grace); more encoders are refused. Default 10 000.
    pub max_streams: usize,
    /// Most closed `health_ticks`/`alerts` rows waiting for the next store flush; beyond
    /// it the oldest are dropped and counted. Default 100 000.
    pub max_pending_rows: usize,
    /// How often silence, grace expiry and silent ticks are checked (ms). Default 1000.
    pub sweep_interval_ms: u64,
    /// Capacity of the alert fan-out to live feeds; a feed that falls further behind
    /// skips to the current state (counted). Default 4096.
    pub alert_channel_capacity: usize,
    /// Largest encoder message in bytes (reports are ~300 bytes). Default 4096.
    pub max_frame_bytes: usize,
    /// Encoder socket closed after this long without any frame (ms). Default 120 000.
    pub idle_timeout_ms: u64,
    /// Rejected frames before an encoder socket is closed with 1008 (resets on a good report).
    /// Default 100.
    pub max_consecutive_rejects: u32,
    /// Most channels with stored alert-rule overrides. Default 100 000.
    pub max_rule_channels: usize,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            grace_ms: 60_000,
            min_window_samples: 5,
            skew_threshold_ms: 300_000,
            max_streams: 10_000,
            max_pending_rows: 100_000,
            sweep_interval_ms: 1000,
            alert_channel_capacity: 4096,
            max_frame_bytes: 4096,
            idle_timeout_ms: 120_000,
            max_consecutive_rejects: 100,
            max_rule_channels: 100_000,
        }
    }
}

impl HealthConfig {
    pub fn validate(&self) -> Result<(), crate::AggregatorError> {
        let bad = |m: &str| Err(crate::AggregatorError::Config(format!("[health] {m}")));
        if self.grace_ms < 0 {
            return bad(&format!("grace_ms must be ≥ 0, got {}", self.grace_ms));
        }
        if self.sweep_interval_ms == 0 || self.alert_channel_capacity == 0 {
            return bad("sweep_interval_ms and alert_channel_capacity must be > 0");
        }
        if self.max_streams == 0 || self.max_pending_rows == 0 || self.max_frame_bytes < 256 {
            return bad("max_streams and max_pending_rows must be > 0, max_frame_bytes ≥ 256");
        }
        Ok(())
    }
}
