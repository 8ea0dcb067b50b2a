//! Distinct-viewer series (unique viewers, new followers, conversion) against the raw
//! events, counted here: shared by the end-to-end tests of both stores.

use super::{Server, close};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Unique viewers, new followers and conversion per bucket of `step` (5 s included),
/// counted here from the raw events: distinct viewers with any event of the stream in
/// the bucket, and those of them with a `follow` (METRICS.md §1–§2).
pub async fn check_series(
    server: &Server,
    events: &[Value],
    stream: &str,
    step: i64,
    (from, to): (i64, i64),
) {
    type Buckets<'a> = BTreeMap<i64, (BTreeSet<&'a str>, BTreeSet<&'a str>)>;
    let mut want: Buckets = BTreeMap::new();
    for e in events.iter().filter(|e| e["stream"] == stream) {
        let ts = e["ts"].as_i64().expect("ts");
        if ts < from || ts >= to {
            continue;
        }
        let b = want.entry(ts.div_euclid(step) * step).or_default();
        let viewer = e["viewer"].as_str().expect("viewer");
        b.0.insert(viewer);
        if e["type"] == "follow" {
            b.1.insert(viewer);
        }
    }
    assert!(
        want.values().filter(|b| !b.1.is_empty()).count() > 0,
        "{stream}: the trace must hold follows in [{from}, {to})"
    );
    for metric in ["unique_viewers", "new_followers", "conversion_rate"] {
        let path = format!(
            "/api/analytics/series?metric={metric}&stream={stream}&from={from}&to={to}&step={step}"
        );
        let got = server.json(&path).await;
        let points = got["points"].as_array().expect("points");
        assert_eq!(points.len() as i64, (to - from) / step, "{path}: {got}");
        for p in points {
            let t = p["t"].as_i64().expect("t");
            let (viewers, followers) = want.get(&t).map_or((0, 0), |b| (b.0.len(), b.1.len()));
            let value = p["value"].as_f64().expect("value");
            let expect = match metric {
                "unique_viewers" => viewers as f64,
                "new_followers" => followers as f64,
                _ if viewers == 0 => 0.0,
                _ => followers as f64 / viewers as f64,
            };
            assert!(
                close(value, expect, 1e-12),
                "{stream} {metric} step {step} t {t}: got {value}, want {expect}"
            );
        }
    }
}
