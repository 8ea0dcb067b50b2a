//! `POST /api/sql` on both stores: a small trace is replayed (and flushed), then the
//! per-stream totals asked in SQL must equal an independent computation from the raw
//! events, the same totals read from the Parquet files by polars and DuckDB (Python,
//! `scripts/need-python-readers.sh`), and every answer format must carry the same rows.
//! Each rule and limit is broken once and must be refused with its own code.

mod common;

use common::clickhouse::ClickHouse;
use common::reference::expected;
use common::{Server, config, start, wait_for};
use pulse::config::{StoreKind, StreamKeyConfig};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const START: i64 = 1_764_000_000_000;
const TICK: i64 = 5000;
/// The admin token of `common::config` (which `common::get` sends).
const ADMIN: &str = common::ADMIN_TOKEN;
const CREATOR: &str = "sql-test-creator-token";

const TOTALS_SQL: &str = "SELECT target, SUM(views) AS views, SUM(watch_ms) AS watch_ms, \
     SUM(rebuffer_count) AS rebuffer_count, SUM(chat_messages) AS chat_messages, \
     SUM(failures) AS failures FROM stream_ticks WHERE kind = 'stream' \
     GROUP BY target ORDER BY target";
const UNIQUE_SQL: &str = "SELECT target, COUNT(DISTINCT viewer) AS unique_viewers \
     FROM viewer_minutes WHERE kind = 'stream' GROUP BY target ORDER BY target";

/// Replays a small trace into a store configured by `tweak`, serves it, and returns
/// the server, the trace's events and the data directory.
async fn replayed(
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut pulse::Config),
) -> (Server, Vec<Value>) {
    let trace = common::trace::generate(11, START, 60, 4 * 60_000);
    let file = dir.join("trace.ndjson");
    let text: String = trace.events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&file, text).expect("write trace");
    let mut cfg = config(&dir.join("data"));
    cfg.admin_token = ADMIN.into();
    cfg.stream_keys.push(StreamKeyConfig {
        stream: "stream-a1".into(),
        channel: "chan-a".into(),
        key: "sql-test-stream-key".into(),
        owner: Some("alice".into()),
        owner_token: Some(CREATOR.into()),
    });
    cfg.query.sql_max_rows = 500;
    cfg.query.sql_timeout_ms = 2_000;
    cfg.query.sql_max_memory_bytes = 16 << 20;
    tweak(&mut cfg);
    let c = cfg.clone();
    let report = tokio::task::spawn_blocking(move || pulse::replay::replay_file(&c, &file))
        .await
        .expect("join")
        .expect("replay");
    assert_eq!(report.events as usize, trace.events.len());
    let to = trace.end + 120_000;
    let server = start(cfg, to + 3_600_000).await;
    let probe = format!(
        "/api/analytics/series?metric=views&stream=stream-a1&from={START}&to={to}&step=3600000"
    );
    wait_for(&server, &probe, 30, |v| {
        v["points"]
            .as_array()
            .is_some_and(|p| p.iter().all(|x| x["final"] == true))
    })
    .await;
    (server, trace.events)
}

/// Posts `body` to `/api/sql`: (status, content type, body bytes).
async fn post(server: &Server, token: Option<&str>, body: &Value) -> (u16, String, Vec<u8>) {
    let mut req = reqwest::Client::new()
        .post(server.url("/api/sql"))
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("POST /api/sql");
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, ct, resp.bytes().await.expect("body").to_vec())
}

/// The JSON answer of `sql` (admin), as rows.
async fn rows(server: &Server, sql: &str) -> Vec<Value> {
    let (status, ct, body) = post(server, Some(ADMIN), &json!({"sql": sql})).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{sql}: {text}");
    assert_eq!(ct, "application/json");
    let v: Value = serde_json::from_slice(&body).expect("JSON answer");
    assert_eq!(v["row_count"], v["rows"].as_array().map_or(0, Vec::len));
    v["rows"].as_array().cloned().unwrap_or_default()
}

/// Per stream: the totals of TOTALS_SQL and UNIQUE_SQL, by column name.
async fn totals(server: &Server) -> BTreeMap<String, BTreeMap<String, i64>> {
    let mut out: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for sql in [TOTALS_SQL, UNIQUE_SQL] {
        for r in rows(server, sql).await {
            let target = r["target"].as_str().expect("target").to_owned();
            let entry = out.entry(target).or_default();
            for (k, v) in r.as_object().expect("row object") {
                if let Some(n) = v.as_i64() {
                    entry.insert(k.clone(), n);
                }
            }
        }
    }
    out
}

/// The same totals computed from the raw events (tests/common/reference.rs).
fn reference(events: &[Value]) -> BTreeMap<String, BTreeMap<String, i64>> {
    common::trace::STREAMS
        .iter()
        .map(|&(_, stream)| {
            let x = expected(events, stream, TICK);
            let m = [
                ("views", x.views),
                ("watch_ms", x.watch_ms),
                ("rebuffer_count", x.rebuffer_count),
                ("chat_messages", x.chat),
                ("failures", x.failures),
                ("unique_viewers", x.unique_viewers),
            ];
            let m = m.iter().map(|&(k, v)| (k.to_owned(), v)).collect();
            (stream.to_owned(), m)
        })
        .collect()
}

/// Each (sql, status, code) must be refused so.
async fn assert_refusals(server: &Server, cases: &[(&str, u16, &str)]) {
    for &(sql, status, code) in cases {
        let (s, _, body) = post(server, Some(ADMIN), &json!({"sql": sql, "format": "csv"})).await;
        let v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
            panic!(
                "{sql}: not an error body: {}",
                String::from_utf8_lossy(&body)
            )
        });
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{sql}: {v}"
        );
        assert!(!v["error"]["message"].as_str().unwrap_or("").is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_sql_matches_the_raw_events_polars_and_duckdb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, events) = replayed(dir.path(), |_| {}).await;

    // Access: admins only.
    let body = json!({"sql": "SELECT 1 AS one"});
    assert_eq!(post(&server, None, &body).await.0, 401);
    assert_eq!(post(&server, Some("nobody"), &body).await.0, 401);
    assert_eq!(post(&server, Some(CREATOR), &body).await.0, 403);
    assert_eq!(post(&server, Some(ADMIN), &body).await.0, 200);

    let got = totals(&server).await;
    let want = reference(&events);
    assert_eq!(got, want, "SQL totals against the raw events");
    assert!(want.values().all(|m| m["views"] > 0 && m["watch_ms"] > 0));
    // The same numbers as the stream summary route.
    for (stream, m) in &got {
        let v: Value = reqwest::Client::new()
            .get(server.url(&format!("/api/analytics/streams/{stream}")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("GET summary")
            .json()
            .await
            .expect("JSON summary");
        let s = &v["metrics"];
        assert_eq!(s["views"].as_i64(), Some(m["views"]), "{stream}: {v}");
        assert_eq!(
            s["unique_viewers"].as_i64(),
            Some(m["unique_viewers"]),
            "{stream}"
        );
        assert_eq!(
            s["chat_messages"].as_i64(),
            Some(m["chat_messages"]),
            "{stream}"
        );
        let watch = s["watch_minutes"].as_f64().unwrap_or(-1.0) * 60_000.0;
        assert!(
            (watch - m["watch_ms"] as f64).abs() < 1e-6,
            "{stream}: {watch}"
        );
    }

    // The same query in every other format, read back by polars.
    let mut files = Vec::new();
    for (format, ct) in [
        ("csv", "text/csv; charset=utf-8"),
        ("arrow", "application/vnd.apache.arrow.stream"),
        ("parquet", "application/vnd.apache.parquet"),
    ] {
        let (s, got_ct, body) = post(
            &server,
            Some(ADMIN),
            &json!({"sql": TOTALS_SQL, "format": format}),
        )
        .await;
        assert_eq!((s, got_ct.as_str()), (200, ct), "{format}");
        let path = dir.path().join(format!("answer.{format}"));
        std::fs::write(&path, body).expect("write answer");
        files.push(path);
    }
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/pulse_readers.py"
        ))
        .arg(dir.path().join("data"))
        .args(&files)
        .output()
        .expect("python3 runs (scripts/need-python-readers.sh installs polars and duckdb)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py: Value = serde_json::from_slice(&out.stdout).expect("JSON from Python");
    for reader in ["polars", "duckdb"] {
        let theirs: BTreeMap<String, BTreeMap<String, i64>> =
            serde_json::from_value(py[reader].clone()).expect("totals");
        assert_eq!(theirs, got, "{reader} reading the Parquet files");
    }
    let json_rows = rows(&server, TOTALS_SQL).await;
    for format in ["csv", "arrow", "parquet"] {
        assert_eq!(py[format].as_array(), Some(&json_rows), "{format} answer");
    }

    let long = format!("SELECT 1{}", " ".repeat(66_000));
    assert_refusals(
        &server,
        &[
            ("SELEC 1", 400, "sql_syntax"),
            ("SELECT 1; SELECT 2", 400, "sql_one_statement"),
            ("DROP TABLE stream_ticks", 400, "sql_read_only"),
            (
                "INSERT INTO alerts SELECT * FROM alerts",
                400,
                "sql_read_only",
            ),
            (
                "COPY stream_ticks TO '/tmp/pulse-sql-test.csv'",
                400,
                "sql_read_only",
            ),
            ("SELECT * FROM stream_ticks_files", 400, "sql_unknown_table"),
            ("SELECT * FROM '/etc/passwd'", 400, "sql_unknown_table"),
            (
                "SELECT * FROM generate_series(1, 3)",
                400,
                "sql_table_function",
            ),
            (
                "SELECT no_such_column FROM alerts",
                400,
                "invalid_parameter",
            ),
            (&long, 400, "sql_text_length"),
            (
                "SELECT a.t FROM stream_ticks a, stream_ticks b",
                422,
                "sql_row_limit",
            ),
            (
                "SELECT repeat('x', 1000) || CAST(v AS VARCHAR) AS s \
                 FROM (SELECT unnest(range(0, 40000)) AS v) ORDER BY s",
                422,
                "sql_memory_limit",
            ),
            (
                "SELECT SUM(a.t + b.t + c.t + d.t) FROM stream_ticks a, stream_ticks b, \
                 stream_ticks c, stream_ticks d",
                422,
                "sql_time_limit",
            ),
        ],
    )
    .await;
    let (s, _, _) = post(
        &server,
        Some(ADMIN),
        &json!({"sql": "SELECT 1", "format": "xml"}),
    )
    .await;
    assert_eq!(s, 400);
    // The server is still up and answering.
    assert_eq!(
        rows(&server, "SELECT 1 AS one").await,
        vec![json!({"one": 1})]
    );
    let metrics = server.get("/metrics").await.1;
    assert!(common::metric(&metrics, "pulse_query_sql_refused_total") >= 12.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_sql_matches_the_raw_events_and_stays_read_only() {
    let ch = tokio::task::spawn_blocking(ClickHouse::start)
        .await
        .expect("start ClickHouse");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = ch.url();
    let (server, events) = replayed(dir.path(), |cfg| {
        cfg.store = StoreKind::Clickhouse;
        cfg.clickhouse_url = url.clone();
        // ClickHouse reads in 1 MiB chunks per column: give it room for small queries.
        cfg.query.sql_max_memory_bytes = 64 << 20;
    })
    .await;
    assert_eq!(
        post(&server, Some(CREATOR), &json!({"sql": "SELECT 1"}))
            .await
            .0,
        403
    );
    assert_eq!(totals(&server).await, reference(&events));
    let (s, ct, body) = post(
        &server,
        Some(ADMIN),
        &json!({"sql": UNIQUE_SQL, "format": "csv"}),
    )
    .await;
    assert_eq!((s, ct.as_str()), (200, "text/csv; charset=utf-8"));
    assert!(String::from_utf8_lossy(&body).starts_with("target,unique_viewers\n"));

    assert_refusals(
        &server,
        &[
            (
                "SELECT * FROM file('x.csv', 'CSV', 'a String')",
                400,
                "sql_table_function",
            ),
            (
                "SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String')",
                400,
                "sql_table_function",
            ),
            ("SELECT * FROM numbers(10)", 400, "sql_table_function"),
            ("SELECT * FROM system.users", 400, "sql_unknown_table"),
            (
                "SELECT * FROM alerts SETTINGS readonly = 0",
                400,
                "sql_settings_clause",
            ),
            ("SELECT * FROM alerts FORMAT CSV", 400, "sql_format_clause"),
            ("TRUNCATE TABLE alerts", 400, "sql_read_only"),
            (
                "INSERT INTO alerts SELECT * FROM alerts",
                400,
                "sql_read_only",
            ),
            (
                "SELECT a.t FROM stream_ticks a CROSS JOIN stream_ticks b",
                422,
                "sql_row_limit",
            ),
            (
                "SELECT uniqExact(x) FROM (SELECT arrayJoin(range(10000000)) AS x)",
                422,
                "sql_memory_limit",
            ),
            ("SELECT sleep(3)", 422, "sql_time_limit"),
        ],
    )
    .await;

    // Past the parser, the server itself refuses writes and table functions (readonly=1).
    let store = pulse_query::store::clickhouse::ClickHouseStore::new(&url);
    let limits = pulse_query::sql::SqlLimits {
        max_rows: 10,
        timeout_ms: 5_000,
        max_memory_bytes: 32 << 20,
        target_partitions: 1,
    };
    for sql in [
        "CREATE TABLE pulse_sql_probe (a UInt8) ENGINE = Memory",
        "SELECT * FROM numbers(3)",
    ] {
        let stmt =
            sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::ClickHouseDialect {}, sql)
                .expect("parses")
                .remove(0);
        let e = pulse_query::sql::clickhouse::run(&store, &stmt, &limits)
            .await
            .expect_err("readonly=1 refuses it");
        assert_eq!(e.code(), "sql_read_only", "{sql}: {e}");
    }
    assert_eq!(
        rows(&server, "SELECT 1 AS one").await,
        vec![json!({"one": 1})]
    );
    server.stop().await;
}
