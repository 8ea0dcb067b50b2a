//! `POST /api/analytics/export`: checks the JSON body, then streams the CSV
//! ([`crate::export`]).

use crate::QueryState;
use crate::error::QueryError;
use crate::export::{ExportPlan, parse_tz, start};
use crate::routes::params::{NumOrText, ScopeParams, buckets};
use crate::series::Metric;
use crate::store::ScopeKind;
use crate::store::qoe_reads::Dimension;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;

/// The export request body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// Series metric names (at least one, no repeats).
    pub metrics: Vec<String>,
    pub stream: Option<String>,
    pub channel: Option<String>,
    pub vod: Option<String>,
    pub clip: Option<String>,
    /// Epoch ms or RFC 3339.
    pub from: NumOrText,
    pub to: NumOrText,
    /// Step in ms or by name (`5s`, `1m`, `5m`, `1h`, `1d`); default 1 minute.
    pub step: Option<NumOrText>,
    /// `UTC` (default) or a fixed offset `±HH:MM` for the `time` column.
    pub tz: Option<String>,
    /// A QoE breakdown (`device`, `country`, `player`): one row per bucket and group.
    pub by: Option<String>,
}

pub async fn export(
    State(state): State<QueryState>,
    headers: HeaderMap,
    body: Result<Json<ExportRequest>, JsonRejection>,
) -> Result<Response, QueryError> {
    let who =
        crate::routes::guard::require(&state, crate::routes::guard::token(&headers, None)).await?;
    let Json(req) = body.map_err(|e| QueryError::InvalidBody(e.body_text()))?;
    let cfg = state.config();
    if req.metrics.is_empty() {
        return Err(QueryError::invalid("metrics", "give at least one metric"));
    }
    if req.metrics.len() > cfg.max_export_metrics {
        return Err(QueryError::TooLarge(format!(
            "{} metrics asked, at most {} per export",
            req.metrics.len(),
            cfg.max_export_metrics
        )));
    }
    let mut metrics = Vec::with_capacity(req.metrics.len());
    for name in &req.metrics {
        let m = Metric::parse(name)?;
        if metrics.contains(&m) {
            return Err(QueryError::invalid(
                "metrics",
                format!("{name} is listed twice"),
            ));
        }
        metrics.push(m);
    }
    let scope = ScopeParams {
        stream: req.stream.clone(),
        channel: req.channel.clone(),
        vod: req.vod.clone(),
        clip: req.clip.clone(),
    }
    .scope(&ScopeKind::ALL)?;
    let (from, to, step) = (
        req.from.as_text(),
        req.to.as_text(),
        req.step.as_ref().map(NumOrText::as_text),
    );
    let b = buckets(
        Some(&from),
        Some(&to),
        step.as_deref(),
        state.tick_ms(),
        cfg.max_export_rows,
        "rows",
    )?;
    let tz = parse_tz(req.tz.as_deref())?;
    let filename = format!("pulse-{}-{}.csv", scope.kind.param(), scope.id);
    if let Some(by) = req.by.as_deref() {
        let by = Dimension::parse(by)?;
        let series =
            crate::routes::analytics::load_breakdowns(&state, &who, &scope, &metrics, &b, by)
                .await?;
        let groups = series.first().map_or(0, |s| s.groups.len());
        if b.count.saturating_mul(groups) > cfg.max_export_rows {
            return Err(QueryError::TooLarge(format!(
                "{} buckets × {groups} groups is more than the limit of {} rows; use a larger step or a shorter range",
                b.count, cfg.max_export_rows
            )));
        }
        let csv = crate::export::breakdown_csv(&series, &metrics, by, &tz);
        return Ok(csv_response(&filename, Body::from(csv)));
    }
    let plan = ExportPlan {
        scope,
        metrics,
        buckets: b,
        tz,
        tick_ms: state.tick_ms(),
        chunk_rows: cfg.export_chunk_rows,
        timeout_ms: cfg.query_timeout_ms,
        live: None,
    };
    let store = state.snapshot().await?;
    crate::routes::guard::require_target(&state, &who, &store, plan.scope.kind, &plan.scope.id)
        .await?;
    let mut plan = plan;
    if plan.metrics.contains(&Metric::Viewers) {
        plan.live = Some(
            state
                .with_timeout(crate::channel::scope_live_ranges(
                    &state,
                    &store,
                    &plan.scope,
                ))
                .await?,
        );
    }
    let (first, rest) = start(store, plan).await?;
    let body =
        futures_util::stream::once(async move { Ok::<_, QueryError>(bytes::Bytes::from(first)) })
            .chain(rest);
    Ok(csv_response(&filename, Body::from_stream(body)))
}

fn csv_response(filename: &str, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}
