//! `frames` and `batched`: a few trusted connections that send as fast as the server
//! takes them.
//!
//! - `frames`: one event per text frame, pipelined — frames are fed into the socket's
//!   write buffer `pipeline` at a time and flushed, never one round trip per frame; TCP
//!   backpressure paces us to the server. A reader task per socket counts `rejected`
//!   replies. At the end we send Close and wait for the server's Close: it reads in
//!   order, so by then it has taken every frame, and the elapsed time includes that.
//! - `batched`: `{"seq":N,"events":[…]}` envelopes of up to `batch_events` events (as
//!   many as fit under `max_frame_bytes`), at most `window` unacknowledged at once
//!   (a semaphore the reader refills on each `ack`); send → ack latency goes to an HDR
//!   histogram. Only acknowledged events count as accepted.
//!
//! The same client code drives the bare baseline server ([`crate::baseline`]).

use crate::client::{FatalConnectError, SocketSize, connect};
use crate::counters::{Budget, Counters, read_replies};
use crate::generate::LoadEvents;
use crate::report::{Percentiles, ScenarioReport};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// How long the end of a scenario waits for outstanding acks and the close handshake.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Which sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendMode {
    Frames,
    Batched,
}

/// Settings shared by every sender connection.
#[derive(Clone, Debug)]
pub struct SenderConfig {
    pub url: String,
    pub token: Option<String>,
    /// Makes ids unique per invocation.
    pub run: String,
    pub connections: usize,
    /// Sessions per connection (bounds the aggregator state the run creates).
    pub sessions_per_connection: usize,
    /// Frames fed before each flush (`frames`).
    pub pipeline: usize,
    /// Events per envelope wanted (`batched`).
    pub batch_events: usize,
    /// Largest frame the server takes (its `max_frame_bytes`).
    pub max_frame_bytes: usize,
    /// Unacknowledged envelopes allowed per connection.
    pub window: usize,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

struct Shared {
    cfg: SenderConfig,
    budget: Budget,
    counters: Counters,
    acks: Mutex<Histogram<u64>>,
}

/// Runs `cfg.connections` senders until the budget or deadline ends; the report has
/// everything but RSS and server metrics.
pub async fn run(
    mode: SendMode,
    name: &str,
    cfg: SenderConfig,
    budget: Budget,
) -> anyhow::Result<ScenarioReport> {
    let per_envelope = envelope_events(&cfg);
    let shared = Arc::new(Shared {
        cfg,
        budget,
        counters: Counters::default(),
        acks: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
    });
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..shared.cfg.connections {
        let sh = shared.clone();
        tasks.spawn(async move { connection(mode, i, per_envelope, &sh).await });
    }
    let mut fatal = None;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.is::<FatalConnectError>() => fatal = Some(e),
            Ok(Err(e)) => {
                shared.counters.connect_failures.fetch_add(1, Relaxed);
                shared.counters.note(format!("{e:#}"));
            }
            Err(e) => shared.counters.note(format!("sender task failed: {e}")),
        }
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut r = ScenarioReport::new(name);
    let c = &shared.counters;
    c.fill(&mut r, elapsed);
    if mode == SendMode::Batched {
        let acked = c.acked_events.load(Relaxed);
        r.events_accepted = acked.saturating_sub(r.events_rejected);
        r.events_per_s = r.events_accepted as f64 / elapsed.max(1e-9);
        let envelopes = c.acked_envelopes.load(Relaxed);
        r.envelopes_acked = Some(envelopes);
        r.events_per_envelope = Some(if envelopes > 0 {
            acked as f64 / envelopes as f64
        } else {
            per_envelope as f64
        });
        if let Ok(h) = shared.acks.lock() {
            r.ack_latency = Some(Percentiles::from_us(&h));
        }
        if per_envelope < shared.cfg.batch_events {
            r.note(format!(
                "envelopes capped at {per_envelope} events (not {}) to stay under the {} byte frame limit; raise the server's ingest.max_frame_bytes and --max-frame-bytes for bigger ones",
                shared.cfg.batch_events, shared.cfg.max_frame_bytes
            ));
        }
    }
    Ok(r)
}

/// Events per envelope: `batch_events`, or fewer if they would not fit in a frame.
pub fn envelope_events(cfg: &SenderConfig) -> usize {
    let longest = LoadEvents::new(&cfg.run, 0, cfg.sessions_per_connection).max_event_len() + 1;
    let room = cfg.max_frame_bytes.saturating_sub(40);
    cfg.batch_events.min(room / longest).max(1)
}

async fn connection(
    mode: SendMode,
    i: usize,
    per_envelope: usize,
    sh: &Arc<Shared>,
) -> anyhow::Result<()> {
    let ws = connect(&sh.cfg.url, sh.cfg.token.as_deref(), SocketSize::SENDER).await?;
    sh.counters.connected();
    let (mut sink, stream) = ws.split();
    let closing = Arc::new(AtomicBool::new(false));
    let window = Arc::new(Semaphore::new(sh.cfg.window.max(1)));
    // (seq, sent at, events) of unacknowledged envelopes, oldest first; ≤ window.
    let inflight: Arc<Mutex<VecDeque<(u64, Instant, u64)>>> = Arc::default();
    let reader = {
        let (sh, closing, window, inflight) = (
            sh.clone(),
            closing.clone(),
            window.clone(),
            inflight.clone(),
        );
        tokio::spawn(async move {
            let on_ack = |seq: u64| {
                let Ok(mut q) = inflight.lock() else { return };
                while q.front().is_some_and(|(s, _, _)| *s <= seq) {
                    if let Some((_, at, events)) = q.pop_front() {
                        sh.counters.acked_envelopes.fetch_add(1, Relaxed);
                        sh.counters.acked_events.fetch_add(events, Relaxed);
                        if let Ok(mut h) = sh.acks.lock() {
                            let _ = h.record(at.elapsed().as_micros().max(1) as u64);
                        }
                        window.add_permits(1);
                    }
                }
            };
            read_replies(stream, &sh.counters, || closing.load(Relaxed), on_ack).await;
        })
    };
    let mut events = LoadEvents::new(&sh.cfg.run, i, sh.cfg.sessions_per_connection);
    let mut seq = 0u64;
    let mut failed = None;
    'send: loop {
        if reader.is_finished() {
            break;
        }
        match mode {
            SendMode::Frames => {
                let n = sh.budget.take(sh.cfg.pipeline.max(1) as u64);
                if n == 0 {
                    break;
                }
                let ts = now_ms();
                for _ in 0..n {
                    let mut s = String::with_capacity(events.max_event_len());
                    events.next_into(ts, &mut s);
                    if let Err(e) = sink.feed(Message::text(s)).await {
                        failed = Some(e);
                        break 'send;
                    }
                }
                if let Err(e) = sink.flush().await {
                    failed = Some(e);
                    break;
                }
                sh.counters.sent(n, n);
            }
            SendMode::Batched => {
                let permit = tokio::time::timeout_at(sh.budget.deadline, window.acquire()).await;
                match permit {
                    Ok(Ok(p)) => p.forget(),
                    _ => break,
                }
                let n = sh.budget.take(per_envelope as u64);
                if n == 0 {
                    break;
                }
                seq += 1;
                let mut s = String::with_capacity(sh.cfg.max_frame_bytes);
                let written =
                    events.envelope_into(seq, now_ms(), n as usize, sh.cfg.max_frame_bytes, &mut s)
                        as u64;
                if let Ok(mut q) = inflight.lock() {
                    q.push_back((seq, Instant::now(), written));
                }
                if let Err(e) = sink.send(Message::text(s)).await {
                    failed = Some(e);
                    break;
                }
                sh.counters.sent(1, written);
            }
        }
    }
    if let Some(e) = failed
        && !reader.is_finished()
    {
        sh.counters.note(format!("send failed: {e}"));
    }
    // Wait for outstanding acks (bounded), then close and let the server answer.
    let drain_until = Instant::now() + DRAIN;
    while mode == SendMode::Batched && !reader.is_finished() && Instant::now() < drain_until {
        if inflight.lock().map_or(true, |q| q.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    closing.store(true, Relaxed);
    let _ = tokio::time::timeout(DRAIN, sink.send(Message::Close(None))).await;
    if tokio::time::timeout_at(Instant::now() + DRAIN, reader)
        .await
        .is_err()
    {
        sh.counters
            .note("server did not answer our Close within 10 s");
    }
    let unacked = inflight.lock().map_or(0, |q| q.len());
    if unacked > 0 {
        sh.counters
            .note(format!("{unacked} envelopes never acknowledged"));
    }
    sh.counters.disconnected();
    Ok(())
}
