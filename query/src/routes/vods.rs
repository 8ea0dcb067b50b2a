//! VOD and watch-history routes (PROTOCOL.md §4).

use super::catalog::{CatalogState, json, list, paging, principal, raw_body, required};
use super::params::parse_time;
use crate::QueryError;
use crate::catalog::parse_id;
use crate::catalog::vods::{VodQuery, VodSort, VodUpdate};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json as j};

use super::params::query_params as query;

#[derive(Deserialize, Default)]
pub struct ListParams {
    page: Option<String>,
    per_page: Option<String>,
    sort: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
}

/// `GET /api/channels/:id/vods?page=&per_page=&sort=&from=&to=&q=`.
pub async fn list_vods(
    State(state): State<CatalogState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let who = principal(&state, &headers).await?;
    let channel = parse_id("id", &channel)?;
    let p = query(params)?;
    let (page, per_page) = paging(&state, p.page.as_deref(), p.per_page.as_deref())?;
    let sort = match p.sort.as_deref() {
        None | Some("newest") => VodSort::Newest,
        Some("trending") => VodSort::Trending,
        Some("watched") => VodSort::Watched,
        Some(other) => {
            return Err(QueryError::invalid(
                "sort",
                format!("expected newest, trending or watched, got {other:?}"),
            ));
        }
    };
    let from = p
        .from
        .as_deref()
        .map(|t| parse_time("from", t))
        .transpose()?;
    let to = p.to.as_deref().map(|t| parse_time("to", t)).transpose()?;
    if let (Some(f), Some(t)) = (from, to)
        && f >= t
    {
        return Err(QueryError::invalid(
            "from",
            format!("from ({f}) must be before to ({t})"),
        ));
    }
    if state.catalog.channel_owner(&channel).await?.is_none() {
        return Err(QueryError::NotFound(format!("no channel {channel}")));
    }
    let q = p.q.filter(|q| !q.trim().is_empty());
    if q.as_ref().is_some_and(|q| q.len() > 200) {
        return Err(QueryError::invalid("q", "at most 200 bytes"));
    }
    let vq = VodQuery {
        page,
        per_page,
        sort,
        from,
        to,
        q,
    };
    let (items, total) = state
        .catalog
        .list_vods(who.as_ref(), channel.as_str(), &vq)
        .await?;
    Ok(Json(list(items, page, per_page, total)))
}

/// `GET /api/vods/:id`.
pub async fn get_one(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    let who = principal(&state, &headers).await?;
    let id = parse_id("id", &id)?;
    let vod = state.catalog.get_vod(who.as_ref(), id.as_str()).await?;
    Ok(Json(j!(vod)))
}

/// `PUT /api/vods/:id` `{"title","description","visibility":"public|private"}`.
pub async fn update(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, QueryError> {
    let who = required(&state, &headers).await?;
    let id = parse_id("id", &id)?;
    let update: VodUpdate = json(&raw_body(body)?)?;
    let vod = state.catalog.update_vod(&who, id.as_str(), &update).await?;
    Ok(Json(j!(vod)))
}

/// `DELETE /api/vods/:id` (soft delete by its creator).
pub async fn remove(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, QueryError> {
    let who = required(&state, &headers).await?;
    let id = parse_id("id", &id)?;
    state.catalog.delete_vod(&who, id.as_str()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressBody {
    vod: String,
    position: f64,
}

/// `POST /api/watch-progress` `{"vod","position"}`.
pub async fn save_progress(
    State(state): State<CatalogState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, QueryError> {
    let who = required(&state, &headers).await?;
    let b: ProgressBody = json(&raw_body(body)?)?;
    let vod = parse_id("vod", &b.vod)?;
    let p = state
        .catalog
        .save_progress(&who, vod.as_str(), b.position)
        .await?;
    Ok(Json(j!(p)))
}

#[derive(Deserialize, Default)]
pub struct ProgressParams {
    vod: Option<String>,
}

/// `GET /api/watch-progress?vod=`.
pub async fn get_progress(
    State(state): State<CatalogState>,
    headers: HeaderMap,
    params: Result<Query<ProgressParams>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let who = required(&state, &headers).await?;
    let raw = query(params)?
        .vod
        .ok_or_else(|| QueryError::invalid("vod", "required"))?;
    let vod = parse_id("vod", &raw)?;
    match state.catalog.get_progress(&who, vod.as_str()).await? {
        Some(p) => Ok(Json(j!(p))),
        None => Err(QueryError::NotFound(format!(
            "no progress saved for VOD {vod}"
        ))),
    }
}

#[derive(Deserialize, Default)]
pub struct PageParams {
    page: Option<String>,
    per_page: Option<String>,
}

async fn history_page(
    state: &CatalogState,
    headers: &HeaderMap,
    params: Result<Query<PageParams>, QueryRejection>,
    unfinished: bool,
) -> Result<Json<Value>, QueryError> {
    let who = required(state, headers).await?;
    let p = query(params)?;
    let (page, per_page) = paging(state, p.page.as_deref(), p.per_page.as_deref())?;
    let offset = i64::from(page - 1) * i64::from(per_page);
    let (items, total) = state
        .catalog
        .history(&who, unfinished, i64::from(per_page), offset)
        .await?;
    Ok(Json(list(items, page, per_page, total)))
}

/// `GET /api/watch-history`: newest first, each entry with its VOD (`vod_item`).
pub async fn history(
    State(state): State<CatalogState>,
    headers: HeaderMap,
    params: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    history_page(&state, &headers, params, false).await
}

/// `GET /api/continue-watching`: started and under 95 %.
pub async fn continue_watching(
    State(state): State<CatalogState>,
    headers: HeaderMap,
    params: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    history_page(&state, &headers, params, true).await
}

/// `DELETE /api/watch-history/:vod`.
pub async fn forget(
    State(state): State<CatalogState>,
    Path(vod): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, QueryError> {
    let who = required(&state, &headers).await?;
    let vod = parse_id("vod", &vod)?;
    if state.catalog.forget_progress(&who, vod.as_str()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(QueryError::NotFound(format!(
            "VOD {vod} is not in your history"
        )))
    }
}

/// `POST /api/watch-history/clear`.
pub async fn clear_history(
    State(state): State<CatalogState>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    let who = required(&state, &headers).await?;
    let removed = state.catalog.clear_history(&who).await?;
    Ok(Json(j!({"removed": removed})))
}

/// `GET /api/recommended`: VODs of followed channels not yet finished.
pub async fn recommended(
    State(state): State<CatalogState>,
    headers: HeaderMap,
    params: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let who = required(&state, &headers).await?;
    let p = query(params)?;
    let (_, per_page) = paging(&state, None, p.per_page.as_deref())?;
    let items = state.catalog.recommended(&who, i64::from(per_page)).await?;
    let total = items.len() as i64;
    Ok(Json(list(items, 1, per_page, total)))
}
