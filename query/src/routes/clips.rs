//! Clip routes (PROTOCOL.md §4), the embed page and the media files.

use super::catalog::{CatalogState, json, list, paging, principal, raw_body, required};
use crate::QueryError;
use crate::catalog::clips::{ClipUpdate, NewClip};
use crate::catalog::{now_ms, parse_id};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pulse_schemas::event::{EventKind, Target, TargetKind};
use pulse_schemas::{Event, Id};
use serde::Deserialize;
use serde_json::{Value, json as j};

/// `POST /api/clips` `{"stream"|"vod","start","end","title"}` → 202 with the clip in PROCESSING.
pub async fn create(
    State(state): State<CatalogState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), QueryError> {
    let who = required(&state, &headers).await?;
    let new: NewClip = json(&raw_body(body)?)?;
    if let Some(v) = &new.vod {
        parse_id("vod", v)?;
    }
    let clip = state.catalog.create_clip(&who, &new).await?;
    Ok((StatusCode::ACCEPTED, Json(j!(clip))))
}

/// `GET /api/clips/:id`.
pub async fn get_one(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    let who = principal(&state, &headers).await?;
    let id = parse_id("id", &id)?;
    Ok(Json(j!(state
        .catalog
        .get_clip(who.as_ref(), id.as_str())
        .await?)))
}

/// `PUT /api/clips/:id` `{"title","description"}`.
pub async fn update(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, QueryError> {
    let who = required(&state, &headers).await?;
    let id = parse_id("id", &id)?;
    let u: ClipUpdate = json(&raw_body(body)?)?;
    Ok(Json(j!(state
        .catalog
        .update_clip(&who, id.as_str(), &u)
        .await?)))
}

/// `DELETE /api/clips/:id`: DELETED, media removed.
pub async fn remove(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, QueryError> {
    let who = required(&state, &headers).await?;
    let id = parse_id("id", &id)?;
    let clip = state.catalog.delete_clip(&who, id.as_str()).await?;
    for url in [&clip.clip_url, &clip.thumbnail] {
        if let Some(key) = state.media.key_of(url) {
            state.media.delete(key).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/clips/:id/generate`: queue the cut again.
pub async fn generate(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Value>), QueryError> {
    let who = required(&state, &headers).await?;
    let id = parse_id("id", &id)?;
    let clip = state.catalog.regenerate_clip(&who, id.as_str()).await?;
    Ok((StatusCode::ACCEPTED, Json(j!(clip))))
}

/// `POST /api/clips/:id/publish`.
pub async fn publish(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    let who = required(&state, &headers).await?;
    let id = parse_id("id", &id)?;
    Ok(Json(j!(state
        .catalog
        .publish_clip(&who, id.as_str())
        .await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThumbBody {
    at: f64,
}

/// `POST /api/clips/:id/thumbnail` `{"at":s}`: queue a thumbnail at that second.
pub async fn thumbnail(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), QueryError> {
    let who = required(&state, &headers).await?;
    let id = parse_id("id", &id)?;
    let b: ThumbBody = json(&raw_body(body)?)?;
    let clip = state
        .catalog
        .clip_thumbnail(&who, id.as_str(), b.at)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(j!(clip))))
}

/// `POST /api/clips/:id/like`: once per user; a new like is also a `like` event.
pub async fn like(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    let who = required(&state, &headers).await?;
    let id = parse_id("id", &id)?;
    let (clip, new) = state.catalog.like_clip(&who, id.as_str()).await?;
    if new && let Ok(channel) = Id::parse(&clip.channel) {
        let target = Target {
            kind: TargetKind::Clip,
            id: id.clone(),
        };
        state.emit(vec![Event::new(
            EventKind::Like,
            now_ms(),
            who.user.clone(),
            channel,
            target,
            None,
        )]);
    }
    Ok(Json(j!({"clip": clip, "liked": true, "new": new})))
}

#[derive(Deserialize, Default)]
pub struct PageParams {
    page: Option<String>,
    per_page: Option<String>,
}

/// `GET /api/channels/:id/clips`.
pub async fn list_clips(
    State(state): State<CatalogState>,
    Path(channel): Path<String>,
    headers: HeaderMap,
    params: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let who = principal(&state, &headers).await?;
    let channel = parse_id("id", &channel)?;
    let p = super::params::query_params(params)?;
    let (page, per_page) = paging(&state, p.page.as_deref(), p.per_page.as_deref())?;
    if state.catalog.channel_owner(&channel).await?.is_none() {
        return Err(QueryError::NotFound(format!("no channel {channel}")));
    }
    let offset = i64::from(page - 1) * i64::from(per_page);
    let (items, total) = state
        .catalog
        .list_clips(who.as_ref(), channel.as_str(), i64::from(per_page), offset)
        .await?;
    Ok(Json(list(items, page, per_page, total)))
}

/// Escapes text for HTML content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `GET /clips/:id/embed`: a page with the player, meant for `<iframe>` on other sites
/// (no scripts, a CSP that allows only our media, framing allowed).
pub async fn embed(
    State(state): State<CatalogState>,
    Path(id): Path<String>,
) -> Result<Response, QueryError> {
    let id = parse_id("id", &id)?;
    let clip = state.catalog.get_clip(None, id.as_str()).await?;
    if clip.status != "READY" {
        return Err(QueryError::NotFound(format!("clip {id} is not ready")));
    }
    let title = html_escape(&clip.title);
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <style>html,body{{margin:0;height:100%;background:#000}}video{{width:100%;height:100%}}</style></head>\
         <body><video controls playsinline preload=\"metadata\" poster=\"{poster}\" src=\"{src}\" \
         data-clip=\"{cid}\" data-channel=\"{channel}\" title=\"{title}\"></video></body></html>",
        poster = html_escape(&clip.thumbnail),
        src = html_escape(&clip.clip_url),
        cid = html_escape(&clip.id),
        channel = html_escape(&clip.channel),
    );
    let mut resp = page.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; media-src 'self' https:; img-src 'self' https:; style-src 'unsafe-inline'; frame-ancestors *"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    Ok(resp)
}

/// `GET /media/*key`: generated clips and thumbnails from the media store.
pub async fn media(
    State(state): State<CatalogState>,
    Path(key): Path<String>,
) -> Result<Response, QueryError> {
    if key
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(QueryError::invalid(
            "path",
            format!("bad media path {key:?}"),
        ));
    }
    let Some(bytes) = state.media.get(&key).await? else {
        return Err(QueryError::NotFound(format!("no media {key}")));
    };
    let kind = if key.ends_with(".mp4") {
        "video/mp4"
    } else if key.ends_with(".jpg") {
        "image/jpeg"
    } else {
        "application/octet-stream"
    };
    Ok(([(header::CONTENT_TYPE, kind)], bytes).into_response())
}
