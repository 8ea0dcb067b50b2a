//! Prometheus metrics of the query service (prefix `pulse_query_`), registered in
//! `prometheus::default_registry()` where every crate registers, and the `/metrics`
//! handler that renders that whole registry in the text format.

use axum::extract::{MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, TextEncoder,
};
use std::sync::LazyLock;
use std::time::Instant;

fn register<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    // A second registration (several routers in one test process) is harmless: the
    // first one already exports the same collector.
    if let Err(e) = prometheus::default_registry().register(Box::new(c.clone()))
        && !matches!(e, prometheus::Error::AlreadyReg)
    {
        tracing::warn!(error = %e, "could not register a query metric");
    }
    c
}

/// `pulse_query_requests_total{route,status}`.
pub static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "pulse_query_requests_total",
        "HTTP requests answered by the query service",
    );
    register(IntCounterVec::new(opts, &["route", "status"]).expect("valid metric definition"))
});

/// `pulse_query_request_seconds{route}`.
pub static REQUEST_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    let opts = HistogramOpts::new(
        "pulse_query_request_seconds",
        "Time to answer a query request",
    )
    .buckets(vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]);
    register(HistogramVec::new(opts, &["route"]).expect("valid metric definition"))
});

/// `pulse_query_bad_histograms_total`: stored startup histograms that could not be read.
pub static BAD_HISTOGRAMS: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "pulse_query_bad_histograms_total",
            "Stored startup histograms skipped because they could not be deserialized",
        )
        .expect("valid metric definition"),
    )
});

/// `pulse_query_recent_tick_rows`: closed `stream_ticks` rows of ClickHouse mirrored in
/// this query node's memory (`store/clickhouse_recent.rs`).
pub static RECENT_TICK_ROWS: LazyLock<prometheus::IntGauge> = LazyLock::new(|| {
    register(
        prometheus::IntGauge::new(
            "pulse_query_recent_tick_rows",
            "Closed stream_ticks rows of ClickHouse mirrored in memory for the open-bucket reads",
        )
        .expect("valid metric definition"),
    )
});

/// `pulse_query_tick_reads_total{path}`: per-tick reads of `stream_ticks` on the embedded
/// store answered from memory or by SQL (`store/memory_reads.rs`).
pub static TICK_READS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "pulse_query_tick_reads_total",
                "Per-tick reads of stream_ticks on the embedded store, by path: memory (recent, hot tail and open rows) or sql (DataFusion over Parquet)",
            ),
            &["path"],
        )
        .expect("valid metric definition"),
    )
});

/// `pulse_query_slices_total{source,outcome}`: slices of the embedded store's tables
/// (`source`: `memory` batches or `parquet` parts) a scan read (`scanned`) or passed
/// over by their time span (`skipped`), see `store/time_sliced.rs`.
pub static SLICES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register(
        IntCounterVec::new(
            Opts::new(
                "pulse_query_slices_total",
                "Batches and Parquet parts of the embedded store a scan read (scanned) or passed over by their time span (skipped)",
            ),
            &["source", "outcome"],
        )
        .expect("valid metric definition"),
    )
});

/// `pulse_query_parquet_parts_without_span_total`: parts whose footer gave no time
/// statistics (each is then read by every query of its day).
pub static BAD_FILE_SPANS: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "pulse_query_parquet_parts_without_span_total",
            "Parquet parts whose footer gave no time statistics",
        )
        .expect("valid metric definition"),
    )
});

/// `pulse_query_snapshots_built_total`: DataFusion contexts built (one per store version read).
pub static SNAPSHOTS_BUILT: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "pulse_query_snapshots_built_total",
            "DataFusion contexts built over a new generation of the embedded store",
        )
        .expect("valid metric definition"),
    )
});

/// `pulse_query_series_cache_requests_total{result="hit"|"miss"}`: series requests whose
/// first buckets came from the closed-window cache (hit) or all from the store (miss).
pub static SERIES_CACHE_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "pulse_query_series_cache_requests_total",
        "Series requests served partly from the closed-window cache (hit) or not (miss)",
    );
    register(IntCounterVec::new(opts, &["result"]).expect("valid metric definition"))
});

/// `pulse_query_series_points_total{source="cache"|"store"}`: points answered by the
/// series routes, by where they came from (with the cache on).
pub static SERIES_POINTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "pulse_query_series_points_total",
        "Series points answered, from the closed-window cache or computed from the store",
    );
    register(IntCounterVec::new(opts, &["source"]).expect("valid metric definition"))
});

/// `pulse_query_series_cache_evictions_total{reason="capacity"|"expired"|"invalidated"}`.
pub static SERIES_CACHE_EVICTIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "pulse_query_series_cache_evictions_total",
        "Cached series runs dropped: bounds reached, older than the TTL, or no longer valid",
    );
    register(IntCounterVec::new(opts, &["reason"]).expect("valid metric definition"))
});

/// `pulse_query_live_feeds`: creator live-feed sockets open now.
pub static LIVE_FEEDS: LazyLock<prometheus::IntGauge> = LazyLock::new(|| {
    register(
        prometheus::IntGauge::new(
            "pulse_query_live_feeds",
            "Creator live-feed WebSockets open",
        )
        .expect("valid metric definition"),
    )
});

/// `pulse_query_live_lagged_total`: alert messages a slow live feed skipped (it re-sent
/// the current state instead).
pub static LIVE_LAGGED: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "pulse_query_live_lagged_total",
            "Alert messages skipped by live feeds that fell behind the broadcast",
        )
        .expect("valid metric definition"),
    )
});

/// `pulse_query_sql_queries_total{format}`: ad-hoc SQL queries answered.
pub static SQL_QUERIES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "pulse_query_sql_queries_total",
        "Ad-hoc SQL queries (POST /api/sql) answered, by answer format",
    );
    register(IntCounterVec::new(opts, &["format"]).expect("valid metric definition"))
});

/// `pulse_query_sql_refused_total{rule}`: ad-hoc SQL queries refused, by the rule broken.
pub static SQL_REFUSED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "pulse_query_sql_refused_total",
        "Ad-hoc SQL queries refused, by the rule they broke (its error code)",
    );
    register(IntCounterVec::new(opts, &["rule"]).expect("valid metric definition"))
});

/// `pulse_query_channel_cache_full_total`: target→channel lookups not remembered because
/// the cache was full (`channel_cache_entries`).
pub static CHANNEL_CACHE_FULL: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "pulse_query_channel_cache_full_total",
            "Target channel lookups not cached because the cache was full",
        )
        .expect("valid metric definition"),
    )
});

/// `pulse_query_trending_refreshes_total`: trending boards computed.
pub static TRENDING_REFRESHES: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "pulse_query_trending_refreshes_total",
            "Trending score boards computed from the store",
        )
        .expect("valid metric definition"),
    )
});

/// `pulse_query_trending_truncated_total`: refreshes that hit `trending_max_rows`.
pub static TRENDING_TRUNCATED: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "pulse_query_trending_truncated_total",
            "Trending refreshes whose content rows were cut at trending_max_rows",
        )
        .expect("valid metric definition"),
    )
});

/// `pulse_query_records_truncated_total`: analytics answers that read `max_records`
/// catalog records of one kind (older ones were left out).
pub static RECORDS_TRUNCATED: LazyLock<IntCounter> = LazyLock::new(|| {
    register(
        IntCounter::new(
            "pulse_query_records_truncated_total",
            "Analytics answers whose catalog records were cut at catalog.max_records",
        )
        .expect("valid metric definition"),
    )
});

/// Registers every metric now, so `/metrics` lists them before the first request.
pub fn init() {
    LazyLock::force(&CHANNEL_CACHE_FULL);
    LazyLock::force(&TRENDING_REFRESHES);
    LazyLock::force(&TRENDING_TRUNCATED);
    LazyLock::force(&RECORDS_TRUNCATED);
    LazyLock::force(&REQUESTS);
    LazyLock::force(&REQUEST_SECONDS);
    LazyLock::force(&BAD_HISTOGRAMS);
    LazyLock::force(&SNAPSHOTS_BUILT);
    LazyLock::force(&SLICES);
    LazyLock::force(&TICK_READS);
    LazyLock::force(&RECENT_TICK_ROWS);
    LazyLock::force(&BAD_FILE_SPANS);
    LazyLock::force(&LIVE_FEEDS);
    LazyLock::force(&LIVE_LAGGED);
    LazyLock::force(&SQL_QUERIES);
    LazyLock::force(&SQL_REFUSED);
}

/// Middleware counting and timing each request by its route template (never the raw
/// path: ids would explode the label set).
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    REQUEST_SECONDS
        .with_label_values(&[route.as_str()])
        .observe(start.elapsed().as_secs_f64());
    REQUESTS
        .with_label_values(&[route.as_str(), resp.status().as_str()])
        .inc();
    resp
}

/// `GET /metrics`: the default registry in the Prometheus text format.
pub async fn render() -> Response {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&prometheus::default_registry().gather(), &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], buf).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn counter(name: &str, help: &str) -> IntCounter {
    register(IntCounter::new(name, help).expect("valid metric definition"))
}

/// `pulse_query_media_jobs_total{outcome}`: media jobs finished (done, requeued, failed).
pub static MEDIA_JOBS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "pulse_query_media_jobs_total",
        "Media jobs finished by the worker pool, by outcome",
    );
    register(IntCounterVec::new(opts, &["outcome"]).expect("valid metric definition"))
});

/// `pulse_query_media_jobs_resumed_total`: jobs taken again after their lease passed.
pub static MEDIA_JOBS_RESUMED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "pulse_query_media_jobs_resumed_total",
        "Media jobs claimed again after a worker stopped holding them (crash, restart)",
    )
});

/// `pulse_query_media_jobs_refused_total`: clips refused because the queue was full.
pub static MEDIA_JOBS_REFUSED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "pulse_query_media_jobs_refused_total",
        "Media jobs refused because max_queued_jobs were pending",
    )
});

/// `pulse_query_webhooks_total{outcome}`: webhooks applied, redelivered, refused.
pub static WEBHOOKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let opts = Opts::new(
        "pulse_query_webhooks_total",
        "Platform webhooks by outcome (applied, redelivery, bad_signature, stale)",
    );
    register(IntCounterVec::new(opts, &["outcome"]).expect("valid metric definition"))
});

/// `pulse_query_retention_removed_total`: VODs removed by the retention job.
pub static RETENTION_REMOVED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "pulse_query_retention_removed_total",
        "VODs removed by the retention job (age or test recording)",
    )
});

/// `pulse_query_content_events_dropped_total`: analytics events of catalog actions
/// dropped because the hand-off to the aggregator was full.
pub static CONTENT_EVENTS_DROPPED: LazyLock<IntCounter> = LazyLock::new(|| {
    counter(
        "pulse_query_content_events_dropped_total",
        "Analytics events of clip/VOD actions dropped because the aggregator hand-off was full",
    )
});

pub fn media_jobs_resumed() {
    MEDIA_JOBS_RESUMED.inc();
}

pub fn media_jobs_refused() {
    MEDIA_JOBS_REFUSED.inc();
}
