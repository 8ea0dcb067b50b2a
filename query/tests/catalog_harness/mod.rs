//! Test harness of the catalog suite: a throwaway Postgres (initdb into a temp dir,
//! free port, run as the `postgres` user when we are root, stopped on drop), a
//! catalog per scenario on SQLite or Postgres, the catalog routes on 127.0.0.1:0, and
//! a small HLS VOD made with ffmpeg's test source.

#![allow(dead_code)]

pub mod pg;
/// The workspace tests' port picker: ports below the kernel's ephemeral range, so an
/// outgoing connection cannot take one between the pick and the child's bind.
#[path = "../../../tests/common/ports.rs"]
pub mod ports;

use pulse_query::catalog::{Catalog, CatalogConfig, Secrets, open::open};
use pulse_query::media::MediaStore;
use pulse_query::{CatalogState, catalog_router};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const ADMIN: &str = "admin-token-for-tests";
pub const SECRET: &str = "webhook-secret-for-tests";

/// Where a scenario's catalog lives.
pub enum Backend<'a> {
    Sqlite,
    Postgres(&'a pg::Postgres),
}

static DB_SEQ: AtomicU32 = AtomicU32::new(0);

/// One scenario's world: a catalog, its media dir, and the routes served.
pub struct World {
    pub catalog: Catalog,
    pub media: MediaStore,
    pub url: String,
    pub catalog_url: String,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
    stop: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
    pub events: pulse_schemas::handoff::EventReceiver,
}

pub fn config() -> CatalogConfig {
    CatalogConfig {
        min_vod_duration_s: 60.0,
        media_poll_ms: 50,
        max_body_bytes: 4096,
        ..CatalogConfig::default()
    }
}

impl World {
    pub async fn new(backend: &Backend<'_>, cfg: CatalogConfig) -> World {
        World::with_media(backend, cfg, None).await
    }

    /// A world whose media go to `media` (default: a local directory in the world's dir).
    pub async fn with_media(
        backend: &Backend<'_>,
        cfg: CatalogConfig,
        media: Option<MediaStore>,
    ) -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog_url = match backend {
            Backend::Sqlite => format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("catalog.sqlite").display()
            ),
            Backend::Postgres(pg) => {
                let n = DB_SEQ.fetch_add(1, Ordering::SeqCst);
                pg.create_db(&format!("t{}_{n}", std::process::id())).await
            }
        };
        let catalog = open_catalog(&catalog_url, cfg).await;
        let media = match media {
            Some(m) => m,
            None => MediaStore::local(&dir.path().join("media"), "/media").expect("media"),
        };
        let (tx, events) = pulse_schemas::handoff::bounded(64);
        let state = CatalogState::new(catalog.clone(), media.clone(), Some(tx));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = CancellationToken::new();
        let s2 = stop.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, catalog_router(state))
                .with_graceful_shutdown(async move { s2.cancelled().await })
                .await
                .expect("serve");
        });
        World {
            catalog,
            media,
            url,
            catalog_url,
            dir,
            http: reqwest::Client::new(),
            stop,
            server: Some(server),
            events,
        }
    }

    /// Another catalog handle on the same database with other settings.
    pub async fn reopen(&self, cfg: CatalogConfig) -> Catalog {
        open_catalog(&self.catalog_url, cfg).await
    }

    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(s) = self.server.take() {
            let _ = s.await;
        }
        self.catalog.close().await;
    }

    pub fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.url));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends and returns (status, JSON body or Null).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut r = self.req(method, path, token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Posts a signed webhook body.
    pub async fn webhook(
        &self,
        path: &str,
        body: &serde_json::Value,
        secret: &str,
    ) -> (u16, serde_json::Value) {
        let raw = serde_json::to_vec(body).expect("json");
        self.webhook_raw(path, raw, secret).await
    }

    pub async fn webhook_raw(
        &self,
        path: &str,
        raw: Vec<u8>,
        secret: &str,
    ) -> (u16, serde_json::Value) {
        let sig = pulse_query::catalog::webhooks::sign(secret, &raw);
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .header("x-pulse-signature", sig)
            .body(raw)
            .send()
            .await
            .expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

pub async fn open_catalog(url: &str, cfg: CatalogConfig) -> Catalog {
    open(
        url,
        cfg,
        Secrets {
            admin_token: ADMIN.into(),
            webhook_secret: SECRET.into(),
        },
    )
    .await
    .expect("open catalog")
}

/// Makes a `secs`-second 320x240 25 fps HLS VOD (keyframe every 2 s, 2 s segments)
/// with ffmpeg's test sources; returns the playlist path.
pub fn make_hls(dir: &Path, secs: u32) -> PathBuf {
    let out = dir.join("hls");
    std::fs::create_dir_all(&out).expect("mkdir");
    let playlist = out.join("index.m3u8");
    let status = std::process::Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc=size=320x240:rate=25:duration={secs}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={secs}"))
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-keyint_min",
            "50",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_playlist_type",
            "vod",
        ])
        .arg(&playlist)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not make the test HLS");
    playlist
}

/// Duration of a media file (ffprobe).
pub fn probe_duration(file: &Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("duration")
}

/// Width x height of the first video stream (ffprobe decodes the header).
pub fn probe_size(file: &Path) -> (u32, u32) {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0:s=x",
        ])
        .arg(file)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .trim()
        .split('x')
        .map(|p| p.parse::<u32>().expect("int"));
    (it.next().expect("w"), it.next().expect("h"))
}
