//! `IngestConfig`: every limit of the beacon endpoints, with the defaults of PROTOCOL.md §1.

use crate::error::IngestError;
use serde::{Deserialize, Serialize};

/// Settings of the beacon endpoints (`[ingest]` in the TOML file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Sustained events per second one WebSocket connection (or one peer IP on `POST`)
    /// may send. Default 50.
    pub rate_per_s: u32,
    /// Token-bucket size: events a client may send at once above the sustained rate.
    /// Default 500.
    pub burst: u32,
    /// A WebSocket client that has more than this many events dropped by the rate
    /// limit within `abuse_window_ms` is closed with 1008. Default 1000.
    pub abuse_drop_limit: u32,
    /// Length of the abuse window, in ms. Default 10 000.
    pub abuse_window_ms: u64,
    /// Largest WebSocket message (and frame) in bytes; larger ones close the socket
    /// with 1009. Default 65 536 (64 KiB).
    pub max_frame_bytes: usize,
    /// Largest `POST /v1/beacons` body in bytes; larger ones get 413. Default 1 048 576 (1 MiB).
    pub max_body_bytes: usize,
    /// A session whose first event is further than this from receive time has all its
    /// timestamps shifted; a session-less event that far off takes the receive time.
    /// Default 300 000 (5 minutes).
    pub skew_threshold_ms: i64,
    /// Most sessions one generation of the skew table holds (the table holds two
    /// generations, so at most twice this). Default 250 000.
    pub skew_table_max_entries: usize,
    /// The skew table rotates generations this often (ms): a session not seen for one
    /// to two periods is forgotten. Default 600 000 (10 minutes).
    pub skew_table_rotate_ms: i64,
    /// Most peer IPs one generation of the `POST` rate-limit table holds (two
    /// generations are kept). Default 10 000.
    pub peer_table_max_entries: usize,
    /// The `POST` rate-limit table rotates this often (ms). Default 60 000.
    pub peer_table_rotate_ms: i64,
    /// Read buffer of one WebSocket, in bytes (tungstenite's default is 128 KiB, which
    /// 10 000 sockets cannot afford). Default 4096.
    pub ws_read_buffer_bytes: usize,
    /// Write buffer of one WebSocket, in bytes. Default 4096.
    pub ws_write_buffer_bytes: usize,
    /// Most bytes of replies one WebSocket may have queued when its peer stops reading
    /// (must exceed `ws_write_buffer_bytes`). Default 65 536.
    pub ws_max_write_buffer_bytes: usize,
    /// A WebSocket silent for this long (ms) is closed with 1000. Players send a
    /// heartbeat every 10 s while a view is open. Default 120 000.
    pub idle_timeout_ms: u64,
    /// Token of server-side emitters and load generators (`Authorization: Bearer <t>`
    /// or `?token=<t>`); they are exempt from rate limits. Default none (nobody exempt).
    pub trusted_token: Option<String>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            rate_per_s: 50,
            burst: 500,
            abuse_drop_limit: 1000,
            abuse_window_ms: 10_000,
            max_frame_bytes: 64 * 1024,
            max_body_bytes: 1024 * 1024,
            skew_threshold_ms: 300_000,
            skew_table_max_entries: 250_000,
            skew_table_rotate_ms: 600_000,
            peer_table_max_entries: 10_000,
            peer_table_rotate_ms: 60_000,
            ws_read_buffer_bytes: 4096,
            ws_write_buffer_bytes: 4096,
            ws_max_write_buffer_bytes: 64 * 1024,
            idle_timeout_ms: 120_000,
            trusted_token: None,
        }
    }
}

impl IngestConfig {
    /// Checks the values that would make the endpoints misbehave (or tungstenite panic).
    pub fn validate(&self) -> Result<(), IngestError> {
        let bad =
            |field: &str, why: &str| Err(IngestError::Config(format!("ingest.{field}: {why}")));
        if self.rate_per_s == 0 {
            return bad("rate_per_s", "must be at least 1");
        }
        if self.burst == 0 {
            return bad("burst", "must be at least 1");
        }
        if self.abuse_window_ms == 0 {
            return bad("abuse_window_ms", "must be at least 1");
        }
        if self.max_frame_bytes < 1024 {
            return bad("max_frame_bytes", "must be at least 1024");
        }
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes", "must be at least 1024");
        }
        if self.skew_threshold_ms <= 0 {
            return bad("skew_threshold_ms", "must be positive");
        }
        if self.skew_table_max_entries == 0 || self.peer_table_max_entries == 0 {
            return bad(
                "skew_table_max_entries/peer_table_max_entries",
                "must be at least 1",
            );
        }
        if self.skew_table_rotate_ms <= 0 || self.peer_table_rotate_ms <= 0 {
            return bad(
                "skew_table_rotate_ms/peer_table_rotate_ms",
                "must be positive",
            );
        }
        if self.ws_read_buffer_bytes == 0 {
            return bad("ws_read_buffer_bytes", "must be at least 1");
        }
        if self.ws_max_write_buffer_bytes <= self.ws_write_buffer_bytes {
            return bad(
                "ws_max_write_buffer_bytes",
                "must be greater than ws_write_buffer_bytes",
            );
        }
        if self.idle_timeout_ms == 0 {
            return bad("idle_timeout_ms", "must be at least 1");
        }
        if self.trusted_token.as_deref() == Some("") {
            return bad(
                "trusted_token",
                "must not be empty (leave it out to trust nobody)",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_unknown_keys_refused() {
        assert!(IngestConfig::default().validate().is_ok());
        let c: IngestConfig = serde_json::from_str(r#"{"rate_per_s":10}"#).expect("parses");
        assert_eq!((c.rate_per_s, c.burst), (10, 500));
        assert!(serde_json::from_str::<IngestConfig>(r#"{"rate":10}"#).is_err());
        let c = IngestConfig {
            ws_max_write_buffer_bytes: 10,
            ws_write_buffer_bytes: 10,
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }
}
