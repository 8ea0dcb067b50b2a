//! The catalog suite: every scenario runs on SQLite and on a throwaway Postgres (one
//! data-driven suite: `suite` lists the scenarios, each test runs them on one backend).

mod catalog_harness;

use catalog_harness::{ADMIN, Backend, World};
use pulse_query::catalog::now_ms;
use pulse_schemas::Id;
use pulse_schemas::access::{AccessControl, LifecycleChange, LifecycleSource, StreamStatus};
use reqwest::Method;
use serde_json::{Value, json};

async fn suite(backend: Backend<'_>) {
    scenarios::platform::run(&backend).await;
    scenarios::archival::run(&backend).await;
    scenarios::vods::run(&backend).await;
    scenarios::clips::run(&backend).await;
    scenarios::crash::run(&backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_suite_on_sqlite() {
    suite(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_suite_on_postgres() {
    let pg = catalog_harness::pg::Postgres::start().await;
    suite(Backend::Postgres(&pg)).await;
}

fn id(s: &str) -> Id {
    Id::parse(s).expect("id")
}

/// Tokens of the usual cast: alice owns c1, bob owns c2, vic is a viewer.
pub struct Cast {
    pub alice: String,
    pub bob: String,
    pub vic: String,
}

async fn cast(w: &World) -> Cast {
    let mut tokens = Vec::new();
    for (user, role) in [("alice", "creator"), ("bob", "creator"), ("vic", "viewer")] {
        let (st, body) = w
            .call(
                Method::POST,
                "/api/tokens",
                Some(ADMIN),
                Some(json!({"user": user, "role": role})),
            )
            .await;
        assert_eq!(st, 201, "{body}");
        tokens.push(body["token"].as_str().expect("token").to_owned());
    }
    for (ch, owner) in [("c1", "alice"), ("c2", "bob")] {
        let (st, body) = w
            .call(
                Method::PUT,
                &format!("/api/channels/{ch}"),
                Some(ADMIN),
                Some(json!({"name": ch, "owner": owner})),
            )
            .await;
        assert_eq!(st, 200, "{body}");
    }
    let vic = tokens.pop().expect("vic");
    let bob = tokens.pop().expect("bob");
    let alice = tokens.pop().expect("alice");
    Cast { alice, bob, vic }
}

/// Creates stream `s` on `channel` (as alice/bob's token) and returns its key.
async fn stream(w: &World, token: &str, s: &str, channel: &str, extra: Value) -> String {
    let mut body = json!({"channel": channel, "title": format!("stream {s}")});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let (st, resp) = w
        .call(
            Method::PUT,
            &format!("/api/streams/{s}"),
            Some(token),
            Some(body),
        )
        .await;
    assert_eq!(st, 201, "{resp}");
    resp["stream_key"].as_str().expect("key").to_owned()
}

/// LIVE at `live_at`, ENDED at `ended_at` through the AccessControl contract.
async fn live_then_end(w: &World, s: &str, channel: &str, live_at: i64, ended_at: i64) {
    for (status, ts) in [
        (StreamStatus::Live, live_at),
        (StreamStatus::Ended, ended_at),
    ] {
        w.catalog
            .record_lifecycle(LifecycleChange {
                stream: id(s),
                channel: id(channel),
                status,
                ts,
                source: LifecycleSource::Encoder,
            })
            .await
            .expect("lifecycle");
    }
}

/// The recording-ready webhook body for `s`.
fn ready_body(s: &str, hls: &str, duration: f64) -> Value {
    json!({"type": "video.ready", "stream": s, "hls_url": hls, "mp4_url": "", "duration_s": duration,
           "size_bytes": 123456, "resolution": "320x240", "ts": now_ms()})
}

/// The VOD of stream `s` (as the admin sees it).
async fn vod_of(w: &World, s: &str) -> Value {
    let vod = w
        .catalog
        .vod_of_stream(s)
        .await
        .expect("read")
        .expect("a VOD");
    let (st, body) = w
        .call(
            Method::GET,
            &format!("/api/vods/{}", vod.id),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(st, 200, "{body}");
    body
}

/// Polls until the async condition holds (media jobs run in the background), at most
/// `secs` seconds.
macro_rules! eventually {
    ($secs:expr, $what:expr, $check:expr) => {{
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs($secs);
        loop {
            if $check {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {}",
                $what
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }};
}

fn err_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

mod scenarios;
