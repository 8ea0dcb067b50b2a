//! End to end against the in-process bare WebSocket server: the `baseline` scenario
//! through the public `run`, and the viewer population (small counts). No assertion
//! on speed: only that everything sent arrived and every loop stopped by itself.

#![allow(clippy::unwrap_used)]

use pulse_load_tests::baseline::BareServer;
use pulse_load_tests::counters::{Budget, Counters};
use pulse_load_tests::viewers::{self, ViewerConfig};
use pulse_load_tests::{LoadgenArgs, Scenario, run};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_scenario_end_to_end() {
    let mut args = LoadgenArgs::new(Scenario::Baseline, "http://127.0.0.1:9");
    args.duration_s = 30;
    args.max_events = 20_000;
    args.connections = 3;
    let started = Instant::now();
    let report = run(args).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the event budget should end it first"
    );
    assert_eq!(report.scenarios.len(), 1);
    let s = &report.scenarios[0];
    assert_eq!(s.name, "baseline");
    assert_eq!(s.connections_opened, 3);
    assert_eq!(s.frames_sent, 20_000, "{s:?}");
    assert_eq!(s.events_sent, 20_000);
    assert_eq!(s.events_rejected, 0);
    assert_eq!(s.closed_by_server, 0, "{s:?}");
    assert!(s.frames_per_s > 0.0);
    assert!(
        s.notes.is_empty(),
        "the bare server should have counted every frame: {:?}",
        s.notes
    );
    assert!(s.client_rss_peak_bytes.is_some());
    let table = report.to_string();
    assert!(table.contains("baseline"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["scenarios"][0]["frames_sent"], 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_limit_stops_the_baseline() {
    let mut args = LoadgenArgs::new(Scenario::Baseline, "http://127.0.0.1:9");
    args.duration_s = 1;
    args.connections = 1;
    let started = Instant::now();
    let report = run(args).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(report.scenarios[0].frames_sent > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_connect_send_and_end_their_views() {
    let server = BareServer::start().await.unwrap();
    let cfg = ViewerConfig {
        url: server.url(),
        run: "t1".into(),
        viewers: 20,
        ramp_per_s: 100,
        streams: 4,
        seed: 3,
    };
    let counters = Arc::new(Counters::default());
    let budget = Arc::new(Budget::new(
        1_000_000,
        tokio::time::Instant::now() + Duration::from_secs(4),
    ));
    let elapsed = viewers::run(cfg, budget, Arc::clone(&counters))
        .await
        .unwrap();
    assert!(elapsed < 15.0, "{elapsed}");
    let mut r = pulse_load_tests::ScenarioReport::new("viewers");
    counters.fill(&mut r, elapsed);
    assert_eq!(r.connections_opened, 20, "{r:?}");
    assert_eq!(r.connections_peak, 20, "{r:?}");
    // viewstart + (usually) playing + viewend per viewer.
    assert!(r.events_sent >= 40, "{r:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.frames(), r.frames_sent, "{r:?}");
}
