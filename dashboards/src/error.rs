//! The dashboard routes' one error type: a small HTML page (people open these URLs in
//! a browser) with the status and what was expected.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the access records are unavailable: {0}")]
    Unavailable(String),
}

impl DashboardError {
    pub fn status(&self) -> StatusCode {
        match self {
            DashboardError::BadRequest(_) => StatusCode::BAD_REQUEST,
            DashboardError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            DashboardError::NotFound(_) => StatusCode::NOT_FOUND,
            DashboardError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Escapes text for HTML element content.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = format!(
            "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>Pulse: {code}</title><main style=\"font-family:system-ui;max-width:40rem;margin:2rem auto;padding:0 1rem\">\
             <h1>{code} {reason}</h1><p>{msg}</p></main></html>",
            code = status.as_u16(),
            reason = status.canonical_reason().unwrap_or(""),
            msg = html_escape(&self.to_string()),
        );
        (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            html_escape("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
    }
}
