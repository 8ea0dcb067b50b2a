//! Lifecycle → VOD PROCESSING → signed recording webhook → READY; forged, stale and
//! replayed webhooks change nothing; the retention job.

use crate::catalog_harness::{ADMIN, Backend, SECRET, World, config};
use crate::{cast, err_code, live_then_end, ready_body, stream, vod_of};
use pulse_query::catalog::now_ms;
use pulse_query::media::retention;
use pulse_schemas::access::AccessControl;
use reqwest::Method;
use serde_json::json;

pub async fn run(backend: &Backend<'_>) {
    let w = World::new(backend, config()).await;
    let c = cast(&w).await;
    stream(&w, &c.alice, "s1", "c1", json!({})).await;
    stream(&w, &c.alice, "short", "c1", json!({})).await;
    let now = now_ms();

    // 120 s live → a VOD in PROCESSING; 30 s live (under the 60 s minimum) → none.
    live_then_end(&w, "s1", "c1", now - 120_000, now).await;
    live_then_end(&w, "short", "c1", now - 30_000, now).await;
    assert!(
        w.catalog
            .vod_of_stream("short")
            .await
            .expect("read")
            .is_none()
    );
    let vod = vod_of(&w, "s1").await;
    assert_eq!(vod["status"], "PROCESSING");
    assert_eq!(vod["channel"], "c1");
    assert_eq!(vod["title"], "stream s1");
    let vid = vod["id"].as_str().expect("id").to_owned();
    // Recording the same changes again creates nothing more.
    live_then_end(&w, "s1", "c1", now - 120_000, now).await;
    let n: i64 = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM vods")
        .fetch_one(w.catalog.pool())
        .await
        .expect("count");
    assert_eq!(n, 1);
    // Not READY: hidden from everyone but its creator and admins.
    for token in [None, Some(c.vic.as_str()), Some(c.bob.as_str())] {
        let (st, _) = w
            .call(Method::GET, &format!("/api/vods/{vid}"), token, None)
            .await;
        assert_eq!(st, 404);
    }
    let (st, _) = w
        .call(
            Method::GET,
            &format!("/api/vods/{vid}"),
            Some(&c.alice),
            None,
        )
        .await;
    assert_eq!(st, 200);

    // A forged signature (another secret) and a stale ts are refused and change nothing.
    let body = ready_body("s1", "https://cdn.example/s1/index.m3u8", 118.5);
    let (st, b) = w
        .webhook("/api/webhooks/recording-ready", &body, "not-the-secret")
        .await;
    assert_eq!((st, err_code(&b)), (401, "unauthorized"), "{b}");
    let mut stale = body.clone();
    stale["ts"] = json!(now_ms() - 10 * 60_000);
    let (st, b) = w
        .webhook("/api/webhooks/recording-ready", &stale, SECRET)
        .await;
    assert_eq!(st, 400, "{b}");
    let raw = serde_json::to_vec(&body).expect("json");
    let mut tampered = raw.clone();
    let sig = pulse_query::catalog::webhooks::sign(SECRET, &raw);
    tampered.extend_from_slice(b" ");
    let resp = w
        .http
        .post(format!("{}/api/webhooks/recording-ready", w.url))
        .header("x-pulse-signature", sig)
        .body(tampered)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 401, "a signature over another body");
    assert_eq!(
        vod_of(&w, "s1").await,
        vod,
        "refused webhooks changed the VOD"
    );

    // The signed webhook makes it READY with the recording's facts.
    let (st, b) = w
        .webhook_raw("/api/webhooks/recording-ready", raw.clone(), SECRET)
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["applied"], true);
    let ready = vod_of(&w, "s1").await;
    assert_eq!(ready["status"], "READY");
    assert_eq!(ready["hls_url"], "https://cdn.example/s1/index.m3u8");
    assert_eq!(ready["duration_s"], 118.5);
    assert_eq!(ready["file_size"], 123456);
    assert_eq!(ready["resolution"], "320x240");
    let (st, _) = w
        .call(Method::GET, &format!("/api/vods/{vid}"), None, None)
        .await;
    assert_eq!(st, 200, "a READY public VOD is public");
    // Its thumbnail is queued at 25 % of its length.
    let jobs = w.catalog.jobs_of(&vid).await.expect("jobs");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].1, "vod_thumbnail");
    let at: f64 = sqlx::query_scalar("SELECT at_s FROM media_jobs WHERE target = $1")
        .bind(vid.clone())
        .fetch_one(w.catalog.pool())
        .await
        .expect("at");
    assert!((at - 118.5 / 4.0).abs() < 1e-9, "{at}");
    // A redelivery: 200, nothing changes (no second job either).
    let (st, b) = w
        .webhook_raw("/api/webhooks/recording-ready", raw, SECRET)
        .await;
    assert_eq!((st, b["applied"].clone()), (200, json!(false)), "{b}");
    assert_eq!(vod_of(&w, "s1").await, ready);
    assert_eq!(w.catalog.jobs_of(&vid).await.expect("jobs").len(), 1);
    // A recording for a stream without a VOD is 404.
    let (st, _) = w
        .webhook(
            "/api/webhooks/recording-ready",
            &ready_body("short", "x", 30.0),
            SECRET,
        )
        .await;
    assert_eq!(st, 404);

    // The stream webhook records lifecycle the same way (and is signed too).
    let live = json!({"stream": "s2", "channel": "c1", "status": "LIVE", "ts": now_ms() - 90_000});
    let (st, _) = w.webhook("/api/webhooks/stream", &live, "forged").await;
    assert_eq!(st, 401);
    let (st, b) = w.webhook("/api/webhooks/stream", &live, SECRET).await;
    assert_eq!(st, 200, "{b}");
    let end = json!({"stream": "s2", "channel": "c1", "status": "ENDED", "ts": now_ms()});
    let (st, b) = w.webhook("/api/webhooks/stream", &end, SECRET).await;
    assert_eq!(st, 200, "{b}");
    assert!(b["vod"].is_string(), "{b}");
    assert_eq!(vod_of(&w, "s2").await["status"], "PROCESSING");
    let bad = json!({"stream": "s3", "channel": "nochannel", "status": "LIVE", "ts": now_ms()});
    let (st, _) = w.webhook("/api/webhooks/stream", &bad, SECRET).await;
    assert_eq!(st, 422);

    // Retention: test recordings and VODs older than delete_after_days go, files too.
    stream(&w, &c.alice, "t1", "c1", json!({"is_test": true})).await;
    let now = now_ms();
    live_then_end(&w, "t1", "c1", now - 100_000, now).await;
    sqlx::query("UPDATE vods SET created_at = $1 WHERE stream = 's2'")
        .bind(now - 366 * 86_400_000)
        .execute(w.catalog.pool())
        .await
        .expect("age s2");
    let thumb = w.dir.path().join("media/vods/old.jpg");
    std::fs::create_dir_all(thumb.parent().expect("dir")).expect("mkdir");
    std::fs::write(&thumb, b"jpeg").expect("write");
    sqlx::query("UPDATE vods SET thumbnail = '/media/vods/old.jpg' WHERE stream = 's2'")
        .execute(w.catalog.pool())
        .await
        .expect("thumb");
    let removed = retention::run_once(&w.catalog, &w.media, now_ms())
        .await
        .expect("retention");
    assert_eq!(removed, 2);
    assert!(!thumb.exists(), "the retention job removes the VOD's files");
    assert!(w.catalog.vod_of_stream("t1").await.expect("read").is_none());
    assert!(w.catalog.vod_of_stream("s2").await.expect("read").is_none());
    assert!(w.catalog.vod_of_stream("s1").await.expect("read").is_some());
    let (st, _) = w
        .call(Method::GET, &format!("/api/vods/{vid}"), Some(ADMIN), None)
        .await;
    assert_eq!(st, 200);

    // Encoders going live at the same moment: every lifecycle write lands (SQLite used
    // to answer "database is locked" to a read-then-write transaction racing another).
    let names: Vec<String> = (0..12).map(|i| format!("burst{i}")).collect();
    for n in &names {
        stream(&w, &c.alice, n, "c1", json!({})).await;
    }
    let writes = names.iter().map(|n| {
        let catalog = w.catalog.clone();
        let n = n.clone();
        tokio::spawn(async move {
            catalog
                .record_lifecycle(pulse_schemas::access::LifecycleChange {
                    stream: pulse_schemas::Id::parse(&n).expect("id"),
                    channel: pulse_schemas::Id::parse("c1").expect("id"),
                    status: pulse_schemas::access::StreamStatus::Live,
                    ts: now_ms(),
                    source: pulse_schemas::access::LifecycleSource::Encoder,
                })
                .await
        })
    });
    for r in futures_util::future::join_all(writes).await {
        r.expect("join").expect("a simultaneous lifecycle write");
    }
    let live: i64 = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM stream_lifecycle WHERE stream LIKE 'burst%'",
    )
    .fetch_one(w.catalog.pool())
    .await
    .expect("count");
    assert_eq!(live, 12);
    w.shutdown().await;
}
