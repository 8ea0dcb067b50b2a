//! The docker-compose.yml topology run as local processes (there is no container engine
//! here): ClickHouse and Postgres started by the harness, then `pulse migrate`, two
//! `pulse ingest` nodes and one `pulse query` node as separate processes of the real
//! binary, each with its service's environment from the compose file (host names
//! replaced by the local servers, listen addresses by free loopback ports, data
//! directories by temporary ones). The nginx balancer is left out: the test sends each
//! view session to one ingest node itself, as `ip_hash` would.
//!
//! Traffic runs on the wall clock (the processes have no injected clock): a generated
//! trace starting at 15 s past a minute, cut after 10 s, is sent in real time, sessions split across the
//! two nodes. Once the query node answers with final windows, every conformance case
//! must equal the answer of a single in-process node that replayed the whole trace.

mod common;
// pg.rs picks its port through `super::ports`.
use common::ports;

#[path = "../query/tests/catalog_harness/pg.rs"]
mod pg;

use common::clickhouse::ClickHouse;
use common::compose::{compose, environment, strings};
use common::conformance::{answer_diff, cases, run};
use common::{ADMIN_TOKEN, TOKEN, config, start, wait_for};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Trace kept up to this long after its start (it is sent in real time).
const SPAN_MS: i64 = 10_000;

/// One `pulse` process with its log file; killed on drop.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    addr: String,
}

impl Proc {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Waits until `path` answers 200 (the compose file's health check).
    async fn healthy(&mut self, path: &str) {
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}:\n{}", self.name, self.log_tail());
            }
            let up = reqwest::get(format!("http://{}{path}", self.addr))
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{} never answered {path}:\n{}", self.name, self.log_tail());
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> String {
    format!("127.0.0.1:{}", ports::free_port())
}

/// A compose service as a local process: its command and environment, with the
/// container names and paths swapped for local ones, plus `extra` variables.
fn spawn(
    svc: &Value,
    name: &str,
    dir: &Path,
    swap: &[(&str, String)],
    extra: &[(&str, &str)],
) -> Proc {
    let command = strings(&svc["command"]);
    assert_eq!(command.first().map(String::as_str), Some("pulse"), "{name}");
    let data = dir.join(name);
    std::fs::create_dir_all(&data).expect("data dir");
    let addr = free_addr();
    let log = dir.join(format!("{name}.log"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pulse"));
    cmd.args(&command[1..]);
    for (k, v) in environment(svc) {
        let v = match k.as_str() {
            "PULSE_LISTEN" => addr.clone(),
            "PULSE_DATA_DIR" => data.display().to_string(),
            _ => swap.iter().fold(v, |v, (from, to)| v.replace(from, to)),
        };
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = cmd
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start pulse");
    Proc {
        name: name.into(),
        child,
        log,
        addr,
    }
}

/// Which ingest node a session goes to (a balancer keeps a connection on one node).
fn node_of(e: &Value) -> usize {
    let s = e["session"].as_str().unwrap_or_default();
    s.bytes().map(usize::from).sum::<usize>() % 2
}

/// A JSON answer without what follows the answering node's clock: `final` flags, a
/// trending board's `at`, and, when the request left the range to its default, the
/// answer's `from`/`to` (anything else unchanged).
fn without_clock(body: &str, defaulted_range: bool) -> String {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.remove("final");
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(body) {
        Ok(mut v) => {
            strip(&mut v);
            if let Value::Object(m) = &mut v {
                // A trending board's computation time.
                m.remove("at");
                if defaulted_range {
                    m.remove("from");
                    m.remove("to");
                }
            }
            v.to_string()
        }
        Err(_) => body.to_owned(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_topology_as_processes_answers_like_one_node() {
    let c = compose();
    let services = c["services"].as_object().expect("services");
    let ch = tokio::task::spawn_blocking(ClickHouse::start)
        .await
        .expect("start ClickHouse");
    let pg = pg::Postgres::start().await;
    let catalog = pg.create_db("pulse").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let swap = [
        ("http://clickhouse:8123", ch.url()),
        ("postgres://pulse:pulse@postgres:5432/pulse", catalog),
    ];
    let ingest_extra = [
        ("PULSE_INGEST__TRUSTED_TOKEN", TOKEN),
        ("PULSE_CLICKHOUSE__INSERT_INTERVAL_MS", "200"),
    ];

    // migrate runs to completion first (compose: restart "no", others depend on it).
    let mut migrate = spawn(&services["migrate"], "migrate", dir.path(), &swap, &[]);
    let status = tokio::task::block_in_place(|| migrate.child.wait()).expect("migrate");
    assert!(status.success(), "pulse migrate:\n{}", migrate.log_tail());
    let mut ingest = Vec::new();
    for name in ["ingest-1", "ingest-2"] {
        let mut p = spawn(&services[name], name, dir.path(), &swap, &ingest_extra);
        p.healthy("/metrics").await;
        ingest.push(p);
    }
    let mut query = spawn(
        &services["query"],
        "query",
        dir.path(),
        &swap,
        &[("PULSE_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    query.healthy("/readyz").await;

    // A trace starting now, cut at SPAN_MS, sent in real time in time order.
    // Start at 15 s past a minute: 10 s of traffic, the 30 s session timeout and 5 s
    // of margin end exactly at the next minute, the soonest `to` whose minutes close.
    let wait = (75_000 - now_ms() % 60_000) % 60_000;
    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    let start_ms = now_ms() / 1000 * 1000;
    let mut trace = common::trace::generate(7, start_ms, 120, SPAN_MS / 2);
    trace
        .events
        .retain(|e| e["ts"].as_i64().unwrap_or(i64::MAX) < start_ms + SPAN_MS);
    trace
        .events
        .sort_by_key(|e| e["ts"].as_i64().unwrap_or_default());
    let http = reqwest::Client::new();
    let mut sent = [0usize; 2];
    let mut next = 0;
    while next < trace.events.len() {
        let now = now_ms();
        let due = trace.events[next..]
            .iter()
            .take_while(|e| e["ts"].as_i64().unwrap_or_default() <= now)
            .count();
        let chunk = &trace.events[next..next + due];
        next += due;
        for (n, node) in ingest.iter().enumerate() {
            let part: Vec<&Value> = chunk.iter().filter(|e| node_of(e) == n).collect();
            if part.is_empty() {
                continue;
            }
            let resp = http
                .post(format!("http://{}/v1/beacons", node.addr))
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        sent[0] > 50 && sent[1] > 50,
        "both nodes got traffic: {sent:?}"
    );
    let last = trace
        .events
        .last()
        .and_then(|e| e["ts"].as_i64())
        .unwrap_or(start_ms);
    // Past the 30 s session timeout (the last viewers have left), rounded up to a whole
    // minute: unique viewers and followers come from viewer minutes, which the
    // ClickHouse reader counts once the minute is closed.
    let to = (last + 35_000 + 59_999) / 60_000 * 60_000;

    // The reference: one node that replayed the same events.
    let file = dir.path().join("trace.ndjson");
    let text: String = trace.events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&file, text).expect("write trace");
    let single_cfg = config(&dir.path().join("single"));
    let cfg = single_cfg.clone();
    tokio::task::spawn_blocking(move || pulse::replay::replay_file(&cfg, &file))
        .await
        .expect("join")
        .expect("replay");
    let single = start(single_cfg, to + 3_600_000).await;

    // The query node answers once every minute up to `to` is closed on both nodes.
    let base_q = format!("http://{}", query.addr);
    let probe = format!(
        "/api/analytics/series?metric=views&stream=stream-a1&from={start_ms}&to={to}&step=60000"
    );
    if let Err(body) = common::wait_series_final(&format!("{base_q}{probe}"), 180).await {
        panic!(
            "query node never final: {body}\n{}\n{}",
            ingest[0].log_tail(),
            query.log_tail()
        );
    }
    wait_for(&single, &probe, 30, |v| {
        v["points"]
            .as_array()
            .is_some_and(|p| p.iter().all(|x| x["final"] == true))
    })
    .await;
    let nodes = ch
        .sql("SELECT DISTINCT node FROM stream_ticks ORDER BY node")
        .expect("nodes");
    assert_eq!(nodes, "ingest-1\ningest-2\n", "the compose node ids");

    let base_s = single.url("");
    let mut compared = 0;
    for case in cases(common::trace::STREAMS, start_ms, to) {
        let (sa, ba) = run(&base_s, &case).await;
        let (sb, bb) = run(&base_q, &case).await;
        assert_eq!(sa, sb, "{case:?}: status\nsingle: {ba}\nprocesses: {bb}");
        // `final` follows each side's clock (the reference's is an hour ahead; the
        // processes' is the wall clock, and a bucket of a coarse step may reach past
        // it), and so does a range left to its default (the last 30 days): every value
        // must match, those are not compared.
        let defaulted = !case.path.contains("from=");
        let (ba, bb) = (without_clock(&ba, defaulted), without_clock(&bb, defaulted));
        if let Some(d) = answer_diff(&ba, &bb) {
            panic!("{case:?} differs at {d}\nsingle: {ba}\nprocesses: {bb}");
        }
        compared += 1;
    }
    assert!(compared > 100, "{compared} cases");

    // The query node checks tokens against the shared catalog: a creator minted there
    // reads their own channel's analytics and not another's, and the catalog routes
    // answer on this node too.
    let admin = |m: reqwest::Method, path: &str| {
        http.request(m, format!("{base_q}{path}"))
            .bearer_auth(ADMIN_TOKEN)
    };
    for (path, body) in [
        ("/api/users/alice", serde_json::json!({"name": "Alice"})),
        (
            "/api/channels/chan-a",
            serde_json::json!({"name": "A", "owner": "alice"}),
        ),
    ] {
        let r = admin(reqwest::Method::PUT, path)
            .json(&body)
            .send()
            .await
            .expect("PUT");
        assert!(
            r.status().is_success(),
            "{path}: {}",
            r.text().await.unwrap_or_default()
        );
    }
    let r = admin(reqwest::Method::POST, "/api/tokens")
        .json(&serde_json::json!({"user": "alice", "role": "creator"}))
        .send()
        .await
        .expect("mint");
    let minted: Value = r.json().await.expect("token JSON");
    let alice = minted["token"].as_str().expect("token").to_owned();
    for (stream, want) in [("stream-a1", 200), ("stream-b1", 403)] {
        let r = http
            .get(format!("{base_q}/api/analytics/streams/{stream}"))
            .bearer_auth(&alice)
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status().as_u16(), want, "{stream}");
    }
    let (s, body) = common::get(&format!("{base_q}/api/channels/chan-a/vods")).await;
    assert_eq!(s, 200, "{body}");
    // A graceful stop (SIGTERM) of an ingest node exits 0 after flushing.
    let pid = ingest[0].child.id().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(st.is_ok_and(|s| s.success()));
    let status = tokio::task::block_in_place(|| ingest[0].child.wait()).expect("wait");
    assert!(status.success(), "{}", ingest[0].log_tail());
    single.stop().await;
}
