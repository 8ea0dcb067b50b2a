//! `POST /api/sql` (admin token only): `{"sql":"SELECT ...","format":"json|csv|arrow|parquet"}`
//! runs one read-only query over the analytics tables of the configured store
//! ([`crate::sql`]) and answers it in the asked format (default `json`), with the row
//! count in the `X-Pulse-Row-Count` header. 401 without a valid token, 403 for a
//! non-admin; a refusal is 400/422 with the broken rule as `code`, 503 `busy` past
//! `sql_max_concurrent`.

use crate::QueryState;
use crate::error::QueryError;
use crate::routes::health::bearer;
use crate::sql::SqlFormat;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// The request body.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    pub sql: String,
    #[serde(default)]
    pub format: SqlFormat,
}

/// 401 without a valid token, 403 unless it is an admin's.
async fn require_admin(state: &QueryState, headers: &HeaderMap) -> Result<(), QueryError> {
    let who = crate::routes::guard::require(state, bearer(headers, None)).await?;
    if !who.is_admin() {
        return Err(QueryError::Forbidden(format!(
            "POST /api/sql is for admins; user {} has the {:?} role",
            who.user, who.role
        )));
    }
    Ok(())
}

pub async fn run_sql(
    State(state): State<QueryState>,
    headers: HeaderMap,
    body: Result<Json<SqlRequest>, JsonRejection>,
) -> Result<Response, QueryError> {
    require_admin(&state, &headers).await?;
    let Json(req) = body.map_err(|e| QueryError::InvalidBody(e.body_text()))?;
    let (result, slot) = match state.run_sql(&req.sql).await {
        Ok(r) => r,
        Err(e) => {
            if let QueryError::SqlRefused(r) = &e {
                crate::metrics::SQL_REFUSED
                    .with_label_values(&[r.rule.code()])
                    .inc();
            }
            return Err(e);
        }
    };
    let format = req.format;
    let rows = result.num_rows();
    // Encoding up to sql_max_rows rows is CPU work: keep it off the async workers.
    // The slot is held until the answer is encoded (then both are dropped).
    let body = tokio::task::spawn_blocking(move || {
        let encoded = crate::sql::encode::encode(&result, format);
        drop(slot);
        encoded
    })
    .await
    .map_err(|e| QueryError::Store(format!("encoding the answer: {e}")))??;
    crate::metrics::SQL_QUERIES
        .with_label_values(&[format.name()])
        .inc();
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::HeaderName::from_static("x-pulse-row-count"),
                rows.to_string(),
            ),
        ],
        body,
    )
        .into_response())
}
