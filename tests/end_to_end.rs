//! A generated trace sent over real WebSockets to an in-process `pulse serve`, and
//! every metric of the stream summary and the viewer series compared with the
//! independent computation of `common::reference`.

mod common;

use common::reference::{Expected, expected};
use common::{TOKEN, close, config, metric, start, wait_for};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const TICK: i64 = 5000;
/// Trace start: a tick-aligned instant (2025-11-24T16:00:00Z).
const START: i64 = 1_764_000_000_000;

fn check_summary(stream: &str, got: &Value, want: &Expected) {
    let m = &got["metrics"];
    let f = |k: &str| {
        m[k].as_f64()
            .unwrap_or_else(|| panic!("{stream}: metric {k} missing in {got}"))
    };
    let ctx = |k: &str| format!("{stream}.{k}: got {}, want", m[k]);
    assert_eq!(got["stream"], stream);
    assert_eq!(
        f("peak_concurrent") as i64,
        want.peak(),
        "{}",
        ctx("peak_concurrent")
    );
    assert!(
        close(f("avg_concurrent"), want.avg(), 1e-9),
        "{} {}",
        ctx("avg_concurrent"),
        want.avg()
    );
    assert_eq!(f("views") as i64, want.views, "{}", ctx("views"));
    assert_eq!(
        f("unique_viewers") as i64,
        want.unique_viewers,
        "{}",
        ctx("unique_viewers")
    );
    assert!(
        close(f("watch_minutes"), want.watch_ms as f64 / 60_000.0, 1e-9),
        "{} {}",
        ctx("watch_minutes"),
        want.watch_ms
    );
    assert_eq!(
        f("chat_messages") as i64,
        want.chat,
        "{}",
        ctx("chat_messages")
    );
    assert_eq!(
        f("new_followers") as i64,
        want.followers,
        "{}",
        ctx("new_followers")
    );
    let conv = want.followers as f64 / want.unique_viewers.max(1) as f64;
    assert!(
        close(f("conversion_rate"), conv, 1e-9),
        "{} {conv}",
        ctx("conversion_rate")
    );
    let ratio = if want.watch_ms > 0 {
        want.rebuffer_ms as f64 / want.watch_ms as f64
    } else {
        0.0
    };
    assert!(
        close(f("rebuffer_ratio"), ratio, 1e-9),
        "{} {ratio}",
        ctx("rebuffer_ratio")
    );
    assert_eq!(
        f("rebuffer_count") as i64,
        want.rebuffer_count,
        "{}",
        ctx("rebuffer_count")
    );
    let freq = if want.watch_ms > 0 {
        want.rebuffer_count as f64 / (want.watch_ms as f64 / 60_000.0)
    } else {
        0.0
    };
    assert!(
        close(f("rebuffer_frequency"), freq, 1e-9),
        "{} {freq}",
        ctx("rebuffer_frequency")
    );
    for (k, q) in [
        ("startup_p50_ms", 0.50),
        ("startup_p95_ms", 0.95),
        ("startup_p99_ms", 0.99),
    ] {
        let exact = want.startup_pct(q) as f64;
        // HDR histograms keep 3 significant digits.
        assert!(
            (f(k) - exact).abs() <= exact * 0.001 + 1.0,
            "{} {exact}",
            ctx(k)
        );
    }
    let fail = want.failures as f64 / want.views.max(1) as f64;
    assert!(
        close(f("playback_failure_rate"), fail, 1e-9),
        "{} {fail}",
        ctx("playback_failure_rate")
    );
    let duration = (want.last_tick + TICK - want.first_tick) / 1000;
    assert_eq!(f("duration_s") as i64, duration, "{}", ctx("duration_s"));
}

fn check_viewer_series(stream: &str, step: i64, got: &Value, want: &Expected) {
    assert_eq!(got["metric"], "viewers");
    assert_eq!(got["step_ms"], step);
    let want = want.viewer_buckets(step);
    // Series are dense: buckets outside the live range carry zeros.
    let live: std::collections::BTreeSet<i64> = want.iter().map(|w| w.0).collect();
    let all = got["points"].as_array().expect("points");
    for p in all
        .iter()
        .filter(|p| !live.contains(&p["t"].as_i64().unwrap_or(-1)))
    {
        assert_eq!(
            p["value"].as_f64(),
            Some(0.0),
            "{stream} step {step}: outside the live range {p}"
        );
    }
    let points: Vec<&Value> = all
        .iter()
        .filter(|p| live.contains(&p["t"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(
        points.len(),
        want.len(),
        "{stream} step {step}: {} live points, want {}",
        points.len(),
        want.len()
    );
    for (p, (t, avg, peak)) in points.into_iter().zip(want) {
        assert_eq!(p["t"], t, "{stream} step {step}");
        assert!(
            close(p["value"].as_f64().expect("value"), avg, 1e-9),
            "{stream} step {step} t {t}: {p} want {avg}"
        );
        assert_eq!(p["peak"], peak, "{stream} step {step} t {t}");
        assert_eq!(p["final"], true, "{stream} step {step} t {t}");
    }
}

async fn connect(
    addr: std::net::SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = format!("ws://{addr}/v1/beacons")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .expect("connect")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_over_websockets_matches_an_independent_computation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = common::trace::generate(7, START, 400, 10 * 60_000);
    let server = start(config(dir.path()), START).await;

    // Send in trace time at ~60× speed, displaced by up to 5 s (inside the 10 s lateness),
    // over four sockets, mixing single-event frames and seq envelopes.
    let mut rng = fastrand::Rng::with_seed(11);
    let mut keyed: Vec<(i64, Value)> = trace
        .events
        .iter()
        .map(|e| (e["ts"].as_i64().expect("ts") + rng.i64(0..5000), e.clone()))
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    let mut sockets = Vec::new();
    for _ in 0..4 {
        sockets.push(connect(server.addr).await);
    }
    let real_start = tokio::time::Instant::now();
    let mut seq = 0u64;
    let mut i = 0;
    while i < keyed.len() {
        let key = keyed[i].0;
        let due = real_start + Duration::from_millis(((key - START) / 60).max(0) as u64);
        tokio::time::sleep_until(due).await;
        server
            .clock
            .fetch_max(key, std::sync::atomic::Ordering::SeqCst);
        let n = 1 + rng.usize(0..6);
        let batch: Vec<Value> = keyed[i..(i + n).min(keyed.len())]
            .iter()
            .map(|(_, e)| e.clone())
            .collect();
        i += batch.len();
        let ws = &mut sockets[rng.usize(..4)];
        if batch.len() == 1 {
            ws.send(Message::text(batch[0].to_string()))
                .await
                .expect("send");
        } else {
            seq += 1;
            ws.send(Message::text(
                json!({"seq": seq, "events": batch}).to_string(),
            ))
            .await
            .expect("send");
            // The ack arrives once the batch is handed to the aggregator.
            loop {
                let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
                    .await
                    .expect("ack in time");
                let text = match msg.expect("socket open").expect("frame") {
                    Message::Text(t) => t.to_string(),
                    other => panic!("unexpected frame {other:?}"),
                };
                let v: Value = serde_json::from_str(&text).expect("JSON reply");
                assert_ne!(v["type"], "rejected", "valid events were rejected: {v}");
                if v["type"] == "ack" && v["seq"] == seq {
                    break;
                }
            }
        }
    }
    for mut ws in sockets {
        ws.close(None).await.expect("close");
    }
    // Let the pipeline drain, then move the clock past every window's closing time.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server
        .clock
        .store(trace.end + 120_000, std::sync::atomic::Ordering::SeqCst);

    for (_, stream) in common::trace::STREAMS {
        let want = expected(&trace.events, stream, TICK);
        let until = want.last_tick + TICK;
        let path = format!(
            "/api/analytics/series?metric=viewers&stream={stream}&from={START}&to={until}&step=5000"
        );
        let series = wait_for(&server, &path, 30, |v| {
            v["points"]
                .as_array()
                .is_some_and(|p| !p.is_empty() && p.iter().all(|p| p["final"] == true))
        })
        .await;
        check_viewer_series(stream, 5000, &series, &want);
        let until = (want.last_tick / 60_000 + 1) * 60_000;
        let path = format!(
            "/api/analytics/charts/viewers?stream={stream}&from={START}&to={until}&step=60000"
        );
        check_viewer_series(stream, 60_000, &server.json(&path).await, &want);
        let summary = server
            .json(&format!("/api/analytics/streams/{stream}"))
            .await;
        check_summary(stream, &summary, &want);
        // Distinct viewers at 5 s (from the minute rows' slice masks) and at 1 min, over
        // a range that starts and ends inside a minute.
        let range = (START + 35_000, until - 25_000);
        for step in [5000, 60_000] {
            let range = (
                range.0.div_euclid(step) * step,
                range.1.div_euclid(step) * step,
            );
            common::distinct::check_series(&server, &trace.events, stream, step, range).await;
        }
    }
    let (_, metrics) = server.get("/metrics").await;
    assert_eq!(
        metric(&metrics, "pulse_aggregator_late_events_total"),
        0.0,
        "no event may be late in this test"
    );
    assert!(metric(&metrics, "pulse_ingest_events_accepted_total") >= trace.events.len() as f64);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_twice_gives_byte_identical_answers_and_the_same_numbers() {
    let trace = common::trace::generate(99, START, 250, 8 * 60_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("trace.ndjson");
    let mut text: String = trace.events.iter().map(|e| format!("{e}\n")).collect();
    text.push_str("this line is not an event\n");
    std::fs::write(&file, text).expect("write trace");
    let to = trace.end + 120_000;
    let mut paths = vec![];
    for (channel, stream) in common::trace::STREAMS {
        paths.push(format!("/api/analytics/streams/{stream}"));
        for step in [5000, 60_000, 300_000, 3_600_000] {
            paths.push(format!("/api/analytics/series?metric=viewers&stream={stream}&from={START}&to={to}&step={step}"));
        }
        for m in [
            "watch_minutes",
            "unique_viewers",
            "rebuffer_ratio",
            "startup_p95_ms",
            "chat_messages",
            "new_followers",
        ] {
            paths.push(format!(
                "/api/analytics/series?metric={m}&stream={stream}&from={START}&to={to}&step=60000"
            ));
        }
        paths.push(format!(
            "/api/analytics/series?metric=viewers&channel={channel}&from={START}&to={to}&step=60000"
        ));
    }
    let mut answers = Vec::new();
    for run in ["a", "b"] {
        let cfg = config(&dir.path().join(run));
        let report = pulse::replay::replay_file(&cfg, &file).expect("replay");
        assert_eq!(report.events as usize, trace.events.len());
        assert_eq!(report.rejected, 1, "{report:?}");
        assert!(report.reasons[0].contains("line"), "{report:?}");
        // Served after the replay: the clock is far past the trace, everything is final.
        let server = start(cfg, to + 3_600_000).await;
        // `closed_through` is republished by the aggregator's first flush after a start.
        let probe = format!(
            "/api/analytics/series?metric=views&stream=stream-a1&from={START}&to={}&step=60000",
            START + 60_000
        );
        wait_for(&server, &probe, 10, |v| v["points"][0]["final"] == true).await;
        let mut got = Vec::new();
        for p in &paths {
            let (status, body) = server.get(p).await;
            assert_eq!(status, 200, "{p}: {body}");
            got.push(body);
        }
        server.stop().await;
        answers.push(got);
    }
    for (p, (a, b)) in paths.iter().zip(answers[0].iter().zip(&answers[1])) {
        assert_eq!(a, b, "replays differ on {p}");
    }
    for (i, (_, stream)) in common::trace::STREAMS.iter().enumerate() {
        let want = expected(&trace.events, stream, TICK);
        let summary: Value = serde_json::from_str(&answers[0][i * 12]).expect("JSON");
        check_summary(stream, &summary, &want);
        let series: Value = serde_json::from_str(&answers[0][i * 12 + 1]).expect("JSON");
        check_viewer_series(stream, 5000, &series, &want);
    }
}
