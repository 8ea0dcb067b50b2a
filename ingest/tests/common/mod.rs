//! Test harness: a real axum server on 127.0.0.1:0, real tokio-tungstenite clients, and
//! the aggregator channel's receiver held by the test.
#![allow(dead_code, clippy::unwrap_used)]

use futures_util::{SinkExt, StreamExt};
use pulse_aggregator::EventReceiver;
use pulse_ingest::{Clock, IngestConfig, IngestState, router};
use pulse_schemas::Event;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const TOKEN: &str = "s3cret-loadgen";
pub const NOW: i64 = 1_764_000_000_000;
const WAIT: Duration = Duration::from_secs(10);

pub fn config() -> IngestConfig {
    IngestConfig {
        trusted_token: Some(TOKEN.into()),
        ..IngestConfig::default()
    }
}

/// Serves `router(state)` on an ephemeral port, with peer addresses (for `POST` limits).
pub async fn serve(state: IngestState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A server whose channel (capacity `capacity` events) is returned to the test.
pub async fn start_raw(
    config: IngestConfig,
    clock: Option<Clock>,
    capacity: usize,
) -> (SocketAddr, EventReceiver) {
    let (tx, rx) = pulse_schemas::handoff::bounded(capacity);
    let state = match clock {
        Some(c) => IngestState::with_clock(config, tx, c),
        None => IngestState::new(config, tx),
    }
    .unwrap();
    (serve(state).await, rx)
}

/// A server plus a task that drains the channel into `events`, keeping each batch.
pub struct TestServer {
    pub addr: SocketAddr,
    pub batches: Arc<Mutex<Vec<Vec<Event>>>>,
}

pub async fn start(config: IngestConfig, clock: Option<Clock>) -> TestServer {
    let (addr, mut rx) = start_raw(config, clock, 16).await;
    let batches = Arc::new(Mutex::new(Vec::new()));
    let sink = batches.clone();
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            sink.lock().unwrap().push(b);
        }
    });
    TestServer { addr, batches }
}

impl TestServer {
    pub fn events(&self) -> Vec<Event> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    pub fn count_viewer(&self, viewer: &str) -> usize {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .filter(|e| e.viewer.as_str() == viewer)
            .count()
    }

    /// Waits until `viewer` has `n` events handed on, then a little longer to be sure
    /// no more arrive; returns the final count.
    pub async fn settle_viewer(&self, viewer: &str, n: usize) -> usize {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.count_viewer(viewer) < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.count_viewer(viewer)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/beacons", self.addr)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}/v1/beacons", self.addr)
    }
}

/// One event of `viewer` (session `viewer-s`), compact JSON.
pub fn ev(kind: &str, ts: i64, viewer: &str) -> String {
    format!(
        r#"{{"type":"{kind}","ts":{ts},"viewer":"{viewer}","channel":"c1","stream":"s1","session":"{viewer}-s"}}"#
    )
}

/// A session-less engagement event.
pub fn chat(ts: i64, viewer: &str) -> String {
    format!(r#"{{"type":"chat","ts":{ts},"viewer":"{viewer}","channel":"c1","stream":"s1"}}"#)
}

pub fn batch(events: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", events.into_iter().collect::<Vec<_>>().join(","))
}

pub async fn connect(url: &str, bearer: Option<&str>) -> Ws {
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws
}

/// Next text message as JSON (pings and pongs skipped); panics on close or timeout.
pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("reply in time");
        match msg {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text reply, got {other:?}"),
        }
    }
}

/// Reads until the server's Close frame; returns its code (replies before it are kept).
pub async fn close_code(ws: &mut Ws) -> (u16, Vec<Value>) {
    let mut replies = Vec::new();
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("close in time");
        match msg {
            Some(Ok(Message::Text(t))) => replies.push(serde_json::from_str(t.as_str()).unwrap()),
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), replies),
            Some(Ok(Message::Close(None))) => panic!("close without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("socket error before a close frame: {e}"),
            None => panic!("socket ended without a close frame"),
        }
    }
}

pub async fn send_text(ws: &mut Ws, text: String) {
    ws.send(Message::Text(text.into())).await.unwrap();
}

/// A well-behaved client: `frames` envelopes of 10 events each, every one acked,
/// with a short pause between them so it overlaps with whatever else the test does.
/// Returns the acked seqs.
pub fn good_client(
    url: String,
    viewer: &'static str,
    frames: u64,
) -> tokio::task::JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let mut ws = connect(&url, None).await;
        let mut acked = Vec::new();
        for seq in 0..frames {
            let events: Vec<String> = (0..10)
                .map(|i| ev("heartbeat", NOW + (seq * 10 + i) as i64, viewer))
                .collect();
            send_text(
                &mut ws,
                format!(r#"{{"seq":{seq},"events":{}}}"#, batch(events)),
            )
            .await;
            let reply = next_json(&mut ws).await;
            assert_eq!(reply["type"], "ack", "{reply}");
            acked.push(reply["seq"].as_u64().unwrap());
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        acked
    })
}

/// A clock the test moves.
pub fn fixed_clock(at: i64) -> (Clock, Arc<std::sync::atomic::AtomicI64>) {
    let cell = Arc::new(std::sync::atomic::AtomicI64::new(at));
    let c = cell.clone();
    (
        Arc::new(move || c.load(std::sync::atomic::Ordering::SeqCst)),
        cell,
    )
}
