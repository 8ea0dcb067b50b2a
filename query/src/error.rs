//! `QueryError`: every way a query request fails, and its HTTP answer
//! `{"error":{"code":"...","message":"..."}}` (PROTOCOL.md §4).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A query parameter or body field is missing or malformed (400 `invalid_parameter`).
    #[error("{name}: {message}")]
    InvalidParameter { name: &'static str, message: String },
    /// The request body is not the expected JSON (400 `invalid_body`).
    #[error("{0}")]
    InvalidBody(String),
    /// The answer would exceed a configured bound (400 `too_large`).
    #[error("{0}")]
    TooLarge(String),
    /// Nothing is known about the requested object (404 `not_found`).
    #[error("{0}")]
    NotFound(String),
    /// The store took longer than `query_timeout_ms` (503 `timeout`).
    #[error("the query took longer than {0} ms")]
    Timeout(u64),
    /// No or unknown bearer token (401 `unauthorized`).
    #[error("{0}")]
    Unauthorized(String),
    /// The token may not see this object (403 `forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// A part this route needs is not running on this node (503 `unavailable`).
    #[error("{0}")]
    Unavailable(String),
    /// The store failed to answer (500 `store_error`).
    #[error("store: {0}")]
    Store(String),
}

impl QueryError {
    pub fn invalid(name: &'static str, message: impl Into<String>) -> Self {
        QueryError::InvalidParameter {
            name,
            message: message.into(),
        }
    }

    /// The machine-readable `code` of the error body.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::InvalidParameter { .. } => "invalid_parameter",
            QueryError::InvalidBody(_) => "invalid_body",
            QueryError::TooLarge(_) => "too_large",
            QueryError::NotFound(_) => "not_found",
            QueryError::Timeout(_) => "timeout",
            QueryError::Unauthorized(_) => "unauthorized",
            QueryError::Forbidden(_) => "forbidden",
            QueryError::Unavailable(_) => "unavailable",
            QueryError::Store(_) => "store_error",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            QueryError::InvalidParameter { .. }
            | QueryError::InvalidBody(_)
            | QueryError::TooLarge(_) => StatusCode::BAD_REQUEST,
            QueryError::NotFound(_) => StatusCode::NOT_FOUND,
            QueryError::Timeout(_) | QueryError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            QueryError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            QueryError::Forbidden(_) => StatusCode::FORBIDDEN,
            QueryError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<datafusion::error::DataFusionError> for QueryError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        QueryError::Store(e.to_string())
    }
}

impl From<arrow::error::ArrowError> for QueryError {
    fn from(e: arrow::error::ArrowError) -> Self {
        QueryError::Store(e.to_string())
    }
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(code = self.code(), error = %self, "query failed");
        }
        let body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let e = QueryError::invalid("step", "must be one of 5000");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.code(), "invalid_parameter");
        assert_eq!(e.to_string(), "step: must be one of 5000");
        assert_eq!(
            QueryError::NotFound("x".into()).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            QueryError::Timeout(5).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            QueryError::Store("x".into()).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
