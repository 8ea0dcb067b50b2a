//! Issue 5 benchmark: time from the encoder report that trips `bitrate_drop` to the
//! alert on the creator's live feed, with N concurrent encoders and N creator feeds.
//!
//! ```sh
//! cargo build --release --workspace --examples
//! target/release/examples/alert_latency [N] [--across-nodes]
//! ```
//! (default N = 1000). N streams, each of its own channel, all owned by one creator
//! token (a `StaticAccess` holding every stream key). N encoders connect to
//! `/v1/encoder` and N feeds to `/v1/live?channel=` (one per channel), all on loopback.
//! Every encoder sends one report a second of wall time (`ts` = the wall clock, the
//! server runs on `system_clock()` too), spread over the second (encoder i at
//! i·1000/N ms), [`STEADY`] reports at target (5000 of 5000 kbps), then reports at
//! 30 % of target until the run stops. By METRICS.md §4 (mean of the last 10 s < 70 %
//! of target: warning; < 40 %: critical) the 5th sag report trips the warning and the
//! 9th the critical (the 10th when wall-clock jitter puts 11 reports, ~999 ms apart,
//! inside the 10 s window); the example does not rely on that: it keeps the send instant of
//! every sag report by its `ts` and matches each `firing` `bitrate_drop` alert to the
//! report whose `ts` the alert carries. Latency = arrival on the feed − send of that
//! report (one `Instant` clock, one process), in an HDR histogram per severity.
//!
//! `--across-nodes`: two nodes on one throwaway ClickHouse (`store = clickhouse`,
//! `insert_interval_ms` and `alert_poll_ms` at their defaults), encoders on node A,
//! feeds on node B; alerts reach B through `pulse_query::remote_alerts`.
//!
//! The run stops by itself: when every expected alert arrived, or [`WAIT_S`] seconds
//! after the last expected trip. Servers and clients share this process and its
//! runtime, so client work (JSON of 2N sockets) is inside the figures. Both socket ends
//! are in this process: it needs 4N + slack file descriptors (checked at start).

#[path = "../tests/common/clickhouse.rs"]
#[allow(dead_code)]
mod clickhouse_harness;
#[path = "../tests/common/ports.rs"]
mod ports;

use anyhow::{Context, bail};
use clickhouse_harness::ClickHouse;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use pulse::config::StoreKind;
use pulse::serve::Role;
use pulse_schemas::{Id, Role as UserRole, StaticAccess};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Reports at target before the sag (fills the 10 s window with good reports).
const STEADY: usize = 12;
/// Sag reports after which both transitions are due (warning 5th, critical 9th).
const SAG_DUE: usize = 9;
/// How long after the last due trip the run waits for missing alerts (s).
const WAIT_S: u64 = 10;
const TARGET_KBPS: i64 = 5000;
const SAG_KBPS: i64 = 1500;
const CREATOR_TOKEN: &str = "t-bench-creator";
/// Connections opened at once while setting up.
const CONNECT_BATCH: usize = 100;

struct Node {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

fn id(s: &str) -> anyhow::Result<Id> {
    Id::parse(s).map_err(|e| anyhow::anyhow!("id {s}: {e}"))
}

fn stream(i: usize) -> String {
    format!("s{i:05}")
}

fn channel(i: usize) -> String {
    format!("c{i:05}")
}

fn key(i: usize) -> String {
    format!("key-{i:05}")
}

/// The soft limit on open files of this process (`/proc/self/limits`).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

async fn start_node(cfg: pulse::Config, access: Arc<StaticAccess>) -> anyhow::Result<Node> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(pulse::serve::run_role_with_access(
        Role::All,
        listener,
        cfg,
        shutdown.clone(),
        pulse_aggregator::runtime::system_clock(),
        access,
    ));
    Ok(Node {
        addr,
        shutdown,
        task,
    })
}

impl Node {
    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await.context("node task")?
    }
}

/// A node's config: defaults, its own data directory, room for `n` streams.
fn config(dir: &std::path::Path, name: &str, n: usize) -> pulse::Config {
    let mut cfg = pulse::Config {
        data_dir: dir.join(name),
        media_dir: dir.join(name).join("media"),
        node_id: format!("bench-{name}"),
        ..pulse::Config::default()
    };
    cfg.health.max_streams = cfg.health.max_streams.max(n);
    cfg
}

/// One `bitrate_drop` firing alert as a feed saw it.
struct Arrival {
    stream: String,
    ts: i64,
    severity: String,
    at: Instant,
}

/// A feed: collects the firing `bitrate_drop` alerts until `stop`.
async fn feed(
    addr: SocketAddr,
    ch: String,
    seen: Arc<AtomicUsize>,
    stop: CancellationToken,
) -> anyhow::Result<JoinHandle<Vec<Arrival>>> {
    let url = format!("ws://{addr}/v1/live?channel={ch}&token={CREATOR_TOKEN}");
    let (mut ws, _) = connect_async(url)
        .await
        .with_context(|| format!("feed of {ch}"))?;
    Ok(tokio::spawn(async move {
        let mut got = Vec::new();
        loop {
            let msg = tokio::select! {
                _ = stop.cancelled() => break,
                m = ws.next() => m,
            };
            let at = Instant::now();
            let text = match msg {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(_)) => continue,
                _ => break,
            };
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if v["type"] == "alert" && v["alert"] == "bitrate_drop" && v["state"] == "firing" {
                seen.fetch_add(1, Ordering::Relaxed);
                got.push(Arrival {
                    stream: v["stream"].as_str().unwrap_or_default().to_owned(),
                    ts: v["ts"].as_i64().unwrap_or_default(),
                    severity: v["severity"].as_str().unwrap_or_default().to_owned(),
                    at,
                });
            }
        }
        let _ = ws.close(None).await;
        got
    }))
}

fn report(ts: i64, kbps: i64) -> String {
    json!({"ts": ts, "bitrate_kbps": kbps, "target_bitrate_kbps": TARGET_KBPS, "fps": 60.0,
           "target_fps": 60, "width": 1920, "height": 1080, "latency_ms": 1200,
           "packet_loss_pct": 0.1, "dropped_frames": 0, "keyframe_interval_s": 2})
    .to_string()
}

/// What an encoder hands back: the send instant of each sag report by `ts`, and how many
/// frames the server rejected.
struct Sent {
    stream: String,
    sag: HashMap<i64, Instant>,
    rejected: usize,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens encoder `i`'s socket (the stream goes LIVE).
async fn connect_encoder(addr: SocketAddr, i: usize) -> anyhow::Result<Ws> {
    let url = format!("ws://{addr}/v1/encoder?stream={}&key={}", stream(i), key(i));
    let (ws, _) = connect_async(url)
        .await
        .with_context(|| format!("encoder of {}", stream(i)))?;
    Ok(ws)
}

/// Encoder `i`: from `first`, one report a second until `stop`, then `end`.
async fn encoder(
    ws: Ws,
    i: usize,
    first: tokio::time::Instant,
    stop: CancellationToken,
) -> anyhow::Result<Sent> {
    let (mut tx, mut rx) = ws.split();
    // Replies are only rejections: count them.
    let reader = tokio::spawn(async move {
        let mut rejected = 0;
        while let Some(Ok(m)) = rx.next().await {
            if matches!(m, Message::Text(t) if t.contains("rejected")) {
                rejected += 1;
            }
        }
        rejected
    });
    let clock = pulse_aggregator::runtime::system_clock();
    let mut every = tokio::time::interval_at(first, Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sag = HashMap::new();
    for k in 0.. {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = every.tick() => {}
        }
        let ts = clock();
        let kbps = if k < STEADY { TARGET_KBPS } else { SAG_KBPS };
        let text = report(ts, kbps);
        if k >= STEADY {
            sag.insert(ts, Instant::now());
        }
        tx.send(Message::Text(text.into())).await?;
    }
    tx.send(Message::Text(r#"{"type":"end"}"#.into())).await?;
    let _ = tx.close().await;
    let rejected = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    Ok(Sent {
        stream: stream(i),
        sag,
        rejected,
    })
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn print_hist(name: &str, h: &Histogram<u64>, expected: usize) {
    if h.is_empty() {
        println!("{name:<9} 0 of {expected} arrived");
        return;
    }
    println!(
        "{name:<9} {:>5} of {expected} arrived | p50 {:>8.1} ms  p99 {:>8.1} ms  p99.9 {:>8.1} ms  max {:>8.1} ms",
        h.len(),
        ms(h, 0.5),
        ms(h, 0.99),
        ms(h, 0.999),
        h.max() as f64 / 1000.0,
    );
}

/// The non-zero `…lagged…`/`…dropped…` counters of a node's `/metrics` (where a missing
/// alert went: a feed that lagged the broadcast, a dropped row).
async fn metric_lines(addr: SocketAddr) -> Vec<String> {
    let Ok(resp) = reqwest::get(format!("http://{addr}/metrics")).await else {
        return Vec::new();
    };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && (l.contains("lagged") || l.contains("dropped")))
        .filter(|l| !l.ends_with(" 0"))
        .map(str::to_owned)
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let across = args.iter().any(|a| a == "--across-nodes");
    let n: usize = match args.iter().find(|a| !a.starts_with("--")) {
        Some(a) => a
            .parse()
            .with_context(|| format!("N: expected a count, got {a}"))?,
        None => 1000,
    };
    if n == 0 || n > 99_999 {
        bail!("N: expected 1 to 99999, got {n}");
    }
    let need = 4 * n as u64 + 256;
    match open_files_limit() {
        Some(limit) if limit < need => bail!(
            "open-file limit {limit} is below the {need} this run needs (4 per encoder/feed \
             pair: both socket ends are in this process, plus slack); raise `ulimit -n`"
        ),
        Some(limit) => println!("open-file limit {limit} ≥ {need} needed"),
        None => println!("open-file limit unknown (no /proc/self/limits); {need} needed"),
    }

    let mut access = StaticAccess::new().with_token(CREATOR_TOKEN, id("bench")?, UserRole::Creator);
    for i in 0..n {
        access = access
            .with_channel(id(&channel(i))?, id("bench")?)
            .with_stream_key(id(&stream(i))?, id(&channel(i))?, &key(i));
    }
    let access = Arc::new(access);
    let dir = tempfile::tempdir()?;

    let ch = if across {
        Some(
            tokio::task::spawn_blocking(ClickHouse::start)
                .await
                .context("starting ClickHouse")?,
        )
    } else {
        None
    };
    let (enc_node, feed_node) = match &ch {
        Some(ch) => {
            let scaled = |name: &str| {
                let mut cfg = config(dir.path(), name, n);
                cfg.store = StoreKind::Clickhouse;
                cfg.clickhouse_url = ch.url();
                cfg
            };
            let a = scaled("a");
            println!(
                "mode: across nodes (ClickHouse, insert_interval_ms {}, alert_poll_ms {})",
                a.clickhouse.insert_interval_ms, a.clickhouse.alert_poll_ms
            );
            let a = start_node(a, access.clone()).await?;
            let b = start_node(scaled("b"), access.clone()).await?;
            (a, Some(b))
        }
        None => {
            println!("mode: one node (embedded store)");
            (
                start_node(config(dir.path(), "one", n), access.clone()).await?,
                None,
            )
        }
    };
    let enc_addr = enc_node.addr;
    let feed_addr = feed_node.as_ref().map_or(enc_addr, |b| b.addr);

    // Feeds first, so every alert has a socket to go to.
    let stop = CancellationToken::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let setup = Instant::now();
    let mut feeds = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(CONNECT_BATCH) {
        let opened = futures_util::future::join_all(
            batch
                .iter()
                .map(|&i| feed(feed_addr, channel(i), seen.clone(), stop.clone())),
        )
        .await;
        for f in opened {
            feeds.push(f?);
        }
    }
    println!("{n} feeds open in {:.1} s", setup.elapsed().as_secs_f64());

    // Encoders: all connected, then the first report 1 s later, spread over a second.
    let setup = Instant::now();
    let mut sockets = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(CONNECT_BATCH) {
        let opened =
            futures_util::future::join_all(batch.iter().map(|&i| connect_encoder(enc_addr, i)))
                .await;
        for e in opened {
            sockets.push(e?);
        }
    }
    println!(
        "{n} encoders connected in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let base = tokio::time::Instant::now() + Duration::from_secs(1);
    let encoders: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            let first = base + Duration::from_micros((i * 1_000_000 / n) as u64);
            tokio::spawn(encoder(ws, i, first, stop.clone()))
        })
        .collect();

    // Wait for 2N alerts, or WAIT_S after the last due trip.
    let expected = 2 * n;
    let due = base + Duration::from_secs((STEADY + SAG_DUE) as u64);
    let deadline = due + Duration::from_secs(WAIT_S);
    loop {
        if seen.load(Ordering::Relaxed) >= expected || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();

    let mut sent_by_stream = HashMap::with_capacity(n);
    let mut rejected = 0;
    let mut send_errors = 0;
    for e in encoders {
        match e.await {
            Ok(Ok(s)) => {
                rejected += s.rejected;
                sent_by_stream.insert(s.stream, s.sag);
            }
            Ok(Err(err)) => {
                send_errors += 1;
                if send_errors <= 3 {
                    println!("encoder error: {err:#}");
                }
            }
            Err(err) => bail!("encoder task: {err}"),
        }
    }
    let mut warning = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut critical = warning.clone();
    let (mut unmatched, mut repeats) = (0, 0);
    let mut firsts = HashMap::new();
    // (severity, which sag report tripped it, 1-based) → alerts.
    let mut tripped_by = std::collections::BTreeMap::new();
    for f in feeds {
        for a in f.await.context("feed task")? {
            let Some(sent) = sent_by_stream.get(&a.stream).and_then(|m| m.get(&a.ts)) else {
                unmatched += 1;
                continue;
            };
            // A feed re-sends firing alerts when it lagged: the first arrival counts.
            if firsts
                .insert((a.stream.clone(), a.severity.clone()), ())
                .is_some()
            {
                repeats += 1;
                continue;
            }
            let nth = sent_by_stream
                .get(&a.stream)
                .map_or(0, |m| m.keys().filter(|&&t| t <= a.ts).count());
            *tripped_by
                .entry((a.severity.clone(), nth))
                .or_insert(0usize) += 1;
            let us = a.at.saturating_duration_since(*sent).as_micros() as u64;
            match a.severity.as_str() {
                "warning" => warning.record(us.max(1))?,
                "critical" => critical.record(us.max(1))?,
                _ => unmatched += 1,
            }
        }
    }

    let mut metrics = metric_lines(enc_addr).await;
    if feed_addr != enc_addr {
        // The registry may be process-wide: each line once.
        for l in metric_lines(feed_addr).await {
            if !metrics.contains(&l) {
                metrics.push(l);
            }
        }
    }
    if let Some(b) = feed_node {
        b.stop().await?;
    }
    enc_node.stop().await?;
    drop(ch);

    println!(
        "N = {n}: {n} encoders on {enc_addr}, {n} feeds on {feed_addr}; report → alert on the feed:"
    );
    print_hist("warning", &warning, n);
    print_hist("critical", &critical, n);
    let mut all = warning.clone();
    all.add(&critical)?;
    print_hist("all", &all, expected);
    println!(
        "alerts arrived {} of {expected} expected; repeats {repeats}; unmatched ts {unmatched}; \
         frames rejected {rejected}; encoder send errors {send_errors}",
        all.len()
    );
    for ((severity, nth), count) in tripped_by {
        println!("{severity} tripped by sag report #{nth}: {count} streams");
    }
    for l in metrics {
        println!("metric {l}");
    }
    Ok(())
}
