//! Platform routes: tokens, the user/channel/follow mirror, streams and their keys,
//! and the signed webhooks (stream lifecycle, recording ready).

use super::catalog::{CatalogState, admin, json, raw_body, required};
use crate::QueryError;
use crate::catalog::jobs::JobKind;
use crate::catalog::streams::StreamInput;
use crate::catalog::tokens::parse_role;
use crate::catalog::vods::RecordingReady;
use crate::catalog::webhooks::{check_fresh, verify_signature};
use crate::catalog::{now_ms, parse_id};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use pulse_schemas::Id;
use pulse_schemas::access::{LifecycleChange, LifecycleSource, StreamStatus};
use serde::Deserialize;
use serde_json::{Value, json as j};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    user: Id,
    role: String,
}

/// `POST /api/tokens` (admin): `{"user","role"}` → `{"token"}` (shown once).
pub async fn mint_token(
    State(state): State<CatalogState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), QueryError> {
    admin(&required(&state, &headers).await?)?;
    let req: TokenRequest = json(&raw_body(body)?)?;
    let role = parse_role(&req.role).ok_or_else(|| {
        QueryError::invalid(
            "role",
            format!("expected viewer, creator or admin, got {:?}", req.role),
        )
    })?;
    let token = state.catalog.mint_token(&req.user, role).await?;
    Ok((
        StatusCode::CREATED,
        Json(j!({"token": token, "user": req.user, "role": req.role})),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserRequest {
    #[serde(default)]
    name: String,
}

/// `PUT /api/users/:id` (admin).
pub async fn put_user(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, QueryError> {
    admin(&required(&state, &headers).await?)?;
    let id = parse_id("id", &id)?;
    let req: UserRequest = json(&raw_body(body)?)?;
    state.catalog.put_user(&id, &req.name).await?;
    Ok(Json(j!({"id": id, "name": req.name})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelRequest {
    #[serde(default)]
    name: String,
    owner: Id,
}

/// `PUT /api/channels/:id` (admin).
pub async fn put_channel(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, QueryError> {
    admin(&required(&state, &headers).await?)?;
    let id = parse_id("id", &id)?;
    let req: ChannelRequest = json(&raw_body(body)?)?;
    state
        .catalog
        .put_channel(&id, &req.name, &req.owner)
        .await?;
    Ok(Json(j!({"id": id, "name": req.name, "owner": req.owner})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowRequest {
    user: Id,
    channel: Id,
}

/// `PUT /api/follows` (admin).
pub async fn put_follow(
    State(state): State<CatalogState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, QueryError> {
    admin(&required(&state, &headers).await?)?;
    let req: FollowRequest = json(&raw_body(body)?)?;
    state.catalog.put_follow(&req.user, &req.channel).await?;
    Ok(Json(j!({"user": req.user, "channel": req.channel})))
}

/// `PUT /api/streams/:id` (admin or the channel's creator); the creating PUT answers
/// `{"stream_key"}` once.
pub async fn put_stream(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), QueryError> {
    let who = required(&state, &headers).await?;
    let id = parse_id("id", &id)?;
    let input: StreamInput = json(&raw_body(body)?)?;
    match state.catalog.put_stream(&who, &id, &input).await? {
        Some(key) => Ok((
            StatusCode::CREATED,
            Json(j!({"id": id, "channel": input.channel, "stream_key": key})),
        )),
        None => Ok((
            StatusCode::OK,
            Json(j!({"id": id, "channel": input.channel})),
        )),
    }
}

/// `POST /api/streams/:id/key`: a new stream key (the old one stops working).
pub async fn rotate_key(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    let who = required(&state, &headers).await?;
    let id = parse_id("id", &id)?;
    let key = state.catalog.rotate_stream_key(&who, &id).await?;
    Ok(Json(j!({"id": id, "stream_key": key})))
}

/// Signature, then freshness, then redelivery: `Ok(None)` for a redelivery.
async fn accept_webhook<T: serde::de::DeserializeOwned>(
    state: &CatalogState,
    headers: &HeaderMap,
    body: &[u8],
    ts_of: impl Fn(&T) -> i64,
) -> Result<Option<T>, QueryError> {
    let sig = headers
        .get("x-pulse-signature")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = verify_signature(&state.catalog.secrets().webhook_secret, body, sig) {
        crate::metrics::WEBHOOKS
            .with_label_values(&["bad_signature"])
            .inc();
        return Err(e);
    }
    let parsed: T = json(body)?;
    if let Err(e) = check_fresh(
        ts_of(&parsed),
        now_ms(),
        state.catalog.config().webhook_tolerance_s,
    ) {
        crate::metrics::WEBHOOKS.with_label_values(&["stale"]).inc();
        return Err(e);
    }
    if state.catalog.delivery_seen(body).await? {
        crate::metrics::WEBHOOKS
            .with_label_values(&["redelivery"])
            .inc();
        return Ok(None);
    }
    Ok(Some(parsed))
}

#[derive(Deserialize)]
struct StreamHook {
    stream: Id,
    channel: Id,
    status: StreamStatus,
    ts: i64,
}

/// `POST /api/webhooks/stream`: a lifecycle change from the platform.
pub async fn stream_webhook(
    State(state): State<CatalogState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, QueryError> {
    let body = raw_body(body)?;
    let Some(hook) = accept_webhook::<StreamHook>(&state, &headers, &body, |h| h.ts).await? else {
        return Ok(Json(j!({"applied": false, "redelivery": true})));
    };
    let change = LifecycleChange {
        stream: hook.stream,
        channel: hook.channel,
        status: hook.status,
        ts: hook.ts,
        source: LifecycleSource::Webhook,
    };
    let vod = state.catalog.apply_lifecycle(&change).await?;
    state.catalog.delivery_applied(&body).await?;
    crate::metrics::WEBHOOKS
        .with_label_values(&["applied"])
        .inc();
    Ok(Json(j!({"applied": true, "vod": vod})))
}

#[derive(Deserialize)]
struct RecordingHook {
    #[serde(rename = "type")]
    kind: String,
    stream: Id,
    ts: i64,
    #[serde(flatten)]
    recording: RecordingReady,
}

/// `POST /api/webhooks/recording-ready`: fills the stream's VOD and makes it READY,
/// then queues its thumbnail at 25 % of its length.
pub async fn recording_webhook(
    State(state): State<CatalogState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, QueryError> {
    let body = raw_body(body)?;
    let Some(hook) = accept_webhook::<RecordingHook>(&state, &headers, &body, |h| h.ts).await?
    else {
        return Ok(Json(j!({"applied": false, "redelivery": true})));
    };
    if hook.kind != "video.ready" {
        return Err(QueryError::invalid(
            "type",
            format!("expected video.ready, got {:?}", hook.kind),
        ));
    }
    let rec = &hook.recording;
    if rec.hls_url.is_empty()
        || !rec.duration_s.is_finite()
        || rec.duration_s <= 0.0
        || rec.size_bytes < 0
    {
        return Err(QueryError::Unprocessable(
            "hls_url must be set, duration_s > 0 and size_bytes ≥ 0".into(),
        ));
    }
    let Some(vod) = state
        .catalog
        .recording_ready(hook.stream.as_str(), rec)
        .await?
    else {
        return Err(QueryError::NotFound(format!(
            "stream {} has no VOD (unknown, never LIVE, or shorter than the minimum)",
            hook.stream
        )));
    };
    state
        .catalog
        .attach_clips_to_vod(&vod.stream, &vod.id, &vod.hls_url)
        .await?;
    state
        .catalog
        .enqueue_job(JobKind::VodThumbnail, &vod.id, vod.duration_s * 0.25)
        .await?;
    state.catalog.delivery_applied(&body).await?;
    crate::metrics::WEBHOOKS
        .with_label_values(&["applied"])
        .inc();
    Ok(Json(j!({"applied": true, "vod": vod})))
}
