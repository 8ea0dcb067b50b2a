//! Clips from a VOD range and from a live stream, cut by real ffmpeg through the worker
//! pool; validation, permissions, publishing, likes (and their analytics event),
//! thumbnails, the embed page, deletion; the VOD thumbnail at 25 %.

use crate::catalog_harness::{
    Backend, SECRET, World, config, make_hls, probe_duration, probe_size,
};
use crate::{cast, err_code, id, ready_body, stream};
use pulse_query::catalog::now_ms;
use pulse_query::media::spawn_pool;
use pulse_schemas::access::{AccessControl, LifecycleChange, LifecycleSource, StreamStatus};
use pulse_schemas::event::{EventKind, TargetKind};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

async fn clip(w: &World, token: &str, k: &str) -> Value {
    let (st, b) = w
        .call(Method::GET, &format!("/api/clips/{k}"), Some(token), None)
        .await;
    assert_eq!(st, 200, "{b}");
    b
}

async fn wait_ready(w: &World, token: &str, k: &str) -> Value {
    eventually!(
        60,
        &format!("clip {k} READY"),
        async {
            let c = clip(w, token, k).await;
            assert_ne!(c["status"], "FAILED", "{c}");
            c["status"] == "READY"
        }
        .await
    );
    clip(w, token, k).await
}

/// Downloads a media URL of the world into a file.
async fn download(w: &World, url: &str, name: &str) -> std::path::PathBuf {
    let bytes = w
        .http
        .get(format!("{}{url}", w.url))
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    let path = w.dir.path().join(name);
    std::fs::write(&path, &bytes).expect("write");
    path
}

pub async fn run(backend: &Backend<'_>) {
    let w = World::new(backend, config()).await;
    let c = cast(&w).await;
    let hls = make_hls(w.dir.path(), 20);
    let hls_url = hls.display().to_string();
    let stop = CancellationToken::new();
    let pool = spawn_pool(w.catalog.clone(), w.media.clone(), stop.clone());

    // A 20 s READY VOD on c1.
    stream(&w, &c.alice, "s1", "c1", json!({})).await;
    let now = now_ms();
    crate::live_then_end(&w, "s1", "c1", now - 80_000, now).await;
    let (st, b) = w
        .webhook(
            "/api/webhooks/recording-ready",
            &ready_body("s1", &hls_url, 20.0),
            SECRET,
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let vod = b["vod"]["id"].as_str().expect("vod").to_owned();

    // The VOD's thumbnail: the frame at 25 %, at the video's size.
    eventually!(
        60,
        "the VOD thumbnail",
        async {
            let v = w
                .catalog
                .vod_of_stream("s1")
                .await
                .expect("read")
                .expect("vod");
            !v.thumbnail.is_empty()
        }
        .await
    );
    let v = w
        .catalog
        .vod_of_stream("s1")
        .await
        .expect("read")
        .expect("vod");
    let vthumb = download(&w, &v.thumbnail, "vod.jpg").await;
    assert_eq!(probe_size(&vthumb), (320, 240));

    // Validation.
    let bad = [
        (json!({"vod": vod, "start": 9.0, "end": 3.0}), 422),
        (json!({"vod": vod, "start": 3.0, "end": 6.0}), 422),
        (json!({"vod": vod, "start": 0.0, "end": 61.0}), 422),
        (json!({"vod": vod, "start": 15.0, "end": 25.0}), 422),
        (json!({"vod": "v_nope", "start": 1.0, "end": 8.0}), 404),
        (
            json!({"vod": vod, "stream": "s1", "start": 1.0, "end": 8.0}),
            400,
        ),
        (json!({"vod": vod}), 400),
        (json!({"stream": "s1"}), 422),
    ];
    for (body, want) in bad {
        let (st, b) = w
            .call(Method::POST, "/api/clips", Some(&c.vic), Some(body.clone()))
            .await;
        assert_eq!(st, want, "{body} → {b}");
    }
    let (st, _) = w
        .call(
            Method::POST,
            "/api/clips",
            None,
            Some(json!({"vod": vod, "start": 1.0, "end": 8.0})),
        )
        .await;
    assert_eq!(st, 401);

    // A cut off the keyframes (re-encoded) by vic: duration within 0.1 s, thumbnail at size.
    let body = json!({"vod": vod, "start": 2.5, "end": 9.0, "title": "<b>Nice</b> & \"play\""});
    let (st, b) = w
        .call(Method::POST, "/api/clips", Some(&c.vic), Some(body))
        .await;
    assert_eq!(st, 202, "{b}");
    assert_eq!(b["status"], "PROCESSING");
    let k = b["id"].as_str().expect("id").to_owned();
    let ready = wait_ready(&w, &c.vic, &k).await;
    assert_eq!(
        (
            ready["start_s"].as_f64(),
            ready["end_s"].as_f64(),
            ready["duration_s"].as_f64()
        ),
        (Some(2.5), Some(9.0), Some(6.5))
    );
    assert_eq!(
        (
            ready["vod"].as_str(),
            ready["stream"].as_str(),
            ready["channel"].as_str(),
            ready["creator"].as_str()
        ),
        (Some(vod.as_str()), Some("s1"), Some("c1"), Some("vic"))
    );
    let mp4 = download(&w, ready["clip_url"].as_str().expect("url"), "clip.mp4").await;
    let d = probe_duration(&mp4);
    assert!((d - 6.5).abs() <= 0.1, "clip lasts {d} s, asked 6.5 s");
    let jpg = download(&w, ready["thumbnail"].as_str().expect("thumb"), "clip.jpg").await;
    assert_eq!(probe_size(&jpg), (320, 240));
    // A cut on keyframes (2 s GOP) is stream-copied and lasts what was asked too.
    let (st, b) = w
        .call(
            Method::POST,
            "/api/clips",
            Some(&c.alice),
            Some(json!({"vod": vod, "start": 4.0, "end": 10.0})),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let k2 = b["id"].as_str().expect("id").to_owned();
    let r2 = wait_ready(&w, &c.alice, &k2).await;
    let d2 =
        probe_duration(&download(&w, r2["clip_url"].as_str().expect("url"), "clip2.mp4").await);
    assert!((d2 - 6.0).abs() <= 0.15, "stream-copied clip lasts {d2} s");
    assert_eq!(
        w.catalog
            .vod_of_stream("s1")
            .await
            .expect("r")
            .expect("v")
            .clip_count,
        2
    );

    // Unpublished: only its creator, the channel's creator and admins see it.
    let path = format!("/api/clips/{k}");
    for (token, want) in [
        (None, 404),
        (Some(c.bob.as_str()), 404),
        (Some(c.alice.as_str()), 200),
    ] {
        let (st, _) = w.call(Method::GET, &path, token, None).await;
        assert_eq!(st, want);
    }
    let (_, list) = w
        .call(Method::GET, "/api/channels/c1/clips", None, None)
        .await;
    assert_eq!(list["total"], 0);
    let (_, list) = w
        .call(Method::GET, "/api/channels/c1/clips", Some(&c.alice), None)
        .await;
    assert_eq!(list["total"], 2);
    // Edit: the clip's creator or the channel's creator; not another creator.
    let (st, _) = w
        .call(
            Method::PUT,
            &path,
            Some(&c.bob),
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!(st, 404, "bob cannot even see it");
    let (st, b) = w
        .call(
            Method::PUT,
            &path,
            Some(&c.alice),
            Some(json!({"description": "great"})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    // Publish, then everyone sees it; bob still may not edit it.
    let (st, b) = w
        .call(Method::POST, &format!("{path}/publish"), Some(&c.vic), None)
        .await;
    assert_eq!((st, b["published"].clone()), (200, json!(true)), "{b}");
    let (st, _) = w.call(Method::GET, &path, None, None).await;
    assert_eq!(st, 200);
    let (st, b) = w
        .call(
            Method::PUT,
            &path,
            Some(&c.bob),
            Some(json!({"title": "mine"})),
        )
        .await;
    assert_eq!((st, err_code(&b)), (403, "forbidden"), "{b}");
    let (_, list) = w
        .call(Method::GET, "/api/channels/c1/clips", None, None)
        .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], json!(k));

    // Likes: once per user, and each new like is a `like` event for the clip.
    for (token, count) in [(&c.bob, 1), (&c.bob, 1), (&c.alice, 2)] {
        let (st, b) = w
            .call(Method::POST, &format!("{path}/like"), Some(token), None)
            .await;
        assert_eq!(st, 200, "{b}");
        assert_eq!(b["clip"]["like_count"], count);
    }
    let mut w = w;
    let mut likes = Vec::new();
    while let Some(batch) = w.events.try_recv() {
        likes.extend(batch);
    }
    assert_eq!(likes.len(), 2, "{likes:?}");
    assert!(likes.iter().all(|e| e.kind == EventKind::Like
        && e.target.kind == TargetKind::Clip
        && e.target.id.as_str() == k));
    let mut viewers: Vec<&str> = likes.iter().map(|e| e.viewer.as_str()).collect();
    viewers.sort();
    assert_eq!(viewers, vec!["alice", "bob"]);

    // A thumbnail at a chosen second.
    let (st, _) = w
        .call(
            Method::POST,
            &format!("{path}/thumbnail"),
            Some(&c.vic),
            Some(json!({"at": 30.0})),
        )
        .await;
    assert_eq!(st, 422);
    let (st, _) = w
        .call(
            Method::POST,
            &format!("{path}/thumbnail"),
            Some(&c.bob),
            Some(json!({"at": 3.0})),
        )
        .await;
    assert_eq!(st, 403);
    let old_thumb = ready["thumbnail"].as_str().expect("t").to_owned();
    let (st, b) = w
        .call(
            Method::POST,
            &format!("{path}/thumbnail"),
            Some(&c.vic),
            Some(json!({"at": 3.0})),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    eventually!(
        60,
        "the new clip thumbnail",
        async { clip(&w, &c.vic, &k).await["thumbnail"] != json!(old_thumb) }.await
    );
    let t = clip(&w, &c.vic, &k).await;
    assert_eq!(
        probe_size(&download(&w, t["thumbnail"].as_str().expect("t"), "t2.jpg").await),
        (320, 240)
    );

    // The embed page: HTML with the player, the title escaped, framing allowed.
    let resp = w
        .http
        .get(format!("{}/clips/{k}/embed", w.url))
        .send()
        .await
        .expect("embed");
    assert_eq!(resp.status().as_u16(), 200);
    let csp = resp
        .headers()
        .get("content-security-policy")
        .expect("csp")
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(
        csp.contains("frame-ancestors *") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert!(resp.headers().get("x-frame-options").is_none());
    let html = resp.text().await.expect("html");
    assert!(
        html.contains("<video") && html.contains(t["clip_url"].as_str().expect("u")),
        "{html}"
    );
    assert!(
        html.contains("&lt;b&gt;Nice&lt;/b&gt; &amp; &quot;play&quot;")
            && !html.contains("<b>Nice"),
        "{html}"
    );
    let (st, _) = w
        .call(Method::GET, &format!("/clips/{k2}/embed"), None, None)
        .await;
    assert_eq!(st, 404, "an unpublished clip has no public embed");

    // A clip from a live stream: the last 30 s by default (here the stream has been
    // live 15 s, so 0–15 s), cut from its live playlist; attached to the VOD later.
    stream(&w, &c.alice, "s2", "c1", json!({"playback_url": hls_url})).await;
    w.catalog
        .record_lifecycle(LifecycleChange {
            stream: id("s2"),
            channel: id("c1"),
            status: StreamStatus::Live,
            ts: now_ms() - 15_000,
            source: LifecycleSource::Encoder,
        })
        .await
        .expect("live");
    let (st, b) = w
        .call(
            Method::POST,
            "/api/clips",
            Some(&c.vic),
            Some(json!({"stream": "s2"})),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let k3 = b["id"].as_str().expect("id").to_owned();
    assert_eq!(b["start_s"].as_f64(), Some(0.0));
    let end = b["end_s"].as_f64().expect("end");
    assert!((14.0..=16.0).contains(&end), "{b}");
    assert!(b["vod"].is_null());
    let r3 = wait_ready(&w, &c.vic, &k3).await;
    let d3 = probe_duration(&download(&w, r3["clip_url"].as_str().expect("u"), "live.mp4").await);
    assert!((d3 - end).abs() <= 0.1, "live clip lasts {d3}, asked {end}");
    w.catalog
        .record_lifecycle(LifecycleChange {
            stream: id("s2"),
            channel: id("c1"),
            status: StreamStatus::Ended,
            ts: now_ms() + 60_000,
            source: LifecycleSource::Encoder,
        })
        .await
        .expect("ended");
    let (st, b) = w
        .webhook(
            "/api/webhooks/recording-ready",
            &ready_body("s2", &hls_url, 20.0),
            SECRET,
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let r3 = clip(&w, &c.vic, &k3).await;
    assert_eq!(
        r3["vod"], b["vod"]["id"],
        "the live clip points at the VOD now"
    );
    assert_eq!(r3["start_s"].as_f64(), Some(0.0));

    // Delete: not by another creator; by its creator; the media goes too.
    let (st, _) = w.call(Method::DELETE, &path, Some(&c.bob), None).await;
    assert_eq!(st, 403);
    let (st, _) = w.call(Method::DELETE, &path, Some(&c.vic), None).await;
    assert_eq!(st, 204);
    let (st, _) = w.call(Method::GET, &path, Some(&c.vic), None).await;
    assert_eq!(st, 404);
    let key = w
        .media
        .key_of(t["clip_url"].as_str().expect("u"))
        .expect("our media")
        .to_owned();
    assert!(
        w.media.get(&key).await.expect("store").is_none(),
        "the clip's file is removed"
    );
    let (st, _) = w
        .call(Method::GET, "/api/clips/k_unknown", Some(&c.vic), None)
        .await;
    assert_eq!(st, 404);

    pool.shutdown().await;
    w.shutdown().await;
}
