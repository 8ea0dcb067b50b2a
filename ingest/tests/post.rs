//! `POST /v1/beacons`: JSON object, array, envelope and NDJSON bodies, the 1 MiB limit,
//! the per-IP rate limit and skew correction, over a real HTTP server.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn post(
    url: &str,
    body: String,
    content_type: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn objects_arrays_envelopes_and_ndjson() {
    let server = start(config(), None).await;
    let url = server.http_url();
    let (s, body) = post(
        &url,
        ev("viewstart", NOW, "p-one"),
        "application/json",
        None,
    )
    .await;
    assert_eq!(
        (s, body),
        (
            StatusCode::OK,
            json!({"accepted":1,"rejected":0,"reasons":[]})
        )
    );
    let (s, body) = post(
        &url,
        batch([ev("playing", NOW + 1, "p-one"), "{}".into()]),
        "application/json",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{body}"
    );
    assert!(
        body["reasons"][0].as_str().unwrap().starts_with("event 1"),
        "{body}"
    );
    let envelope = format!(
        r#"{{"seq":5,"events":[{}]}}"#,
        ev("pause", NOW + 2, "p-one")
    );
    let (s, body) = post(&url, envelope, "text/plain;charset=UTF-8", None).await;
    assert_eq!(
        (s, body["accepted"].as_u64(), body["seq"].as_u64()),
        (StatusCode::OK, Some(1), Some(5))
    );
    let ndjson = format!("{}\n\n{}\nnope\n", chat(NOW, "p-nd"), chat(NOW + 1, "p-nd"));
    let (s, body) = post(&url, ndjson, "application/x-ndjson", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{body}"
    );
    assert!(
        body["reasons"][0].as_str().unwrap().starts_with("line 4"),
        "{body}"
    );
    assert_eq!(server.settle_viewer("p-one", 3).await, 3);
    assert_eq!(server.settle_viewer("p-nd", 2).await, 2);
}

#[tokio::test]
async fn nothing_valid_is_400_with_the_error_shape() {
    let server = start(config(), None).await;
    let (s, body) = post(
        &server.http_url(),
        "not json".into(),
        "application/json",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "no_valid_events");
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(0), Some(1))
    );
    let long = "c".repeat(65);
    let bad = format!(r#"{{"type":"like","ts":1,"viewer":"v","channel":"{long}","stream":"s"}}"#);
    let (s, body) = post(&server.http_url(), bad, "application/json", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["reasons"][0].as_str().unwrap().contains("`channel`"),
        "{body}"
    );
}

#[tokio::test]
async fn a_ten_thousand_event_batch_keeps_the_first_thousand() {
    let (clock, _) = fixed_clock(NOW);
    let server = start(config(), Some(clock)).await;
    let like = |i: i64| {
        format!(
            r#"{{"type":"like","ts":{},"viewer":"p-10k","channel":"c","stream":"s"}}"#,
            NOW + i
        )
    };
    let body = batch((0..10_000).map(like));
    assert!(body.len() < 1 << 20);
    let (s, reply) = post(&server.http_url(), body, "application/json", Some(TOKEN)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (reply["accepted"].as_u64(), reply["rejected"].as_u64()),
        (Some(1000), Some(9000)),
        "{reply}"
    );
    assert!(
        reply["reasons"][0]
            .as_str()
            .unwrap()
            .contains("at most 1000"),
        "{reply}"
    );
    assert_eq!(server.settle_viewer("p-10k", 1000).await, 1000);
    let events = server.events();
    let kept: Vec<i64> = events
        .iter()
        .filter(|e| e.viewer.as_str() == "p-10k")
        .map(|e| e.ts)
        .collect();
    // The first thousand, in order.
    assert_eq!(kept, (0..1000).map(|i| NOW + i).collect::<Vec<_>>());
}

#[tokio::test]
async fn bodies_over_1_mib_get_413() {
    let server = start(config(), None).await;
    let big = format!(
        r#"{{"type":"chat","ts":1,"viewer":"v","channel":"c","stream":"s","player":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    let (s, body) = post(
        &server.http_url(),
        big.clone(),
        "application/json",
        Some(TOKEN),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "body_too_large", "{body}");
    // Without Content-Length (chunked), the limit holds while reading.
    let chunks: Vec<Result<String, std::io::Error>> = big
        .as_bytes()
        .chunks(64 * 1024)
        .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
        .collect();
    let resp = reqwest::Client::new()
        .post(server.http_url())
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    match resp {
        Ok(r) => {
            assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "body_too_large");
        }
        // The server may answer and close before the whole body is written.
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    // Just under the limit is fine.
    let ok = format!(
        r#"{{"type":"chat","ts":1,"viewer":"p-big","channel":"c","stream":"s"}}{}"#,
        " ".repeat((1 << 20) - 200)
    );
    let (s, _) = post(&server.http_url(), ok, "application/json", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(server.settle_viewer("p-big", 1).await, 1);
}

#[tokio::test]
async fn peers_are_rate_limited_unless_trusted() {
    let server = start(config(), None).await;
    let url = server.http_url();
    let (s, body) = post(
        &url,
        batch((0..600).map(|i| chat(NOW + i, "p-rl"))),
        "application/json",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (body["accepted"].as_u64(), body["rejected"].as_u64()),
        (Some(500), Some(100)),
        "{body}"
    );
    assert!(body["reasons"][0].as_str().unwrap().contains("rate limit"));
    let (s, body) = post(
        &url,
        batch((0..100).map(|i| chat(NOW + i, "p-rl"))),
        "application/json",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    // The chat service with the token is not limited.
    let (s, body) = post(
        &url,
        batch((0..1000).map(|i| chat(NOW + i, "p-svc"))),
        "application/json",
        Some(TOKEN),
    )
    .await;
    assert_eq!((s, body["accepted"].as_u64()), (StatusCode::OK, Some(1000)));
    let q = format!("{url}?token={TOKEN}");
    let (s, body) = post(
        &q,
        batch((0..1000).map(|i| chat(NOW + i, "p-svc"))),
        "application/json",
        None,
    )
    .await;
    assert_eq!((s, body["accepted"].as_u64()), (StatusCode::OK, Some(1000)));
    assert_eq!(server.settle_viewer("p-svc", 2000).await, 2000);
    let rl = server.settle_viewer("p-rl", 500).await;
    assert!((500..510).contains(&rl), "{rl}");
}

#[tokio::test]
async fn post_applies_skew_correction_with_the_injected_clock() {
    let (clock, cell) = fixed_clock(NOW);
    let server = start(config(), Some(clock)).await;
    let url = server.http_url();
    let body = batch([
        ev("viewstart", 10_000, "p-skew"),
        chat(4_102_444_800_000, "p-skew"),
    ]);
    let (s, _) = post(&url, body, "application/json", None).await;
    assert_eq!(s, StatusCode::OK);
    cell.store(NOW + 10_000, std::sync::atomic::Ordering::SeqCst);
    let (s, _) = post(
        &url,
        ev("heartbeat", 20_000, "p-skew"),
        "application/json",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(server.settle_viewer("p-skew", 3).await, 3);
    let ts: Vec<i64> = server
        .events()
        .iter()
        .filter(|e| e.viewer.as_str() == "p-skew")
        .map(|e| e.ts)
        .collect();
    assert_eq!(ts, vec![NOW, NOW, NOW + 10_000]);
}
