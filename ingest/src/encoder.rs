//! `GET /v1/encoder?stream=<id>` (PROTOCOL.md §2): the encoder's health socket.
//!
//! Before the upgrade: `stream` must be an id (400), the stream key must come as
//! `Authorization: Bearer <key>` or `?key=` (401 without one), and
//! `AccessControl::verify_stream_key` must accept it (401 otherwise; the comparison is
//! the access records' own, constant time, keys stored hashed by the catalog). Only then
//! does the WebSocket open, which makes the stream LIVE (through the health service).
//!
//! Each text frame is one report or `{"type":"end"}`. A report is validated
//! (`pulse_schemas::parse_encoder_frame`) and evaluated at once by the health service;
//! a refused frame gets `{"type":"rejected","count":1,"reasons":["..."]}` and changes
//! nothing (the stream's state is intact). `end` ends the stream (ENDED) and closes
//! with 1000; a socket that goes away without it raises `connection_lost` and starts the
//! grace period. Closes: 1009 over `max_frame_bytes`, 1008 after
//! `max_consecutive_rejects` refused frames in a row, 1000 after `idle_timeout_ms` of
//! silence, 1001 on shutdown, 1013 when the node tracks `max_streams` already.

use crate::IngestState;
use crate::beacons::is_too_large;
use crate::metrics::encoder_metrics;
use axum::Json;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pulse_aggregator::HealthService;
use pulse_schemas::{EncoderFrame, Id, RejectReason, Rejection, parse_encoder_frame};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Query of `GET /v1/encoder`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct EncoderQuery {
    stream: Option<String>,
    key: Option<String>,
}

fn refuse(status: StatusCode, code: &'static str, message: String) -> Response {
    encoder_metrics().refused.with_label_values(&[code]).inc();
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}

/// `GET /v1/encoder`: authenticate, then upgrade.
pub(crate) async fn encoder_ws(
    State(state): State<IngestState>,
    Query(query): Query<EncoderQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(health) = state.health().cloned() else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "encoder ingest is not enabled on this node".into(),
        );
    };
    let stream = match query.stream.as_deref().map(Id::parse) {
        Some(Ok(id)) => id,
        Some(Err(e)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_stream",
                format!("stream: {e}"),
            );
        }
        None => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_stream",
                "stream: expected ?stream=<id>, got nothing".into(),
            );
        }
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(|v| v.trim().to_owned());
    let Some(key) = bearer.or(query.key) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "no_key",
            "expected the stream key as `Authorization: Bearer <key>` or ?key=, got none".into(),
        );
    };
    let channel = match health.access().verify_stream_key(&stream, &key).await {
        Ok(Some(channel)) => channel,
        Ok(None) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "wrong_key",
                format!("the stream key is not the current key of stream {stream}"),
            );
        }
        Err(e) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            );
        }
    };
    let c = health.config();
    let limit = c.max_frame_bytes;
    ws.read_buffer_size(4096)
        .write_buffer_size(4096)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| {
            let tracker = state.socket_tracker();
            tracker.track_future(serve(state, health, socket, stream, channel))
        })
}

struct OpenEncoder;

impl Drop for OpenEncoder {
    fn drop(&mut self) {
        encoder_metrics().connections.dec();
    }
}

/// How the socket ended.
enum End {
    /// `{"type":"end"}`.
    Ended,
    /// The peer went away (no close frame to send).
    Gone,
    /// We close with this code and reason; the stream is lost, not ended.
    Close(u16, String),
}

async fn serve(
    state: IngestState,
    health: Arc<HealthService>,
    mut socket: WebSocket,
    stream: Id,
    channel: Id,
) {
    encoder_metrics().connections.inc();
    let _open = OpenEncoder;
    if let Err(r) = health.connect(&stream, &channel).await {
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code: 1013,
                reason: r.message.into(),
            })))
            .await;
        return;
    }
    let end = run(&state, &health, &mut socket, &stream).await;
    health.disconnect(&stream, matches!(end, End::Ended)).await;
    let close = match end {
        End::Ended => Some((1000, "stream ended".to_string())),
        End::Gone => None,
        End::Close(code, reason) => Some((code, reason)),
    };
    if let Some((code, reason)) = close {
        crate::metrics::metrics().record_close(code);
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        if socket.send(frame).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(Ok(_)) = socket.recv().await {}
            })
            .await;
        }
    }
}

async fn run(
    state: &IngestState,
    health: &HealthService,
    socket: &mut WebSocket,
    stream: &Id,
) -> End {
    let c = health.config();
    let idle = Duration::from_millis(c.idle_timeout_ms);
    let mut rejects_in_a_row = 0u32;
    loop {
        let next = tokio::select! {
            biased;
            () = state.shutdown_token().cancelled() => return End::Close(1001, "server shutting down".into()),
            r = tokio::time::timeout(idle, socket.recv()) => match r {
                Ok(next) => next,
                Err(_) => return End::Close(1000, "idle timeout".into()),
            },
        };
        let outcome = match next {
            None => return End::Gone,
            Some(Err(e)) if is_too_large(&e) => {
                encoder_metrics()
                    .rejected
                    .with_label_values(&[RejectReason::FrameTooLarge.as_str()])
                    .inc();
                return End::Close(
                    1009,
                    format!("frame larger than {} bytes", c.max_frame_bytes),
                );
            }
            Some(Err(_)) => return End::Gone,
            Some(Ok(Message::Close(_))) => return End::Gone,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => Err(Rejection::new(
                RejectReason::BinaryFrame,
                "frame: expected a JSON text frame, got a binary frame",
            )),
            Some(Ok(Message::Text(text))) => match parse_encoder_frame(text.as_str()) {
                Ok(EncoderFrame::End) => return End::Ended,
                Ok(EncoderFrame::Report(report)) => health.report(stream, report),
                Err(r) => Err(r),
            },
        };
        match outcome {
            Ok(()) => {
                rejects_in_a_row = 0;
                encoder_metrics().reports.inc();
            }
            Err(r) => {
                rejects_in_a_row += 1;
                encoder_metrics()
                    .rejected
                    .with_label_values(&[r.reason.as_str()])
                    .inc();
                let mut message = r.message;
                if message.len() > 256 {
                    let mut cut = 256;
                    while !message.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    message.truncate(cut);
                }
                let reply =
                    serde_json::json!({"type": "rejected", "count": 1, "reasons": [message]});
                if socket
                    .send(Message::Text(reply.to_string().into()))
                    .await
                    .is_err()
                {
                    return End::Gone;
                }
                if rejects_in_a_row > c.max_consecutive_rejects {
                    return End::Close(1008, "too many rejected frames in a row".into());
                }
            }
        }
    }
}
