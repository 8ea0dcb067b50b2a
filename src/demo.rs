//! `pulse serve --demo`: a built-in audience that watches the demo channels over real
//! WebSocket connections to this very server, so every number moves as it would live.
//!
//! Each simulated viewer is one task with its own socket (like a browser tab): it
//! starts a view, waits a startup delay, plays with heartbeats every 10 s, and now and
//! then pauses, rebuffers (more often on mobile), seeks, fails with an error, and
//! finally leaves with `viewend` or by closing the tab silently. Chat messages and
//! follows go through a "chat service" task that batches them in `seq` envelopes on
//! one trusted connection, as the platform's chat service would.
//! Arrivals keep the audience near its target size; everything stops on shutdown.

use futures_util::{SinkExt, StreamExt};
use pulse_schemas::Id;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The demo's channels and their live streams.
pub const DEMO_STREAMS: &[(&str, &str)] = &[
    ("aurora", "aurora-live-1"),
    ("bytecraft", "bytecraft-live-1"),
    ("nightowl", "nightowl-live-1"),
    ("speedrun", "speedrun-live-1"),
    ("speedrun", "speedrun-live-2"),
];

/// Relative popularity of each stream (same order as [`DEMO_STREAMS`]).
const POPULARITY: &[u32] = &[35, 20, 15, 20, 10];

/// Demo settings.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    pub server: SocketAddr,
    /// Audience size the arrivals aim for.
    pub target_viewers: usize,
    /// Token that exempts the chat service from per-connection rate limits.
    pub trusted_token: String,
    pub seed: u64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs the audience until `shutdown`; returns when every task has stopped.
pub async fn run(cfg: DemoConfig, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    let (chat_tx, chat_rx) = mpsc::channel::<Value>(1024);
    tracker.spawn(chat_service(cfg.clone(), chat_rx, shutdown.clone()));
    let active = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    let mut viewer_no: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        // Ramp up fast, then replace leavers at a steady pace.
        let n = active.load(std::sync::atomic::Ordering::Relaxed);
        let want = if n < cfg.target_viewers {
            ((cfg.target_viewers - n) / 20).clamp(1, 10)
        } else {
            0
        };
        for _ in 0..want {
            if rng.u32(0..100) < 40 {
                continue;
            }
            viewer_no += 1;
            let viewer = Viewer::new(viewer_no, rng.u64(..));
            let active = active.clone();
            active.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (server, chat, stop) = (cfg.server, chat_tx.clone(), shutdown.clone());
            tracker.spawn(async move {
                if let Err(e) = viewer.watch(server, chat, stop).await {
                    tracing::debug!(error = %e, "demo viewer stopped");
                }
                active.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            });
        }
    }
    tracker.close();
    tracker.wait().await;
}

struct Viewer {
    id: String,
    rng: fastrand::Rng,
    device: &'static str,
    country: &'static str,
    player: &'static str,
    embed: bool,
}

const DEVICES: &[(&str, u32)] = &[
    ("desktop", 45),
    ("mobile", 35),
    ("tablet", 8),
    ("tv", 10),
    ("other", 2),
];
const COUNTRIES: &[&str] = &["US", "DE", "BR", "GB", "FR", "JP", "IN", "CA", "ES", "KR"];
const PLAYERS: &[&str] = &[
    "pulse-web 2.4.1",
    "pulse-web 2.5.0",
    "hls.js 1.5",
    "ios-avplayer 17",
    "exoplayer 2.19",
];

impl Viewer {
    fn new(no: u64, seed: u64) -> Viewer {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut pick = rng.u32(0..100);
        let mut device = "desktop";
        for (d, w) in DEVICES {
            if pick < *w {
                device = d;
                break;
            }
            pick -= w;
        }
        let country = COUNTRIES[rng.usize(..COUNTRIES.len())];
        let player = PLAYERS[rng.usize(..PLAYERS.len())];
        let embed = rng.u32(0..100) < 8;
        Viewer {
            id: format!("demo-u{no}"),
            rng,
            device,
            country,
            player,
            embed,
        }
    }

    fn pick_stream(&mut self) -> (&'static str, &'static str) {
        let total: u32 = POPULARITY.iter().sum();
        let mut x = self.rng.u32(0..total);
        for (i, w) in POPULARITY.iter().enumerate() {
            if x < *w {
                return DEMO_STREAMS[i];
            }
            x -= w;
        }
        DEMO_STREAMS[0]
    }

    async fn watch(
        mut self,
        server: SocketAddr,
        chat: mpsc::Sender<Value>,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let url = format!("ws://{server}/v1/beacons");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        let (channel, stream) = self.pick_stream();
        let session = format!("{}-{}", self.id, self.rng.u32(..));
        let base = json!({"viewer": self.id, "channel": channel, "stream": stream, "session": session,
            "device": self.device, "country": self.country, "player": self.player, "embed": self.embed});
        let event = |kind: &str, extra: Value| {
            let mut e = base.clone();
            e["type"] = json!(kind);
            e["ts"] = json!(now_ms());
            if let (Value::Object(e), Value::Object(x)) = (&mut e, extra) {
                e.extend(x);
            }
            Message::text(e.to_string())
        };
        let sleep = |ms: u64| {
            let stop = stop.clone();
            async move {
                tokio::select! {
                    _ = stop.cancelled() => false,
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
                }
            }
        };
        ws.send(event("viewstart", json!({}))).await?;
        // Startup: mostly under a second, a long tail to several seconds.
        let startup = 150
            + self.rng.u64(0..700)
            + if self.rng.u32(0..10) == 0 {
                self.rng.u64(1000..6000)
            } else {
                0
            };
        if !sleep(startup).await {
            return Ok(());
        }
        if self.rng.u32(0..100) < 2 {
            ws.send(event("error", json!({"code": "MEDIA_ERR_DECODE"})))
                .await?;
            return Ok(ws.close(None).await?);
        }
        ws.send(event("playing", json!({"pos": 0.0, "bitrate_kbps": 6000})))
            .await?;
        let watch_s = 60 + self.rng.u64(0..900);
        let mut pos = 0.0f64;
        let mut elapsed = 0u64;
        let rebuffer_pct = if self.device == "mobile" { 12 } else { 4 };
        let mut followed = false;
        while elapsed < watch_s {
            if !sleep(10_000).await {
                return Ok(());
            }
            elapsed += 10;
            pos += 10.0;
            let roll = self.rng.u32(0..100);
            if roll < rebuffer_pct {
                ws.send(event("rebuffer_start", json!({"pos": pos})))
                    .await?;
                let stall = 300 + self.rng.u64(0..4000);
                if !sleep(stall).await {
                    return Ok(());
                }
                ws.send(event(
                    "rebuffer_end",
                    json!({"pos": pos, "bitrate_kbps": 3000}),
                ))
                .await?;
            } else if roll < rebuffer_pct + 3 {
                ws.send(event("pause", json!({"pos": pos}))).await?;
                let paused = 3000 + self.rng.u64(0..20_000);
                let mut waited = 0;
                while waited < paused {
                    let step = (paused - waited).min(10_000);
                    if !sleep(step).await {
                        return Ok(());
                    }
                    waited += step;
                    if waited < paused {
                        ws.send(event("heartbeat", json!({"state": "paused", "pos": pos})))
                            .await?;
                    }
                }
                ws.send(event("playing", json!({"pos": pos}))).await?;
            } else if roll < rebuffer_pct + 5 {
                pos += 30.0;
                ws.send(event("seek", json!({"pos": pos}))).await?;
            } else if roll < rebuffer_pct + 6 {
                ws.send(event("error", json!({"code": "NETWORK_ERR", "pos": pos})))
                    .await?;
                return Ok(ws.close(None).await?);
            } else {
                ws.send(event(
                    "heartbeat",
                    json!({"state": "playing", "pos": pos, "bitrate_kbps": 6000}),
                ))
                .await?;
            }
            if self.rng.u32(0..100) < 25 {
                let count = 1 + self.rng.u32(0..3);
                let _ = chat.try_send(json!({"type": "chat", "ts": now_ms(), "viewer": self.id, "channel": channel, "stream": stream, "count": count}));
            }
            if !followed && self.rng.u32(0..1000) < 15 {
                followed = true;
                let _ = chat.try_send(json!({"type": "follow", "ts": now_ms(), "viewer": self.id, "channel": channel, "stream": stream}));
            }
        }
        // Seven in ten leave properly; the rest close the tab without a word.
        if self.rng.u32(0..10) < 7 {
            ws.send(event("viewend", json!({"pos": pos}))).await?;
            ws.close(None).await?;
        }
        Ok(())
    }
}

/// The platform's chat/follow service: batches events into `seq` envelopes on one
/// trusted connection and waits for each ack, reconnecting when the socket drops.
async fn chat_service(cfg: DemoConfig, mut rx: mpsc::Receiver<Value>, stop: CancellationToken) {
    let mut seq = 0u64;
    let mut pending: Vec<Value> = Vec::new();
    'connect: while !stop.is_cancelled() {
        let mut req = match format!("ws://{}/v1/beacons", cfg.server).into_client_request() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "demo chat service: bad URL");
                return;
            }
        };
        if let Ok(v) = format!("Bearer {}", cfg.trusted_token).parse() {
            req.headers_mut().insert("authorization", v);
        }
        let mut ws = match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => ws,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut flush = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break 'connect,
                ev = rx.recv() => match ev {
                    Some(ev) if pending.len() < pulse_schemas::MAX_BATCH_EVENTS => pending.push(ev),
                    Some(_) => tracing::debug!("demo chat service: batch full, message dropped"),
                    None => break 'connect,
                },
                _ = flush.tick() => {
                    if pending.is_empty() {
                        continue;
                    }
                    seq += 1;
                    let frame = json!({"seq": seq, "events": pending}).to_string();
                    if ws.send(Message::text(frame)).await.is_err() {
                        continue 'connect;
                    }
                    pending.clear();
                    // Wait for our ack; other replies (rejections) are logged.
                    loop {
                        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                            Ok(Some(Ok(Message::Text(t)))) => {
                                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                                if v["type"] == "ack" && v["seq"] == seq {
                                    break;
                                }
                                tracing::warn!(reply = %t, "demo chat service: server reply");
                            }
                            Ok(Some(Ok(_))) => {}
                            _ => continue 'connect,
                        }
                    }
                }
            }
        }
    }
}

/// The ids the demo uses, checked once (they are constants).
pub fn demo_ids_are_valid() -> bool {
    DEMO_STREAMS
        .iter()
        .all(|(c, s)| Id::parse(c).is_ok() && Id::parse(s).is_ok())
}
