//! The store conformance cases (`tests/cases/store_conformance.txt`) and the comparison
//! of two answers: same status, same JSON (or CSV) with floats within 1e-9 relative.

use serde_json::Value;

/// One expanded request.
#[derive(Clone, Debug)]
pub struct Case {
    pub post_body: Option<String>,
    pub path: String,
}

pub const METRICS: &[&str] = &[
    "viewers",
    "views",
    "unique_viewers",
    "watch_minutes",
    "chat_messages",
    "new_followers",
    "conversion_rate",
    "rebuffer_ratio",
    "rebuffer_count",
    "rebuffer_frequency",
    "startup_p50_ms",
    "startup_p95_ms",
    "startup_p99_ms",
    "playback_failure_rate",
];

/// Expands every line of the case file.
pub fn cases(streams: &[(&str, &str)], start: i64, to: i64) -> Vec<Case> {
    let text = include_str!("../cases/store_conformance.txt");
    let mut channels: Vec<&str> = streams.iter().map(|&(c, _)| c).collect();
    channels.dedup();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .replace("{START}", &start.to_string())
            .replace("{TO}", &to.to_string());
        let mut expanded = vec![line];
        for (key, values) in [
            (
                "{stream}",
                streams.iter().map(|&(_, s)| s).collect::<Vec<_>>(),
            ),
            ("{channel}", channels.clone()),
            ("{metric}", METRICS.to_vec()),
        ] {
            expanded = expanded
                .into_iter()
                .flat_map(|l| {
                    if l.contains(key) {
                        values.iter().map(|v| l.replace(key, v)).collect()
                    } else {
                        vec![l]
                    }
                })
                .collect();
        }
        for l in expanded {
            let case = if let Some(rest) = l.strip_prefix("GET ") {
                Case {
                    post_body: None,
                    path: rest.to_owned(),
                }
            } else if let Some(rest) = l.strip_prefix("POST ") {
                let (path, body) = rest.split_once(' ').expect("POST <path> <body>");
                Case {
                    post_body: Some(body.to_owned()),
                    path: path.to_owned(),
                }
            } else {
                panic!("case line must start with GET or POST: {l}");
            };
            out.push(case);
        }
    }
    out
}

/// Runs one case against `base` (`http://host:port`): status and body.
pub async fn run(base: &str, case: &Case) -> (u16, String) {
    let client = reqwest::Client::new();
    let url = format!("{base}{}", case.path);
    let resp = match &case.post_body {
        None => {
            client
                .get(&url)
                .bearer_auth(super::ADMIN_TOKEN)
                .send()
                .await
        }
        Some(b) => {
            client
                .post(&url)
                .bearer_auth(super::ADMIN_TOKEN)
                .header("content-type", "application/json")
                .body(b.clone())
                .send()
                .await
        }
    }
    .expect("HTTP request");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Where two JSON values differ (floats within 1e-9 relative), or `None`.
pub fn json_diff(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let same = match (x.as_i64(), y.as_i64()) {
                (Some(i), Some(j)) => i == j,
                _ => close(x.as_f64()?, y.as_f64()?),
            };
            (!same).then(|| format!("{at}: {x} vs {y}"))
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{at}: {} vs {} elements", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| json_diff(p, q, &format!("{at}[{i}]")))
        }
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() || x.keys().any(|k| !y.contains_key(k)) {
                return Some(format!("{at}: keys differ"));
            }
            x.iter()
                .find_map(|(k, v)| json_diff(v, &y[k], &format!("{at}.{k}")))
        }
        _ => (a != b).then(|| format!("{at}: {a} vs {b}")),
    }
}

/// Where two answers differ: JSON compared structurally, anything else (CSV) cell by
/// cell with numeric cells compared as floats.
pub fn answer_diff(a: &str, b: &str) -> Option<String> {
    if let (Ok(x), Ok(y)) = (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        return json_diff(&x, &y, "$");
    }
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    if la.len() != lb.len() {
        return Some(format!("{} vs {} lines", la.len(), lb.len()));
    }
    for (n, (x, y)) in la.iter().zip(&lb).enumerate() {
        let (cx, cy): (Vec<&str>, Vec<&str>) = (x.split(',').collect(), y.split(',').collect());
        let same = cx.len() == cy.len()
            && cx.iter().zip(&cy).all(|(p, q)| {
                p == q
                    || matches!((p.parse::<f64>(), q.parse::<f64>()), (Ok(u), Ok(v)) if close(u, v))
            });
        if !same {
            return Some(format!("line {}: {x} vs {y}", n + 1));
        }
    }
    None
}

/// How many nonzero numbers an answer holds (a check that answers are not vacuous).
pub fn nonzero_numbers(body: &str) -> usize {
    fn count(v: &Value) -> usize {
        match v {
            Value::Number(n) => usize::from(n.as_f64().is_some_and(|f| f != 0.0)),
            Value::Array(a) => a.iter().map(count).sum(),
            Value::Object(o) => o.values().map(count).sum(),
            _ => 0,
        }
    }
    match serde_json::from_str::<Value>(body) {
        Ok(v) => count(&v),
        Err(_) => body
            .split([',', '\n'])
            .filter(|c| c.parse::<f64>().is_ok_and(|f| f != 0.0))
            .count(),
    }
}

#[test]
fn the_comparison_tolerates_float_noise_only() {
    let a: Value = serde_json::json!({"x": [1, 2.0000000000001, "s"]});
    let b: Value = serde_json::json!({"x": [1, 2.0, "s"]});
    assert!(json_diff(&a, &b, "$").is_none());
    let c: Value = serde_json::json!({"x": [1, 2.001, "s"]});
    assert!(json_diff(&a, &c, "$").is_some());
    assert!(answer_diff("t,v\n1,0.5\n", "t,v\n1,0.5000000000000001\n").is_none());
    assert!(answer_diff("t,v\n1,0.5\n", "t,v\n1,0.6\n").is_some());
}
