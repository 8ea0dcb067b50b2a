//! Issue 4 benchmark: dashboards polling the series route while ingest runs.
//!
//! ```sh
//! cargo build --release --workspace --examples
//! target/release/examples/dashboard_poll [--store embedded|clickhouse]
//!     [--no-cache|--cache-only] [--days 30] [--streams 1000] [--dashboards 625]
//!     [--duration-s 60] [--off-duration-s 30] [--warmup-s 10] [--viewers 1000]
//! ```
//! By default one loaded store is measured twice: cache on, then (same data, a new
//! server) cache off for `--off-duration-s`.
//! 1. **History**: `--days` × `--streams` minute rollups (one `stream_ticks` row per
//!    stream and minute, ending now) are handed as `ClosedWindows` to the configured
//!    store's own sink (`pulse::store::open_sink`: the embedded store's WAL + Parquet
//!    compaction, one file per day; or the ClickHouse sink's spool and inserts), under
//!    the server's node id, six hours per write.
//! 2. **Server**: `pulse serve` (all roles) on 127.0.0.1:0 over that store, the system
//!    clock, `query.series_cache` on or off.
//! 3. **Ingest**: the load generator's `viewers` scenario (`--viewers` players with real
//!    heartbeats) runs during the whole measurement.
//! 4. **Dashboards**: `--dashboards` dashboards, dashboard i on stream i mod streams,
//!    each polling four series (viewers, views, watch_minutes, rebuffer_ratio) of the last
//!    24 h at 5 min steps every 5 s (625 × 4 / 5 s = 500 requests/s), starts spread over
//!    the period. Open loop: each request is sent at its scheduled instant whatever the
//!    others do, and its latency counts from that instant (a slow server cannot slow the
//!    schedule down). At most `MAX_IN_FLIGHT` requests are outstanding; one more is
//!    counted as shed (an error). The first `--warmup-s` seconds are not measured.
//!
//! Prints p50/p99/max latency, achieved rate, errors, and the cache's hit rate (from
//! `/metrics`: requests served partly from the cache, points from the cache).

#[path = "../tests/common/clickhouse.rs"]
#[allow(dead_code)]
mod clickhouse_harness;
#[path = "../tests/common/ports.rs"]
mod ports;

use anyhow::Context;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use pulse::config::StoreKind;
use pulse::store::ConfiguredSink;
use pulse_aggregator::sinks::{Provisional, WindowSink};
use pulse_load_tests::{LoadgenArgs, Scenario};
use pulse_schemas::{ClosedWindows, Id, TargetKind, TickRow};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const ADMIN: &str = "dashboard-poll-admin";
const NODE: &str = "bench-node";
const METRICS: [&str; 4] = ["viewers", "views", "watch_minutes", "rebuffer_ratio"];
const POLL_MS: u64 = 5_000;
const WINDOW_MS: i64 = 86_400_000;
const STEP_MS: i64 = 300_000;
const MAX_IN_FLIGHT: usize = 4_000;
const CHUNK_MS: i64 = 6 * 3_600_000;

struct Args {
    store: StoreKind,
    /// Cache on and/or off, in this order, on the same loaded store.
    modes: Vec<bool>,
    off_duration_s: u64,
    days: i64,
    streams: usize,
    dashboards: usize,
    duration_s: u64,
    warmup_s: u64,
    viewers: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        store: StoreKind::Embedded,
        modes: vec![true, false],
        off_duration_s: 30,
        days: 30,
        streams: 1000,
        dashboards: 625,
        duration_s: 60,
        warmup_s: 10,
        viewers: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-cache" || flag == "--cache-only" {
            a.modes = vec![flag == "--cache-only"];
            continue;
        }
        let v = it.next().with_context(|| format!("{flag} needs a value"))?;
        let n = || v.parse::<u64>().with_context(|| format!("{flag} {v}"));
        match flag.as_str() {
            "--store" => {
                a.store = match v.as_str() {
                    "embedded" => StoreKind::Embedded,
                    "clickhouse" => StoreKind::Clickhouse,
                    _ => anyhow::bail!("--store embedded|clickhouse, got {v}"),
                }
            }
            "--days" => a.days = n()? as i64,
            "--streams" => a.streams = n()? as usize,
            "--dashboards" => a.dashboards = n()? as usize,
            "--duration-s" => a.duration_s = n()?,
            "--off-duration-s" => a.off_duration_s = n()?,
            "--warmup-s" => a.warmup_s = n()?,
            "--viewers" => a.viewers = n()? as usize,
            _ => anyhow::bail!("unknown option {flag}"),
        }
    }
    Ok(a)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn stream(i: usize) -> String {
    format!("h{i:05}")
}

/// One minute rollup of stream `i`: a smooth daily curve of viewers, some rebuffering.
fn row(node: &Id, i: usize, t: i64) -> anyhow::Result<TickRow> {
    let minute = t / 60_000;
    let daily = ((minute % 1440) as f64 / 1440.0 * std::f64::consts::TAU).sin();
    let viewers = (40.0 + 30.0 * daily) as i64 + (i as i64 * 7 + minute) % 11;
    let id = |s: String| Id::parse(&s).map_err(|e| anyhow::anyhow!("id {s}: {e}"));
    Ok(TickRow {
        node: node.clone(),
        kind: TargetKind::Stream,
        target: id(stream(i))?,
        channel: id(format!("hc{:05}", i / 4))?,
        t,
        viewers,
        events: viewers * 12,
        views: (minute + i as i64) % 3,
        watch_ms: viewers * 60_000,
        rebuffer_ms: (minute % 17) * 40,
        rebuffer_count: i64::from(minute % 17 == 0),
        startups: 0,
        startup_hist: Vec::new(),
        failures: 0,
        chat_messages: (minute + i as i64) % 5,
        follows: 0,
        likes: 0,
        shares: 0,
        embed_views: 0,
        clickthroughs: 0,
    })
}

/// Writes the history through the configured store's sink; returns rows written.
fn load_history(cfg: &pulse::Config, a: &Args, end: i64) -> anyhow::Result<u64> {
    let (_tables, mut sink) = pulse::store::open_sink(cfg)?;
    let node = Id::parse(NODE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = (end - a.days * 86_400_000) / 60_000 * 60_000;
    let mut rows = 0u64;
    let mut from = start;
    while from < end {
        let to = (from + CHUNK_MS).min(end);
        let mut ticks = Vec::with_capacity(a.streams * ((to - from) / 60_000) as usize);
        for t in (from..to).step_by(60_000) {
            for i in 0..a.streams {
                ticks.push(row(&node, i, t)?);
            }
        }
        rows += ticks.len() as u64;
        let closed = ClosedWindows {
            ticks,
            closed_through: to,
            ..ClosedWindows::default()
        };
        sink.write(&closed, &Provisional::default())?;
        match &mut sink {
            ConfiguredSink::Embedded(s) if (to - start) % 86_400_000 == 0 || to == end => {
                s.compact_now()?;
            }
            ConfiguredSink::ClickHouse(s) => {
                while s.spooled() > 0 {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            _ => {}
        }
        from = to;
    }
    sink.shutdown()?;
    Ok(rows)
}

/// The last 24 h of `metric` of `target` at 5 min steps, up to `to`.
fn series_url(base: &str, metric: &str, target: &str, to: i64) -> String {
    let from = to - WINDOW_MS;
    format!(
        "{base}/api/analytics/series?metric={metric}&stream={target}\
         &from={from}&to={to}&step={STEP_MS}"
    )
}

/// Sum of a counter family's samples whose labels contain `label` (the text format).
fn counter(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

struct Totals {
    sent: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    shed: AtomicU64,
    in_flight: AtomicU64,
    hist: Mutex<Histogram<u64>>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let dir = tempfile::tempdir()?;
    let mut cfg = pulse::Config {
        data_dir: dir.path().join("pulse"),
        media_dir: dir.path().join("media"),
        node_id: NODE.into(),
        admin_token: ADMIN.into(),
        ..pulse::Config::default()
    };
    cfg.store = a.store;
    cfg.embedded.max_recent_rows = 2_000_000;
    cfg.embedded.max_memory_rows = 4_000_000;
    cfg.clickhouse.max_batch_rows = 1_000_000;
    cfg.clickhouse.insert_interval_ms = 100;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let ch = match a.store {
        StoreKind::Clickhouse => {
            let ch = tokio::task::spawn_blocking(clickhouse_harness::ClickHouse::start).await?;
            cfg.clickhouse_url = ch.url();
            pulse::store::migrate(&cfg).await?;
            Some(ch)
        }
        StoreKind::Embedded => None,
    };
    let _keep = &ch;

    let t0 = Instant::now();
    let end = now_ms() / 60_000 * 60_000;
    let c = cfg.clone();
    let (rows, a) = tokio::task::spawn_blocking(move || (load_history(&c, &a, end), a)).await?;
    let rows = rows?;
    eprintln!(
        "history: {rows} rows ({} days × {} streams) in {:.1} s",
        a.days,
        a.streams,
        t0.elapsed().as_secs_f64()
    );

    for cache in a.modes.clone() {
        let mut c = cfg.clone();
        c.query.series_cache = cache;
        let duration_s = if cache {
            a.duration_s
        } else {
            a.off_duration_s
        };
        measure(c, &a, cache, duration_s).await?;
    }
    Ok(())
}

/// One measured run: the server over the loaded store, ingest, the dashboards.
async fn measure(cfg: pulse::Config, a: &Args, cache: bool, duration_s: u64) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(pulse::serve::run_role(
        pulse::serve::Role::All,
        listener,
        cfg.clone(),
        shutdown.clone(),
        pulse_aggregator::runtime::system_clock(),
    ));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let base = format!("http://{addr}");
    for _ in 0..600 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Ingest: the load generator's players, for the whole run.
    let run_s = a.warmup_s + duration_s;
    let mut lg = LoadgenArgs::new(Scenario::Viewers, &base);
    lg.viewers = a.viewers;
    lg.viewers_duration_s = run_s + 5;
    lg.settle_s = 0;
    let ingest = tokio::spawn(pulse_load_tests::run(lg));
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Cold cache: every dashboard's first poll, a few at a time (closed loop), so the
    // measured run shows the steady state; its time is reported.
    if cache {
        let t = Instant::now();
        let to = now_ms();
        let urls: Vec<String> = (0..a.dashboards)
            .flat_map(|d| {
                let target = stream(d % a.streams);
                let base = base.clone();
                METRICS.map(move |m| series_url(&base, m, &target, to))
            })
            .collect();
        let n = urls.len();
        let failed = futures_util::stream::iter(urls)
            .map(|url| {
                let http = http.clone();
                async move {
                    http.get(url)
                        .bearer_auth(ADMIN)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                }
            })
            .buffer_unordered(4)
            .filter(|ok| std::future::ready(!ok))
            .count()
            .await;
        eprintln!(
            "cold cache: {n} series filled in {:.1} s ({failed} failed)",
            t.elapsed().as_secs_f64()
        );
    }

    let totals = Arc::new(Totals {
        sent: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        shed: AtomicU64::new(0),
        in_flight: AtomicU64::new(0),
        hist: Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3)?),
    });
    let metrics_before = std::sync::OnceLock::new();
    let start = tokio::time::Instant::now();
    let measure_from = start + Duration::from_secs(a.warmup_s);
    let stop_at = measure_from + Duration::from_secs(duration_s);
    let mut tasks = Vec::with_capacity(a.dashboards);
    for d in 0..a.dashboards {
        let (http, base, totals) = (http.clone(), base.clone(), totals.clone());
        let target = stream(d % a.streams);
        let offset = Duration::from_millis(POLL_MS * d as u64 / a.dashboards as u64);
        tasks.push(tokio::spawn(async move {
            let mut due = start + offset;
            let mut polls = Vec::new();
            while due < stop_at {
                tokio::time::sleep_until(due).await;
                let measured = due >= measure_from;
                let to = now_ms();
                for m in METRICS {
                    if totals.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT as u64 {
                        if measured {
                            totals.shed.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    totals.in_flight.fetch_add(1, Ordering::Relaxed);
                    let url = series_url(&base, m, &target, to);
                    let (http, totals) = (http.clone(), totals.clone());
                    let scheduled = due;
                    polls.push(tokio::spawn(async move {
                        let r = http.get(url).bearer_auth(ADMIN).send().await;
                        let ok = match r {
                            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                            _ => false,
                        };
                        let us = scheduled.elapsed().as_micros() as u64;
                        totals.in_flight.fetch_sub(1, Ordering::Relaxed);
                        if !measured {
                            return;
                        }
                        totals.sent.fetch_add(1, Ordering::Relaxed);
                        if ok {
                            totals.ok.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut h) = totals.hist.lock() {
                                let _ = h.record(us.max(1));
                            }
                        } else {
                            totals.errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }));
                }
                due += Duration::from_millis(POLL_MS);
                polls.retain(|p| !p.is_finished());
            }
            for p in polls {
                let _ = p.await;
            }
        }));
    }
    tokio::time::sleep_until(measure_from).await;
    let scrape = |http: reqwest::Client, base: String| async move {
        match http.get(format!("{base}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    };
    let _ = metrics_before.set(scrape(http.clone(), base.clone()).await);
    for t in tasks {
        let _ = t.await;
    }
    let measured_s = start.elapsed().as_secs_f64() - a.warmup_s as f64;
    let after = scrape(http.clone(), base.clone()).await;
    let before = metrics_before.get().cloned().unwrap_or_default();
    let delta =
        |name: &str, label: &str| counter(&after, name, label) - counter(&before, name, label);
    let hits = delta("pulse_query_series_cache_requests_total", "result=\"hit\"");
    let misses = delta("pulse_query_series_cache_requests_total", "result=\"miss\"");
    let p_cache = delta("pulse_query_series_points_total", "source=\"cache\"");
    let p_store = delta("pulse_query_series_points_total", "source=\"store\"");
    let evicted = delta("pulse_query_series_cache_evictions_total", "");
    let ingest_report = ingest.await;
    shutdown.cancel();
    let served = server.await;

    let h = totals
        .hist
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let (ok, errors, shed) = (
        totals.ok.load(Ordering::Relaxed),
        totals.errors.load(Ordering::Relaxed),
        totals.shed.load(Ordering::Relaxed),
    );
    let store = match a.store {
        StoreKind::Embedded => "embedded",
        StoreKind::Clickhouse => "ClickHouse",
    };
    println!(
        "| {store} | {} | {:.2} | {:.2} | {:.2} | {:.0} req/s | {} errors + {} shed of {} | {} | {} |",
        if cache { "on" } else { "off" },
        ms(0.5),
        ms(0.99),
        h.max() as f64 / 1000.0,
        ok as f64 / measured_s,
        errors,
        shed,
        ok + errors + shed,
        if hits + misses > 0.0 {
            format!("{:.1} % of requests", 100.0 * hits / (hits + misses))
        } else {
            "-".into()
        },
        if p_cache + p_store > 0.0 {
            format!(
                "{:.1} % of points ({evicted:.0} evictions)",
                100.0 * p_cache / (p_cache + p_store)
            )
        } else {
            "-".into()
        },
    );
    match ingest_report {
        Ok(Ok(r)) => eprintln!("ingest during the run:\n{r}"),
        Ok(Err(e)) => eprintln!("ingest load failed: {e:#}"),
        Err(e) => eprintln!("ingest task: {e}"),
    }
    if let Ok(Err(e)) = served {
        eprintln!("server: {e:#}");
    }
    Ok(())
}
