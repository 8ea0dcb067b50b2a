//! `GET /api/analytics/streams/{id}`, `GET /api/analytics/series`,
//! `GET /api/analytics/charts/viewers`: one store snapshot per request, every read
//! under the configured timeout.

use crate::QueryState;
use crate::breakdown::{Breakdown, Frame, breakdowns};
use crate::error::QueryError;
use crate::routes::guard;
use crate::routes::params::{ScopeParams, buckets, query_params};
use crate::series::{Metric, Series};
use crate::store::AnalyticsStore;
use crate::store::ScopeKind;
use crate::store::qoe_reads::Dimension;
use crate::summary::StreamSummary;
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use pulse_schemas::Id;
use serde::Deserialize;

/// Query string of the series and chart routes.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SeriesParams {
    pub metric: Option<String>,
    #[serde(flatten)]
    pub scope: ScopeParams,
    pub from: Option<String>,
    pub to: Option<String>,
    pub step: Option<String>,
    /// A QoE breakdown: `device`, `country` or `player` ([`crate::breakdown`]).
    pub by: Option<String>,
    /// The bearer token, for links that cannot set a header (as `/v1/live` takes it).
    pub token: Option<String>,
}

/// `?token=` of the stream summary.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TokenParam {
    pub token: Option<String>,
}

pub async fn stream_summary(
    State(state): State<QueryState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<TokenParam>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<StreamSummary>, QueryError> {
    let token = guard::token(&headers, query_params(q)?.token.as_deref());
    let who = guard::require(&state, token).await?;
    let Path(id) = id.map_err(|e| QueryError::invalid("id", e.body_text()))?;
    let id = Id::parse(&id).map_err(|e| QueryError::invalid("id", e))?;
    let store = state.snapshot().await?;
    guard::require_target(&state, &who, &store, ScopeKind::Stream, &id).await?;
    let summary =
        crate::summary::load_stream_summary_with_records(&state, store.as_ref(), &id).await?;
    Ok(Json(summary))
}

pub async fn series(
    State(state): State<QueryState>,
    q: Result<Query<SeriesParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, QueryError> {
    let p = query_params(q)?;
    let who = guard::require(&state, guard::token(&headers, p.token.as_deref())).await?;
    let metric = Metric::parse(
        p.metric
            .as_deref()
            .ok_or_else(|| QueryError::invalid("metric", "required, e.g. metric=viewers"))?,
    )?;
    if let Some(by) = p.by.as_deref() {
        let by = Dimension::parse(by)?;
        return Ok(answer_breakdown(&state, metric, by, &p, &who)
            .await?
            .into_response());
    }
    Ok(answer_series(&state, metric, &p, &ScopeKind::ALL, &who)
        .await?
        .into_response())
}

async fn answer_breakdown(
    state: &QueryState,
    metric: Metric,
    by: Dimension,
    p: &SeriesParams,
    who: &pulse_schemas::Principal,
) -> Result<Json<Breakdown>, QueryError> {
    let scope = p.scope.scope(&ScopeKind::ALL)?;
    let cfg = state.config();
    let b = buckets(
        p.from.as_deref(),
        p.to.as_deref(),
        p.step.as_deref(),
        state.tick_ms(),
        cfg.max_points,
        "points",
    )?;
    let mut answers = load_breakdowns(state, who, &scope, &[metric], &b, by).await?;
    answers
        .pop()
        .map(Json)
        .ok_or_else(|| QueryError::Store("a breakdown answered no series".into()))
}

/// The breakdowns of `metrics` by `by` over `b` (the series route's and the export's
/// one read): checks each metric, the caller's access, reads `qoe_minutes` once and, for
/// viewers, the scope's live ranges.
pub(crate) async fn load_breakdowns(
    state: &QueryState,
    who: &pulse_schemas::Principal,
    scope: &crate::store::Scope,
    metrics: &[Metric],
    b: &crate::series::Buckets,
    by: Dimension,
) -> Result<Vec<Breakdown>, QueryError> {
    for &m in metrics {
        crate::breakdown::check(m, by, b.step)?;
    }
    let store = state.snapshot().await?;
    guard::require_target(state, who, &store, scope.kind, &scope.id).await?;
    let live = if metrics.contains(&Metric::Viewers) {
        state
            .with_timeout(crate::channel::scope_live_ranges(state, &store, scope))
            .await?
    } else {
        Vec::new()
    };
    let rows = state
        .with_timeout(store.qoe_groups(scope, b.range(), b.step, by))
        .await?;
    let live = crate::summary::LiveTicks::new(&live);
    let frame = Frame {
        by,
        buckets: b,
        live: &live,
        closed_through: store.closed_through(),
        tick_ms: state.tick_ms(),
        max_groups: state.config().max_breakdown_groups,
    };
    Ok(breakdowns(metrics, rows, &frame))
}

pub async fn viewers_chart(
    State(state): State<QueryState>,
    q: Result<Query<SeriesParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Series>, QueryError> {
    let p = query_params(q)?;
    let who = guard::require(&state, guard::token(&headers, p.token.as_deref())).await?;
    if p.by.is_some() {
        return Err(QueryError::invalid(
            "by",
            "the viewers chart has no breakdown; use /api/analytics/series?metric=viewers&by=…",
        ));
    }
    if p.metric.as_deref().is_some_and(|m| m != "viewers") {
        return Err(QueryError::invalid(
            "metric",
            "the viewers chart has only the viewers metric",
        ));
    }
    answer_series(
        &state,
        Metric::Viewers,
        &p,
        &[ScopeKind::Stream, ScopeKind::Channel],
        &who,
    )
    .await
}

async fn answer_series(
    state: &QueryState,
    metric: Metric,
    p: &SeriesParams,
    kinds: &[ScopeKind],
    who: &pulse_schemas::Principal,
) -> Result<Json<Series>, QueryError> {
    let scope = p.scope.scope(kinds)?;
    let cfg = state.config();
    let b = buckets(
        p.from.as_deref(),
        p.to.as_deref(),
        p.step.as_deref(),
        state.tick_ms(),
        cfg.max_points,
        "points",
    )?;
    let store = state.snapshot().await?;
    guard::require_target(state, who, &store, scope.kind, &scope.id).await?;
    let points = crate::cached_series::points(state, &store, metric, &scope, &b).await?;
    Ok(Json(Series {
        metric: metric.name(),
        step_ms: b.step,
        points,
    }))
}
