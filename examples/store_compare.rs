//! Issue 3 benchmark: Pulse's windows in ClickHouse against the approach a team would
//! otherwise take (every raw beacon inserted into ClickHouse, charts computed with
//! GROUP BY at query time), side by side in one run, on one trace and one server.
//!
//! ```sh
//! cargo run --release --example store_compare -- [VIEWERS] [HOURS] [QUERIES]
//! ```
//! (defaults 500 viewers over 5 streams for 24 hours, 200 timed queries of each kind).
//! It starts its own throwaway `clickhouse-server` (Debian's package, as the tests do),
//! generates the trace with the load generator's players, and measures:
//! - **ingest CPU per event**: this process's CPU (parse + aggregate + encode + send)
//!   plus the ClickHouse server's CPU (from `/proc/<pid>/stat`) while each path ingests;
//!   the sink's throughput in rows/s;
//! - **storage**: bytes on disk of each path's tables after `OPTIMIZE … FINAL`;
//! - **query latency** p50/p99 of a 24-hour viewer chart (5-minute points) and of a
//!   stream summary: Pulse through its HTTP API (`pulse query` in this process), the raw
//!   path through ClickHouse's HTTP interface with its GROUP BY queries.
//!
//! The raw path is given the benefit of the doubt: its "viewers" are sessions seen in a
//! bucket (a cheap approximation of concurrency, not METRICS.md's tick samples), and its
//! ingest does no sessionization at all.

#[path = "../tests/common/clickhouse.rs"]
#[allow(dead_code)]
mod clickhouse_harness;
#[path = "../tests/common/ports.rs"]
mod ports;

use clickhouse_harness::ClickHouse;
use pulse::config::StoreKind;
use pulse::serve::Role;
use pulse_load_tests::generate::Player;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

/// The admin token of the in-process query node (the analytics routes need one).
const ADMIN: &str = "store-compare-admin";

const RAW_DDL: &str = "CREATE TABLE IF NOT EXISTS bench_raw.beacons (
    type String, ts Int64, viewer String, channel String, stream String, session String,
    pos Float64, state String, bitrate_kbps UInt32, device String, country String,
    player String, code String, count UInt32
) ENGINE = MergeTree() PARTITION BY intDiv(ts, 86400000) ORDER BY (stream, ts)";

/// CPU seconds (user + system) of process `pid` so far (clock ticks of 1/100 s).
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// p50 and p99 in ms of `n` runs of `f`.
async fn time<F, Fut>(n: usize, mut f: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

fn bytes_on_disk(ch: &ClickHouse, database: &str) -> u64 {
    ch.sql(&format!(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = '{database}'"
    ))
    .ok()
    .and_then(|s| s.trim().parse().ok())
    .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let viewers = args.first().copied().unwrap_or(500);
    let hours = args.get(1).copied().unwrap_or(24) as i64;
    let queries = args.get(2).copied().unwrap_or(200);
    let streams = 5;
    let start = 1_764_000_000_000 / 86_400_000 * 86_400_000;
    let end = start + hours * 3_600_000;

    // The trace: every player of the load generator, run on a simulated clock.
    let mut players: Vec<Player> = (0..viewers)
        .map(|i| Player::new("b", i, streams, start + (i as i64 * 997) % 60_000, 7))
        .collect();
    let mut events = Vec::new();
    let mut buf = Vec::new();
    let mut due: BinaryHeap<Reverse<(i64, usize)>> = players
        .iter()
        .enumerate()
        .map(|(i, p)| Reverse((p.next_wake(), i)))
        .collect();
    while let Some(Reverse((t, i))) = due.pop() {
        if t >= end {
            break;
        }
        players[i].poll(t, &mut buf);
        events.append(&mut buf);
        due.push(Reverse((players[i].next_wake(), i)));
    }
    for p in &mut players {
        p.finish(end, &mut events);
    }
    events.sort_by_key(|e| e.ts);
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("trace.ndjson");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&file)?);
    for e in &events {
        writeln!(w, "{}", e.to_json())?;
    }
    w.flush()?;
    drop(w);
    let n = events.len();
    println!("trace: {n} events, {viewers} viewers, {streams} streams, {hours} h");

    let ch = tokio::task::spawn_blocking(ClickHouse::start).await?;
    let ch_pid = ch.pid().ok_or_else(|| anyhow::anyhow!("no server pid"))?;
    let me = std::process::id();

    // Pulse: the trace through the aggregator and the ClickHouse sink (`pulse replay`).
    let mut cfg = pulse::Config {
        data_dir: dir.path().join("pulse"),
        ..pulse::Config::default()
    };
    cfg.store = StoreKind::Clickhouse;
    cfg.clickhouse_url = ch.url();
    cfg.admin_token = ADMIN.into();
    pulse::store::migrate(&cfg).await?;
    let (c0, s0, t0) = (cpu_s(me), cpu_s(ch_pid), Instant::now());
    let c = cfg.clone();
    let f = file.clone();
    let report = tokio::task::spawn_blocking(move || pulse::replay::replay_file(&c, &f)).await??;
    let pulse_wall = t0.elapsed().as_secs_f64();
    let (pulse_client, pulse_server) = (cpu_s(me) - c0, cpu_s(ch_pid) - s0);
    let rows: u64 = ch
        .sql("SELECT sum(rows) FROM system.parts WHERE active AND database = 'default'")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    anyhow::ensure!(report.events as usize == n, "replay took {report:?}");

    // Raw: every beacon, validated, as one row (JSONEachRow, batches of 100 000).
    ch.sql("CREATE DATABASE IF NOT EXISTS bench_raw")
        .map_err(anyhow::Error::msg)?;
    ch.sql(RAW_DDL).map_err(anyhow::Error::msg)?;
    let raw = clickhouse::Client::default()
        .with_url(ch.url())
        .with_validation(false)
        .with_setting("input_format_skip_unknown_fields", "1");
    let (c0, s0, t0) = (cpu_s(me), cpu_s(ch_pid), Instant::now());
    let text = std::fs::read_to_string(&file)?;
    let lines: Vec<&str> = text.lines().collect();
    for chunk in lines.chunks(100_000) {
        let mut body = String::with_capacity(chunk.len() * 200);
        for line in chunk {
            let e = pulse_schemas::parse_event(line).map_err(|r| anyhow::anyhow!("{r}"))?;
            body.push_str(&e.to_json());
            body.push('\n');
        }
        let mut ins = raw.insert_formatted_with("INSERT INTO bench_raw.beacons FORMAT JSONEachRow");
        ins.send(body.into()).await?;
        ins.end().await?;
    }
    let raw_wall = t0.elapsed().as_secs_f64();
    let (raw_client, raw_server) = (cpu_s(me) - c0, cpu_s(ch_pid) - s0);

    for t in pulse_schemas::clickhouse::DDL
        .iter()
        .filter_map(|(_, sql)| {
            sql.split("CREATE TABLE IF NOT EXISTS ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
        })
    {
        let _ = ch.sql(&format!("OPTIMIZE TABLE default.{t} FINAL"));
    }
    let _ = ch.sql("OPTIMIZE TABLE bench_raw.beacons FINAL");
    let (pulse_bytes, raw_bytes) = (
        bytes_on_disk(&ch, "default"),
        bytes_on_disk(&ch, "bench_raw"),
    );

    // Queries: Pulse's API (a query node in this process) against raw GROUP BYs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let clock_end = end + 3_600_000;
    let node = tokio::spawn(pulse::serve::run_role(
        Role::Query,
        listener,
        cfg.clone(),
        shutdown.clone(),
        Arc::new(move || clock_end),
    ));
    let http = reqwest::Client::new();
    let stream = "vwb-s3";
    let chart = format!(
        "http://{addr}/api/analytics/series?metric=viewers&stream={stream}&from={start}&to={end}&step=300000"
    );
    let summary = format!("http://{addr}/api/analytics/streams/{stream}");
    for url in [&chart, &summary] {
        let r = http.get(url).bearer_auth(ADMIN).send().await?;
        anyhow::ensure!(r.status().is_success(), "{url}: {}", r.text().await?);
    }
    let get = |url: String| {
        let http = http.clone();
        async move {
            let body = http
                .get(url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .expect("Pulse answers");
            body.bytes().await.expect("Pulse body");
        }
    };
    let pulse_chart = time(queries, || get(chart.clone())).await;
    let pulse_summary = time(queries, || get(summary.clone())).await;
    let raw_chart_sql = format!(
        "SELECT intDiv(ts, 300000) * 300000 AS b, uniqExact(session) FROM bench_raw.beacons \
         WHERE stream = '{stream}' AND ts >= {start} AND ts < {end} AND session != '' \
         GROUP BY b ORDER BY b"
    );
    let raw_summary_sql = format!(
        "SELECT countIf(type = 'viewstart'), uniqExact(viewer), sumIf(count, type = 'chat'), \
         countIf(type = 'follow'), countIf(type = 'rebuffer_start'), \
         (SELECT quantiles(0.5, 0.95, 0.99)(d) FROM (SELECT minIf(ts, type = 'playing') - \
         minIf(ts, type = 'viewstart') AS d FROM bench_raw.beacons WHERE stream = '{stream}' \
         AND session != '' GROUP BY session HAVING countIf(type = 'viewstart') > 0 AND \
         countIf(type = 'playing') > 0)) FROM bench_raw.beacons WHERE stream = '{stream}'"
    );
    let run_raw = |sql: String| {
        let raw = raw.clone();
        async move {
            raw.query(&sql)
                .fetch_bytes("TSV")
                .expect("raw query")
                .collect()
                .await
                .expect("raw answer");
        }
    };
    let raw_chart = time(queries, || run_raw(raw_chart_sql.clone())).await;
    let raw_summary = time(queries, || run_raw(raw_summary_sql.clone())).await;
    shutdown.cancel();
    let _ = node.await;

    let per_k = |cpu: f64| cpu / n as f64 * 1000.0 * 1000.0;
    println!("\n| figure | Pulse (windows) | raw beacons | raw / Pulse |");
    println!("|---|---|---|---|");
    println!(
        "| ingest CPU per 1 000 events (client + server) | {:.1} ms ({:.1} + {:.1}) | {:.1} ms ({:.1} + {:.1}) | {:.2} |",
        per_k(pulse_client + pulse_server),
        per_k(pulse_client),
        per_k(pulse_server),
        per_k(raw_client + raw_server),
        per_k(raw_client),
        per_k(raw_server),
        (raw_client + raw_server) / (pulse_client + pulse_server)
    );
    println!(
        "| ingest wall time | {pulse_wall:.1} s ({:.0} events/s, {:.0} rows/s written) | {raw_wall:.1} s ({:.0} events/s) | {:.2} |",
        n as f64 / pulse_wall,
        rows as f64 / pulse_wall,
        n as f64 / raw_wall,
        raw_wall / pulse_wall
    );
    println!(
        "| storage on disk | {:.2} MB ({rows} rows) | {:.2} MB ({n} rows) | {:.1} |",
        pulse_bytes as f64 / 1e6,
        raw_bytes as f64 / 1e6,
        raw_bytes as f64 / pulse_bytes.max(1) as f64
    );
    println!(
        "| {hours} h viewer chart p50 / p99 | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.1} / {:.1} |",
        pulse_chart.0,
        pulse_chart.1,
        raw_chart.0,
        raw_chart.1,
        raw_chart.0 / pulse_chart.0,
        raw_chart.1 / pulse_chart.1
    );
    println!(
        "| stream summary p50 / p99 | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {:.1} / {:.1} |",
        pulse_summary.0,
        pulse_summary.1,
        raw_summary.0,
        raw_summary.1,
        raw_summary.0 / pulse_summary.0,
        raw_summary.1 / pulse_summary.1
    );
    Ok(())
}
