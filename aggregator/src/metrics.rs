//! Prometheus metrics of the aggregator, registered once in
//! `prometheus::default_registry()` (served at `/metrics` by the query crate).
//!
//! The core keeps plain counters ([`AggregatorStats`]); the live loop and replay move
//! them into these metrics with [`Metrics::record`], by difference with the last seen
//! values, so the core stays free of global state.

use crate::engine::AggregatorStats;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};
use std::sync::LazyLock;

/// The aggregator's metrics.
pub struct Metrics {
    pub events_total: IntCounter,
    pub late_events_total: IntCounter,
    pub orphan_events_total: IntCounter,
    /// Sessions booked into the `other` QoE group (past `max_qoe_groups`).
    pub qoe_groups_overflowed_total: IntCounter,
    /// `reason`: `pending_full`, `max_sessions`, `max_targets`, `max_viewer_minutes`.
    pub dropped_events_total: IntCounterVec,
    pub pending_events: IntGauge,
    pub open_sessions: IntGauge,
    pub input_queue_depth: IntGauge,
    pub flush_seconds: Histogram,
    pub watermark_ms: IntGauge,
    /// Flushes that kept the previous provisional rows (their cost budget not yet spent).
    pub provisional_reused_total: IntCounter,
    /// Rewinds of the state applied ahead of the watermark (an event came behind it).
    pub rewinds_total: IntCounter,
    /// Batches the live loop held for want of room in pending (ingest waits meanwhile).
    pub intake_held_total: IntCounter,
}

fn register<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    // A second registration (two aggregators in one test process) is harmless.
    let _ = prometheus::default_registry().register(Box::new(c.clone()));
    c
}

fn counter(name: &str, help: &str) -> IntCounter {
    register(IntCounter::new(name, help).expect("valid metric name"))
}

fn gauge(name: &str, help: &str) -> IntGauge {
    register(IntGauge::new(name, help).expect("valid metric name"))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    events_total: counter(
        "pulse_aggregator_events_total",
        "Events handed to the aggregator.",
    ),
    late_events_total: counter(
        "pulse_aggregator_late_events_total",
        "Events older than the watermark on arrival (counted, dropped).",
    ),
    orphan_events_total: counter(
        "pulse_aggregator_orphan_events_total",
        "Playback events of sessions that had already ended.",
    ),
    qoe_groups_overflowed_total: counter(
        "pulse_aggregator_qoe_groups_overflowed_total",
        "Sessions booked into the 'other' device/country/player group of qoe_minutes.",
    ),
    dropped_events_total: register(
        IntCounterVec::new(
            Opts::new(
                "pulse_aggregator_dropped_events_total",
                "Events dropped by a bound, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric name"),
    ),
    pending_events: gauge(
        "pulse_aggregator_pending_events",
        "Events waiting for the watermark.",
    ),
    open_sessions: gauge("pulse_aggregator_open_sessions", "Open view sessions."),
    input_queue_depth: gauge(
        "pulse_aggregator_input_queue_depth",
        "Events waiting in the ingest → aggregator channel.",
    ),
    flush_seconds: register(
        Histogram::with_opts(
            HistogramOpts::new(
                "pulse_aggregator_flush_seconds",
                "Time of one flush (advance + provisional + sink write).",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )
        .expect("valid metric name"),
    ),
    watermark_ms: gauge(
        "pulse_aggregator_watermark_ms",
        "Current watermark (epoch ms).",
    ),
    provisional_reused_total: counter(
        "pulse_aggregator_provisional_reused_total",
        "Flushes that published the previous provisional rows again instead of recomputing them.",
    ),
    rewinds_total: counter(
        "pulse_aggregator_rewinds_total",
        "Times the state applied ahead of the watermark went back to a mark (an event arrived behind it).",
    ),
    intake_held_total: counter(
        "pulse_aggregator_intake_held_total",
        "Batches held back for want of room in the pending buffer (backpressure: ingest waits).",
    ),
});

impl Metrics {
    /// The process-wide metrics (registered on first use).
    pub fn get() -> &'static Metrics {
        &METRICS
    }

    /// Adds what changed between two readings of the core's stats and sets the gauges.
    pub fn record(&self, before: &AggregatorStats, now: &AggregatorStats) {
        let d = |a: u64, b: u64| b.saturating_sub(a);
        self.events_total.inc_by(d(before.events, now.events));
        self.late_events_total.inc_by(d(before.late, now.late));
        self.rewinds_total.inc_by(d(before.rewinds, now.rewinds));
        self.orphan_events_total
            .inc_by(d(before.orphans, now.orphans));
        self.qoe_groups_overflowed_total
            .inc_by(d(before.qoe_groups_overflowed, now.qoe_groups_overflowed));
        for (reason, a, b) in [
            (
                "pending_full",
                before.dropped_pending_full,
                now.dropped_pending_full,
            ),
            (
                "max_sessions",
                before.dropped_max_sessions,
                now.dropped_max_sessions,
            ),
            (
                "max_targets",
                before.dropped_max_targets,
                now.dropped_max_targets,
            ),
            (
                "max_viewer_minutes",
                before.dropped_viewer_minutes,
                now.dropped_viewer_minutes,
            ),
        ] {
            let n = d(a, b);
            if n > 0 {
                self.dropped_events_total
                    .with_label_values(&[reason])
                    .inc_by(n);
            }
        }
        self.pending_events.set(now.pending as i64);
        self.open_sessions.set(now.sessions as i64);
        self.watermark_ms.set(now.watermark);
    }
}

/// Metrics of the ClickHouse sink (`pulse_aggregator_clickhouse_*`).
pub struct ClickHouseMetrics {
    /// Rows acknowledged by ClickHouse, all tables.
    pub rows_inserted_total: IntCounter,
    /// INSERT statements acknowledged.
    pub inserts_total: IntCounter,
    /// Failed INSERT (or migration) attempts; each is retried.
    pub insert_errors_total: IntCounter,
    /// Flushes refused because the spool was full (their rows are lost; logged).
    pub spool_dropped_total: IntCounter,
    /// Rows of the refused flushes.
    pub spool_dropped_rows_total: IntCounter,
    pub spool_bytes: IntGauge,
    pub spool_files: IntGauge,
}

static CLICKHOUSE: LazyLock<ClickHouseMetrics> = LazyLock::new(|| ClickHouseMetrics {
    rows_inserted_total: counter(
        "pulse_aggregator_clickhouse_rows_inserted_total",
        "Rows acknowledged by ClickHouse (all tables).",
    ),
    inserts_total: counter(
        "pulse_aggregator_clickhouse_inserts_total",
        "INSERT statements acknowledged by ClickHouse.",
    ),
    insert_errors_total: counter(
        "pulse_aggregator_clickhouse_insert_errors_total",
        "Failed ClickHouse INSERT or migration attempts (retried).",
    ),
    spool_dropped_total: counter(
        "pulse_aggregator_clickhouse_spool_dropped_total",
        "Flushes refused because the on-disk spool was full.",
    ),
    spool_dropped_rows_total: counter(
        "pulse_aggregator_clickhouse_spool_dropped_rows_total",
        "Rows of the flushes refused because the on-disk spool was full.",
    ),
    spool_bytes: gauge(
        "pulse_aggregator_clickhouse_spool_bytes",
        "Bytes waiting in the ClickHouse spool.",
    ),
    spool_files: gauge(
        "pulse_aggregator_clickhouse_spool_files",
        "Flushes waiting in the ClickHouse spool.",
    ),
});

impl ClickHouseMetrics {
    pub fn get() -> &'static ClickHouseMetrics {
        &CLICKHOUSE
    }
}

/// Metrics of the stream-health component (`crate::live_health`).
pub struct HealthMetrics {
    pub reports_total: IntCounter,
    pub alerts_total: IntCounter,
    /// Closed health/alert rows dropped because the sink fell behind.
    pub dropped_rows_total: IntCounter,
    pub lifecycle_errors_total: IntCounter,
    pub streams: IntGauge,
}

static HEALTH_METRICS: LazyLock<HealthMetrics> = LazyLock::new(|| HealthMetrics {
    reports_total: counter(
        "pulse_aggregator_health_reports_total",
        "Encoder health reports evaluated.",
    ),
    alerts_total: counter(
        "pulse_aggregator_health_alert_transitions_total",
        "Alert transitions (firing or resolved) raised.",
    ),
    dropped_rows_total: counter(
        "pulse_aggregator_health_dropped_rows_total",
        "health_ticks/alerts rows dropped because the sink fell behind.",
    ),
    lifecycle_errors_total: counter(
        "pulse_aggregator_health_lifecycle_errors_total",
        "LIVE/ENDED changes the access records refused to take.",
    ),
    streams: gauge(
        "pulse_aggregator_health_streams",
        "Streams tracked by the health component (live or in grace).",
    ),
});

impl HealthMetrics {
    pub fn get() -> &'static HealthMetrics {
        &HEALTH_METRICS
    }
}
