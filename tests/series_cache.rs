//! The closed-window cache of the series routes (issue 4): one trace in two embedded
//! stores, one server with `query.series_cache` on and one with it off, both moved
//! along the same clock; at every step dashboards poll rolling windows and both
//! servers must give the same points (values and `final` flags) exactly. The ClickHouse
//! reads under the cache are compared with the embedded ones by `store_conformance`
//! (its servers run with the default, the cache on).

mod common;

use common::conformance::answer_diff;
use common::{config, start};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::Duration;

const START: i64 = 1_764_000_000_000;
const STEP_MS: i64 = 30_000;

fn finals(body: &str) -> usize {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["points"].as_array().cloned())
        .map_or(0, |p| p.iter().filter(|x| x["final"] == true).count())
}

/// The value of the one sample `series` (name and labels as written) in /metrics text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polled_series_are_the_same_with_and_without_the_cache() {
    let trace = common::trace::generate(11, START, 80, 6 * 60_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("trace.ndjson");
    let text: String = trace.events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&file, text).expect("write trace");
    let on = config(&dir.path().join("on"));
    let mut off = config(&dir.path().join("off"));
    off.query.series_cache = false;
    for cfg in [on.clone(), off.clone()] {
        let f = file.clone();
        tokio::task::spawn_blocking(move || pulse::replay::replay_file(&cfg, &f))
            .await
            .expect("join")
            .expect("replay");
    }
    let mut clock = START + 60_000;
    let a = start(on.clone(), clock).await;
    let b = start(off, clock).await;
    let probe = format!(
        "/api/analytics/series?metric=views&stream=stream-a1&from={START}&to={}&step=5000",
        trace.end + 3_600_000
    );
    // Without events the watermark is the clock − lateness; windows close a session
    // timeout behind it.
    let behind = on.allowed_lateness_ms + on.aggregator.session_timeout_ms;
    let mut compared = 0;
    while clock < trace.end + 120_000 {
        clock += STEP_MS;
        a.clock.store(clock, Ordering::SeqCst);
        b.clock.store(clock, Ordering::SeqCst);
        let closed_through = (clock - behind).div_euclid(on.tick_ms) * on.tick_ms;
        let want = usize::try_from((closed_through - START).div_euclid(5_000)).unwrap_or(0);
        // Both aggregators have flushed at the new clock.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let ((_, pa), (_, pb)) = (a.get(&probe).await, b.get(&probe).await);
            if finals(&pa) == want && finals(&pb) == want {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "clock {clock}: no flush\n{pa}\n{pb}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for scope in ["stream=stream-a1", "channel=chan-a"] {
            for metric in ["viewers", "views", "unique_viewers", "startup_p95_ms"] {
                for (step, span) in [(5_000, 180_000), (60_000, 600_000)] {
                    if metric == "unique_viewers" && step < 60_000 {
                        continue; // distinct viewers are per minute (400 below)
                    }
                    let path = format!(
                        "/api/analytics/series?metric={metric}&{scope}&from={}&to={clock}&step={step}",
                        clock - span
                    );
                    let ((sa, ba), (sb, bb)) = (a.get(&path).await, b.get(&path).await);
                    assert_eq!((sa, sb), (200, 200), "{path}\n{ba}\n{bb}");
                    if let Some(d) = answer_diff(&ba, &bb) {
                        panic!("{path}: cache on and off differ at {d}\non: {ba}\noff: {bb}");
                    }
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 200, "{compared} answers compared");
    let (_, metrics) = a.get("/metrics").await;
    let hits = sample(
        &metrics,
        "pulse_query_series_cache_requests_total{result=\"hit\"}",
    );
    let cached = sample(
        &metrics,
        "pulse_query_series_points_total{source=\"cache\"}",
    );
    assert!(
        hits > 100.0 && cached > 1000.0,
        "hits {hits}, cached points {cached}"
    );
    a.stop().await;
    b.stop().await;
}
