//! `GET /api/analytics/streams/{id}`, `GET /api/analytics/series`,
//! `GET /api/analytics/charts/viewers`: one store snapshot per request, every read
//! under the configured timeout.

use crate::QueryState;
use crate::error::QueryError;
use crate::routes::params::{ScopeParams, buckets, check_step_for, query_params};
use crate::series::{Metric, Series, load_inputs, points};
use crate::store::ScopeKind;
use crate::summary::{StreamSummary, load_stream_summary};
use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
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
}

pub async fn stream_summary(
    State(state): State<QueryState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<StreamSummary>, QueryError> {
    let Path(id) = id.map_err(|e| QueryError::invalid("id", e.body_text()))?;
    let id = Id::parse(&id).map_err(|e| QueryError::invalid("id", e))?;
    let store = state.snapshot().await?;
    let tick_ms = state.tick_ms();
    let summary = state
        .with_timeout(load_stream_summary(store.as_ref(), &id, tick_ms))
        .await?;
    Ok(Json(summary))
}

pub async fn series(
    State(state): State<QueryState>,
    q: Result<Query<SeriesParams>, QueryRejection>,
) -> Result<Json<Series>, QueryError> {
    let p = query_params(q)?;
    let metric = Metric::parse(
        p.metric
            .as_deref()
            .ok_or_else(|| QueryError::invalid("metric", "required, e.g. metric=viewers"))?,
    )?;
    answer_series(&state, metric, &p, &ScopeKind::ALL).await
}

pub async fn viewers_chart(
    State(state): State<QueryState>,
    q: Result<Query<SeriesParams>, QueryRejection>,
) -> Result<Json<Series>, QueryError> {
    let p = query_params(q)?;
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
    )
    .await
}

async fn answer_series(
    state: &QueryState,
    metric: Metric,
    p: &SeriesParams,
    kinds: &[ScopeKind],
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
    check_step_for(metric, b.step)?;
    let store = state.snapshot().await?;
    let inputs = state
        .with_timeout(load_inputs(store.as_ref(), &scope, &[metric], &b, None))
        .await?;
    Ok(Json(Series {
        metric: metric.name(),
        step_ms: b.step,
        points: points(metric, &b, &inputs, state.tick_ms()),
    }))
}
