//! `GET /v1/live?channel=<id>` (PROTOCOL.md §3): the creator's live feed.
//!
//! Authenticated before the upgrade (creator token of the channel or admin, as
//! `Authorization: Bearer` or `?token=`; 401/403 otherwise). On open it sends the
//! health of each live stream of the channel and, as `firing` alert messages, the
//! alerts firing now; then health once a second and every alert change as soon as the
//! health component broadcasts it (the JSON is serialized once for all feeds). A feed
//! that falls behind the bounded broadcast counts the skipped messages
//! (`pulse_query_live_lagged_total`) and re-sends the firing alerts, so its creator's
//! view is right again. Viewers come from the newest `stream_ticks` row of the stream in
//! memory (provisional or recent), summed across nodes. With ClickHouse, the alert
//! changes of streams whose encoder is on another node come from
//! [`crate::remote_alerts`] (polled from the shared `alerts` table).

use crate::QueryState;
use crate::error::QueryError;
use crate::metrics::{LIVE_FEEDS, LIVE_LAGGED};
use crate::routes::health::{authorize, bearer};
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use pulse_schemas::{AlertBroadcast, EmbeddedTables, Id, LiveHealth, LiveUpdate, Table};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// Query of `GET /v1/live`.
#[derive(Debug, Default, Deserialize)]
pub struct LiveParams {
    channel: Option<String>,
    token: Option<String>,
}

pub async fn live_feed(
    State(state): State<QueryState>,
    Query(params): Query<LiveParams>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, QueryError> {
    let channel = params
        .channel
        .as_deref()
        .ok_or_else(|| QueryError::invalid("channel", "expected ?channel=<id>, got nothing"))
        .and_then(|c| Id::parse(c).map_err(|e| QueryError::invalid("channel", e)))?;
    authorize(&state, bearer(&headers, params.token.as_deref()), &channel).await?;
    let live = state.live()?;
    let health = live.health.clone();
    let remote = live.remote_alerts.as_ref().map(|tx| tx.subscribe());
    let tables = state.tables().clone();
    let tick_ms = state.tick_ms();
    Ok(ws
        .max_message_size(4096)
        .on_upgrade(move |socket| feed(socket, health, remote, tables, channel, tick_ms))
        .into_response())
}

struct OpenFeed;

impl Drop for OpenFeed {
    fn drop(&mut self) {
        LIVE_FEEDS.dec();
    }
}

async fn send(socket: &mut WebSocket, text: String) -> bool {
    socket.send(Message::Text(text.into())).await.is_ok()
}

/// Health of every live stream of the channel, then (when `with_alerts`) its firing alerts.
async fn send_state(
    socket: &mut WebSocket,
    health: &Arc<dyn LiveHealth>,
    tables: &EmbeddedTables,
    channel: &Id,
    with_alerts: bool,
    tick_ms: i64,
) -> bool {
    let now = health.now();
    for mut s in health.channel_now(channel, now) {
        s.latest.viewers = viewers_now(tables, &s.latest.stream, now, tick_ms);
        let Ok(text) = serde_json::to_string(&LiveUpdate::Health(s.latest)) else {
            continue;
        };
        if !send(socket, text).await {
            return false;
        }
        if with_alerts {
            for a in s.active_alerts {
                let Ok(text) = serde_json::to_string(&LiveUpdate::Alert(a)) else {
                    continue;
                };
                if !send(socket, text).await {
                    return false;
                }
            }
        }
    }
    true
}

/// The next alert of other nodes, or never when this node has no such source.
async fn next_remote(
    remote: &mut Option<broadcast::Receiver<AlertBroadcast>>,
) -> Result<AlertBroadcast, RecvError> {
    match remote {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn feed(
    mut socket: WebSocket,
    health: Arc<dyn LiveHealth>,
    mut remote: Option<broadcast::Receiver<AlertBroadcast>>,
    tables: Arc<EmbeddedTables>,
    channel: Id,
    tick_ms: i64,
) {
    LIVE_FEEDS.inc();
    let _open = OpenFeed;
    let mut alerts = health.subscribe();
    if !send_state(&mut socket, &health, &tables, &channel, true, tick_ms).await {
        return;
    }
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        tokio::select! {
            biased;
            msg = alerts.recv() => match msg {
                Ok(a) if a.channel == channel => {
                    if !send(&mut socket, a.json.to_string()).await {
                        return;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    LIVE_LAGGED.inc_by(n);
                    if !send_state(&mut socket, &health, &tables, &channel, true, tick_ms).await {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            msg = next_remote(&mut remote) => match msg {
                Ok(a) if a.channel == channel => {
                    if !send(&mut socket, a.json.to_string()).await {
                        return;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => LIVE_LAGGED.inc_by(n),
                // The poller stopped (shutdown): local alerts go on.
                Err(RecvError::Closed) => remote = None,
            },
            _ = every.tick() => {
                if !send_state(&mut socket, &health, &tables, &channel, false, tick_ms).await {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Viewers of `stream` at its newest *sampled* tick in memory (provisional or recent),
/// summed across nodes: the newest tick that ended by `now` (the tick still running has
/// no sample yet, so its row says 0), no older than three ticks; 0 when none (a tick
/// with viewers always has a row).
pub fn viewers_now(tables: &EmbeddedTables, stream: &Id, now: i64, tick_ms: i64) -> i64 {
    let tick_ms = tick_ms.max(1);
    let view = tables.view();
    let recent = view
        .recent
        .get(&Table::StreamTicks)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut best: Option<(i64, i64)> = None;
    for b in view.provisional_ticks.iter().chain(recent) {
        let schema = b.schema();
        let (Ok(k), Ok(tg), Ok(t), Ok(v)) = (
            schema.index_of("kind"),
            schema.index_of("target"),
            schema.index_of("t"),
            schema.index_of("viewers"),
        ) else {
            continue;
        };
        let (Some(kind), Some(target)) = (
            b.column(k).as_string_opt::<i32>(),
            b.column(tg).as_string_opt::<i32>(),
        ) else {
            continue;
        };
        let (Some(ts), Some(vs)) = (
            b.column(t).as_primitive_opt::<Int64Type>(),
            b.column(v).as_primitive_opt::<Int64Type>(),
        ) else {
            continue;
        };
        for r in 0..b.num_rows() {
            if kind.is_null(r) || kind.value(r) != "stream" || target.value(r) != stream.as_str() {
                continue;
            }
            let (t, v) = (ts.value(r), vs.value(r));
            if t + tick_ms > now || t < now - 3 * tick_ms {
                continue;
            }
            best = match best {
                Some((bt, bv)) if bt == t => Some((t, bv + v)),
                Some((bt, _)) if bt > t => best,
                _ => Some((t, v)),
            };
        }
    }
    best.map_or(0, |(_, v)| v)
}
