//! Scale-out: one real ClickHouse, two ingest roles and one query role on loopback
//! (in this test process, each with its own listener, data directory, node id and
//! injected clock, running the same `serve::run_role` as `pulse ingest` / `pulse query`).
//! A trace's sessions are split across the two ingest nodes; every conformance case
//! must answer exactly as a single node that saw the whole trace. Mid-stream the
//! ClickHouse server process is killed while traffic keeps flowing, then restarted: the
//! ingest nodes spool meanwhile and drain when it is back, and nothing changes.

mod common;

use common::clickhouse::ClickHouse;
use common::conformance::{answer_diff, cases, run};
use common::{TOKEN, config, start, wait_for};
use pulse::config::StoreKind;
use pulse::serve::Role;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const START: i64 = 1_764_000_000_000;

struct Node {
    addr: std::net::SocketAddr,
    clock: Arc<AtomicI64>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn node(role: Role, cfg: pulse::Config, clock: i64) -> Node {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let clock = Arc::new(AtomicI64::new(clock));
    let c = clock.clone();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(pulse::serve::run_role(
        role,
        listener,
        cfg,
        shutdown.clone(),
        Arc::new(move || c.load(Ordering::SeqCst)),
    ));
    Node {
        addr,
        clock,
        shutdown,
        task,
    }
}

impl Node {
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("join").expect("clean stop");
    }
}

fn clickhouse_cfg(dir: &std::path::Path, ch: &ClickHouse, node_id: &str) -> pulse::Config {
    let mut cfg = config(dir);
    cfg.store = StoreKind::Clickhouse;
    cfg.clickhouse_url = ch.url();
    cfg.node_id = node_id.into();
    cfg.clickhouse.insert_interval_ms = 100;
    cfg.clickhouse.retry_min_ms = 50;
    cfg.clickhouse.retry_max_ms = 500;
    cfg
}

/// Which ingest node a session goes to (a balancer keeps a connection on one node).
fn node_of(e: &Value) -> usize {
    let s = e["session"].as_str().unwrap_or_default();
    s.bytes().map(usize::from).sum::<usize>() % 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_ingest_nodes_through_a_store_outage_answer_exactly_like_one() {
    let mut ch = tokio::task::spawn_blocking(ClickHouse::start)
        .await
        .expect("start ClickHouse");
    let trace = common::trace::generate(21, START, 200, 6 * 60_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let to = trace.end + 120_000;
    let clock = to + 3_600_000;

    // The single node: the whole trace replayed into the embedded store.
    let file = dir.path().join("trace.ndjson");
    let text: String = trace.events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&file, text).expect("write trace");
    let single_cfg = config(&dir.path().join("single"));
    let c = single_cfg.clone();
    tokio::task::spawn_blocking(move || pulse::replay::replay_file(&c, &file))
        .await
        .expect("join")
        .expect("replay");
    let single = start(single_cfg, clock).await;

    // Two ingest nodes, sessions split between them, events sent in time order.
    let ingest = [
        node(
            Role::Ingest,
            clickhouse_cfg(&dir.path().join("n1"), &ch, "ingest-1"),
            START,
        )
        .await,
        node(
            Role::Ingest,
            clickhouse_cfg(&dir.path().join("n2"), &ch, "ingest-2"),
            START,
        )
        .await,
    ];
    let mut events = trace.events.clone();
    events.sort_by_key(|e| e["ts"].as_i64().unwrap_or_default());
    let http = reqwest::Client::new();
    let mut sent = [0usize; 2];
    let chunks: Vec<&[Value]> = events.chunks(40).collect();
    let (kill_at, restart_at) = (chunks.len() / 3, chunks.len() * 2 / 3);
    for (i, chunk) in chunks.into_iter().enumerate() {
        if i == kill_at {
            ch.kill();
        }
        if i == restart_at {
            // Traffic went on while the server was down: it waited in the spools.
            tokio::time::sleep(Duration::from_millis(2500)).await;
            let spooled: usize = ["n1", "n2"]
                .iter()
                .map(|n| {
                    std::fs::read_dir(dir.path().join(n).join("clickhouse-spool"))
                        .map(|d| d.count())
                        .unwrap_or(0)
                })
                .sum();
            assert!(spooled > 0, "flushes spooled during the outage");
            tokio::task::block_in_place(|| ch.restart());
        }
        for (n, target) in ingest.iter().enumerate() {
            let part: Vec<&Value> = chunk.iter().filter(|e| node_of(e) == n).collect();
            let Some(last) = part.last() else { continue };
            target
                .clock
                .fetch_max(last["ts"].as_i64().unwrap_or_default(), Ordering::SeqCst);
            let resp = http
                .post(format!("http://{}/v1/beacons", target.addr))
                .bearer_auth(TOKEN)
                .json(&part)
                .send()
                .await
                .expect("POST");
            assert_eq!(resp.status().as_u16(), 200);
            let body: Value = resp.json().await.expect("JSON");
            assert_eq!(body["accepted"].as_u64(), Some(part.len() as u64), "{body}");
            sent[n] += part.len();
        }
        if (kill_at..restart_at).contains(&i) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        sent[0] > 100 && sent[1] > 100,
        "both nodes got traffic: {sent:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for n in &ingest {
        n.clock.store(clock, Ordering::SeqCst);
    }

    // The query node reads a catalog of its own (a shared one in production: Postgres).
    let mut query_cfg = clickhouse_cfg(&dir.path().join("q"), &ch, "query-1");
    std::fs::create_dir_all(&query_cfg.data_dir).expect("query dir");
    query_cfg.catalog_url = format!(
        "sqlite://{}?mode=rwc",
        query_cfg.data_dir.join("catalog.sqlite").display()
    );
    let query = node(Role::Query, query_cfg, clock).await;
    let base_q = format!("http://{}", query.addr);
    let probe = format!(
        "/api/analytics/series?metric=views&stream=stream-a1&from={START}&to={to}&step=3600000"
    );
    if let Err(body) = common::wait_series_final(&format!("{base_q}{probe}"), 60).await {
        panic!("query node never final: {body}");
    }
    wait_for(&single, &probe, 30, |v| {
        v["points"]
            .as_array()
            .is_some_and(|p| p.iter().all(|x| x["final"] == true))
    })
    .await;
    // Rows of both nodes are in the store.
    let nodes = ch
        .sql("SELECT DISTINCT node FROM stream_ticks ORDER BY node")
        .expect("nodes");
    assert_eq!(nodes, "ingest-1\ningest-2\n");

    let base_s = single.url("");
    for case in cases(common::trace::STREAMS, START, to) {
        let (sa, ba) = run(&base_s, &case).await;
        let (sb, bb) = run(&base_q, &case).await;
        assert_eq!(sa, sb, "{case:?}: status\nsingle: {ba}\nnodes: {bb}");
        if let Some(d) = answer_diff(&ba, &bb) {
            panic!("{case:?} differs at {d}\nsingle: {ba}\nnodes: {bb}");
        }
    }
    query.stop().await;
    for n in ingest {
        n.stop().await;
    }
    single.stop().await;
}
