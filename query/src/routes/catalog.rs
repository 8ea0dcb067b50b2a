//! The catalog routes' shared pieces: [`CatalogState`], bearer-token auth, JSON bodies
//! with their 400/413 answers, list envelopes, and [`catalog_router`] mounting
//! [`super::platform`], [`super::vods`] and [`super::clips`].

use super::{clips, platform, vods};
use crate::QueryError;
use crate::catalog::Catalog;
use crate::media::MediaStore;
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post, put};
use pulse_schemas::Event;
use pulse_schemas::access::{AccessControl, Principal};
use pulse_schemas::handoff::EventSender;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// State of the catalog routes (cheap to clone).
#[derive(Clone)]
pub struct CatalogState {
    pub catalog: Catalog,
    pub media: MediaStore,
    /// Where catalog actions (likes) go as analytics events: the aggregator's bounded
    /// channel, the same one ingest hands beacons to. `None`: not counted.
    pub events: Option<EventSender>,
    /// Who may do what (the catalog itself in `pulse serve`).
    pub access: Arc<dyn AccessControl>,
}

impl std::fmt::Debug for CatalogState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogState")
            .field("catalog", &self.catalog)
            .field("media", &self.media)
            .field("events", &self.events.is_some())
            .finish()
    }
}

impl CatalogState {
    pub fn new(catalog: Catalog, media: MediaStore, events: Option<EventSender>) -> Self {
        CatalogState {
            access: Arc::new(catalog.clone()),
            catalog,
            media,
            events,
        }
    }

    /// Hands analytics events to the aggregator without waiting; a full channel drops
    /// them and counts the drop, and so does a node without an aggregator (`pulse
    /// query`: its catalog counters still change, the analytics events do not).
    pub fn emit(&self, events: Vec<Event>) {
        let sent = match &self.events {
            Some(tx) => tx.try_send(events).is_ok(),
            None => false,
        };
        if !sent {
            crate::metrics::CONTENT_EVENTS_DROPPED.inc();
        }
    }
}

/// The principal of the request's token (`Authorization: Bearer` or the dashboard
/// session cookie, [`super::auth`]): `None` without one, 401 for a malformed header or
/// an unknown token.
pub async fn principal(
    state: &CatalogState,
    headers: &HeaderMap,
) -> Result<Option<Principal>, QueryError> {
    let Some(token) =
        super::auth::request_token(headers, None).map_err(QueryError::Unauthorized)?
    else {
        return Ok(None);
    };
    match state.access.principal(&token).await {
        Ok(Some(p)) => Ok(Some(p)),
        Ok(None) => Err(QueryError::Unauthorized("unknown or revoked token".into())),
        Err(e) => Err(QueryError::Store(e.to_string())),
    }
}

/// Like [`principal`], 401 when there is no token.
pub async fn required(state: &CatalogState, headers: &HeaderMap) -> Result<Principal, QueryError> {
    principal(state, headers).await?.ok_or_else(|| {
        QueryError::Unauthorized("this route needs Authorization: Bearer <token>".into())
    })
}

/// 403 unless the principal is an admin.
pub fn admin(p: &Principal) -> Result<(), QueryError> {
    if p.is_admin() {
        Ok(())
    } else {
        Err(QueryError::Forbidden("this route is for admins".into()))
    }
}

/// The raw body, 413 past the route's limit.
pub fn raw_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, QueryError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            QueryError::PayloadTooLarge(format!(
                "the body is larger than allowed: {}",
                e.body_text()
            ))
        } else {
            QueryError::InvalidBody(e.body_text())
        }
    })
}

/// Parses a JSON body, naming the field that broke it.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, QueryError> {
    serde_json::from_slice(body).map_err(|e| QueryError::InvalidBody(format!("expected JSON: {e}")))
}

/// `{"items":[...],"page":P,"per_page":N,"total":T}`.
pub fn list<T: serde::Serialize>(
    items: Vec<T>,
    page: u32,
    per_page: u32,
    total: i64,
) -> serde_json::Value {
    serde_json::json!({"items": items, "page": page, "per_page": per_page, "total": total})
}

/// Page and per-page from a query string (1-based; per_page bounded).
pub fn paging(
    state: &CatalogState,
    page: Option<&str>,
    per_page: Option<&str>,
) -> Result<(u32, u32), QueryError> {
    let cfg = state.catalog.config();
    let page = match page {
        None => 1,
        Some(p) => p
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| {
                QueryError::invalid("page", format!("expected 1..=1000000, got {p:?}"))
            })?,
    };
    let per_page = match per_page {
        None => cfg.per_page,
        Some(p) => p
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=cfg.max_per_page).contains(n))
            .ok_or_else(|| {
                QueryError::invalid(
                    "per_page",
                    format!("expected 1..={}, got {p:?}", cfg.max_per_page),
                )
            })?,
    };
    Ok((page, per_page))
}

/// Every catalog route.
pub fn catalog_router(state: CatalogState) -> Router {
    crate::metrics::init();
    let limit = DefaultBodyLimit::max(state.catalog.config().max_body_bytes);
    Router::new()
        .route("/api/tokens", post(platform::mint_token))
        .route("/api/users/{id}", put(platform::put_user))
        .route("/api/channels/{id}", put(platform::put_channel))
        .route("/api/follows", put(platform::put_follow))
        .route("/api/streams/{id}", put(platform::put_stream))
        .route("/api/streams/{id}/key", post(platform::rotate_key))
        .route("/api/webhooks/stream", post(platform::stream_webhook))
        .route(
            "/api/webhooks/recording-ready",
            post(platform::recording_webhook),
        )
        .route("/api/channels/{id}/vods", get(vods::list_vods))
        .route(
            "/api/vods/{id}",
            get(vods::get_one).put(vods::update).delete(vods::remove),
        )
        .route(
            "/api/watch-progress",
            post(vods::save_progress).get(vods::get_progress),
        )
        .route("/api/watch-history", get(vods::history))
        .route("/api/watch-history/clear", post(vods::clear_history))
        .route("/api/watch-history/{vod}", delete(vods::forget))
        .route("/api/continue-watching", get(vods::continue_watching))
        .route("/api/recommended", get(vods::recommended))
        .route("/api/clips", post(clips::create))
        .route(
            "/api/clips/{id}",
            get(clips::get_one).put(clips::update).delete(clips::remove),
        )
        .route("/api/clips/{id}/generate", post(clips::generate))
        .route("/api/clips/{id}/publish", post(clips::publish))
        .route("/api/clips/{id}/thumbnail", post(clips::thumbnail))
        .route("/api/clips/{id}/like", post(clips::like))
        .route("/api/channels/{id}/clips", get(clips::list_clips))
        .route("/clips/{id}/embed", get(clips::embed))
        .route("/media/{*key}", get(clips::media))
        .layer(limit)
        .route_layer(axum::middleware::from_fn(crate::metrics::track))
        .with_state(state)
}
