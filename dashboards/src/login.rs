//! `GET /dashboard/login?token=…&next=…` and `GET /dashboard/logout`.
//!
//! Login checks the token with the access records (401 when unknown), then answers
//! `303 See Other` to `next` with the session cookie
//! ([`pulse_query::routes::auth::session_cookie`]). `next` defaults to the analytics page
//! and must be a same-site path ([`safe_next`]); the token never appears in the page
//! that follows (the redirect drops it from the address bar, `Referrer-Policy:
//! no-referrer` keeps it out of referrers).

use crate::DashboardState;
use crate::error::DashboardError;
use crate::metrics::LOGINS;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pulse_query::routes::auth::{clear_session_cookie, session_cookie};
use serde::Deserialize;

/// Where login goes without a `next`.
pub const DEFAULT_NEXT: &str = "/dashboard/analytics";
/// Longest `next` accepted.
const MAX_NEXT: usize = 2048;

/// Query of the login route.
#[derive(Debug, Default, Deserialize)]
pub struct LoginParams {
    token: Option<String>,
    next: Option<String>,
}

/// `next` when it is a path on this site: starts with one `/` (not `//` or `/\`, which
/// browsers read as another host), no backslash, no control or space characters, at
/// most 2 KiB. Otherwise the reason.
pub fn safe_next(next: &str) -> Result<&str, String> {
    let bytes = next.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(format!(
            "next: expected a path on this site starting with \"/\", got {next:?}"
        ));
    }
    if matches!(bytes.get(1), Some(b'/') | Some(b'\\')) {
        return Err(format!(
            "next: expected a path on this site, got {next:?} (a \"//\" start names another host)"
        ));
    }
    if next.len() > MAX_NEXT {
        return Err(format!(
            "next: expected at most {MAX_NEXT} bytes, got {}",
            next.len()
        ));
    }
    if let Some(c) = next
        .chars()
        .find(|c| *c == '\\' || c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "next: expected no backslash, space or control character, got {c:?}"
        ));
    }
    Ok(next)
}

pub async fn login(
    State(state): State<DashboardState>,
    params: Result<Query<LoginParams>, QueryRejection>,
) -> Result<Response, DashboardError> {
    let Query(p) = params.map_err(|e| {
        LOGINS.with_label_values(&["bad_request"]).inc();
        DashboardError::BadRequest(format!("expected ?token=…&next=…: {}", e.body_text()))
    })?;
    let next = p.next.as_deref().unwrap_or(DEFAULT_NEXT);
    let next = safe_next(next).map_err(|e| {
        LOGINS.with_label_values(&["bad_next"]).inc();
        DashboardError::BadRequest(e)
    })?;
    let token = p.token.as_deref().map(str::trim).unwrap_or_default();
    if token.is_empty() {
        LOGINS.with_label_values(&["bad_request"]).inc();
        return Err(DashboardError::BadRequest(
            "expected ?token=<API token>, got none".into(),
        ));
    }
    let known = state
        .access
        .principal(token)
        .await
        .map_err(|e| DashboardError::Unavailable(e.to_string()))?;
    if known.is_none() {
        LOGINS.with_label_values(&["unknown_token"]).inc();
        return Err(DashboardError::Unauthorized(
            "unknown or revoked token: ask for a new login link".into(),
        ));
    }
    let cookie = session_cookie(
        token,
        state.config.session_max_age_s,
        state.config.secure_cookie,
    )
    .ok_or_else(|| {
        LOGINS.with_label_values(&["bad_request"]).inc();
        DashboardError::BadRequest("the token holds characters a cookie cannot carry".into())
    })?;
    let (Ok(cookie), Ok(location)) = (HeaderValue::from_str(&cookie), HeaderValue::from_str(next))
    else {
        LOGINS.with_label_values(&["bad_request"]).inc();
        return Err(DashboardError::BadRequest(
            "token or next is not a valid header value".into(),
        ));
    };
    LOGINS.with_label_values(&["ok"]).inc();
    Ok(redirect(location, cookie))
}

fn redirect(location: HeaderValue, cookie: HeaderValue) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
    )
        .into_response()
}

/// `GET /dashboard/logout`: clears the session and goes to the analytics page.
pub async fn logout() -> Response {
    match HeaderValue::from_str(&clear_session_cookie()) {
        Ok(cookie) => redirect(HeaderValue::from_static(DEFAULT_NEXT), cookie),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn same_site_paths_only() {
        for ok in [
            "/",
            "/dashboard/analytics",
            "/dashboard/analytics?channel=c1&from=1&to=2",
            "/dashboard/live#x",
        ] {
            assert_eq!(safe_next(ok), Ok(ok));
        }
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/a\\b",
            "javascript:alert(1)",
            "dashboard",
            "/a\nb",
            "/a b",
            "\t/x",
        ] {
            assert!(safe_next(bad).is_err(), "{bad:?}");
        }
        assert!(safe_next(&format!("/{}", "a".repeat(MAX_NEXT))).is_err());
    }

    proptest! {
        #[test]
        fn accepted_next_is_always_a_local_path(s in ".{0,40}") {
            if let Ok(n) = safe_next(&s) {
                prop_assert!(n.starts_with('/'));
                prop_assert!(!n.starts_with("//"));
                prop_assert!(!n.contains('\\'));
                prop_assert!(!n.chars().any(|c| c.is_control() || c.is_whitespace()));
            }
        }

        #[test]
        fn other_hosts_are_rejected(host in "[a-z]{1,10}\\.[a-z]{2,3}", path in "[a-z/]{0,10}") {
            let schemes = ["//", "http://", "https://", "/\\", "\\\\"];
            for s in schemes {
                let next = format!("{s}{host}/{path}");
                prop_assert!(safe_next(&next).is_err());
            }
        }
    }
}
