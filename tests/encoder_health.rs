//! Issue 5 end to end: scripted encoders over real sockets against `pulse serve`, the
//! creator's live feed, the health/alert routes and the lifecycle records.
//!
//! Time: rule windows run on the reports' own `ts` (one a second in the scripts); the
//! server clock (an `AtomicI64`, which silence and grace use) stands still while a script
//! plays and is moved by hand where a test needs silence, so every run gives the same
//! transitions however fast the server reads the socket. Expected transitions are worked out by hand from
//! METRICS.md §4 (10 s mean vs 70 %/40 % of target, resolve after 10 s at ≥ 80 %, ...).

mod common;

use futures_util::{SinkExt, StreamExt};
use pulse_schemas::{LifecycleSource, Role, StaticAccess, StreamStatus};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use tokio_util::sync::CancellationToken;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const T0: i64 = 1_764_000_000_000;
const CREATOR: &str = "t-alice";

struct Node {
    addr: SocketAddr,
    clock: Arc<AtomicI64>,
    access: Arc<StaticAccess>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

fn id(s: &str) -> pulse_schemas::Id {
    pulse_schemas::Id::parse(s).expect("id")
}

async fn start() -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = common::config(dir.path());
    cfg.health.sweep_interval_ms = 20;
    let access = Arc::new(
        StaticAccess::new()
            .with_token(CREATOR, id("alice"), Role::Creator)
            .with_token("t-bob", id("bob"), Role::Creator)
            .with_channel(id("c1"), id("alice"))
            .with_stream_key(id("s1"), id("c1"), "key-1"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let clock = Arc::new(AtomicI64::new(T0));
    let c = clock.clone();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(pulse::serve::run_with_access(
        listener,
        cfg,
        shutdown.clone(),
        Arc::new(move || c.load(Ordering::SeqCst)),
        access.clone(),
    ));
    Node {
        addr,
        clock,
        access,
        shutdown,
        task,
        _dir: dir,
    }
}

impl Node {
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("join").expect("clean stop");
    }

    async fn encoder(&self) -> Ws {
        let url = format!("ws://{}/v1/encoder?stream=s1&key=key-1", self.addr);
        connect_async(url).await.expect("encoder connects").0
    }

    async fn feed(&self) -> Ws {
        let url = format!("ws://{}/v1/live?channel=c1&token={CREATOR}", self.addr);
        connect_async(url).await.expect("feed connects").0
    }

    async fn wait_lifecycle(&self, n: usize) -> Vec<pulse_schemas::LifecycleChange> {
        for _ in 0..500 {
            let l = self.access.lifecycle();
            if l.len() >= n {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("lifecycle never reached {n}: {:?}", self.access.lifecycle());
    }
}

/// One scripted report: bitrate, fps, loss %, latency ms.
#[derive(Clone, Copy)]
struct R(i64, f64, f64, i64);

const STEADY: R = R(5000, 60.0, 0.1, 1200);

fn report(ts: i64, r: R) -> String {
    json!({"ts": ts, "bitrate_kbps": r.0, "target_bitrate_kbps": 5000, "fps": r.1,
           "target_fps": 60, "width": 1920, "height": 1080, "latency_ms": r.3,
           "packet_loss_pct": r.2, "dropped_frames": 0, "keyframe_interval_s": 2})
    .to_string()
}

/// Sends `script` as one report a second (by `ts`) from `*ts`.
async fn play(_node: &Node, enc: &mut Ws, ts: &mut i64, script: &[R]) {
    for r in script {
        enc.send(Message::Text(report(*ts, *r).into()))
            .await
            .expect("send");
        *ts += 1000;
    }
}

fn repeat(r: R, n: usize) -> Vec<R> {
    vec![r; n]
}

/// Alert messages of the feed read until `quiet` passes without one.
async fn alerts(feed: &mut Ws, quiet: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(quiet, feed.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).expect("feed JSON");
                if v["type"] == "alert" {
                    out.push(v);
                } else {
                    assert_eq!(v["type"], "health", "{v}");
                }
            }
            Ok(Some(Ok(_))) => {}
            _ => return out,
        }
    }
}

fn summary(alerts: &[Value]) -> Vec<String> {
    alerts
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a["alert"].as_str().unwrap_or("?"),
                a["severity"].as_str().unwrap_or("?"),
                a["state"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// Plays `script`, ends the stream, and returns the alert transitions the feed saw.
async fn scenario(script: Vec<R>) -> (Vec<Value>, Vec<String>) {
    let node = start().await;
    let mut feed = node.feed().await;
    let mut enc = node.encoder().await;
    let mut ts = T0;
    play(&node, &mut enc, &mut ts, &script).await;
    enc.send(Message::Text(r#"{"type":"end"}"#.into()))
        .await
        .expect("end");
    let l = node.wait_lifecycle(2).await;
    assert_eq!(l[1].status, StreamStatus::Ended);
    assert_eq!(l[1].source, LifecycleSource::Encoder);
    let got = alerts(&mut feed, Duration::from_millis(300)).await;
    node.stop().await;
    let s = summary(&got);
    (got, s)
}

fn ramp(from: i64, to: i64, steps: i64) -> Vec<R> {
    (1..=steps)
        .map(|k| R(from + (to - from) * k / steps, 60.0, 0.1, 1200))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_stream_raises_nothing() {
    let (_, s) = scenario(repeat(STEADY, 30)).await;
    assert!(s.is_empty(), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_sag_to_60_percent_warns_then_resolves() {
    let mut script = repeat(STEADY, 10);
    script.extend(ramp(5000, 3000, 10));
    script.extend(repeat(R(3000, 60.0, 0.1, 1200), 15));
    script.extend(ramp(3000, 5000, 10));
    script.extend(repeat(STEADY, 15));
    let (got, s) = scenario(script).await;
    assert_eq!(
        s,
        [
            "bitrate_drop warning firing",
            "bitrate_drop warning resolved"
        ]
    );
    assert_eq!(got[0]["threshold"], 3500.0);
    assert!(got[0]["guide"].as_str().is_some_and(|g| !g.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sag_to_30_percent_goes_critical() {
    let mut script = repeat(STEADY, 10);
    script.extend(repeat(R(1500, 60.0, 0.1, 1200), 20));
    script.extend(repeat(STEADY, 20));
    let (got, s) = scenario(script.clone()).await;
    assert_eq!(
        s,
        [
            "bitrate_drop warning firing",
            "bitrate_drop critical firing",
            "bitrate_drop critical resolved"
        ]
    );
    // The value shown is the mean of the last 10 reports, computed here from the script:
    // the warning fires at the 5th report of the sag, the critical at the 9th.
    let mean = |end: usize| {
        script[end - 10..end]
            .iter()
            .map(|r| r.0 as f64)
            .sum::<f64>()
            / 10.0
    };
    assert_eq!(got[0]["value"].as_f64(), Some(mean(15)));
    assert_eq!(got[0]["ts"].as_i64(), Some(T0 + 14_000));
    assert_eq!(got[1]["value"].as_f64(), Some(mean(19)));
    assert_eq!(got[1]["threshold"], 2000.0);
    // Resolved 10 s after the first good report (index 30): at index 40.
    assert_eq!(got[2]["ts"].as_i64(), Some(T0 + 40_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_loss_burst() {
    let mut script = repeat(STEADY, 10);
    script.extend(repeat(R(5000, 60.0, 8.0, 1200), 10));
    script.extend(repeat(STEADY, 15));
    let (_, s) = scenario(script).await;
    assert_eq!(
        s,
        [
            "packet_loss warning firing",
            "packet_loss critical firing",
            "packet_loss critical resolved"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fps_drop() {
    let mut script = repeat(STEADY, 10);
    script.extend(repeat(R(5000, 45.0, 0.1, 1200), 15));
    script.extend(repeat(STEADY, 15));
    let (_, s) = scenario(script).await;
    assert_eq!(s, ["fps_drop warning firing", "fps_drop warning resolved"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_spike() {
    let mut script = repeat(STEADY, 10);
    script.extend(repeat(R(5000, 60.0, 0.1, 9000), 12));
    script.extend(repeat(STEADY, 15));
    let (_, s) = scenario(script).await;
    assert_eq!(
        s,
        [
            "high_latency warning firing",
            "high_latency warning resolved"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_around_the_thresholds_gives_no_storm() {
    let mut script = repeat(STEADY, 10);
    script.extend(repeat(R(3000, 60.0, 0.1, 1200), 12));
    // 60 s around both thresholds: 65 %/78 % (fire side) and 82 %/78 % (resolve side).
    for _ in 0..6 {
        script.extend(repeat(R(3250, 60.0, 0.1, 1200), 3));
        script.extend(repeat(R(3900, 60.0, 0.1, 1200), 2));
        script.extend(repeat(R(4100, 60.0, 0.1, 1200), 3));
        script.extend(repeat(R(3900, 60.0, 0.1, 1200), 2));
    }
    script.extend(repeat(STEADY, 15));
    let (_, s) = scenario(script).await;
    assert_eq!(
        s,
        [
            "bitrate_drop warning firing",
            "bitrate_drop warning resolved"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_inside_the_grace_period_keeps_the_stream_live() {
    let node = start().await;
    let mut feed = node.feed().await;
    let mut enc = node.encoder().await;
    let mut ts = T0;
    play(&node, &mut enc, &mut ts, &repeat(STEADY, 10)).await;
    enc.close(None).await.expect("close");
    drop(enc);
    let lost = alerts(&mut feed, Duration::from_millis(300)).await;
    assert_eq!(summary(&lost), ["connection_lost critical firing"]);
    // 30 s later (inside the 60 s grace) the encoder is back.
    ts += 30_000;
    node.clock.store(ts, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut enc = node.encoder().await;
    play(&node, &mut enc, &mut ts, &repeat(STEADY, 10)).await;
    let back = alerts(&mut feed, Duration::from_millis(300)).await;
    assert_eq!(summary(&back), ["connection_lost critical resolved"]);
    let l = node.access.lifecycle();
    assert_eq!(l.len(), 1, "one LIVE, no ENDED: {l:?}");
    assert_eq!(l[0].status, StreamStatus::Live);
    // The health route shows it live and excellent again.
    let (status, body) = get(node.addr, "/api/streams/s1/health", Some(CREATOR)).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["live"], true);
    assert_eq!(v["latest"]["status"], "excellent");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_for_good_ends_the_stream_after_the_grace_period() {
    let node = start().await;
    let mut feed = node.feed().await;
    let mut enc = node.encoder().await;
    let mut ts = T0;
    play(&node, &mut enc, &mut ts, &repeat(STEADY, 10)).await;
    drop(enc);
    let lost = alerts(&mut feed, Duration::from_millis(300)).await;
    assert_eq!(summary(&lost), ["connection_lost critical firing"]);
    // The socket dropped at server time T0: the grace period runs to T0 + 60 s.
    node.clock.store(T0 + 59_000, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(node.access.lifecycle().len(), 1, "still in grace");
    node.clock.store(T0 + 61_000, Ordering::SeqCst);
    let l = node.wait_lifecycle(2).await;
    assert_eq!(
        (l[1].status, l[1].source),
        (StreamStatus::Ended, LifecycleSource::GraceExpired)
    );
    let got = alerts(&mut feed, Duration::from_millis(300)).await;
    assert_eq!(summary(&got), ["connection_lost critical resolved"]);
    assert_eq!(
        got[0]["message"],
        "connection_lost cleared: the stream ended"
    );
    // The transitions reach the store (alert history) at the next flush.
    let mut history = Value::Null;
    for _ in 0..300 {
        let (status, body) = get(node.addr, "/api/streams/s1/alerts", Some(CREATOR)).await;
        if status == 200 {
            history = serde_json::from_str(&body).expect("json");
            if history["alerts"].as_array().is_some_and(|a| a.len() == 2) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let states: Vec<&str> = history["alerts"]
        .as_array()
        .expect("alerts stored")
        .iter()
        .filter_map(|a| a["state"].as_str())
        .collect();
    assert_eq!(states, ["firing", "resolved"], "{history}");
    // Another creator may not read it.
    let (status, _) = get(node.addr, "/api/streams/s1/alerts", Some("t-bob")).await;
    assert_eq!(status, 403);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_reason_and_changes_nothing() {
    let node = start().await;
    // Wrong or missing key: 401 before the upgrade.
    for url in [
        format!("ws://{}/v1/encoder?stream=s1&key=nope", node.addr),
        format!("ws://{}/v1/encoder?stream=s1", node.addr),
    ] {
        match connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401)
            }
            other => panic!("expected 401, got {other:?}"),
        }
    }
    assert!(
        node.access.lifecycle().is_empty(),
        "a refused key makes nothing LIVE"
    );
    let mut feed = node.feed().await;
    let mut enc = node.encoder().await;
    let mut ts = T0;
    play(&node, &mut enc, &mut ts, &repeat(STEADY, 10)).await;
    let bad = [
        ("{not json", "encoder message"),
        (
            r#"{"ts":1764000010000,"bitrate_kbps":-5,"fps":60}"#,
            "bitrate_kbps: expected an integer from 0 to 1000000, got -5",
        ),
        (
            r#"{"ts":1764000010000,"bitrate_kbps":10,"fps":10000}"#,
            "fps: expected a number from 0 to 500, got 10000",
        ),
        (
            r#"{"ts":1764000000000,"bitrate_kbps":10,"fps":60}"#,
            "ts: expected ≥ the previous report's",
        ),
    ];
    for (frame, needle) in bad {
        enc.send(Message::Text(frame.into())).await.expect("send");
        let reply = loop {
            match enc.next().await {
                Some(Ok(Message::Text(t))) => break t.to_string(),
                Some(Ok(_)) => continue,
                other => panic!("socket closed on bad input: {other:?}"),
            }
        };
        let v: Value = serde_json::from_str(&reply).expect("json");
        assert_eq!(v["type"], "rejected");
        assert!(
            v["reasons"][0].as_str().is_some_and(|r| r.contains(needle)),
            "{frame}: {v}"
        );
    }
    // Still connected, state intact: the next good report counts, nothing fired.
    play(
        &node,
        &mut enc,
        &mut ts,
        &repeat(R(4900, 60.0, 0.1, 1200), 1),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, body) = get(node.addr, "/api/streams/s1/health", Some(CREATOR)).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["latest"]["bitrate_kbps"], 4900);
    assert_eq!(v["active_alerts"], json!([]));
    assert!(
        alerts(&mut feed, Duration::from_millis(200))
            .await
            .is_empty()
    );
    // Alert rules: validated, stored, readable.
    let client = reqwest::Client::new();
    let url = format!("http://{}/api/channels/c1/alert-rules", node.addr);
    let r = client
        .put(&url)
        .bearer_auth(CREATOR)
        .json(&json!({"bitrate_warning_pct": 90, "bitrate_resolve_pct": 80}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 400, "inverted thresholds are refused");
    let r = client
        .put(&url)
        .bearer_auth(CREATOR)
        .json(&json!({"bitrate_warning_pct": 50}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 200);
    let r = client
        .put(&url)
        .bearer_auth("t-bob")
        .json(&json!({}))
        .send()
        .await
        .expect("put");
    assert_eq!(r.status(), 403);
    let (status, body) = get(node.addr, "/api/channels/c1/alert-rules", Some(CREATOR)).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["bitrate_warning_pct"], 50.0);
    node.stop().await;
}

async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}
