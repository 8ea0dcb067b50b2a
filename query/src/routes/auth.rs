//! Who is asking: the one place that reads a request's API token, from
//! `Authorization: Bearer <token>`, a `?token=` (where a route allows it: WebSockets,
//! whose browser API cannot set headers), or the dashboard's session cookie
//! [`SESSION_COOKIE`] (set by `/dashboard/login`, HttpOnly and SameSite=Strict, so only
//! same-site pages send it and no script can read it). The header wins over the query
//! string, which wins over the cookie.

use axum::http::{HeaderMap, header};

/// Name of the dashboard session cookie; its value is the API token it was traded for.
pub const SESSION_COOKIE: &str = "pulse_session";

/// The API token of a request, or `None` when it carries none. A malformed
/// `Authorization` header (not `Bearer <token>`) is `Err` with what was expected.
pub fn request_token(
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Option<String>, String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| "Authorization: expected \"Bearer <token>\"".to_owned())?;
        return Ok(Some(token.to_owned()));
    }
    if let Some(t) = query_token.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some(t.to_owned()));
    }
    Ok(session_token(headers))
}

/// The value of the session cookie, from any `Cookie` header of the request.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that stores `token` as the session for `max_age_s` seconds
/// (`secure`: only over HTTPS). `None` when the token holds characters a cookie value
/// cannot carry.
pub fn session_cookie(token: &str, max_age_s: u64, secure: bool) -> Option<String> {
    let ok = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'));
    ok.then(|| {
        format!(
            "{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{}",
            if secure { "; Secure" } else { "" }
        )
    })
}

/// The `Set-Cookie` value that removes the session.
pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_then_query_then_cookie() {
        let all = headers(&[
            (header::AUTHORIZATION, "Bearer  tok-h "),
            (header::COOKIE, "a=1; pulse_session=tok-c"),
        ]);
        assert_eq!(
            request_token(&all, Some("tok-q")).unwrap().as_deref(),
            Some("tok-h")
        );
        let cookie = headers(&[(header::COOKIE, "a=1; pulse_session=tok-c; b=2")]);
        assert_eq!(
            request_token(&cookie, Some("tok-q")).unwrap().as_deref(),
            Some("tok-q")
        );
        assert_eq!(
            request_token(&cookie, None).unwrap().as_deref(),
            Some("tok-c")
        );
        assert_eq!(request_token(&HeaderMap::new(), None).unwrap(), None);
    }

    #[test]
    fn malformed_header_is_an_error_and_other_cookies_are_ignored() {
        let bad = headers(&[(header::AUTHORIZATION, "Basic abc")]);
        assert!(request_token(&bad, None).unwrap_err().contains("Bearer"));
        let other = headers(&[
            (header::COOKIE, "pulse_session_x=no; xpulse_session=no"),
            (header::COOKIE, "pulse_session="),
        ]);
        assert_eq!(session_token(&other), None);
        let second = headers(&[
            (header::COOKIE, "x=1"),
            (header::COOKIE, "pulse_session=t2"),
        ]);
        assert_eq!(session_token(&second).as_deref(), Some("t2"));
    }

    #[test]
    fn cookie_attributes_and_unsafe_values() {
        let c = session_cookie("abc123", 60, false).unwrap();
        assert_eq!(
            c,
            "pulse_session=abc123; Path=/; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        assert!(
            session_cookie("abc", 60, true)
                .unwrap()
                .ends_with("; Secure")
        );
        for bad in ["", "a;b", "a b", "a\"b", "a,b", "é"] {
            assert_eq!(session_cookie(bad, 60, false), None, "{bad:?}");
        }
    }
}
