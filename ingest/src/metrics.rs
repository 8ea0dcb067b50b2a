//! Prometheus metrics of pulse-ingest, registered once in `prometheus::default_registry()`
//! (served by the query crate's `/metrics`), all prefixed `pulse_ingest_`.

use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};
use std::sync::LazyLock;

/// The ingest metrics (one set per process).
pub struct IngestMetrics {
    /// `pulse_ingest_events_accepted_total`: events handed to the aggregator channel.
    pub events_accepted: IntCounter,
    /// `pulse_ingest_events_rejected_total{reason}`: events (or whole frames) refused,
    /// by `RejectReason::as_str` (rate-limit drops included as `rate_limited`).
    pub events_rejected: IntCounterVec,
    /// `pulse_ingest_frames_total`: WebSocket messages and `POST` bodies received.
    pub frames: IntCounter,
    /// `pulse_ingest_connections`: open beacon WebSockets.
    pub connections: IntGauge,
    /// `pulse_ingest_closed_total{code}`: WebSockets closed by the server, by close code
    /// (1000 idle, 1001 shutdown, 1008 rate-limit abuse, 1009 frame too large).
    pub closed: IntCounterVec,
    /// `pulse_ingest_rate_limited_total`: events dropped by a rate limit.
    pub rate_limited: IntCounter,
    /// `pulse_ingest_skew_corrected_total{kind="session|event"}`.
    pub skew_corrected: IntCounterVec,
    /// `pulse_ingest_queue_depth`: events waiting in the aggregator channel.
    pub queue_depth: IntGauge,
}

fn register<C: Collector + Clone + 'static>(c: C) -> C {
    if let Err(e) = prometheus::default_registry().register(Box::new(c.clone())) {
        tracing::warn!("pulse_ingest metric not registered: {e}");
    }
    c
}

// Names and labels below are constants known to be valid, so `expect` cannot fire
// (nothing a client sends reaches these constructors).
fn counter(name: &str, help: &str) -> IntCounter {
    register(IntCounter::with_opts(Opts::new(name, help)).expect("valid constant metric name"))
}

fn counter_vec(name: &str, help: &str, label: &str) -> IntCounterVec {
    register(
        IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid constant metric name"),
    )
}

fn gauge(name: &str, help: &str) -> IntGauge {
    register(IntGauge::with_opts(Opts::new(name, help)).expect("valid constant metric name"))
}

static METRICS: LazyLock<IngestMetrics> = LazyLock::new(|| IngestMetrics {
    events_accepted: counter(
        "pulse_ingest_events_accepted_total",
        "Events handed to the aggregator.",
    ),
    events_rejected: counter_vec(
        "pulse_ingest_events_rejected_total",
        "Events or frames refused, by reason.",
        "reason",
    ),
    frames: counter(
        "pulse_ingest_frames_total",
        "WebSocket messages and POST bodies received.",
    ),
    connections: gauge("pulse_ingest_connections", "Open beacon WebSockets."),
    closed: counter_vec(
        "pulse_ingest_closed_total",
        "WebSockets closed by the server, by close code.",
        "code",
    ),
    rate_limited: counter(
        "pulse_ingest_rate_limited_total",
        "Events dropped by a rate limit.",
    ),
    skew_corrected: counter_vec(
        "pulse_ingest_skew_corrected_total",
        "Clock-skew corrections: sessions shifted, session-less events re-stamped.",
        "kind",
    ),
    queue_depth: gauge(
        "pulse_ingest_queue_depth",
        "Events waiting in the aggregator channel.",
    ),
});

/// The process-wide ingest metrics (registered on first use).
pub fn metrics() -> &'static IngestMetrics {
    &METRICS
}

impl IngestMetrics {
    /// Counts the refusals of one frame by reason.
    pub(crate) fn record_rejections(&self, by_reason: &[(pulse_schemas::RejectReason, u32)]) {
        for (reason, n) in by_reason {
            self.events_rejected
                .with_label_values(&[reason.as_str()])
                .inc_by(u64::from(*n));
        }
    }

    pub(crate) fn record_close(&self, code: u16) {
        self.closed
            .with_label_values(&[code.to_string().as_str()])
            .inc();
    }

    pub(crate) fn record_skew(&self, stats: crate::clock_skew::SkewStats) {
        if stats.sessions_corrected > 0 {
            self.skew_corrected
                .with_label_values(&["session"])
                .inc_by(stats.sessions_corrected);
        }
        if stats.events_corrected > 0 {
            self.skew_corrected
                .with_label_values(&["event"])
                .inc_by(stats.events_corrected);
        }
    }
}

/// Metrics of the encoder endpoint (`GET /v1/encoder`).
pub struct EncoderMetrics {
    /// Encoder sockets open now.
    pub connections: IntGauge,
    /// Upgrade refusals by `reason`: `no_key`, `wrong_key`, `bad_stream`, `unavailable`.
    pub refused: IntCounterVec,
    /// Frames refused, by `reason` (the `RejectReason` names).
    pub rejected: IntCounterVec,
    pub reports: IntCounter,
}

static ENCODER_METRICS: LazyLock<EncoderMetrics> = LazyLock::new(|| EncoderMetrics {
    connections: gauge(
        "pulse_ingest_encoder_connections",
        "Encoder WebSockets open now.",
    ),
    refused: counter_vec(
        "pulse_ingest_encoder_refused_total",
        "Encoder upgrades refused before the WebSocket opened, by reason.",
        "reason",
    ),
    rejected: counter_vec(
        "pulse_ingest_encoder_frames_rejected_total",
        "Encoder frames refused, by reason.",
        "reason",
    ),
    reports: counter(
        "pulse_ingest_encoder_reports_total",
        "Encoder health reports accepted.",
    ),
});

/// The encoder endpoint's metrics.
pub fn encoder_metrics() -> &'static EncoderMetrics {
    &ENCODER_METRICS
}
