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
    /// A part this route needs is not running on this node (503 `unavailable`).
    #[error("{0}")]
    Unavailable(String),
    /// The store failed to answer (500 `store_error`).
    #[error("store: {0}")]
    Store(String),
    /// No valid bearer token where one is needed, or a bad webhook signature (401 `unauthorized`).
    #[error("{0}")]
    Unauthorized(String),
    /// The principal may not do this (403 `forbidden`).
    #[error("{0}")]
    Forbidden(String),
    /// Well-formed but not acceptable: a bad clip range, a wrong state (422 `unprocessable`).
    #[error("{0}")]
    Unprocessable(String),
    /// The same thing exists already (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// The request body is larger than allowed (413 `payload_too_large`).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A bounded queue is full (503 `busy`).
    #[error("{0}")]
    Busy(String),
    /// A media tool or the object store failed (500 `media_error`).
    #[error("media: {0}")]
    Media(String),
    /// An ad-hoc SQL query broke a rule (`POST /api/sql`): 400/422 with the rule's code.
    #[error("{}", .0.message)]
    SqlRefused(crate::sql::SqlRefusal),
}

impl From<crate::sql::SqlRefusal> for QueryError {
    fn from(r: crate::sql::SqlRefusal) -> Self {
        QueryError::SqlRefused(r)
    }
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
            QueryError::Unprocessable(_) => "unprocessable",
            QueryError::Conflict(_) => "conflict",
            QueryError::PayloadTooLarge(_) => "payload_too_large",
            QueryError::Media(_) => "media_error",
            QueryError::Busy(_) => "busy",
            QueryError::SqlRefused(r) => r.rule.code(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            QueryError::InvalidParameter { .. }
            | QueryError::InvalidBody(_)
            | QueryError::TooLarge(_) => StatusCode::BAD_REQUEST,
            QueryError::NotFound(_) => StatusCode::NOT_FOUND,
            QueryError::Timeout(_) | QueryError::Busy(_) | QueryError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            QueryError::Store(_) | QueryError::Media(_) => StatusCode::INTERNAL_SERVER_ERROR,
            QueryError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            QueryError::Forbidden(_) => StatusCode::FORBIDDEN,
            QueryError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            QueryError::Conflict(_) => StatusCode::CONFLICT,
            QueryError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            QueryError::SqlRefused(r) => r.rule.status(),
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

impl From<sqlx::Error> for QueryError {
    fn from(e: sqlx::Error) -> Self {
        QueryError::Store(format!("catalog: {e}"))
    }
}

impl From<sqlx::migrate::MigrateError> for QueryError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        QueryError::Store(format!("catalog migrations: {e}"))
    }
}

impl From<object_store::Error> for QueryError {
    fn from(e: object_store::Error) -> Self {
        QueryError::Media(format!("object store: {e}"))
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
