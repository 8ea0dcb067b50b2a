//! The embedded web app and how it is served.

use crate::error::DashboardError;
use crate::metrics::FILES_SERVED;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, header};
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

/// Whether the request's `Accept-Encoding` takes gzip (and does not refuse it with `q=0`).
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';').map(str::trim);
            let coding = it.next().unwrap_or_default();
            let refused = it.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// The file's bytes, gzipped when the client takes it and the build made a copy, with
/// the headers that go with that choice.
fn body(name: &str, headers: &HeaderMap) -> Option<(&'static [u8], Option<&'static str>)> {
    let plain = file(name)?;
    if accepts_gzip(headers)
        && let Some(gz) = file(&format!("{name}.gz"))
    {
        return Some((gz, Some("gzip")));
    }
    Some((plain, None))
}

fn respond(
    bytes: &'static [u8],
    encoding: Option<&'static str>,
    fixed: &[(header::HeaderName, &'static str)],
) -> Response {
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    for (k, v) in fixed {
        h.insert(k.clone(), HeaderValue::from_static(v));
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Some(e) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e));
    }
    res
}

fn page(name: &str, headers: &HeaderMap) -> Response {
    match body(name, headers) {
        Some((bytes, encoding)) => {
            FILES_SERVED.with_label_values(&["page"]).inc();
            respond(
                bytes,
                encoding,
                &[
                    (header::CONTENT_TYPE, content_type(name)),
                    (header::CACHE_CONTROL, "no-cache"),
                    (header::CONTENT_SECURITY_POLICY, CSP),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    (header::REFERRER_POLICY, "no-referrer"),
                ],
            )
        }
        None => missing(name),
    }
}

fn missing(name: &str) -> Response {
    FILES_SERVED.with_label_values(&["missing"]).inc();
    DashboardError::NotFound(format!("no dashboard file {name:?}")).into_response()
}

/// `GET /dashboard/analytics`.
pub async fn analytics_page(headers: HeaderMap) -> Response {
    page("analytics.html", &headers)
}

/// `GET /dashboard/live`.
pub async fn live_page(headers: HeaderMap) -> Response {
    page("live.html", &headers)
}

/// `GET /dashboard/assets/{file}`: content-hashed names, so cached for a year.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    if name.ends_with(".gz") {
        return missing(&name);
    }
    let key = format!("assets/{name}");
    match body(&key, &headers) {
        Some((bytes, encoding)) => {
            FILES_SERVED.with_label_values(&["asset"]).inc();
            respond(
                bytes,
                encoding,
                &[
                    (header::CONTENT_TYPE, content_type(&name)),
                    (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                ],
            )
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
        assert!(files().count() >= 12);
    }

    #[test]
    fn gzip_copies_and_accept_encoding() {
        for (name, plain) in files().filter(|(n, _)| !n.ends_with(".gz")) {
            let gz = file(&format!("{name}.gz")).expect("a gzip copy");
            assert!(gz.len() < plain, "{name}: gzip is smaller");
        }
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(accepts_gzip(&h("gzip, deflate, br")));
        assert!(accepts_gzip(&h("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(&h("*")));
        assert!(!accepts_gzip(&h("gzip;q=0")));
        assert!(!accepts_gzip(&h("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("a-1.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("a-1.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("x.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
