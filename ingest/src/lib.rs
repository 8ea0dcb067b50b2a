//! pulse-ingest: the player-beacon endpoints of PROTOCOL.md §1 and the encoder socket of §2.
//!
//! Modules:
//! - [`beacons`]: `GET /v1/beacons` (WebSocket) and `POST /v1/beacons` (JSON object,
//!   array, `{"seq":N,"events":[...]}` envelope, or NDJSON). Parsing and validation are
//!   `pulse_schemas::{parse_frame, parse_ndjson}`; this crate adds limits, skew
//!   correction and the hand-off.
//! - [`encoder`]: `GET /v1/encoder?stream=` (PROTOCOL.md §2), the encoder health socket:
//!   stream key checked through `AccessControl` before the upgrade (401), reports
//!   validated by `pulse_schemas::parse_encoder_frame` and evaluated on arrival by the
//!   `HealthService` of pulse-aggregator (its own path: reports are not beacons).
//! - [`rate_limit`]: token buckets — one per WebSocket, one per peer IP for `POST`
//!   (bounded table) — and the abuse rule that closes a socket with 1008.
//! - [`clock_skew`]: the per-session skew decision, remembered in a bounded node-wide
//!   table with expiry.
//! - `generational_map`: the two-generation bounded map both tables use.
//! - [`metrics`]: `pulse_ingest_*` Prometheus metrics in the default registry.
//! - [`config`]: [`IngestConfig`], every limit with its default; [`error`]: [`IngestError`].
//!
//! Design choices:
//! - **Hand-off** is `EventSender::send(batch).await` on the aggregator's channel,
//!   bounded by the events it holds (`channel_capacity_events`). Each socket is one task that does not read while a send waits, so a slow
//!   aggregator slows clients down (TCP backpressure) instead of growing a queue. Frames
//!   already buffered on a socket are coalesced into one batch (≤ 1000 events) before
//!   the send; envelope acks are sent only after their batch's send returned Ok.
//! - **Small sockets**: 4 KiB read/write buffers, 64 KiB max message and frame (an
//!   oversize frame fails in the frame header, before its payload is buffered) and a
//!   bounded write buffer, so 10 000 idle sockets cost little memory.
//! - **Rate limit** (defaults 50 events/s, burst 500): every valid event costs a token,
//!   a frame without one costs one token; the last events of a frame over budget are
//!   dropped, counted and reported in a `rejected` reply (reason `rate_limited`). More
//!   than `abuse_drop_limit` (1000) drops within `abuse_window_ms` (10 s, the window
//!   opens at the first drop) is abuse: close 1008. Clients presenting the
//!   `trusted_token` (`Authorization: Bearer <t>` or `?token=<t>`, compared in constant
//!   time) are server-side emitters or load generators and are not limited; a wrong
//!   token is simply not trusted (no 401: players may carry unrelated bearer tokens).
//! - **POST** is limited per peer IP (needs the server built with
//!   `into_make_service_with_connect_info::<SocketAddr>()`; without it all peers share
//!   one bucket). Replies: 200 `{"accepted":N,"rejected":M,"reasons":[...]}` when
//!   something was accepted or nothing refused (a partly valid batch is not an error);
//!   when nothing was accepted and something refused, the same counts with status 400
//!   (`error.code` `no_valid_events`) or 429 (`rate_limited`, `Retry-After: 1`) and
//!   the `{"error":{...}}` shape added; over `max_body_bytes` 413 `body_too_large`.
//!   A `seq` envelope posted is echoed as `"seq"`. NDJSON is chosen by
//!   `Content-Type: application/x-ndjson`; anything else (including `sendBeacon`'s
//!   `text/plain`) is read as JSON.
//! - **Shutdown**: [`IngestState::with_shutdown`] makes every socket hand its pending
//!   batch on and close with 1001; upgraded sockets outlive `axum::serve`'s graceful
//!   shutdown, so the binary awaits [`IngestState::sockets_closed`] before it stops the
//!   aggregator.
//! - **Clock skew**: see [`clock_skew`]; receive time comes from the injectable clock
//!   of [`IngestState`]: one reading per `POST` body, and on a socket one per burst of
//!   up to 64 frames read without waiting (every wait starts a new burst). A socket
//!   corrects the events of frames that share a receive time together, before a new
//!   receive time or the hand-off, under one lock of the node-wide table (each event
//!   still with its own frame's receive time, in arrival order).
//! - **Per-frame cost** (issue 2's frames ratio; `benches/frames.rs`): a socket reuses
//!   one `ParsedFrame` (`parse_frame_into`; buffers beyond a few events are dropped so
//!   an envelope does not pin memory on every socket), events are parsed by the plain
//!   serde deserializer (the field path is tracked only when re-reading a refused one),
//!   the skew table hashes with foldhash, and a socket adds its frames to
//!   `pulse_ingest_frames_total` once per burst (before it waits or replies), not with
//!   an atomic add per frame on a line both workers write.
//! - **Metrics** count WebSocket messages and `POST` bodies as frames; refusals by
//!   `RejectReason` (a too-large frame or body counts once as `frame_too_large` /
//!   `body_too_large`); closes by code; `queue_depth` is sampled after each send.

#![forbid(unsafe_code)]
pub mod beacons;
pub mod clock_skew;
pub mod config;
pub mod encoder;
pub mod error;
mod generational_map;
pub mod metrics;
pub mod rate_limit;

pub use clock_skew::{SkewCorrector, SkewStats};
pub use config::IngestConfig;
pub use error::IngestError;
pub use metrics::{IngestMetrics, metrics};

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::get;
use pulse_aggregator::EventSender;
use pulse_schemas::{Event, ParsedFrame};
use rate_limit::PeerLimiter;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Wall clock in epoch milliseconds (injectable for tests).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock as a [`Clock`].
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    })
}

/// Everything the beacon handlers share; cheap to clone.
#[derive(Clone)]
pub struct IngestState {
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    /// Every socket task, so shutdown can wait until their events are handed on.
    sockets: TaskTracker,
    /// Stream health (encoder sockets); `None`: `/v1/encoder` answers 503.
    health: Option<Arc<pulse_aggregator::HealthService>>,
}

struct Shared {
    config: IngestConfig,
    events: EventSender,
    skew: SkewCorrector,
    peers: PeerLimiter,
    clock: Clock,
}

impl IngestState {
    /// State with the system clock. Fails if `config` is out of range.
    pub fn new(config: IngestConfig, events: EventSender) -> Result<IngestState, IngestError> {
        IngestState::with_clock(config, events, system_clock())
    }

    /// State whose receive time comes from `clock` (epoch ms).
    pub fn with_clock(
        config: IngestConfig,
        events: EventSender,
        clock: Clock,
    ) -> Result<IngestState, IngestError> {
        config.validate()?;
        let now = clock();
        let shared = Shared {
            skew: SkewCorrector::new(&config, now),
            peers: PeerLimiter::new(&config, now),
            config,
            events,
            clock,
        };
        Ok(IngestState {
            shared: Arc::new(shared),
            shutdown: CancellationToken::new(),
            sockets: TaskTracker::new(),
            health: None,
        })
    }

    /// Sockets close with 1001 once `token` is cancelled (graceful shutdown: the
    /// events they accepted are handed on first).
    pub fn with_shutdown(mut self, token: CancellationToken) -> IngestState {
        self.shutdown = token;
        self
    }

    /// Serves `GET /v1/encoder` with this health service.
    pub fn with_health(mut self, health: Arc<pulse_aggregator::HealthService>) -> IngestState {
        self.health = Some(health);
        self
    }

    pub(crate) fn health(&self) -> Option<&Arc<pulse_aggregator::HealthService>> {
        self.health.as_ref()
    }

    pub(crate) fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Waits until every beacon socket task has ended (after the shutdown token was
    /// cancelled they end promptly, having handed their accepted events on). Call it
    /// after the HTTP server stopped and before stopping the aggregator: upgraded
    /// sockets outlive `axum::serve`'s graceful shutdown. New sockets are not tracked
    /// after this is called.
    pub async fn sockets_closed(&self) {
        self.sockets.close();
        self.sockets.wait().await;
    }

    pub fn config(&self) -> &IngestConfig {
        &self.shared.config
    }

    /// The skew table (for inspection).
    pub fn skew(&self) -> &SkewCorrector {
        &self.shared.skew
    }

    pub(crate) fn socket_tracker(&self) -> TaskTracker {
        self.sockets.clone()
    }

    pub(crate) fn peers(&self) -> &PeerLimiter {
        &self.shared.peers
    }

    pub(crate) fn now_ms(&self) -> i64 {
        (self.shared.clock)()
    }

    /// Does the request carry the trusted token (header or `?token=`)?
    pub(crate) fn is_trusted(&self, headers: &HeaderMap, query_token: Option<&str>) -> bool {
        let Some(expected) = self.shared.config.trusted_token.as_deref() else {
            return false;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("Bearer "))
            .map(str::trim);
        bearer
            .into_iter()
            .chain(query_token)
            .any(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()))
    }

    /// Counts a frame's refusals and corrects its events' clock skew.
    pub(crate) fn correct_and_count(&self, parsed: &mut ParsedFrame, received_ms: i64) {
        metrics().record_rejections(&parsed.by_reason);
        self.correct(&mut parsed.events, received_ms);
    }

    /// Corrects the clock skew of events received at `received_ms` (in their order).
    pub(crate) fn correct(&self, events: &mut [Event], received_ms: i64) {
        metrics().record_skew(self.shared.skew.correct(events, received_ms));
    }

    /// Hands a batch to the aggregator; waits while its channel is full.
    pub(crate) async fn hand_on(&self, batch: Vec<Event>) -> Result<(), IngestError> {
        let n = batch.len() as u64;
        let tx = &self.shared.events;
        tx.send(batch)
            .await
            .map_err(|_| IngestError::AggregatorClosed)?;
        let m = metrics();
        m.events_accepted.inc_by(n);
        m.queue_depth.set(tx.queued_events() as i64);
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The beacon routes (`GET` + `POST /v1/beacons`); the binary merges this router with
/// the query router on one listener.
pub fn router(state: IngestState) -> Router {
    Router::new()
        .route(
            "/v1/beacons",
            get(beacons::beacons_ws).post(beacons::beacons_post),
        )
        .route("/v1/encoder", get(encoder::encoder_ws))
        .with_state(state)
}
