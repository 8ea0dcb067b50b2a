//! Issue 7: the creator dashboard in a real headless Chromium (Debian's `chromium`,
//! driven by playwright-core from `node --test dashboards/tests/`), against a real
//! `pulse serve` holding a replayed trace, with a scripted encoder for the live panel.
//!
//! This test owns the server: it replays a generated trace (times from 50 minutes ago,
//! so it is all closed and final) into a temporary data directory, checks the API's
//! stream summary against the independent computation of `common::reference` (so the
//! tiles the browser compares with the API are right too), serves on 127.0.0.1:0 with
//! the system clock, and runs the Node tests with the address in `PULSE_*` variables.
//! A failing Node test fails this test. Screenshots go to `target/dashboard-screenshots/`.
//! Node, npm and Chromium are installed by `scripts/need-chromium.sh` (never skipped).

mod common;

use pulse_schemas::{Id, Role, StaticAccess};
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "t-dash-creator";
const CHANNEL: &str = "chan-a";
const STREAM: &str = "stream-a1";
const ENCODER_STREAM: &str = "stream-live";
const ENCODER_KEY: &str = "key-live";
/// The admin token of `common::config` (which `common::get` sends).
const ADMIN: &str = common::ADMIN_TOKEN;
const TICK: i64 = 5000;

fn id(s: &str) -> Id {
    Id::parse(s).expect("id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    for (program, why) in [("node", "Node.js 20+"), ("chromium", "Debian's chromium")] {
        let found = Command::new(program).arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "{program} not found: install {why} (scripts/need-chromium.sh)"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let now = chrono::Utc::now().timestamp_millis();
    let start = (now - 50 * 60_000) / 60_000 * 60_000;
    let trace = common::trace::generate(21, start, 500, 30 * 60_000);
    // Beside the streams: views, likes, shares and clickthroughs of a VOD and clips of
    // chan-a in the same hour (issue 4's content events, without its older stream), so
    // the top VODs and top clips tables have rows to compare with the API.
    let mut events = trace.events.clone();
    events.extend(
        common::content::events(start)
            .into_iter()
            .filter(|e| e.get("vod").is_some() || e.get("clip").is_some()),
    );
    events.sort_by_key(|e| e["ts"].as_i64().unwrap_or(0));
    let file = dir.path().join("trace.ndjson");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).expect("trace file"));
        for e in &events {
            writeln!(f, "{e}").expect("write trace");
        }
    }
    let mut cfg = common::config(dir.path());
    cfg.admin_token = ADMIN.into();
    let replay_cfg = cfg.clone();
    let report =
        tokio::task::spawn_blocking(move || pulse::replay::replay_file(&replay_cfg, &file))
            .await
            .expect("join")
            .expect("replay");
    assert_eq!(report.rejected, 0, "{:?}", report.reasons);

    let access = Arc::new(
        StaticAccess::new()
            .with_token(TOKEN, id("dash"), Role::Creator)
            .with_channel(id(CHANNEL), id("dash"))
            .with_channel(id("chan-b"), id("dash"))
            .with_stream_key(id(ENCODER_STREAM), id(CHANNEL), ENCODER_KEY),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(pulse::serve::run_with_access(
        listener,
        cfg,
        shutdown.clone(),
        pulse_aggregator::runtime::system_clock(),
        access,
    ));
    let base = format!("http://{addr}");
    for _ in 0..200 {
        if common::get(&format!("{base}/readyz")).await.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The platform mirrors its user and channels into the catalog (PROTOCOL.md §4).
    let http = reqwest::Client::new();
    let put = |path: String, body: serde_json::Value| {
        http.put(format!("{base}{path}"))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
    };
    let r = put(
        "/api/users/dash".into(),
        serde_json::json!({"name": "Dash"}),
    )
    .await
    .expect("put user");
    assert!(r.status().is_success(), "{:?}", r.text().await);
    for c in [CHANNEL, "chan-b"] {
        let r = put(
            format!("/api/channels/{c}"),
            serde_json::json!({"name": format!("Channel {c}"), "owner": "dash"}),
        )
        .await
        .expect("put channel");
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }

    // The numbers the tiles must show are the API's; the API's are the trace's.
    let want = common::reference::expected(&trace.events, STREAM, TICK);
    let (status, body) = common::get(&format!("{base}/api/analytics/streams/{STREAM}")).await;
    assert_eq!(status, 200, "{body}");
    let summary: serde_json::Value = serde_json::from_str(&body).expect("summary JSON");
    let m = &summary["metrics"];
    assert_eq!(m["peak_concurrent"], want.peak(), "{summary}");
    assert_eq!(m["views"], want.views, "{summary}");
    assert_eq!(m["unique_viewers"], want.unique_viewers, "{summary}");
    assert_eq!(m["chat_messages"], want.chat, "{summary}");
    assert_eq!(m["new_followers"], want.followers, "{summary}");
    assert!(
        want.peak() > 0 && want.views > 10,
        "the trace has an audience"
    );

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shots = root.join("target/dashboard-screenshots");
    let to = (trace.end / 60_000 + 1) * 60_000;
    let mut node = tokio::process::Command::new("node");
    node.args([
        "--test",
        "--test-concurrency=1",
        "tests/analytics.test.mjs",
        "tests/live.test.mjs",
    ])
    .current_dir(root.join("dashboards"))
    .env("PULSE_URL", &base)
    .env("PULSE_TOKEN", TOKEN)
    .env("PULSE_CHANNEL", CHANNEL)
    .env("PULSE_IDLE_CHANNEL", "chan-b")
    .env("PULSE_STREAM", STREAM)
    .env("PULSE_FROM", start.to_string())
    .env("PULSE_TO", to.to_string())
    .env("PULSE_ENCODER_STREAM", ENCODER_STREAM)
    .env("PULSE_ENCODER_KEY", ENCODER_KEY)
    .env("PULSE_SCREENSHOTS", &shots)
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(300), node.output())
        .await
        .expect("the browser tests finish within 5 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    shutdown.cancel();
    server.await.expect("join").expect("server stopped cleanly");
    assert!(
        out.status.success(),
        "browser tests failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for shot in [
        "analytics-1280.png",
        "analytics-375.png",
        "live-1280.png",
        "live-375.png",
    ] {
        assert!(shots.join(shot).is_file(), "screenshot {shot} saved");
    }
}
