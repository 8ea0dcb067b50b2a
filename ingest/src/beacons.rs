//! `GET /v1/beacons` (WebSocket) and `POST /v1/beacons` (JSON object, array, envelope
//! or NDJSON), exactly as PROTOCOL.md §1 says.
//!
//! WebSocket loop (one task per socket, no task per event): read a message, parse it
//! (`pulse_schemas::parse_frame`), rate-limit it, correct clock skew, append its valid
//! events to the connection's pending batch and reply `rejected` at once if anything
//! was refused. While more messages are already buffered on the socket they are taken
//! without waiting (up to `MAX_BATCH_EVENTS` events per batch); when none is ready the
//! batch is handed on with `EventSender::send().await` — the socket is not read while
//! that waits (backpressure) — and only then are the envelopes of the batch acked.
//!
//! Closes: 1009 when tungstenite refuses a message over `max_frame_bytes` (its read
//! fails before the payload is buffered; we then send the Close frame ourselves),
//! 1008 on rate-limit abuse, 1000 after `idle_timeout_ms` of silence, 1001 on shutdown.

use crate::error::IngestError;
use crate::metrics::metrics;
use crate::rate_limit::ConnectionLimiter;
use crate::{IngestConfig, IngestState};
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use pulse_schemas::{
    Event, MAX_BATCH_EVENTS, ParsedFrame, RejectReason, Rejection, parse_frame, parse_frame_into,
    parse_ndjson,
};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::time::Instant;

/// Longest reason line echoed back in a reply (messages can quote client input).
const MAX_REASON_CHARS: usize = 256;
/// How long a closing socket waits for the client's Close reply.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// `?token=` of the beacon endpoints (other query parameters are ignored).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// `GET /v1/beacons`: upgrade with small buffers and the frame limit.
pub(crate) async fn beacons_ws(
    State(state): State<IngestState>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let trusted = state.is_trusted(&headers, query.token.as_deref());
    let c = state.config();
    ws.read_buffer_size(c.ws_read_buffer_bytes)
        .write_buffer_size(c.ws_write_buffer_bytes)
        .max_write_buffer_size(c.ws_max_write_buffer_bytes)
        .max_message_size(c.max_frame_bytes)
        .max_frame_size(c.max_frame_bytes)
        .on_upgrade(move |socket| {
            let tracker = state.socket_tracker();
            tracker.track_future(serve_socket(state, socket, trusted))
        })
}

/// How a connection ends.
enum End {
    /// The client closed or vanished: nothing to send.
    Gone,
    /// The server closes with this code and reason.
    Close(u16, String),
}

/// Decrements the open-connections gauge however the task ends.
struct OpenConnection;

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics().connections.dec();
    }
}

async fn serve_socket(state: IngestState, mut socket: WebSocket, trusted: bool) {
    metrics().connections.inc();
    let _open = OpenConnection;
    let mut conn = Connection {
        limiter: (!trusted).then(|| ConnectionLimiter::new(state.config(), Instant::now())),
        idle: Duration::from_millis(state.config().idle_timeout_ms),
        state,
        pending: Vec::new(),
        last_batch: 0,
        acks: Vec::new(),
        frame: ParsedFrame::default(),
        received: None,
        uncounted_frames: 0,
        uncorrected: None,
    };
    if let End::Close(code, reason) = conn.run(&mut socket).await {
        metrics().record_close(code);
        tracing::debug!(code, %reason, "closing beacon socket");
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        if socket.send(close).await.is_ok() {
            // Let the client answer the close handshake (bounded) before the TCP close.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                while let Some(Ok(_)) = socket.recv().await {}
            })
            .await;
        }
    }
}

struct Connection {
    state: IngestState,
    /// `None` for trusted emitters.
    limiter: Option<ConnectionLimiter>,
    idle: Duration,
    /// Accepted events not yet handed to the aggregator (at most `MAX_BATCH_EVENTS`).
    pending: Vec<Event>,
    /// Size of the last batch handed on: the next one is allocated at that size when
    /// its first events arrive, instead of growing by doubling (each step a copy and,
    /// for big batches, fresh pages). An idle connection holds no batch memory.
    last_batch: usize,
    /// Envelope `seq`s to ack once `pending` is handed on.
    acks: Vec<u64>,
    /// The frame being read, reused so a single-event frame allocates nothing here;
    /// its buffers are dropped after a frame larger than [`KEPT_FRAME_EVENTS`].
    frame: ParsedFrame,
    /// Receive time read for the frames of the current burst, and how many used it.
    received: Option<(i64, u32)>,
    /// Frames read and not yet added to `pulse_ingest_frames_total`: the shared counter
    /// is bumped once per burst, not per frame (an atomic add on a cache line both
    /// ingest workers write stalled each frame), always before the socket waits or
    /// answers, so the count is current whenever the client could look.
    uncounted_frames: u64,
    /// `(from, received_ms)`: `pending[from..]` came in frames received at
    /// `received_ms` and is not skew-corrected yet. A burst's frames share one receive
    /// time, so they are corrected together, under one lock of the node-wide skew
    /// table instead of one per frame (that lock's line moved between the two ingest
    /// workers for every frame). Each event still gets its own frame's receive time
    /// and goes through the table in arrival order: a new receive time first corrects
    /// what came before it, and a flush corrects everything before the hand-off.
    uncorrected: Option<(usize, i64)>,
}

/// Frames of one burst (read without waiting) that share one reading of the clock: a
/// pipelining client's frames were all in the socket buffer together, and the clock
/// was ~4 % of a loaded server's ingest time when read for each one.
const FRAMES_PER_CLOCK_READ: u32 = 64;

/// Event capacity a connection keeps between frames (a viewer's frames hold one event;
/// an envelope's up to 1 000 would pin ~200 KiB on each socket).
const KEPT_FRAME_EVENTS: usize = 8;

impl Connection {
    async fn run(&mut self, socket: &mut WebSocket) -> End {
        loop {
            let next = if self.pending.is_empty() && self.acks.is_empty() {
                self.end_burst(); // waiting: the next frame starts a new burst
                tokio::select! {
                    biased;
                    () = self.state.shutdown.cancelled() => return End::Close(1001, "server shutting down".into()),
                    r = tokio::time::timeout(self.idle, socket.recv()) => match r {
                        Ok(next) => next,
                        Err(_) => return End::Close(1000, "idle timeout".into()),
                    },
                }
            } else {
                // Take what is already buffered; when nothing is, hand the batch on.
                match socket.recv().now_or_never() {
                    Some(next) => next,
                    None => match self.flush(socket).await {
                        Ok(()) => continue,
                        Err(end) => return end,
                    },
                }
            };
            let step = match next {
                None | Some(Ok(Message::Close(_))) => Err(End::Gone),
                Some(Err(e)) if is_too_large(&e) => {
                    metrics()
                        .events_rejected
                        .with_label_values(&[RejectReason::FrameTooLarge.as_str()])
                        .inc();
                    let limit = self.state.config().max_frame_bytes;
                    Err(End::Close(1009, format!("frame larger than {limit} bytes")))
                }
                Some(Err(_)) => Err(End::Gone),
                Some(Ok(Message::Text(text))) => self.on_text(socket, text.as_str()).await,
                Some(Ok(Message::Binary(_))) => {
                    let refused = Rejection::new(
                        RejectReason::BinaryFrame,
                        "binary frames are not accepted: send JSON text frames",
                    );
                    self.on_frame(socket, &mut ParsedFrame::refused(refused))
                        .await
                }
                Some(Ok(_)) => Ok(()), // ping/pong: tungstenite answers pings itself
            };
            if let Err(end) = step {
                // Hand on what was accepted before leaving (acks reach the client if it is still there).
                return match self.flush(socket).await {
                    Ok(()) | Err(End::Gone) => end,
                    Err(close) => close,
                };
            }
        }
    }

    async fn on_text(&mut self, socket: &mut WebSocket, text: &str) -> Result<(), End> {
        let mut frame = std::mem::take(&mut self.frame);
        parse_frame_into(text, &mut frame);
        let step = self.on_frame(socket, &mut frame).await;
        if frame.events.capacity() <= KEPT_FRAME_EVENTS {
            self.frame = frame;
        }
        step
    }

    async fn on_frame(
        &mut self,
        socket: &mut WebSocket,
        parsed: &mut ParsedFrame,
    ) -> Result<(), End> {
        self.uncounted_frames += 1;
        let received_ms = self.received_ms();
        let mut abusive = false;
        if let Some(limiter) = &mut self.limiter {
            let admission = limiter.admit(parsed.events.len(), Instant::now());
            drop_rate_limited(parsed, admission.dropped, self.state.config());
            abusive = admission.abusive;
        }
        metrics().record_rejections(&parsed.by_reason);
        if self.pending.len() + parsed.events.len() > MAX_BATCH_EVENTS {
            self.flush(socket).await?;
        }
        if self.pending.capacity() == 0 && !parsed.events.is_empty() {
            self.pending.reserve(
                self.last_batch
                    .max(parsed.events.len())
                    .min(MAX_BATCH_EVENTS),
            );
        }
        if !parsed.events.is_empty() {
            match self.uncorrected {
                Some((_, ms)) if ms == received_ms => {}
                Some(_) => {
                    self.correct_pending();
                    self.uncorrected = Some((self.pending.len(), received_ms));
                }
                None => self.uncorrected = Some((self.pending.len(), received_ms)),
            }
        }
        self.pending.append(&mut parsed.events);
        if let Some(seq) = parsed.seq {
            self.acks.push(seq);
        }
        if let Some(reply) = rejection_reply(parsed) {
            self.end_burst(); // the send may wait on a slow reader
            socket
                .send(Message::Text(reply.into()))
                .await
                .map_err(|_| End::Gone)?;
        }
        if abusive {
            return Err(End::Close(
                1008,
                "rate limit exceeded: too many events dropped".into(),
            ));
        }
        Ok(())
    }

    /// Corrects the clock skew of the pending events not corrected yet.
    fn correct_pending(&mut self) {
        if let Some((from, received_ms)) = self.uncorrected.take()
            && let Some(events) = self.pending.get_mut(from..)
        {
            self.state.correct(events, received_ms);
        }
    }

    /// Ends the current burst, before anything that may wait: the next frame reads the
    /// clock afresh, and the frames read so far are added to `pulse_ingest_frames_total`.
    fn end_burst(&mut self) {
        self.received = None;
        if self.uncounted_frames > 0 {
            metrics()
                .frames
                .inc_by(std::mem::take(&mut self.uncounted_frames));
        }
    }

    /// The receive time of the frame being handled: the clock, read once for up to
    /// [`FRAMES_PER_CLOCK_READ`] frames of one burst. Every wait ends the burst (the
    /// loop's wait for a frame, a flush, a reply): frames read after it get a fresh time.
    fn received_ms(&mut self) -> i64 {
        match &mut self.received {
            Some((ms, used)) if *used < FRAMES_PER_CLOCK_READ => {
                *used += 1;
                *ms
            }
            _ => {
                let ms = self.state.now_ms();
                self.received = Some((ms, 1));
                ms
            }
        }
    }

    /// Hands the pending batch to the aggregator (awaiting: backpressure), then acks.
    async fn flush(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        // A hand-off may wait (seconds, behind a full channel): frames after it are new.
        self.end_burst();
        self.correct_pending();
        if !self.pending.is_empty() {
            let batch = std::mem::take(&mut self.pending);
            self.last_batch = batch.len();
            self.state
                .hand_on(batch)
                .await
                .map_err(|_| End::Close(1001, "server shutting down".into()))?;
        }
        for seq in self.acks.drain(..) {
            let ack = format!(r#"{{"type":"ack","seq":{seq}}}"#);
            socket
                .send(Message::Text(ack.into()))
                .await
                .map_err(|_| End::Gone)?;
        }
        Ok(())
    }
}

/// Did the read fail because the message was over `max_message_size`/`max_frame_size`?
pub(crate) fn is_too_large(err: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(WsError::Capacity(_)) = e.downcast_ref::<WsError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Drops the last `dropped` events of a frame for the rate limit, and says so.
fn drop_rate_limited(parsed: &mut ParsedFrame, dropped: u32, config: &IngestConfig) {
    if dropped == 0 {
        return;
    }
    let keep = parsed.events.len().saturating_sub(dropped as usize);
    parsed.events.truncate(keep);
    metrics().rate_limited.inc_by(u64::from(dropped));
    parsed.reject(
        Rejection::new(
            RejectReason::RateLimited,
            format!(
                "rate limit ({} events/s, burst {}): the last {dropped} events were dropped",
                config.rate_per_s, config.burst
            ),
        ),
        dropped,
    );
}

/// The `rejected` reply, with each reason cut to `MAX_REASON_CHARS`.
fn rejection_reply(parsed: &mut ParsedFrame) -> Option<String> {
    shorten_reasons(parsed);
    parsed.rejection_reply()
}

fn shorten_reasons(parsed: &mut ParsedFrame) {
    for r in &mut parsed.reasons {
        if let Some((cut, _)) = r.char_indices().nth(MAX_REASON_CHARS) {
            r.truncate(cut);
            r.push('…');
        }
    }
}

/// `POST /v1/beacons`.
pub(crate) async fn beacons_post(
    State(state): State<IngestState>,
    Query(query): Query<TokenQuery>,
    request: Request,
) -> Response {
    match post(state, query, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn post(
    state: IngestState,
    query: TokenQuery,
    request: Request,
) -> Result<Response, IngestError> {
    let (parts, body) = request.into_parts();
    let config = state.config();
    let limit = config.max_body_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(body_too_large(limit));
    }
    let bytes = read_body(body, limit).await?;
    metrics().frames.inc();
    let received_ms = state.now_ms();
    let ndjson = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-ndjson")
        });
    let mut parsed = match std::str::from_utf8(&bytes) {
        Ok(text) if ndjson => parse_ndjson(text),
        Ok(text) => parse_frame(text),
        Err(e) => ParsedFrame::refused(Rejection::new(
            RejectReason::NotJson,
            format!("body is not UTF-8: {e}"),
        )),
    };
    if !state.is_trusted(&parts.headers, query.token.as_deref()) {
        // Without ConnectInfo (served without `into_make_service_with_connect_info`)
        // all peers share one bucket: stricter, never looser.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let dropped = state
            .peers()
            .admit(peer, parsed.events.len(), received_ms, Instant::now());
        drop_rate_limited(&mut parsed, dropped, config);
    }
    state.correct_and_count(&mut parsed, received_ms);
    let accepted = parsed.events.len();
    if accepted > 0 {
        state.hand_on(std::mem::take(&mut parsed.events)).await?;
    }
    Ok(post_reply(accepted, &mut parsed))
}

/// 200 when something was accepted or nothing refused; otherwise 429 if every refusal
/// was the rate limit, else 400. The body always carries the counts, and on 4xx also the
/// `{"error":{...}}` shape of PROTOCOL.md §4.
fn post_reply(accepted: usize, parsed: &mut ParsedFrame) -> Response {
    shorten_reasons(parsed);
    let mut body = serde_json::json!({"accepted": accepted, "rejected": parsed.rejected, "reasons": parsed.reasons});
    if let Some(seq) = parsed.seq {
        body["seq"] = seq.into();
    }
    if accepted > 0 || parsed.rejected == 0 {
        return (StatusCode::OK, axum::Json(body)).into_response();
    }
    let only_rate_limited = parsed
        .by_reason
        .iter()
        .all(|(r, _)| *r == RejectReason::RateLimited);
    let (status, code, message) = if only_rate_limited {
        (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "every event was dropped by the rate limit",
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            "no_valid_events",
            "no event in the body was valid",
        )
    };
    body["error"] = serde_json::json!({"code": code, "message": message});
    let mut response = (status, axum::Json(body)).into_response();
    if only_rate_limited {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

fn body_too_large(limit: usize) -> IngestError {
    metrics()
        .events_rejected
        .with_label_values(&[RejectReason::BodyTooLarge.as_str()])
        .inc();
    IngestError::BodyTooLarge { limit }
}

/// Reads at most `limit` bytes of body; more is a 413.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, IngestError> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| IngestError::BodyRead(e.to_string()))?;
        if buf.len() + chunk.len() > limit {
            return Err(body_too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_cut_and_the_post_status_follows_the_counts() {
        let mut p =
            ParsedFrame::refused(Rejection::new(RejectReason::UnknownField, "x".repeat(5000)));
        let r = post_reply(0, &mut p);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(p.reasons[0].chars().count() == MAX_REASON_CHARS + 1);
        let mut p = ParsedFrame::refused(Rejection::new(RejectReason::RateLimited, "slow down"));
        assert_eq!(
            post_reply(0, &mut p).status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(post_reply(3, &mut p).status(), StatusCode::OK);
        assert_eq!(
            post_reply(0, &mut ParsedFrame::default()).status(),
            StatusCode::OK
        );
    }
}
