//! Stream health and alerts as the creator sees them (PROTOCOL.md §3, METRICS.md §4):
//! the live-feed message shapes, the alert rules a channel may override, and the
//! [`LiveHealth`] trait through which the query service (live feed, health routes)
//! reads the health component that runs beside ingest.

use crate::id::Id;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The alert kinds of PROTOCOL.md §3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    BitrateDrop,
    FpsDrop,
    PacketLoss,
    HighLatency,
    ConnectionLost,
}

impl AlertKind {
    pub const ALL: [AlertKind; 5] = [
        AlertKind::BitrateDrop,
        AlertKind::FpsDrop,
        AlertKind::PacketLoss,
        AlertKind::HighLatency,
        AlertKind::ConnectionLost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::BitrateDrop => "bitrate_drop",
            AlertKind::FpsDrop => "fps_drop",
            AlertKind::PacketLoss => "packet_loss",
            AlertKind::HighLatency => "high_latency",
            AlertKind::ConnectionLost => "connection_lost",
        }
    }

    /// Index into per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// Connection status of METRICS.md §4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionStatus {
    Excellent,
    Good,
    Poor,
    Offline,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Excellent => "excellent",
            ConnectionStatus::Good => "good",
            ConnectionStatus::Poor => "poor",
            ConnectionStatus::Offline => "offline",
        }
    }
}

/// `{"type":"health",...}` of the live feed, once a second per live stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthUpdate {
    pub stream: Id,
    pub ts: i64,
    pub status: ConnectionStatus,
    pub bitrate_kbps: i64,
    pub target_bitrate_kbps: Option<i64>,
    pub fps: f64,
    pub resolution: Option<String>,
    pub latency_ms: Option<i64>,
    pub packet_loss_pct: Option<f64>,
    /// Filled in by the live feed from the beacon side (0 when unknown).
    pub viewers: i64,
    pub uptime_pct: f64,
}

/// `{"type":"alert",...}` of the live feed, on every alert change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertUpdate {
    pub stream: Id,
    pub ts: i64,
    pub alert: AlertKind,
    pub severity: Severity,
    pub state: AlertState,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
    pub guide: String,
}

/// One message of the live feed, tagged by `type`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LiveUpdate {
    Health(HealthUpdate),
    Alert(AlertUpdate),
}

/// An alert change as broadcast to every feed: the channel it belongs to (feeds filter
/// on it) and the wire JSON, serialized once for all subscribers.
#[derive(Clone, Debug)]
pub struct AlertBroadcast {
    pub channel: Id,
    pub alert: AlertUpdate,
    pub json: Arc<str>,
}

/// The alert thresholds of METRICS.md §4; a channel may override each
/// (`PUT /api/channels/:id/alert-rules`, fields left out keep their default).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertRules {
    /// `bitrate_drop` warning when the 10 s mean is below this % of target. Default 70.
    pub bitrate_warning_pct: f64,
    /// `bitrate_drop` critical below this % of target. Default 40.
    pub bitrate_critical_pct: f64,
    /// `bitrate_drop` resolves after `resolve_after_ms` at ≥ this % of target. Default 80.
    pub bitrate_resolve_pct: f64,
    /// `fps_drop` warning below this % of target fps. Default 90.
    pub fps_warning_pct: f64,
    /// `fps_drop` resolves at ≥ this % of target fps. Default 95.
    pub fps_resolve_pct: f64,
    /// `packet_loss` warning above this mean loss %. Default 2.
    pub loss_warning_pct: f64,
    /// `packet_loss` critical above this mean loss %. Default 5.
    pub loss_critical_pct: f64,
    /// `packet_loss` resolves at ≤ this loss %. Default 1.
    pub loss_resolve_pct: f64,
    /// `high_latency` warning above this mean latency. Default 5000 ms.
    pub latency_warning_ms: f64,
    /// `high_latency` resolves at ≤ this latency. Default 4000 ms.
    pub latency_resolve_ms: f64,
    /// The window the means are taken over. Default 10 000 ms.
    pub window_ms: i64,
    /// How long every report must be on the good side before an alert resolves
    /// (at least `window_ms`, so a resolved alert cannot fire again at once). Default 10 000 ms.
    pub resolve_after_ms: i64,
    /// `connection_lost` after this long without a report while LIVE. Default 5000 ms.
    pub silence_ms: i64,
    /// Target bitrate from the stream settings, used when the encoder sends none.
    pub target_bitrate_kbps: Option<i64>,
    /// Target fps from the stream settings, used when the encoder sends none.
    pub target_fps: Option<f64>,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            bitrate_warning_pct: 70.0,
            bitrate_critical_pct: 40.0,
            bitrate_resolve_pct: 80.0,
            fps_warning_pct: 90.0,
            fps_resolve_pct: 95.0,
            loss_warning_pct: 2.0,
            loss_critical_pct: 5.0,
            loss_resolve_pct: 1.0,
            latency_warning_ms: 5000.0,
            latency_resolve_ms: 4000.0,
            window_ms: 10_000,
            resolve_after_ms: 10_000,
            silence_ms: 5000,
            target_bitrate_kbps: None,
            target_fps: None,
        }
    }
}

impl AlertRules {
    /// Checks that every threshold is in range and that each alert's resolve threshold
    /// is on the good side of its fire threshold (hysteresis). The message names the
    /// field, what was expected and what came.
    pub fn validate(&self) -> Result<(), String> {
        let pct = [
            ("bitrate_warning_pct", self.bitrate_warning_pct),
            ("bitrate_critical_pct", self.bitrate_critical_pct),
            ("bitrate_resolve_pct", self.bitrate_resolve_pct),
            ("fps_warning_pct", self.fps_warning_pct),
            ("fps_resolve_pct", self.fps_resolve_pct),
            ("loss_warning_pct", self.loss_warning_pct),
            ("loss_critical_pct", self.loss_critical_pct),
            ("loss_resolve_pct", self.loss_resolve_pct),
        ];
        for (name, v) in pct {
            if !(0.0..=100.0).contains(&v) {
                return Err(format!(
                    "{name}: expected a percentage from 0 to 100, got {v}"
                ));
            }
        }
        let order = [
            (
                "bitrate_critical_pct < bitrate_warning_pct < bitrate_resolve_pct",
                self.bitrate_critical_pct < self.bitrate_warning_pct
                    && self.bitrate_warning_pct < self.bitrate_resolve_pct,
            ),
            (
                "fps_warning_pct < fps_resolve_pct",
                self.fps_warning_pct < self.fps_resolve_pct,
            ),
            (
                "loss_resolve_pct < loss_warning_pct < loss_critical_pct",
                self.loss_resolve_pct < self.loss_warning_pct
                    && self.loss_warning_pct < self.loss_critical_pct,
            ),
            (
                "0 ≤ latency_resolve_ms < latency_warning_ms ≤ 600000",
                0.0 <= self.latency_resolve_ms
                    && self.latency_resolve_ms < self.latency_warning_ms
                    && self.latency_warning_ms <= 600_000.0,
            ),
            (
                "1000 ≤ window_ms ≤ 300000",
                (1000..=300_000).contains(&self.window_ms),
            ),
            (
                "window_ms ≤ resolve_after_ms ≤ 600000",
                self.window_ms <= self.resolve_after_ms && self.resolve_after_ms <= 600_000,
            ),
            (
                "1000 ≤ silence_ms ≤ 600000",
                (1000..=600_000).contains(&self.silence_ms),
            ),
            (
                "target_bitrate_kbps from 1 to 1000000",
                self.target_bitrate_kbps
                    .is_none_or(|t| (1..=1_000_000).contains(&t)),
            ),
            (
                "target_fps from 1 to 500",
                self.target_fps.is_none_or(|t| (1.0..=500.0).contains(&t)),
            ),
        ];
        for (rule, ok) in order {
            if !ok {
                return Err(format!(
                    "alert rules: expected {rule}, got {}",
                    serde_json::to_string(self).unwrap_or_default()
                ));
            }
        }
        Ok(())
    }
}

/// What `GET /api/streams/:id/health` shows from memory: the latest health and the
/// alerts firing now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamHealthNow {
    pub channel: Id,
    pub latest: HealthUpdate,
    pub active_alerts: Vec<AlertUpdate>,
}

/// Why rules could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{0}")]
    Invalid(String),
    #[error("alert rules could not be stored: {0}")]
    Storage(String),
}

/// The health component as the query service sees it.
pub trait LiveHealth: Send + Sync + 'static {
    /// The component's clock (epoch ms), so readers judge silence by the same time.
    fn now(&self) -> i64;
    /// Alert changes as they happen (bounded: a subscriber that falls behind by more
    /// than the channel's capacity gets `Lagged` and should re-read [`Self::channel_now`]).
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<AlertBroadcast>;
    /// The live streams of `channel` on this node, now.
    fn channel_now(&self, channel: &Id, now: i64) -> Vec<StreamHealthNow>;
    /// One stream, now (`None` when this node holds nothing about it).
    fn stream_now(&self, stream: &Id, now: i64) -> Option<StreamHealthNow>;
    /// The rules in force for `channel` (its overrides, else the defaults).
    fn rules(&self, channel: &Id) -> AlertRules;
    /// Replaces `channel`'s overrides (validated, stored durably before this returns).
    fn set_rules(&self, channel: &Id, rules: AlertRules) -> Result<(), RulesError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_the_protocol() {
        let h = LiveUpdate::Health(HealthUpdate {
            stream: Id::new_unchecked("s1"),
            ts: 5,
            status: ConnectionStatus::Excellent,
            bitrate_kbps: 5000,
            target_bitrate_kbps: Some(5500),
            fps: 60.0,
            resolution: Some("1920x1080".into()),
            latency_ms: Some(1200),
            packet_loss_pct: Some(0.1),
            viewers: 3,
            uptime_pct: 99.2,
        });
        let v = serde_json::to_value(&h).expect("json");
        assert_eq!(v["type"], "health");
        assert_eq!(v["status"], "excellent");
        assert_eq!(v["resolution"], "1920x1080");
        let a = LiveUpdate::Alert(AlertUpdate {
            stream: Id::new_unchecked("s1"),
            ts: 5,
            alert: AlertKind::BitrateDrop,
            severity: Severity::Warning,
            state: AlertState::Firing,
            value: 3100.0,
            threshold: 3850.0,
            message: "m".into(),
            guide: "g".into(),
        });
        let v = serde_json::to_value(&a).expect("json");
        assert_eq!(v["type"], "alert");
        assert_eq!(v["alert"], "bitrate_drop");
        assert_eq!(v["severity"], "warning");
        assert_eq!(v["state"], "firing");
    }

    #[test]
    fn rules_default_valid_and_inverted_thresholds_refused() {
        AlertRules::default()
            .validate()
            .expect("defaults are valid");
        let r: AlertRules = serde_json::from_str(r#"{"bitrate_warning_pct":60}"#).expect("partial");
        assert_eq!(r.bitrate_critical_pct, 40.0);
        r.validate().expect("valid");
        let bad = AlertRules {
            bitrate_resolve_pct: 50.0,
            ..AlertRules::default()
        };
        let e = bad.validate().expect_err("inverted");
        assert!(
            e.contains("bitrate_warning_pct < bitrate_resolve_pct"),
            "{e}"
        );
        assert!(serde_json::from_str::<AlertRules>(r#"{"bitrate_warn":1}"#).is_err());
    }
}
