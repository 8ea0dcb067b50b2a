//! Media jobs survive a crash (the worker is killed mid-cut, a new pool finishes the job
//! once its lease passes) and fail with their reason after the bounded retries.

use crate::catalog_harness::{Backend, SECRET, World, config, make_hls, probe_duration};
use crate::{cast, live_then_end, ready_body, stream};
use pulse_query::catalog::{CatalogConfig, now_ms};
use pulse_query::media::spawn_pool;
use reqwest::Method;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use tokio_util::sync::CancellationToken;

pub async fn run(backend: &Backend<'_>) {
    let cfg = CatalogConfig {
        media_max_attempts: 2,
        ..config()
    };
    let w = World::new(backend, cfg.clone()).await;
    let c = cast(&w).await;
    let hls = make_hls(w.dir.path(), 12);
    for (s, url) in [
        ("s1", hls.display().to_string()),
        ("gone", "/nonexistent/index.m3u8".to_string()),
    ] {
        stream(&w, &c.alice, s, "c1", json!({})).await;
        let now = now_ms();
        live_then_end(&w, s, "c1", now - 70_000, now).await;
        let (st, b) = w
            .webhook(
                "/api/webhooks/recording-ready",
                &ready_body(s, &url, 12.0),
                SECRET,
            )
            .await;
        assert_eq!(st, 200, "{b}");
    }
    let vod = w
        .catalog
        .vod_of_stream("s1")
        .await
        .expect("r")
        .expect("vod")
        .id;
    let gone = w
        .catalog
        .vod_of_stream("gone")
        .await
        .expect("r")
        .expect("vod")
        .id;
    // Only the clip jobs matter here: drop the VOD thumbnail jobs.
    sqlx::query("DELETE FROM media_jobs")
        .execute(w.catalog.pool())
        .await
        .expect("clear");

    // An ffmpeg that takes its time, so the worker can be killed mid-job.
    let slow = w.dir.path().join("slow-ffmpeg.sh");
    std::fs::write(&slow, "#!/bin/sh\nsleep 3\nexec ffmpeg \"$@\"\n").expect("write");
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let crashing = w
        .reopen(CatalogConfig {
            ffmpeg: slow.display().to_string(),
            media_lease_s: 1,
            media_workers: 1,
            ..cfg.clone()
        })
        .await;
    let (st, b) = w
        .call(
            Method::POST,
            "/api/clips",
            Some(&c.vic),
            Some(json!({"vod": vod, "start": 1.3, "end": 7.7})),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let k = b["id"].as_str().expect("id").to_owned();
    let job = w.catalog.jobs_of(&k).await.expect("jobs")[0].0.clone();
    let pool = spawn_pool(crashing.clone(), w.media.clone(), CancellationToken::new());
    eventually!(
        30,
        "the job RUNNING",
        async {
            w.catalog
                .job_state(&job)
                .await
                .expect("state")
                .expect("job")
                .0
                == "RUNNING"
        }
        .await
    );
    pool.kill().await;
    let (status, attempts, _) = w
        .catalog
        .job_state(&job)
        .await
        .expect("state")
        .expect("job");
    assert_eq!(
        (status.as_str(), attempts),
        ("RUNNING", 1),
        "the crash left the job claimed"
    );
    assert_eq!(
        w.catalog.clip_row(&k).await.expect("clip").status,
        "PROCESSING"
    );

    // "Restart": a new pool takes the job again once its lease has passed.
    let pool = spawn_pool(w.catalog.clone(), w.media.clone(), CancellationToken::new());
    // The worker marks the clip READY, then its job DONE: wait for both.
    eventually!(
        60,
        "the clip READY and its job DONE after the restart",
        async {
            w.catalog.clip_row(&k).await.expect("clip").status == "READY"
                && w.catalog
                    .job_state(&job)
                    .await
                    .expect("state")
                    .expect("job")
                    .0
                    == "DONE"
        }
        .await
    );
    let (status, attempts, _) = w
        .catalog
        .job_state(&job)
        .await
        .expect("state")
        .expect("job");
    // Two attempts: the killed one and the one after the restart (a third when a slow,
    // busy machine lets the lease run out mid-cut; still one clip, still READY).
    assert_eq!(status, "DONE");
    assert!((2..=3).contains(&attempts), "attempts {attempts}");
    let clip = w.catalog.clip_row(&k).await.expect("clip");
    let key = w
        .media
        .key_of(&clip.clip_url)
        .expect("our media")
        .to_owned();
    let bytes = w.media.get(&key).await.expect("get").expect("file");
    let file = w.dir.path().join("resumed.mp4");
    std::fs::write(&file, &bytes).expect("write");
    let d = probe_duration(&file);
    assert!(
        (d - 6.4).abs() <= 0.1,
        "resumed clip lasts {d} s, asked 6.4 s"
    );

    // A source that cannot be read: retried, then FAILED with ffmpeg's reason.
    let (st, b) = w
        .call(
            Method::POST,
            "/api/clips",
            Some(&c.vic),
            Some(json!({"vod": gone, "start": 1.0, "end": 7.0})),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let kf = b["id"].as_str().expect("id").to_owned();
    eventually!(
        60,
        "the broken clip FAILED",
        async { w.catalog.clip_row(&kf).await.expect("clip").status == "FAILED" }.await
    );
    let failed = w.catalog.clip_row(&kf).await.expect("clip");
    assert!(failed.failure.contains("nonexistent"), "{}", failed.failure);
    let fjob = w.catalog.jobs_of(&kf).await.expect("jobs")[0].0.clone();
    let (status, attempts, _) = w
        .catalog
        .job_state(&fjob)
        .await
        .expect("state")
        .expect("job");
    assert_eq!(
        (status.as_str(), attempts),
        ("FAILED", 2),
        "bounded retries"
    );
    // Regenerating queues it again.
    let (st, b) = w
        .call(
            Method::POST,
            &format!("/api/clips/{kf}/generate"),
            Some(&c.vic),
            None,
        )
        .await;
    assert_eq!((st, b["status"].clone()), (202, json!("PROCESSING")), "{b}");
    pool.shutdown().await;
    crashing.close().await;
    w.shutdown().await;
}
