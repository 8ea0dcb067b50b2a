//! The one error enum of pulse-ingest, and its HTTP shape
//! `{"error":{"code":"...","message":"..."}}` (PROTOCOL.md §4).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// What can go wrong in ingest outside a single event's validation.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A `POST` body over `max_body_bytes`.
    #[error("body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The request body could not be read (client went away, bad chunking, …).
    #[error("could not read the request body: {0}")]
    BodyRead(String),
    /// The aggregator channel is closed: the node is shutting down.
    #[error("the aggregator is not accepting events (shutting down)")]
    AggregatorClosed,
}

impl IngestError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            IngestError::Config(_) => (StatusCode::INTERNAL_SERVER_ERROR, "config"),
            IngestError::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            IngestError::BodyRead(_) => (StatusCode::BAD_REQUEST, "bad_body"),
            IngestError::AggregatorClosed => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = serde_json::json!({"error": {"code": code, "message": self.to_string()}});
        (status, Json(body)).into_response()
    }
}
