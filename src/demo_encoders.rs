//! The encoders of `pulse serve --demo`: one WebSocket per demo stream to this very
//! server's `/v1/encoder`, authenticated with the demo stream keys ([`demo_access`]),
//! sending a report a second. Now and then a stream's bitrate sags (to 55 % of target,
//! or to 30 % for a critical) for about 25 s, so the creator live feed shows alerts
//! firing and resolving. On shutdown each sends `{"type":"end"}` (the stream ENDS).

use futures_util::SinkExt;
use pulse_schemas::{Id, Role, StaticAccess};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Token of the demo creator, who owns every demo channel.
pub const DEMO_CREATOR_TOKEN: &str = "demo-creator";

/// The stream key of a demo stream.
pub fn demo_key(stream: &str) -> String {
    format!("demo-key-{stream}")
}

/// `base` plus the demo channels (owned by the demo creator) and their stream keys.
pub fn demo_access(mut base: StaticAccess) -> StaticAccess {
    let owner = Id::new_unchecked("demo-creator");
    base = base.with_token(DEMO_CREATOR_TOKEN, owner.clone(), Role::Creator);
    for (channel, stream) in crate::demo::DEMO_STREAMS {
        base = base
            .with_channel(Id::new_unchecked(channel), owner.clone())
            .with_stream_key(
                Id::new_unchecked(stream),
                Id::new_unchecked(channel),
                &demo_key(stream),
            );
    }
    base
}

/// Writes the demo's creator, channels and streams into the catalog of `cfg` (what a
/// platform does through `PUT /api/channels/:id` and `PUT /api/streams/:id`), so the
/// demo's lifecycle changes are recorded there, its streams show LIVE/ENDED and its
/// channels' VOD and clip lists answer. Idempotent: a restart updates the same rows.
pub async fn register_in_catalog(cfg: &crate::config::Config) -> anyhow::Result<()> {
    let catalog = crate::serve::open_catalog(cfg).await?;
    let owner = Id::new_unchecked("demo-creator");
    let admin = pulse_schemas::Principal {
        user: Id::new_unchecked("demo-platform"),
        role: Role::Admin,
    };
    for (channel, stream) in crate::demo::DEMO_STREAMS {
        let channel = Id::new_unchecked(channel);
        catalog
            .put_channel(&channel, channel.as_str(), &owner)
            .await?;
        let input = pulse_query::catalog::streams::StreamInput {
            channel,
            title: format!("{stream} (demo)"),
            category: "Demo".into(),
            playback_url: String::new(),
            is_test: true,
        };
        catalog
            .put_stream(&admin, &Id::new_unchecked(stream), &input)
            .await?;
    }
    catalog.close().await;
    Ok(())
}

/// Runs one simulated encoder per demo stream until `shutdown`.
pub async fn run(server: SocketAddr, seed: u64, shutdown: CancellationToken) {
    let tracker = TaskTracker::new();
    for (i, (_, stream)) in crate::demo::DEMO_STREAMS.iter().enumerate() {
        tracker.spawn(encoder(
            server,
            stream,
            seed.wrapping_add(i as u64),
            shutdown.clone(),
        ));
    }
    tracker.close();
    tracker.wait().await;
}

async fn encoder(server: SocketAddr, stream: &'static str, seed: u64, shutdown: CancellationToken) {
    // Streams go live one after another (as real ones do), not in the same millisecond:
    // SQLite refuses a write transaction that collides with another (`database is
    // locked`) instead of waiting for it.
    let index = crate::demo::DEMO_STREAMS
        .iter()
        .position(|&(_, s)| s == stream)
        .unwrap_or(0);
    tokio::select! {
        () = shutdown.cancelled() => return,
        () = tokio::time::sleep(Duration::from_millis(400 * index as u64)) => {}
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let target = [6000, 4500, 3500, 8000, 2500][rng.usize(0..5)];
    let url = format!(
        "ws://{server}/v1/encoder?stream={stream}&key={}",
        demo_key(stream)
    );
    let mut ws = match tokio_tungstenite::connect_async(url).await {
        Ok((ws, _)) => ws,
        Err(e) => {
            tracing::warn!(stream, error = %e, "demo encoder could not connect");
            return;
        }
    };
    let mut sag_left = 0u32;
    let mut sag_level = 1.0;
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                let _ = ws.send(Message::Text(r#"{"type":"end"}"#.into())).await;
                let _ = ws.close(None).await;
                return;
            }
            _ = every.tick() => {}
        }
        if sag_left == 0 && rng.u32(0..180) == 0 {
            sag_left = 25;
            sag_level = if rng.bool() { 0.55 } else { 0.3 };
        }
        let level = if sag_left > 0 {
            sag_left -= 1;
            sag_level
        } else {
            1.0
        };
        let noise = 0.97 + rng.f64() * 0.06;
        let report = json!({
            "ts": chrono::Utc::now().timestamp_millis(),
            "bitrate_kbps": (target as f64 * level * noise).round() as i64,
            "target_bitrate_kbps": target,
            "fps": if level < 0.5 { 48 } else { 60 },
            "target_fps": 60,
            "width": 1920, "height": 1080,
            "latency_ms": 900 + rng.i64(0..400),
            "packet_loss_pct": (rng.f64() * 0.3 * 100.0).round() / 100.0,
            "dropped_frames": if level < 1.0 { rng.i64(0..20) } else { 0 },
            "keyframe_interval_s": 2,
        });
        if ws
            .send(Message::Text(report.to_string().into()))
            .await
            .is_err()
        {
            return;
        }
    }
}
