//! Clip generation benchmark (issue 6): a 30 s clip from a one-hour 1080p HLS VOD, and
//! clips per minute through the worker pool.
//!
//! `cargo run -p pulse-query --example clip_bench -- [DIR] [CLIPS]`
//! makes (once, in DIR, default /tmp/pulse-clip-bench) 60 s of 1080p30 x264 (keyframe
//! every 2 s) and from it, by stream copy, a one-hour HLS VOD with 2 s segments and
//! continuous timestamps; then
//! times the cut of [1800.5, 1830.5) (re-encode) and [1800, 1830) (keyframes: stream copy),
//! the smart cut of [1800.5, 1830.5) (copy the whole segments, re-encode the edges), and
//! CLIPS (default 8) 30 s clips queued at once through a pool of `media_workers` (2),
//! which cut by the smart cut.

use pulse_query::catalog::clips::NewClip;
use pulse_query::catalog::{CatalogConfig, Secrets, now_ms, open::open};
use pulse_query::media::ffmpeg::{self, CutMode};
use pulse_query::media::{MediaStore, spawn_pool};
use pulse_schemas::Id;
use pulse_schemas::access::{
    AccessControl, LifecycleChange, LifecycleSource, Principal, Role, StreamStatus,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

fn make_source(dir: &Path) -> PathBuf {
    let hour = dir.join("hour.m3u8");
    if hour.exists() {
        return hour;
    }
    std::fs::create_dir_all(dir).expect("dir");
    let minute = dir.join("minute.mp4");
    let st = std::process::Command::new("ffmpeg")
        .args([
            "-y",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x1080:rate=30:duration=60",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=60"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-b:v",
            "6M",
            "-g",
            "60",
            "-keyint_min",
            "60",
        ])
        .args([
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ])
        .arg(&minute)
        .status()
        .expect("ffmpeg");
    assert!(st.success(), "making the 1080p source failed");
    // One hour with continuous timestamps: the concat demuxer plays the minute 60 times
    // and offsets each pass, stream copy (no re-encode) into 2 s HLS segments (~2.7 GB).
    let list = dir.join("hour.txt");
    let mut text = String::new();
    for _ in 0..60 {
        let _ = writeln!(text, "file '{}'", minute.display());
    }
    std::fs::write(&list, text).expect("concat list");
    let st = std::process::Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-f", "concat", "-safe", "0", "-i"])
        .arg(&list)
        .args([
            "-c",
            "copy",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_playlist_type",
            "vod",
        ])
        .arg(&hour)
        .status()
        .expect("ffmpeg");
    assert!(st.success(), "making the one-hour HLS VOD failed");
    hour
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(
        args.get(1)
            .cloned()
            .unwrap_or_else(|| "/tmp/pulse-clip-bench".into()),
    );
    let clips: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    let t = Instant::now();
    let src = make_source(&dir);
    println!(
        "source ready in {:.1} s: {}",
        t.elapsed().as_secs_f64(),
        src.display()
    );
    let src_s = src.display().to_string();
    let dur = ffmpeg::duration("ffprobe", &src_s).await.expect("duration");
    println!("source duration {dur:.1} s");
    for (start, label) in [(1800.5, "off keyframes"), (1800.0, "on keyframes")] {
        let t = Instant::now();
        let keys = ffmpeg::keyframes(&src_s).await.expect("keys");
        let mode = ffmpeg::cut_mode(&keys, start, start + 30.0);
        let out = dir.join(format!("clip-{start}.mp4"));
        ffmpeg::cut("ffmpeg", &src_s, start, start + 30.0, mode, &out)
            .await
            .expect("cut");
        let got = ffmpeg::duration("ffprobe", &out.display().to_string())
            .await
            .expect("d");
        println!(
            "30 s clip {label} ({}): {:.2} s, clip lasts {got:.2} s",
            if mode == CutMode::StreamCopy {
                "stream copy"
            } else {
                "re-encode"
            },
            t.elapsed().as_secs_f64()
        );
    }
    // The smart cut of the same off-keyframe range (what the workers do now).
    let t = Instant::now();
    let (start, end) = (1800.5, 1830.5);
    let scratch = dir.join("smart");
    std::fs::create_dir_all(&scratch).expect("dir");
    let prep = pulse_query::media::smart_cut::prepare("ffprobe", &src_s, start, end)
        .await
        .expect("prepare")
        .expect("a smart-cut plan");
    let out = dir.join("clip-smart.mp4");
    pulse_query::media::smart_cut::cut("ffmpeg", &src_s, &prep, start, end, &scratch, &out)
        .await
        .expect("smart cut");
    let secs = t.elapsed().as_secs_f64();
    let got = ffmpeg::duration("ffprobe", &out.display().to_string())
        .await
        .expect("d");
    let decode = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&out)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg decode");
    println!(
        "30 s clip off keyframes (smart cut: {} copied segments, edges {:?} / {:?}): {secs:.2} s, \
         clip lasts {got:.3} s, full decode {} ({} bytes of errors)",
        prep.plan.middle.len(),
        prep.plan.head,
        prep.plan.tail,
        if decode.status.success() {
            "ok"
        } else {
            "FAILED"
        },
        decode.stderr.len()
    );
    // The pool: CLIPS clips queued at once, off keyframes (smart cut), 2 workers.
    let work = dir.join(format!("pool-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("dir");
    let url = format!("sqlite://{}?mode=rwc", work.join("c.sqlite").display());
    let catalog = open(&url, CatalogConfig::default(), Secrets::default())
        .await
        .expect("open");
    let id = |s: &str| Id::parse(s).expect("id");
    catalog
        .put_channel(&id("c1"), "c1", &id("u1"))
        .await
        .expect("channel");
    let now = now_ms();
    for (status, ts) in [
        (StreamStatus::Live, now - 3_700_000),
        (StreamStatus::Ended, now),
    ] {
        catalog
            .record_lifecycle(LifecycleChange {
                stream: id("s1"),
                channel: id("c1"),
                status,
                ts,
                source: LifecycleSource::Encoder,
            })
            .await
            .expect("lifecycle");
    }
    let rec = pulse_query::catalog::vods::RecordingReady {
        hls_url: src_s.clone(),
        mp4_url: String::new(),
        duration_s: dur,
        size_bytes: 0,
        resolution: "1920x1080".into(),
    };
    let vod = catalog
        .recording_ready("s1", &rec)
        .await
        .expect("ready")
        .expect("vod");
    let who = Principal {
        user: id("u1"),
        role: Role::Creator,
    };
    let media = MediaStore::local(&work.join("media"), "/media").expect("media");
    let t = Instant::now();
    let mut ids = Vec::new();
    for i in 0..clips {
        let start = 60.5 + 300.0 * i as f64;
        let new = NewClip {
            stream: None,
            vod: Some(vod.id.clone()),
            start: Some(start),
            end: Some(start + 30.0),
            title: String::new(),
            description: String::new(),
        };
        ids.push(catalog.create_clip(&who, &new).await.expect("clip").id);
    }
    let stop = CancellationToken::new();
    let pool = spawn_pool(catalog.clone(), media, stop.clone());
    loop {
        let mut done = 0;
        for k in &ids {
            let c = catalog.clip_row(k).await.expect("clip");
            assert_ne!(c.status, "FAILED", "{}", c.failure);
            done += usize::from(c.status == "READY");
        }
        if done == ids.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{clips} clips of 30 s (off keyframes: smart cut) through {} workers: {secs:.1} s = {:.2} clips/min",
        catalog.config().media_workers,
        clips as f64 * 60.0 / secs
    );
    pool.shutdown().await;
    catalog.close().await;
    let _ = std::fs::remove_dir_all(&work);
}
