//! `viewers`: N concurrent player connections (no token: real players, about 0.1
//! events/s each), opened at a bounded rate, each a [`Player`] in real time. Every
//! viewer is one task holding one small socket; it sleeps until its player's next
//! event and reads the socket meanwhile (pings, `rejected` replies, a server close).

use crate::client::{FatalConnectError, SocketSize, connect};
use crate::counters::{Budget, Counters, parse_reply};
use crate::generate::Player;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Settings of the viewer population.
#[derive(Clone, Debug)]
pub struct ViewerConfig {
    pub url: String,
    pub run: String,
    pub viewers: usize,
    /// New connections per second during the ramp.
    pub ramp_per_s: u32,
    /// Streams the viewers are spread over (two per channel).
    pub streams: usize,
    pub seed: u64,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs the viewers until the deadline or the event budget ends; returns the elapsed
/// seconds. A file-descriptor exhaustion stops the ramp and fails the run.
pub async fn run(
    cfg: ViewerConfig,
    budget: Arc<Budget>,
    counters: Arc<Counters>,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let cfg = Arc::new(cfg);
    let gap = Duration::from_secs_f64(1.0 / f64::from(cfg.ramp_per_s.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut fatal = None;
    for i in 0..cfg.viewers {
        tokio::time::sleep_until(start + gap * i as u32).await;
        if budget.expired() {
            break;
        }
        // Collect finished tasks as we go: a fatal error stops the ramp.
        while let Some(r) = tasks.try_join_next() {
            if let Some(e) = classify(r, &counters) {
                fatal = Some(e);
            }
        }
        if fatal.is_some() {
            break;
        }
        let (cfg, budget, counters) = (cfg.clone(), budget.clone(), counters.clone());
        tasks.spawn(async move { viewer(i, &cfg, &budget, &counters).await });
    }
    while let Some(r) = tasks.join_next().await {
        if let Some(e) = classify(r, &counters) {
            fatal = Some(e);
        }
    }
    let opened = counters.opened.load(Relaxed) + counters.connect_failures.load(Relaxed);
    if opened < cfg.viewers as u64 && fatal.is_none() {
        counters.note(format!(
            "ramp stopped at {opened} of {} viewers (deadline or budget)",
            cfg.viewers
        ));
    }
    match fatal {
        Some(e) => Err(e),
        None => Ok(start.elapsed().as_secs_f64()),
    }
}

fn classify(
    r: Result<anyhow::Result<()>, tokio::task::JoinError>,
    counters: &Counters,
) -> Option<anyhow::Error> {
    match r {
        Ok(Ok(())) => None,
        Ok(Err(e)) if e.is::<FatalConnectError>() => Some(e),
        Ok(Err(e)) => {
            counters.connect_failures.fetch_add(1, Relaxed);
            counters.note(format!("viewer: {e:#}"));
            None
        }
        Err(e) => {
            counters.note(format!("viewer task failed: {e}"));
            None
        }
    }
}

async fn viewer(
    i: usize,
    cfg: &ViewerConfig,
    budget: &Budget,
    counters: &Counters,
) -> anyhow::Result<()> {
    let mut ws = connect(&cfg.url, None, SocketSize::VIEWER).await?;
    counters.connected();
    let mut player = Player::new(&cfg.run, i, cfg.streams, now_ms(), cfg.seed);
    let mut due = Vec::new();
    let mut server_gone = false;
    loop {
        let wait =
            Duration::from_millis((player.next_wake() - now_ms()).clamp(0, 3_600_000) as u64);
        let wake = (Instant::now() + wait).min(budget.deadline);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {
                if budget.expired() {
                    break;
                }
                player.poll(now_ms(), &mut due);
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => { parse_reply(t.as_str(), counters); }
                Some(Ok(Message::Close(frame))) => {
                    counters.server_closed(frame.as_ref().map(|f| u16::from(f.code)));
                    if let Some(f) = frame {
                        counters.note(format!("server closed a viewer: {} {}", u16::from(f.code), f.reason));
                    }
                    server_gone = true;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    counters.server_closed(None);
                    server_gone = true;
                    break;
                }
            },
        }
        if due.is_empty() {
            continue;
        }
        let granted = budget.take(due.len() as u64) as usize;
        due.truncate(granted);
        if send(&mut ws, &mut due, counters).await.is_err() {
            server_gone = true;
            break;
        }
        if granted == 0 {
            break;
        }
    }
    if !server_gone {
        // End the open view, then the close handshake (both bounded in time).
        player.finish(now_ms(), &mut due);
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            let _ = send(&mut ws, &mut due, counters).await;
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    }
    counters.disconnected();
    Ok(())
}

async fn send(
    ws: &mut crate::client::Socket,
    due: &mut Vec<pulse_schemas::Event>,
    counters: &Counters,
) -> anyhow::Result<()> {
    let n = due.len() as u64;
    if n == 0 {
        return Ok(());
    }
    for e in due.drain(..) {
        ws.feed(Message::text(e.to_json())).await?;
    }
    ws.flush().await?;
    counters.sent(n, n);
    Ok(())
}
