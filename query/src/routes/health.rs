//! `GET /api/streams/{id}/health`, `GET /api/streams/{id}/alerts`,
//! `GET|PUT /api/channels/{id}/alert-rules`: a creator's own channels, or an admin.
//!
//! `health` answers `{"stream","channel","live","latest","active_alerts","ticks"}`:
//! `latest`/`active_alerts` from the health component (null/empty when the stream's
//! encoder is not on this node), `ticks` the last 10 minutes of `health_ticks` from the
//! store. `alerts` answers `{"stream","alerts":[...]}`, the stored transitions, oldest
//! first (the newest `limit`, default and at most 1000).

use crate::QueryState;
use crate::error::QueryError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use pulse_schemas::{AlertRules, Id, Principal, RulesError};
use serde::Deserialize;
use serde_json::{Value, json};

/// Last this long of health ticks in the health answer.
const HEALTH_SPAN_MS: i64 = 10 * 60 * 1000;
/// Most alert transitions one answer holds.
const MAX_ALERTS: usize = 1000;

/// The API token of a request: `Authorization: Bearer`, else `?token=` (when the route
/// takes one), else the dashboard session cookie ([`super::auth`]). A malformed
/// `Authorization` header counts as no token (the answer is then 401).
pub fn bearer(headers: &HeaderMap, query_token: Option<&str>) -> Option<String> {
    super::auth::request_token(headers, query_token)
        .ok()
        .flatten()
}

/// The principal of the token, allowed to read `channel` (401 / 403 otherwise).
pub async fn authorize(
    state: &QueryState,
    token: Option<String>,
    channel: &Id,
) -> Result<Principal, QueryError> {
    let live = state.live()?;
    let token = token.ok_or_else(|| {
        QueryError::Unauthorized(
            "expected `Authorization: Bearer <token>` or a dashboard session cookie, got none"
                .into(),
        )
    })?;
    let who = live
        .access
        .principal(&token)
        .await
        .map_err(|e| QueryError::Unavailable(e.to_string()))?
        .ok_or_else(|| QueryError::Unauthorized("unknown or revoked token".into()))?;
    let ok = live
        .access
        .can_read_channel(&who, channel)
        .await
        .map_err(|e| QueryError::Unavailable(e.to_string()))?;
    if !ok {
        return Err(QueryError::Forbidden(format!(
            "user {} may not read channel {channel}",
            who.user
        )));
    }
    Ok(who)
}

fn path_id(id: Result<Path<String>, PathRejection>) -> Result<Id, QueryError> {
    let Path(id) = id.map_err(|e| QueryError::invalid("id", e.body_text()))?;
    Id::parse(&id).map_err(|e| QueryError::invalid("id", e))
}

/// `?limit=` of the alerts route.
#[derive(Debug, Default, Deserialize)]
pub struct AlertParams {
    limit: Option<usize>,
}

/// The channel of a stream: from the health component, else from its stored rows.
async fn stream_channel(state: &QueryState, stream: &Id) -> Result<Id, QueryError> {
    let live = state.live()?;
    if let Some(now) = live.health.stream_now(stream, live.health.now()) {
        return Ok(now.channel);
    }
    let snap = state.snapshot().await?;
    let ticks = state.with_timeout(snap.health_ticks(stream, 0)).await?;
    let alerts = state.with_timeout(snap.alert_history(stream, 1)).await?;
    ticks
        .iter()
        .chain(alerts.iter())
        .find_map(|r| r["channel"].as_str().and_then(|c| Id::parse(c).ok()))
        .ok_or_else(|| QueryError::NotFound(format!("no health data for stream {stream}")))
}

pub async fn stream_health(
    State(state): State<QueryState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    let stream = path_id(id)?;
    let channel = stream_channel(&state, &stream).await?;
    authorize(&state, bearer(&headers, None), &channel).await?;
    let live = state.live()?;
    let now = live.health.now();
    let mut current = live.health.stream_now(&stream, now);
    if let Some(c) = current.as_mut() {
        c.latest.viewers = crate::live::viewers_now(state.tables(), &stream, now, state.tick_ms());
    }
    let snap = state.snapshot().await?;
    let ticks = state
        .with_timeout(snap.health_ticks(&stream, now - HEALTH_SPAN_MS))
        .await?;
    Ok(Json(json!({
        "stream": stream,
        "channel": channel,
        "live": current.is_some(),
        "latest": current.as_ref().map(|c| &c.latest),
        "active_alerts": current.as_ref().map(|c| c.active_alerts.clone()).unwrap_or_default(),
        "ticks": ticks,
    })))
}

pub async fn stream_alerts(
    State(state): State<QueryState>,
    id: Result<Path<String>, PathRejection>,
    Query(params): Query<AlertParams>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    let stream = path_id(id)?;
    let limit = params.limit.unwrap_or(MAX_ALERTS);
    if limit == 0 || limit > MAX_ALERTS {
        return Err(QueryError::invalid(
            "limit",
            format!("expected 1 to {MAX_ALERTS}, got {limit}"),
        ));
    }
    let channel = stream_channel(&state, &stream).await?;
    authorize(&state, bearer(&headers, None), &channel).await?;
    let snap = state.snapshot().await?;
    let alerts = state
        .with_timeout(snap.alert_history(&stream, limit))
        .await?;
    Ok(Json(
        json!({"stream": stream, "channel": channel, "alerts": alerts}),
    ))
}

pub async fn get_alert_rules(
    State(state): State<QueryState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<AlertRules>, QueryError> {
    let channel = path_id(id)?;
    authorize(&state, bearer(&headers, None), &channel).await?;
    Ok(Json(state.live()?.health.rules(&channel)))
}

pub async fn put_alert_rules(
    State(state): State<QueryState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<AlertRules>, JsonRejection>,
) -> Result<Json<AlertRules>, QueryError> {
    let channel = path_id(id)?;
    authorize(&state, bearer(&headers, None), &channel).await?;
    let Json(rules) = body.map_err(|e| QueryError::InvalidBody(e.body_text()))?;
    state
        .live()?
        .health
        .set_rules(&channel, rules.clone())
        .map_err(|e| match e {
            RulesError::Invalid(m) => QueryError::InvalidBody(m),
            RulesError::Storage(m) => QueryError::Store(m),
        })?;
    Ok(Json(rules))
}
