//! Issue 4 point 5: QoE metrics broken down by device, country and player, checked
//! against the independent computation (`common::reference`) run on each group's own
//! sessions, and the breakdown CSV export against the series answers. The same rows on
//! ClickHouse are held equal to these by `store_conformance` (its case file has the
//! `&by=` lines).

mod common;

use common::reference::{TIMEOUT, expected_over};
use common::trace::{DEVICES, STREAMS};
use common::{close, config, start};
use serde_json::Value;
use std::collections::BTreeSet;

const START: i64 = 1_764_000_000_000;
const TICK: i64 = 5_000;
const DAY: i64 = 86_400_000;

/// The events of the sessions whose first event says `dim` = `value` (a session that
/// never says it is `unknown`), engagement events left out.
fn group_events(events: &[Value], dim: &str, value: &str) -> Vec<Value> {
    let mut first: std::collections::HashMap<&str, Option<&str>> = Default::default();
    for e in events {
        if let Some(s) = e["session"].as_str() {
            first.entry(s).or_insert_with(|| e[dim].as_str());
        }
    }
    events
        .iter()
        .filter(|e| {
            e["session"]
                .as_str()
                .and_then(|s| first.get(s))
                .is_some_and(|v| v.unwrap_or("unknown") == value)
        })
        .cloned()
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakdowns_match_an_independent_computation_per_group() {
    let trace = common::trace::generate(11, START, 240, 6 * 60_000);
    let events = &trace.events;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("trace.ndjson");
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&file, text).expect("write trace");
    let cfg = config(&dir.path().join("data"));
    let c = cfg.clone();
    tokio::task::spawn_blocking(move || pulse::replay::replay_file(&c, &file))
        .await
        .expect("join")
        .expect("replay");
    let to = trace.end + 10 * 60_000;
    let server = start(cfg, to + 3_600_000).await;
    let from = START - START.rem_euclid(DAY);
    assert!(to <= from + DAY, "the trace fits one day bucket");
    let stream = STREAMS[0].1;
    let series = |metric: &str, by: &str| {
        format!(
            "/api/analytics/series?metric={metric}&stream={stream}&from={from}&to={to}&step=1d&by={by}"
        )
    };
    // Once the live aggregator has flushed, everything up to `to` is final.
    let plain = format!(
        "/api/analytics/series?metric=views&stream={stream}&from={START}&to={to}&step=60000"
    );
    common::wait_series_final(&server.url(&plain), 30)
        .await
        .expect("final");

    let whole = expected_over(events, stream, TICK, None);
    let live_ticks = (whole.last_tick - whole.first_tick) / TICK + 1;
    let sample = Some((whole.first_tick, whole.last_tick + TIMEOUT + TICK));
    let mut checked = 0;
    for (dim, values) in [
        (
            "device",
            DEVICES
                .iter()
                .copied()
                .chain(["unknown"])
                .collect::<Vec<_>>(),
        ),
        ("country", vec!["US", "DE", "BR", "unknown"]),
        ("player", vec!["hls.js/1.5", "shaka/4.7", "unknown"]),
    ] {
        let answers: Vec<(&str, Value)> = {
            let mut out = Vec::new();
            for metric in [
                "viewers",
                "views",
                "watch_minutes",
                "rebuffer_ratio",
                "rebuffer_count",
                "startup_p50_ms",
                "startup_p95_ms",
                "playback_failure_rate",
            ] {
                out.push((metric, server.json(&series(metric, dim)).await));
            }
            out
        };
        let keys: BTreeSet<String> = answers[1].1["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g["key"].as_str().expect("key").to_owned())
            .collect();
        let want_keys: BTreeSet<String> = values
            .iter()
            .filter(|v| {
                !group_events(events, dim, v)
                    .iter()
                    .all(|e| e["stream"] != stream)
            })
            .map(|v| v.to_string())
            .collect();
        assert_eq!(keys, want_keys, "groups by {dim}");
        for value in &values {
            let mine = group_events(events, dim, value);
            let x = expected_over(&mine, stream, TICK, sample);
            if x.views == 0 && x.watch_ms == 0 && x.failures == 0 {
                continue;
            }
            let got = |metric: &str| -> f64 {
                let a = &answers.iter().find(|(m, _)| *m == metric).expect("asked").1;
                let g = a["groups"]
                    .as_array()
                    .expect("groups")
                    .iter()
                    .find(|g| g["key"] == *value)
                    .unwrap_or_else(|| panic!("{dim}={value} missing in {a}"));
                let points = g["points"].as_array().expect("points");
                assert_eq!(points.len(), 1, "one day bucket");
                num(&points[0]["value"])
            };
            let what = format!("{stream} {dim}={value}");
            let viewer_samples: i64 = x.viewers.values().sum();
            assert!(
                close(
                    got("viewers"),
                    viewer_samples as f64 / live_ticks as f64,
                    1e-9
                ),
                "{what}: viewers {} vs {viewer_samples}/{live_ticks}",
                got("viewers")
            );
            assert_eq!(got("views") as i64, x.views, "{what}: views");
            assert!(
                close(got("watch_minutes"), x.watch_ms as f64 / 60_000.0, 1e-9),
                "{what}: watch minutes"
            );
            let ratio = if x.watch_ms > 0 {
                x.rebuffer_ms as f64 / x.watch_ms as f64
            } else {
                0.0
            };
            assert!(
                close(got("rebuffer_ratio"), ratio, 1e-9),
                "{what}: rebuffer ratio"
            );
            assert_eq!(got("rebuffer_count") as i64, x.rebuffer_count, "{what}");
            let fail = if x.views > 0 {
                x.failures as f64 / x.views as f64
            } else {
                0.0
            };
            assert!(
                close(got("playback_failure_rate"), fail, 1e-9),
                "{what}: failures"
            );
            for (metric, q) in [("startup_p50_ms", 0.5), ("startup_p95_ms", 0.95)] {
                // HDR histogram: 3 significant digits.
                let want = x.startup_pct(q) as f64;
                assert!(
                    (got(metric) - want).abs() <= want * 1e-3 + 1.0,
                    "{what}: {metric} {} vs {want}",
                    got(metric)
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} groups had any playback");

    // The export: one row per bucket and group, the series' numbers.
    let body = format!(
        r#"{{"metrics":["views","rebuffer_ratio"],"stream":"{stream}","from":{from},"to":{to},"step":"1d","by":"device"}}"#
    );
    let resp = reqwest::Client::new()
        .post(server.url("/api/analytics/export"))
        .bearer_auth(common::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("export");
    assert_eq!(resp.status().as_u16(), 200);
    let csv = resp.text().await.expect("csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("t,time,device,views,rebuffer_ratio"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let views = server.json(&series("views", "device")).await;
    let groups = views["groups"].as_array().expect("groups");
    assert_eq!(rows.len(), groups.len());
    for (row, g) in rows.iter().zip(groups) {
        assert_eq!(row[2], g["key"].as_str().expect("key"));
        assert_eq!(row[3], g["points"][0]["value"].to_string());
    }

    // Refusals name the rule.
    let (s, body) = server.get(&series("chat_messages", "device")).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("has no breakdown by device"), "{body}");
    let (s, body) = server.get(&series("views", "browser")).await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("device, country, player"), "{body}");
    server.stop().await;
}
