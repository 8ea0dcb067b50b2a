//! The HTTP routes of the query service (issue 2 scope) and the router that mounts
//! them, with the request metrics middleware.

pub mod analytics;
pub mod auth;
pub mod catalog;
pub mod clips;
pub mod content;
pub mod export;
pub mod guard;
pub mod health;
pub mod params;
pub mod platform;
pub mod sql;
pub mod vods;

use crate::QueryState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 once the store is open and the aggregator runs, else 503.
pub async fn readyz(State(state): State<QueryState>) -> (StatusCode, &'static str) {
    if state.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Every route of this crate, counted and timed by [`crate::metrics::track`].
pub fn router(state: QueryState) -> Router {
    crate::metrics::init();
    let body_limit = state.config().max_body_bytes;
    Router::new()
        .route(
            "/api/analytics/streams/{id}",
            get(analytics::stream_summary),
        )
        .route("/api/analytics/series", get(analytics::series))
        .route(
            "/api/analytics/channels/{id}",
            get(content::channel_analytics),
        )
        .route("/api/vods/{id}/analytics", get(content::vod_analytics))
        .route("/api/clips/{id}/analytics", get(content::clip_analytics))
        .route("/api/clips/{id}/stats", get(content::clip_stats))
        .route("/api/clips/trending", get(content::trending_clips))
        .route("/api/channels/{id}/top-vods", get(content::top_vods))
        .route("/api/channels/{id}/top-clips", get(content::top_clips))
        .route(
            "/api/analytics/charts/viewers",
            get(analytics::viewers_chart),
        )
        .route(
            "/api/analytics/export",
            post(export::export).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route(
            "/api/sql",
            post(sql::run_sql).layer(DefaultBodyLimit::max(
                state.config().sql_max_text_bytes.saturating_add(4096),
            )),
        )
        .route("/api/streams/{id}/health", get(health::stream_health))
        .route("/api/streams/{id}/alerts", get(health::stream_alerts))
        .route(
            "/api/channels/{id}/alert-rules",
            put(health::put_alert_rules)
                .get(health::get_alert_rules)
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/v1/live", get(crate::live::live_feed))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::render))
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state)
}
