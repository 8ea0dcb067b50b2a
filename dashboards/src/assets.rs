//! The embedded web app and how it is served.

use crate::error::DashboardError;
use crate::metrics::FILES_SERVED;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

mod built {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// Content-Security-Policy of the pages: everything from this origin, nothing else
/// (uPlot sizes its elements through inline styles, hence `'unsafe-inline'` for styles).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; media-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// The embedded file `name` (e.g. `analytics.html`, `assets/analytics-HASH.js`).
pub fn file(name: &str) -> Option<&'static [u8]> {
    built::FILES
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| built::FILES[i].1)
}

/// Every embedded file name with its size in bytes.
pub fn files() -> impl Iterator<Item = (&'static str, usize)> {
    built::FILES.iter().map(|(n, b)| (*n, b.len()))
}

/// The content type of a file by its extension.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("map") => "application/json",
        Some("wav") => "audio/wav",
        _ => "application/octet-stream",
    }
}

fn page(name: &str) -> Response {
    match file(name) {
        Some(body) => {
            FILES_SERVED.with_label_values(&["page"]).inc();
            (
                [
                    (header::CONTENT_TYPE, content_type(name)),
                    (header::CACHE_CONTROL, "no-cache"),
                    (header::CONTENT_SECURITY_POLICY, CSP),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    (header::REFERRER_POLICY, "no-referrer"),
                ],
                body,
            )
                .into_response()
        }
        None => missing(name),
    }
}

fn missing(name: &str) -> Response {
    FILES_SERVED.with_label_values(&["missing"]).inc();
    DashboardError::NotFound(format!("no dashboard file {name:?}")).into_response()
}

/// `GET /dashboard/analytics`.
pub async fn analytics_page() -> Response {
    page("analytics.html")
}

/// `GET /dashboard/live`.
pub async fn live_page() -> Response {
    page("live.html")
}

/// `GET /dashboard/assets/{file}`: content-hashed names, so cached for a year.
pub async fn asset(Path(name): Path<String>) -> Response {
    let key = format!("assets/{name}");
    match file(&key) {
        Some(body) => {
            FILES_SERVED.with_label_values(&["asset"]).inc();
            (
                [
                    (header::CONTENT_TYPE, content_type(&name)),
                    (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
                body,
            )
                .into_response()
        }
        None => missing(&name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_is_embedded_and_pages_name_existing_assets() {
        for page in ["analytics.html", "live.html"] {
            let html = std::str::from_utf8(file(page).expect(page)).unwrap();
            let mut named = 0;
            for part in html.split("/dashboard/assets/").skip(1) {
                let name = part.split('"').next().unwrap();
                assert!(
                    file(&format!("assets/{name}")).is_some(),
                    "{page} names {name}"
                );
                named += 1;
            }
            assert!(named >= 2, "{page} names its JS and CSS");
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "no CDN"
            );
        }
        assert!(files().count() >= 6);
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("a-1.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("a-1.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
