//! `latency`: beacon send → visible in `GET /api/analytics/series`.
//!
//! Each probe owns a stream nobody else writes to. Once per tick it opens a fresh
//! session (viewstart + playing) shortly before the tick ends — `viewers` is sampled
//! at tick end, so the session counts in exactly that tick — and sends `viewend` just
//! after the tick end, so the next tick starts from zero again. A poller per probe asks
//! for the stream's viewer series every `poll_ms`; the first response in which the
//! point of a probe's tick has `value > 0` (or `peak > 0`) makes that probe visible.
//! The series is dense (zero points included), so "the point exists" is not enough.
//! Two HDR histograms: send → visible, and max(send, tick end) → visible (the
//! pipeline's own delay: flush + store + query). Bounded: at most
//! [`MAX_OUTSTANDING`] probes per stream await their tick; after `PROBE_TIMEOUT` past
//! the tick end a probe counts as timed out.

use crate::client::{SocketSize, connect};
use crate::generate::{probe_events, probe_stream};
use crate::report::{LatencyReport, Percentiles};
use crate::viewers::now_ms;
use anyhow::Context;
use futures_util::SinkExt;
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Probes awaiting their tick, per probe stream.
pub const MAX_OUTSTANDING: usize = 16;
/// A probe not visible this long after its tick end is counted as timed out (ms).
pub const PROBE_TIMEOUT_MS: i64 = 30_000;

/// Settings of the probe.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub url: String,
    pub http_base: String,
    pub api_token: Option<String>,
    pub run: String,
    pub probes: usize,
    /// The server's tick (`tick_ms`), also the series step.
    pub tick_ms: i64,
    pub poll_ms: u64,
    /// A probe is sent within this many ms before its tick ends.
    pub lead_ms: i64,
}

#[derive(Clone, Copy, Debug)]
struct Outstanding {
    tick_start: i64,
    tick_end: i64,
    sent_ms: i64,
    sent: Instant,
}

#[derive(Default)]
struct Findings {
    polls: u64,
    poll_errors: u64,
    timed_out: u64,
    first_error: Option<String>,
}

struct Shared {
    cfg: ProbeConfig,
    http: reqwest::Client,
    hist: Mutex<(Histogram<u64>, Histogram<u64>)>,
    findings: Mutex<Findings>,
}

/// Runs `cfg.probes` probes until `deadline`, then waits (bounded) for the last ones.
pub async fn run(
    cfg: ProbeConfig,
    deadline: Instant,
) -> anyhow::Result<(LatencyReport, Option<String>)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let h = || Histogram::new_with_bounds(1, 120_000_000, 3);
    let shared = Arc::new(Shared {
        cfg,
        http,
        hist: Mutex::new((h()?, h()?)),
        findings: Mutex::default(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..shared.cfg.probes {
        let sh = shared.clone();
        tasks.spawn(async move { probe(p, &sh, deadline).await });
    }
    let mut error = None;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error = Some(format!("probe: {e:#}")),
            Err(e) => error = Some(format!("probe task failed: {e}")),
        }
    }
    let (h1, h2) = shared
        .hist
        .lock()
        .map(|h| (h.0.clone(), h.1.clone()))
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let f = shared
        .findings
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let report = LatencyReport {
        beacon_to_visible: Percentiles::from_us(&h1),
        tick_end_to_visible: Percentiles::from_us(&h2),
        timed_out: f.timed_out,
        polls: f.polls,
        poll_errors: f.poll_errors,
    };
    Ok((report, error.or_else(|| f.first_error.clone())))
}

async fn probe(p: usize, sh: &Arc<Shared>, deadline: Instant) -> anyhow::Result<()> {
    let outstanding: Arc<Mutex<VecDeque<Outstanding>>> = Arc::default();
    let sending_done = tokio_util::sync::CancellationToken::new();
    let poller = {
        let (sh, out, done) = (sh.clone(), outstanding.clone(), sending_done.clone());
        tokio::spawn(async move { poll(p, &sh, &out, &done).await })
    };
    let result = send_probes(p, sh, &outstanding, deadline).await;
    sending_done.cancel();
    let _ = poller.await;
    result
}

async fn send_probes(
    p: usize,
    sh: &Shared,
    outstanding: &Mutex<VecDeque<Outstanding>>,
    deadline: Instant,
) -> anyhow::Result<()> {
    let cfg = &sh.cfg;
    let mut ws = connect(&cfg.url, None, SocketSize::VIEWER)
        .await
        .context("probe connection")?;
    let mut rng = fastrand::Rng::new();
    let tick = cfg.tick_ms.max(100);
    let lead = cfg.lead_ms.clamp(60, tick - 10);
    let mut n = 0u64;
    loop {
        let now = now_ms();
        let mut tick_end = (now / tick + 1) * tick;
        if tick_end - now < 60 {
            tick_end += tick;
        }
        let send_at = (tick_end - rng.i64(50..lead)).max(now);
        if !sleep_wall(send_at, deadline).await {
            break;
        }
        let ts = now_ms();
        if ts >= tick_end {
            continue;
        }
        let frame = format!(
            "[{}]",
            probe_events(&cfg.run, p, n, ts, false)
                .iter()
                .map(|e| e.to_json())
                .collect::<Vec<_>>()
                .join(",")
        );
        let sent = Instant::now();
        ws.send(Message::text(frame)).await.context("probe send")?;
        if let Ok(mut q) = outstanding.lock() {
            if q.len() >= MAX_OUTSTANDING {
                q.pop_front();
                if let Ok(mut f) = sh.findings.lock() {
                    f.timed_out += 1;
                }
            }
            q.push_back(Outstanding {
                tick_start: tick_end - tick,
                tick_end,
                sent_ms: ts,
                sent,
            });
        }
        // End the session after the tick end, so it counts in this tick only.
        let _ = sleep_wall(tick_end + 300, deadline + Duration::from_secs(5)).await;
        let end = probe_events(&cfg.run, p, n, now_ms().max(tick_end + 1), true);
        ws.send(Message::text(end[0].to_json()))
            .await
            .context("probe viewend")?;
        n += 1;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    Ok(())
}

/// Sleeps until wall-clock `at_ms`; false if that is past `deadline`.
async fn sleep_wall(at_ms: i64, deadline: Instant) -> bool {
    let wait = Duration::from_millis((at_ms - now_ms()).max(0) as u64);
    if Instant::now() + wait > deadline {
        tokio::time::sleep_until(deadline).await;
        return false;
    }
    tokio::time::sleep(wait).await;
    true
}

#[derive(serde::Deserialize)]
struct Series {
    points: Vec<Point>,
}

#[derive(serde::Deserialize)]
struct Point {
    t: i64,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    peak: Option<f64>,
}

async fn poll(
    p: usize,
    sh: &Shared,
    outstanding: &Mutex<VecDeque<Outstanding>>,
    sending_done: &tokio_util::sync::CancellationToken,
) {
    let cfg = &sh.cfg;
    let stream = probe_stream(&cfg.run, p);
    let mut every = tokio::time::interval(Duration::from_millis(cfg.poll_ms.max(10)));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let pending: Vec<Outstanding> = outstanding
            .lock()
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default();
        if pending.is_empty() {
            if sending_done.is_cancelled() {
                return;
            }
            continue;
        }
        let from = pending.iter().map(|o| o.tick_start).min().unwrap_or(0);
        let to = pending.iter().map(|o| o.tick_end).max().unwrap_or(0) + cfg.tick_ms;
        let url = format!(
            "{}/api/analytics/series?metric=viewers&stream={stream}&step={}&from={from}&to={to}",
            cfg.http_base, cfg.tick_ms
        );
        let mut req = sh.http.get(&url);
        if let Some(t) = &cfg.api_token {
            req = req.bearer_auth(t);
        }
        let answer = async {
            let resp = req.send().await?;
            let status = resp.status();
            let body = resp.text().await?;
            anyhow::ensure!(
                status.is_success(),
                "{status}: {}",
                body.chars().take(200).collect::<String>()
            );
            Ok::<Series, anyhow::Error>(serde_json::from_str(&body)?)
        }
        .await;
        let (received, received_ms) = (Instant::now(), now_ms());
        let Ok(mut f) = sh.findings.lock() else {
            return;
        };
        f.polls += 1;
        let series = match answer {
            Ok(s) => Some(s),
            Err(e) => {
                f.poll_errors += 1;
                f.first_error
                    .get_or_insert_with(|| format!("series poll failed: {e:#} ({url})"));
                None
            }
        };
        let Ok(mut q) = outstanding.lock() else {
            return;
        };
        let Ok(mut h) = sh.hist.lock() else { return };
        q.retain(|o| {
            let seen = series.as_ref().is_some_and(|s| {
                s.points.iter().any(|pt| {
                    pt.t == o.tick_start
                        && (pt.value.unwrap_or(0.0) > 0.0 || pt.peak.unwrap_or(0.0) > 0.0)
                })
            });
            if seen {
                let _ =
                    h.0.record(received.duration_since(o.sent).as_micros().max(1) as u64);
                let _ = h.1.record(
                    ((received_ms - o.tick_end.max(o.sent_ms)).max(0) as u64 * 1000).max(1),
                );
                return false;
            }
            if received_ms > o.tick_end + PROBE_TIMEOUT_MS {
                f.timed_out += 1;
                return false;
            }
            true
        });
    }
}
