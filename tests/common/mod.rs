//! Shared helpers of the end-to-end tests: an in-process server on 127.0.0.1:0 with an
//! injectable clock, and a small HTTP client.

#![allow(dead_code)]

pub mod clickhouse;
pub mod compose;
pub mod conformance;
pub mod content;
pub mod distinct;
pub mod multiday;
pub mod ports;
pub mod reference;
pub mod trace;

use pulse::Config;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-trusted-token";
/// The `admin_token` of [`config`]: [`get`] sends it, since the analytics routes need a
/// token (issue 4).
pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct Server {
    pub addr: SocketAddr,
    pub clock: Arc<AtomicI64>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub dir: std::path::PathBuf,
}

pub fn config(dir: &std::path::Path) -> Config {
    let mut cfg = Config {
        data_dir: dir.to_path_buf(),
        media_dir: dir.join("media"),
        ..Config::default()
    };
    cfg.ingest.trusted_token = Some(TOKEN.into());
    cfg.admin_token = ADMIN_TOKEN.into();
    cfg
}

pub async fn start(cfg: Config, start_clock: i64) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let clock = Arc::new(AtomicI64::new(start_clock));
    let c = clock.clone();
    let shutdown = CancellationToken::new();
    let dir = cfg.data_dir.clone();
    let task = tokio::spawn(pulse::serve::run(
        listener,
        cfg,
        shutdown.clone(),
        Arc::new(move || c.load(Ordering::SeqCst)),
    ));
    Server {
        addr,
        clock,
        shutdown,
        task,
        dir,
    }
}

impl Server {
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task
            .await
            .expect("join")
            .expect("server stopped cleanly");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        get(&self.url(path)).await
    }

    pub async fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("JSON answer")
    }
}

/// GET with the admin token of [`config`].
pub async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(url)
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("HTTP GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// Polls the series at `url` until it has points and every one is final (at most
/// `secs`); on timeout, the last answer.
pub async fn wait_series_final(url: &str, secs: u64) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (s, body) = get(url).await;
        let done = s == 200
            && serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["points"].as_array().cloned())
                .is_some_and(|p| !p.is_empty() && p.iter().all(|x| x["final"] == true));
        if done {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls until `done` holds for the JSON at `path` (at most `secs`).
pub async fn wait_for(
    server: &Server,
    path: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, body) = server.get(path).await;
        if status == 200 {
            let v: Value = serde_json::from_str(&body).expect("JSON");
            if done(&v) {
                return v;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting on {path}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-12)
}

/// Reads one Prometheus counter/gauge value (summing its label sets) from /metrics text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
