//! The query routes over a hand-made `TablesView`: rows in real Parquet files, in recent
//! batches and in provisional batches, from two nodes. Every expectation below is worked
//! out by hand from the rows (see the comments), not by calling this crate's code.

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use parquet::arrow::ArrowWriter;
use pulse_query::{QueryConfig, QueryState, router};
use pulse_schemas::{EmbeddedTables, Id, Table, TableRow, TargetKind, TickRow, ViewerMinuteRow};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// 2025-11-24T16:00:00Z, minute-aligned.
const T0: i64 = 1_764_000_000_000;
/// Ticks starting before T0 + 70 s are closed.
const CT: i64 = T0 + 70_000;

fn id(s: &str) -> Id {
    Id::new_unchecked(s)
}

fn hist(values: &[u64]) -> Vec<u8> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 600_000, 3).expect("bounds");
    for &v in values {
        h.record(v).expect("in range");
    }
    let mut out = Vec::new();
    V2Serializer::new()
        .serialize(&h, &mut out)
        .expect("serialize");
    out
}

#[allow(clippy::too_many_arguments)]
fn tick(
    node: &str,
    kind: TargetKind,
    target: &str,
    channel: &str,
    t: i64,
    viewers: i64,
    events: i64,
) -> TickRow {
    let mut r = TickRow::empty(id(node), kind, id(target), id(channel), t);
    r.viewers = viewers;
    r.events = events;
    r
}

fn s1(node: &str, t: i64, viewers: i64, events: i64) -> TickRow {
    tick(node, TargetKind::Stream, "s1", "c1", t, viewers, events)
}

fn minute(node: &str, target: &str, m: i64, viewer: &str, followed: bool) -> ViewerMinuteRow {
    ViewerMinuteRow {
        node: id(node),
        kind: TargetKind::Stream,
        target: id(target),
        channel: id("c1"),
        minute: m,
        viewer: id(viewer),
        events: 1,
        followed,
        chat_messages: 0,
    }
}

fn write_parquet<R: TableRow>(dir: &Path, node: &str, rows: &[R]) -> PathBuf {
    let table = R::TABLE;
    let day = dir.join(table.name()).join("day=2025-11-24");
    std::fs::create_dir_all(&day).expect("mkdir");
    let path = day.join(format!("part-{node}-0.parquet"));
    let file = std::fs::File::create(&path).expect("create");
    let mut w = ArrowWriter::try_new(file, table.schema(), None).expect("writer");
    w.write(&R::to_batch(rows)).expect("write");
    w.close().expect("close");
    path
}

/// The data set (tick 5 s). Stream s1 of channel c1, summed per tick across nodes:
/// T0: 3 viewers (n1 2 + n2 1), T0+5s: 2, T0+10s: 1, T0+60s: 3, T0+65s: 0, T0+70s: 2
/// (provisional), T0+75s: 1 (provisional, no event: after the live range).
/// Live range T0 ..= T0+70s: 15 ticks. Stream s2 of c1: one tick at T0+5s, 4 viewers.
/// VOD v1 of c1: one tick at T0, 7 viewers, 2 views.
fn tables(dir: &Path) -> Arc<EmbeddedTables> {
    let mut a = s1("n1", T0, 2, 4);
    a.views = 2;
    a.watch_ms = 6_000;
    a.startups = 2;
    a.startup_hist = hist(&[800, 1_200]);
    let mut b = s1("n1", T0 + 5_000, 2, 2);
    b.watch_ms = 10_000;
    b.rebuffer_ms = 1_000;
    b.rebuffer_count = 1;
    b.chat_messages = 3;
    let mut c = s1("n2", T0, 1, 2);
    c.views = 1;
    c.watch_ms = 3_000;
    c.startups = 1;
    c.startup_hist = hist(&[2_000]);
    let mut d = s1("n2", T0 + 10_000, 1, 1);
    d.watch_ms = 5_000;
    d.failures = 1;
    let mut s2 = tick("n2", TargetKind::Stream, "s2", "c1", T0 + 5_000, 4, 1);
    s2.views = 1;
    let mut v1 = tick("n1", TargetKind::Vod, "v1", "c1", T0, 7, 3);
    v1.views = 2;
    let mut e = s1("n1", T0 + 60_000, 3, 3);
    e.views = 1;
    e.watch_ms = 15_000;
    e.startups = 1;
    e.startup_hist = hist(&[500]);
    e.follows = 1;
    e.chat_messages = 2;
    let f = s1("n2", T0 + 65_000, 0, 1);
    let mut g = s1("n1", T0 + 70_000, 2, 2);
    g.watch_ms = 10_000;
    let h = s1("n1", T0 + 75_000, 1, 0);
    // A provisional row of an already closed tick: must be ignored.
    let stale = s1("n1", T0 + 65_000, 100, 5);

    let files = vec![
        write_parquet(dir, "n1", &[a, b, v1]),
        write_parquet(dir, "n2", &[c, d, s2]),
    ];
    // Viewer minutes: minute T0 {u1, u2, u3}, minute T0+60s {u1 followed, u4, u5 followed}.
    let vm_files = vec![
        write_parquet(
            dir,
            "n1",
            &[
                minute("n1", "s1", T0, "u1", false),
                minute("n1", "s1", T0, "u2", false),
            ],
        ),
        write_parquet(
            dir,
            "n2",
            &[
                minute("n2", "s1", T0, "u3", false),
                minute("n2", "s1", T0, "u1", false),
            ],
        ),
    ];
    let recent_ticks = TickRow::to_batch(&[e, f]);
    let recent_vm = ViewerMinuteRow::to_batch(&[
        minute("n1", "s1", T0 + 60_000, "u1", true),
        minute("n1", "s1", T0 + 60_000, "u4", false),
    ]);
    let prov_ticks = TickRow::to_batch(&[g, h, stale]);
    let prov_vm = ViewerMinuteRow::to_batch(&[
        minute("n2", "s1", T0 + 60_000, "u5", true),
        // closed minute (T0 + 60 s ≤ CT): ignored.
        minute("n2", "s1", T0, "u9", true),
    ]);

    let t = EmbeddedTables::new();
    t.update(|v| {
        v.files.insert(Table::StreamTicks, files);
        v.files.insert(Table::ViewerMinutes, vm_files);
        v.recent.insert(Table::StreamTicks, vec![recent_ticks]);
        v.recent.insert(Table::ViewerMinutes, vec![recent_vm]);
        v.provisional_ticks = vec![prov_ticks];
        v.provisional_viewer_minutes = vec![prov_vm];
        v.closed_through = CT;
    });
    t
}

struct Server {
    base: String,
    client: reqwest::Client,
    state: QueryState,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = QueryConfig {
            max_points: 100,
            max_export_rows: 50,
            export_chunk_rows: 1,
            ..QueryConfig::default()
        };
        let state = QueryState::new(tables(dir.path()), config, 5_000);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Server {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            state,
            _dir: dir,
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn series(&self, query: &str) -> Value {
        let (status, body) = self.get(&format!("/api/analytics/series?{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        body
    }

    async fn export(&self, body: Value) -> (u16, String, String) {
        let r = self
            .client
            .post(format!("{}/api/analytics/export", self.base))
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_owned())
            .unwrap_or_default();
        (status, ctype, r.text().await.expect("body"))
    }
}

fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
}

#[tokio::test]
async fn stream_summary_has_the_exact_shape_and_numbers() {
    let s = Server::start().await;
    let (status, body) = s.get("/api/analytics/streams/s1").await;
    assert_eq!(status, 200, "{body}");
    let watch_ms = 6_000.0 + 10_000.0 + 3_000.0 + 5_000.0 + 15_000.0 + 10_000.0;
    let expected = json!({
        "stream": "s1",
        "channel": "c1",
        "status": "UNKNOWN",
        "metrics": {
            "duration_s": 75,                       // T0 .. end of tick T0+70s
            "peak_concurrent": 3,
            "avg_concurrent": 11.0 / 15.0,          // (3+2+1+3+0+2) over 15 live ticks
            "views": 4,
            "unique_viewers": 5,                    // u1..u5 (u9 is a stale provisional row)
            "watch_minutes": watch_ms / 60_000.0,
            "chat_messages": 5,
            "new_followers": 2,                     // u1, u5
            "conversion_rate": 0.4,
            "rebuffer_ratio": 1_000.0 / watch_ms,
            "rebuffer_count": 1,
            "rebuffer_frequency": 1.0 / (watch_ms / 60_000.0),
            "startup_p50_ms": 800,                  // {500, 800, 1200, 2000}
            "startup_p95_ms": 2_000,
            "startup_p99_ms": 2_000,
            "playback_failure_rate": 0.25
        }
    });
    assert_eq!(body, expected);
    // Key order is the documented one.
    let text = s
        .client
        .get(format!("{}/api/analytics/streams/s1", s.base))
        .send()
        .await
        .expect("req")
        .text()
        .await
        .expect("text");
    assert!(text.starts_with(r#"{"stream":"s1","channel":"c1","status":"UNKNOWN","metrics":{"duration_s":75,"peak_concurrent":3,"#), "{text}");

    let (status, body) = s.get("/api/analytics/streams/nope").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = s.get("/api/analytics/streams/bad%20id").await;
    assert_error(status, &body, 400, "invalid_parameter");
}

#[tokio::test]
async fn viewers_series_buckets_final_flags_and_steps() {
    let s = Server::start().await;
    let body = s
        .series(&format!(
            "metric=viewers&stream=s1&from={T0}&to={}&step=60000",
            T0 + 120_000
        ))
        .await;
    assert_eq!(
        body,
        json!({"metric": "viewers", "step_ms": 60000, "points": [
            {"t": T0, "value": 0.5, "peak": 3, "final": true},                      // 6 / 12 ticks
            {"t": T0 + 60_000, "value": 5.0 / 3.0, "peak": 3, "final": false},       // 5 / 3 live ticks
        ]})
    );
    // RFC 3339 times and a step by name give the same answer.
    let same = s.series("metric=viewers&stream=s1&from=2025-11-24T16:00:00Z&to=2025-11-24T17:02:00%2B01:00&step=1m").await;
    assert_eq!(same, body);

    let body = s
        .series(&format!(
            "metric=viewers&stream=s1&from={}&to={}&step=5000",
            T0 + 60_000,
            T0 + 80_000
        ))
        .await;
    assert_eq!(
        body["points"],
        json!([
            {"t": T0 + 60_000, "value": 3.0, "peak": 3, "final": true},
            {"t": T0 + 65_000, "value": 0.0, "peak": 0, "final": true},   // stale provisional 100 ignored
            {"t": T0 + 70_000, "value": 2.0, "peak": 2, "final": false},
            {"t": T0 + 75_000, "value": 0.0, "peak": 0, "final": false},  // after the live range
        ])
    );

    // The chart route is the same series; a channel sums its streams per tick (VODs excluded).
    let chart = s
        .get(&format!(
            "/api/analytics/charts/viewers?stream=s1&from={T0}&to={}&step=60000",
            T0 + 120_000
        ))
        .await;
    assert_eq!(chart.0, 200);
    assert_eq!(chart.1["points"][1]["value"], json!(5.0 / 3.0));
    let (status, ch) = s
        .get(&format!(
            "/api/analytics/charts/viewers?channel=c1&from={T0}&to={}&step=60000",
            T0 + 120_000
        ))
        .await;
    assert_eq!(status, 200, "{ch}");
    assert_eq!(
        ch["points"][0],
        json!({"t": T0, "value": 10.0 / 12.0, "peak": 6, "final": true})
    );
    assert_eq!(
        ch["points"][1],
        json!({"t": T0 + 60_000, "value": 5.0 / 3.0, "peak": 3, "final": false})
    );
}

#[tokio::test]
async fn other_series_metrics() {
    let s = Server::start().await;
    let range = format!("stream=s1&from={T0}&to={}&step=60000", T0 + 120_000);
    let values = |body: Value| -> Vec<Value> {
        let points = body["points"].as_array().expect("points").clone();
        for p in &points {
            assert!(p.get("peak").is_none(), "{p}");
        }
        points.iter().map(|p| p["value"].clone()).collect()
    };
    let watch0 = (6_000.0 + 10_000.0 + 3_000.0 + 5_000.0) / 60_000.0;
    let watch1 = 25_000.0 / 60_000.0;
    let cases: Vec<(&str, Vec<Value>)> = vec![
        ("views", vec![json!(3), json!(1)]),
        ("unique_viewers", vec![json!(3), json!(3)]),
        ("watch_minutes", vec![json!(watch0), json!(watch1)]),
        ("chat_messages", vec![json!(3), json!(2)]),
        ("new_followers", vec![json!(0), json!(2)]),
        ("conversion_rate", vec![json!(0.0), json!(2.0 / 3.0)]),
        (
            "rebuffer_ratio",
            vec![json!(1_000.0 / 24_000.0), json!(0.0)],
        ),
        ("rebuffer_count", vec![json!(1), json!(0)]),
        ("rebuffer_frequency", vec![json!(1.0 / watch0), json!(0.0)]),
        ("startup_p50_ms", vec![json!(1_200), json!(500)]),
        ("startup_p95_ms", vec![json!(2_000), json!(500)]),
        ("startup_p99_ms", vec![json!(2_000), json!(500)]),
        ("playback_failure_rate", vec![json!(1.0 / 3.0), json!(0.0)]),
    ];
    for (metric, want) in cases {
        let body = s.series(&format!("metric={metric}&{range}")).await;
        assert_eq!(body["metric"], metric);
        assert_eq!(body["step_ms"], 60_000);
        assert_eq!(body["points"][0]["final"], true);
        assert_eq!(body["points"][1]["final"], false);
        assert_eq!(values(body), want, "{metric}");
    }
    // Channel views cover its streams and VODs: s1 3 + s2 1 + v1 2.
    let ch = s
        .series(&format!(
            "metric=views&channel=c1&from={T0}&to={}&step=60000",
            T0 + 60_000
        ))
        .await;
    assert_eq!(ch["points"], json!([{"t": T0, "value": 6, "final": true}]));
    let vod = s
        .series(&format!(
            "metric=views&vod=v1&from={T0}&to={}&step=1h",
            T0 + 60_000
        ))
        .await;
    assert_eq!(vod["points"][0]["value"], 2);
}

#[tokio::test]
async fn bad_parameters_get_the_error_shape() {
    let s = Server::start().await;
    let r = format!("from={T0}&to={}", T0 + 60_000);
    let cases = [
        (
            format!("metric=viewers&stream=s1&{r}&step=10000"),
            "invalid_parameter",
            "60000 (1m)",
        ),
        (
            format!("metric=nope&stream=s1&{r}"),
            "invalid_parameter",
            "viewers",
        ),
        (format!("stream=s1&{r}"), "invalid_parameter", "metric"),
        (
            format!("metric=views&{r}"),
            "invalid_parameter",
            "exactly one",
        ),
        (
            format!("metric=views&stream=s1&channel=c1&{r}"),
            "invalid_parameter",
            "exactly one",
        ),
        (
            format!("metric=views&stream=s1&from={}&to={T0}", T0 + 5),
            "invalid_parameter",
            "after",
        ),
        (
            format!("metric=views&stream=s1&from=yesterday&to={T0}"),
            "invalid_parameter",
            "RFC 3339",
        ),
        (
            format!("metric=views&stream=s1&to={T0}"),
            "invalid_parameter",
            "from",
        ),
        (
            format!(
                "metric=views&stream=s1&from={T0}&to={}&step=5s",
                T0 + 86_400_000
            ),
            "too_large",
            "100",
        ),
        (
            format!("metric=unique_viewers&stream=s1&{r}&step=5000"),
            "invalid_parameter",
            "60000",
        ),
    ];
    for (q, code, hint) in cases {
        let (status, body) = s.get(&format!("/api/analytics/series?{q}")).await;
        assert_error(status, &body, 400, code);
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(hint), "{q}: {msg}");
    }
    let (status, body) = s
        .get(&format!("/api/analytics/charts/viewers?vod=v1&{r}"))
        .await;
    assert_error(status, &body, 400, "invalid_parameter");
}

#[tokio::test]
async fn csv_export_streams_header_and_rows() {
    let s = Server::start().await;
    let (status, ctype, text) = s
        .export(
            json!({"metrics": ["viewers", "views", "watch_minutes"], "stream": "s1", "from": T0,
                       "to": "2025-11-24T16:02:00Z", "step": "1m", "tz": "+01:00"}),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    let want = format!(
        "t,time,viewers,views,watch_minutes\r\n\
         {T0},2025-11-24T17:00:00.000+01:00,0.5,3,0.4\r\n\
         {},2025-11-24T17:01:00.000+01:00,{},1,{}\r\n",
        T0 + 60_000,
        5.0_f64 / 3.0,
        25_000.0_f64 / 60_000.0
    );
    assert_eq!(text, want);

    let (status, _, text) = s.export(json!({"metrics": ["views"], "channel": "c1", "from": T0, "to": T0 + 10_000, "step": 5000})).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        text,
        format!(
            "t,time,views\r\n{T0},2025-11-24T16:00:00.000Z,5\r\n{},2025-11-24T16:00:05.000Z,1\r\n",
            T0 + 5_000
        )
    );

    for (body, code) in [
        (
            json!({"metrics": [], "stream": "s1", "from": T0, "to": T0 + 1}),
            "invalid_parameter",
        ),
        (
            json!({"metrics": ["views"], "stream": "s1", "from": T0, "to": T0 + 3_600_000, "step": 5000}),
            "too_large",
        ),
        (
            json!({"metrics": ["views"], "stream": "s1", "from": T0, "to": T0 + 1, "colour": 1}),
            "invalid_body",
        ),
        (
            json!({"metrics": ["views"], "stream": "s1", "from": T0, "to": T0 + 1, "tz": "Europe/Paris"}),
            "invalid_parameter",
        ),
        (
            json!({"metrics": ["views", "views"], "stream": "s1", "from": T0, "to": T0 + 1}),
            "invalid_parameter",
        ),
    ] {
        let (status, _, text) = s.export(body.clone()).await;
        let v: Value = serde_json::from_str(&text).expect("json error");
        assert_error(status, &v, 400, code);
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = Server::start().await;
    assert_eq!(s.get("/healthz").await, (200, Value::String("ok".into())));
    assert_eq!(s.get("/readyz").await.0, 503);
    s.state.set_ready(true);
    assert_eq!(s.get("/readyz").await.0, 200);
    let _ = s.get("/api/analytics/streams/s1").await;
    let (status, body) = s.get("/metrics").await;
    assert_eq!(status, 200);
    let text = body.as_str().unwrap_or_default();
    assert!(
        text.contains(
            "pulse_query_requests_total{route=\"/api/analytics/streams/{id}\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("pulse_query_request_seconds_bucket"),
        "{text}"
    );
}
