//! The channel, VOD/clip and trending routes (issue 4):
//! - `GET /api/analytics/channels/{id}?from=&to=&limit=` (creator of the channel, admin)
//! - `GET /api/vods/{id}/analytics`, `GET /api/clips/{id}/analytics` (creator, admin)
//! - `GET /api/clips/{id}/stats`: public counts (views, likes, shares); a clip the
//!   catalog holds unpublished or deleted is a 404 to all but its channel's readers
//! - `GET /api/channels/{id}/top-vods|top-clips?from=&to=&limit=&sort=views|trending`
//!   (creator, admin); top-clips adds `streams_by_clips`
//! - `GET /api/clips/trending?channel=&limit=`: public; clips the catalog holds as not
//!   public are left out.
//!
//! Times are epoch ms or RFC 3339; `limit` defaults to 10, at most `max_list_items`.

use crate::QueryState;
use crate::channel::{self, ChannelAnswer, DAY_MS};
use crate::content::{self, TopSort, clips_per_stream, rank};
use crate::error::QueryError;
use crate::routes::guard;
use crate::routes::params::{parse_time, query_params};
use crate::store::{ScopeKind, TimeRange};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use pulse_schemas::Id;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Query string of these routes.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<String>,
    pub sort: Option<String>,
    pub channel: Option<String>,
    pub token: Option<String>,
}

fn path_id(id: Result<Path<String>, PathRejection>) -> Result<Id, QueryError> {
    let Path(id) = id.map_err(|e| QueryError::invalid("id", e.body_text()))?;
    Id::parse(&id).map_err(|e| QueryError::invalid("id", e))
}

fn limit(state: &QueryState, raw: Option<&str>) -> Result<usize, QueryError> {
    let max = state.config().max_list_items;
    let Some(raw) = raw else {
        return Ok(10.min(max));
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(QueryError::invalid(
            "limit",
            format!("expected an integer from 1 to {max}, got {raw:?}"),
        )),
    }
}

/// `[from, to)` with defaults: `to` now, `from` `to − default_span` (`None`: 0).
fn range(
    state: &QueryState,
    p: &ListParams,
    default_span: Option<i64>,
) -> Result<TimeRange, QueryError> {
    let to = match &p.to {
        Some(t) => parse_time("to", t)?,
        None => state.now_ms().saturating_add(1),
    };
    let from = match &p.from {
        Some(f) => parse_time("from", f)?,
        None => default_span.map_or(0, |s| (to - s).max(0)),
    };
    if from >= to {
        return Err(QueryError::invalid(
            "from",
            format!("must be before to ({to}), got {from}"),
        ));
    }
    Ok(TimeRange { from, to })
}

fn sort(raw: Option<&str>) -> Result<TopSort, QueryError> {
    match raw {
        None | Some("views") => Ok(TopSort::Views),
        Some("trending") => Ok(TopSort::Trending),
        Some(other) => Err(QueryError::invalid(
            "sort",
            format!("expected views or trending, got {other:?}"),
        )),
    }
}

pub async fn channel_analytics(
    State(state): State<QueryState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<ChannelAnswer>, QueryError> {
    let p = query_params(q)?;
    let token = guard::token(&headers, p.token.as_deref());
    let channel = path_id(id)?;
    guard::require_channel(&state, token, &channel).await?;
    let r = range(&state, &p, Some(30 * DAY_MS))?;
    let n = limit(&state, p.limit.as_deref())?;
    let snap = state.snapshot().await?;
    let answer = state
        .with_timeout(channel::load(&state, &snap, &channel, r, n))
        .await?;
    Ok(Json(answer))
}

pub async fn vod_analytics(
    State(state): State<QueryState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    let p = query_params(q)?;
    let who = guard::require(&state, guard::token(&headers, p.token.as_deref())).await?;
    let vod = path_id(id)?;
    let snap = state.snapshot().await?;
    guard::require_target(&state, &who, &snap, ScopeKind::Vod, &vod).await?;
    let record = match state.catalog() {
        Some(c) => c.vod_record(&vod).await?,
        None => None,
    };
    let channel = guard::channel_of(&state, &snap, ScopeKind::Vod, &vod).await?;
    let duration = record.as_ref().map(|r| r.duration_s);
    let a = state
        .with_timeout(content::load_target(
            &state,
            &snap,
            ScopeKind::Vod,
            &vod,
            duration,
            record.is_some(),
        ))
        .await?;
    Ok(Json(json!({
        "vod": vod,
        "channel": channel,
        "duration_s": duration,
        "metrics": a,
    })))
}

pub async fn clip_analytics(
    State(state): State<QueryState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    let p = query_params(q)?;
    let who = guard::require(&state, guard::token(&headers, p.token.as_deref())).await?;
    let clip = path_id(id)?;
    let snap = state.snapshot().await?;
    guard::require_target(&state, &who, &snap, ScopeKind::Clip, &clip).await?;
    let record = match state.catalog() {
        Some(c) => c.clip_record(&clip).await?,
        None => None,
    };
    let channel = guard::channel_of(&state, &snap, ScopeKind::Clip, &clip).await?;
    let duration = record.as_ref().map(|r| r.duration_s);
    let a = state
        .with_timeout(content::load_target(
            &state,
            &snap,
            ScopeKind::Clip,
            &clip,
            duration,
            record.is_some(),
        ))
        .await?;
    Ok(Json(json!({
        "clip": clip,
        "channel": channel,
        "stream": record.as_ref().map(|r| r.stream.clone()),
        "duration_s": duration,
        "metrics": a,
    })))
}

pub async fn clip_stats(
    State(state): State<QueryState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    let p = query_params(q)?;
    let who = guard::principal(&state, guard::token(&headers, p.token.as_deref())).await?;
    let clip = path_id(id)?;
    let record = match state.catalog() {
        Some(c) => c.clip_record(&clip).await?,
        None => None,
    };
    if let Some(r) = &record
        && !r.public
    {
        let channel = Id::parse(&r.channel).map_err(|e| QueryError::Store(e.to_string()))?;
        let allowed = match &who {
            Some(w) => guard::may_read(&state, w, &channel).await?,
            None => false,
        };
        if !allowed {
            return Err(QueryError::NotFound(format!("no clip {clip}")));
        }
    }
    let snap = state.snapshot().await?;
    let scope = crate::store::Scope {
        kind: ScopeKind::Clip,
        id: clip.clone(),
    };
    let ticks = state
        .with_timeout(crate::store::AnalyticsStore::tick_totals(
            snap.as_ref(),
            &scope,
            None,
        ))
        .await?;
    if ticks.is_empty() && record.is_none() {
        return Err(QueryError::NotFound(format!("no data for clip {clip}")));
    }
    let t = content::sum_ticks(&ticks);
    Ok(Json(json!({
        "clip": clip,
        "views": t.views,
        "likes": t.likes,
        "shares": t.shares,
    })))
}

async fn titles(
    state: &QueryState,
    channel: &Id,
    kind: ScopeKind,
) -> Result<(BTreeMap<String, String>, Vec<(String, i64)>), QueryError> {
    let Some(cat) = state.catalog() else {
        return Ok((BTreeMap::new(), Vec::new()));
    };
    Ok(match kind {
        ScopeKind::Vod => (
            cat.vod_records(channel)
                .await?
                .into_iter()
                .map(|v| (v.id, v.title))
                .collect(),
            Vec::new(),
        ),
        _ => {
            let clips = cat.clip_records(channel).await?;
            let created: Vec<(String, i64)> = clips
                .iter()
                .map(|c| (c.stream.clone(), c.created_at))
                .collect();
            (
                clips.into_iter().map(|c| (c.id, c.title)).collect(),
                created,
            )
        }
    })
}

async fn top(
    state: QueryState,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
    headers: HeaderMap,
    kind: ScopeKind,
) -> Result<Json<Value>, QueryError> {
    let p = query_params(q)?;
    let token = guard::token(&headers, p.token.as_deref());
    let channel = path_id(id)?;
    guard::require_channel(&state, token, &channel).await?;
    let n = limit(&state, p.limit.as_deref())?;
    let order = sort(p.sort.as_deref())?;
    let r = range(&state, &p, None)?;
    let (names, created) = titles(&state, &channel, kind).await?;
    let snap = state.snapshot().await?;
    let entries = state
        .with_timeout(content::load_top(
            &state,
            &snap,
            &channel,
            kind,
            Some(r),
            &names,
        ))
        .await?;
    let items: Vec<Value> = rank(entries, order, n)
        .into_iter()
        .map(|e| {
            let mut v = serde_json::to_value(&e).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut()
                && let Some(id) = o.remove("id")
            {
                o.insert(kind.param().to_owned(), id);
            }
            v
        })
        .collect();
    let mut answer = json!({
        "channel": channel,
        "from": r.from,
        "to": r.to,
        "sort": if order == TopSort::Views { "views" } else { "trending" },
        "items": items,
    });
    if kind == ScopeKind::Clip {
        let per = clips_per_stream(
            created
                .iter()
                .filter(|(_, at)| *at >= r.from && *at < r.to)
                .map(|(s, _)| s.as_str()),
            n,
        );
        answer["streams_by_clips"] = per
            .into_iter()
            .map(|(stream, clips)| json!({"stream": stream, "clips": clips}))
            .collect();
    }
    Ok(Json(answer))
}

pub async fn top_vods(
    State(state): State<QueryState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    top(state, id, q, headers, ScopeKind::Vod).await
}

pub async fn top_clips(
    State(state): State<QueryState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, QueryError> {
    top(state, id, q, headers, ScopeKind::Clip).await
}

pub async fn trending_clips(
    State(state): State<QueryState>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, QueryError> {
    let p = query_params(q)?;
    let n = limit(&state, p.limit.as_deref())?;
    let channel = p
        .channel
        .as_deref()
        .map(|c| Id::parse(c).map_err(|e| QueryError::invalid("channel", e)))
        .transpose()?;
    let snap = state.snapshot().await?;
    let board = state.trending_cache().board(&state, &snap).await?;
    let hidden: std::collections::HashSet<String> = match (state.catalog(), &channel) {
        (Some(cat), Some(c)) => cat
            .clip_records(c)
            .await?
            .into_iter()
            .filter(|r| !r.public)
            .map(|r| r.id)
            .collect(),
        _ => Default::default(),
    };
    let mut items = Vec::with_capacity(n);
    for e in board.entries.iter().filter(|e| {
        e.kind == ScopeKind::Clip
            && channel.as_ref().is_none_or(|c| e.channel == c.as_str())
            && !hidden.contains(&e.target)
    }) {
        if items.len() >= n {
            break;
        }
        if channel.is_none()
            && let Some(cat) = state.catalog()
            && let Ok(id) = Id::parse(&e.target)
            && cat.clip_record(&id).await?.is_some_and(|r| !r.public)
        {
            continue;
        }
        items.push(json!({"clip": e.target, "channel": e.channel, "trending_score": e.score}));
    }
    Ok(Json(json!({
        "channel": channel,
        "at": board.at,
        "items": items,
    })))
}
