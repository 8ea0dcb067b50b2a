//! VOD lists (paging, sort, date range, search), edits, visibility, soft delete;
//! watch progress, history, continue-watching, recommendations.

use crate::catalog_harness::{ADMIN, Backend, SECRET, World, config};
use crate::{cast, err_code, live_then_end, ready_body, stream};
use pulse_query::catalog::now_ms;
use reqwest::Method;
use serde_json::{Value, json};

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_owned())
        .collect()
}

pub async fn run(backend: &Backend<'_>) {
    let w = World::new(backend, config()).await;
    let c = cast(&w).await;
    // 15 streams of c1 become READY VODs; created (ended) one hour apart, oldest first.
    let base = now_ms() - 20 * 3_600_000;
    let mut vods = Vec::new();
    for i in 0..15 {
        let s = format!("s{i}");
        let title = if i % 5 == 0 {
            format!("Speedrun part {i}")
        } else {
            format!("Chatting {i}")
        };
        stream(&w, &c.alice, &s, "c1", json!({"title": title})).await;
        let end = base + i * 3_600_000;
        live_then_end(&w, &s, "c1", end - 600_000, end).await;
        let (st, b) = w
            .webhook(
                "/api/webhooks/recording-ready",
                &ready_body(&s, "https://cdn.example/x.m3u8", 600.0),
                SECRET,
            )
            .await;
        assert_eq!(st, 200, "{b}");
        vods.push(b["vod"]["id"].as_str().expect("vod id").to_owned());
    }
    // Views (as the analytics mirror would set them) for the "watched" order.
    for (i, v) in vods.iter().enumerate() {
        sqlx::query("UPDATE vods SET view_count = $1 WHERE id = $2")
            .bind(((i as i64) * 7) % 11)
            .bind(v.clone())
            .execute(w.catalog.pool())
            .await
            .expect("views");
    }
    // One private (by its creator), one deleted.
    let (st, b) = w
        .call(
            Method::PUT,
            &format!("/api/vods/{}", vods[14]),
            Some(&c.alice),
            Some(json!({"visibility": "private"})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["is_public"], false);

    // Anonymous: 14 public, 12 per page, newest first.
    let (st, p1) = w
        .call(Method::GET, "/api/channels/c1/vods", None, None)
        .await;
    assert_eq!(st, 200, "{p1}");
    assert_eq!(
        (
            p1["total"].as_i64(),
            p1["per_page"].as_i64(),
            p1["page"].as_i64()
        ),
        (Some(14), Some(12), Some(1))
    );
    let expect_newest: Vec<String> = vods[..14].iter().rev().cloned().collect();
    assert_eq!(ids(&p1), expect_newest[..12].to_vec());
    let (_, p2) = w
        .call(Method::GET, "/api/channels/c1/vods?page=2", None, None)
        .await;
    assert_eq!(ids(&p2), expect_newest[12..].to_vec());
    // The creator also sees the private one.
    let (_, own) = w
        .call(
            Method::GET,
            "/api/channels/c1/vods?per_page=50",
            Some(&c.alice),
            None,
        )
        .await;
    assert_eq!(own["total"], 15);
    let (_, other) = w
        .call(
            Method::GET,
            "/api/channels/c1/vods?per_page=50",
            Some(&c.bob),
            None,
        )
        .await;
    assert_eq!(other["total"], 14);
    // Watched: by view count, then newest.
    let (_, watched) = w
        .call(
            Method::GET,
            "/api/channels/c1/vods?sort=watched&per_page=50",
            None,
            None,
        )
        .await;
    let mut expect: Vec<(i64, usize)> = (0..14).map(|i| (((i as i64) * 7) % 11, i)).collect();
    expect.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    assert_eq!(
        ids(&watched),
        expect
            .iter()
            .map(|(_, i)| vods[*i].clone())
            .collect::<Vec<_>>()
    );
    let (st, _) = w
        .call(
            Method::GET,
            "/api/channels/c1/vods?sort=trending",
            None,
            None,
        )
        .await;
    assert_eq!(st, 200);
    // Search: words of the title, any case.
    let (_, found) = w
        .call(Method::GET, "/api/channels/c1/vods?q=SPEEDRUN", None, None)
        .await;
    assert_eq!(
        ids(&found),
        vec![vods[10].clone(), vods[5].clone(), vods[0].clone()]
    );
    let (_, found) = w
        .call(
            Method::GET,
            "/api/channels/c1/vods?q=speedrun%20part%205",
            None,
            None,
        )
        .await;
    assert_eq!(ids(&found), vec![vods[5].clone()]);
    let (_, none) = w
        .call(Method::GET, "/api/channels/c1/vods?q=100%25", None, None)
        .await;
    assert_eq!(none["total"], 0, "% is a separator, not a wildcard");
    // Full-text: words match by prefix, punctuation never is syntax.
    let (_, found) = w
        .call(Method::GET, "/api/channels/c1/vods?q=speedr", None, None)
        .await;
    assert_eq!(found["total"], 3, "a word prefix matches: {found}");
    let (_, found) = w
        .call(Method::GET, "/api/channels/c1/vods?q=eedrun", None, None)
        .await;
    assert_eq!(found["total"], 0, "the middle of a word does not: {found}");
    let (st, found) = w
        .call(
            Method::GET,
            "/api/channels/c1/vods?q=%22speedrun%22%20*%3A%20(part-10",
            None,
            None,
        )
        .await;
    assert_eq!(st, 200, "{found}");
    assert_eq!(
        ids(&found),
        vec![vods[10].clone()],
        "quotes, stars, colons and brackets are not syntax"
    );
    // Date range [from, to) on the VOD's time.
    let (from, to) = (base + 3 * 3_600_000, base + 6 * 3_600_000);
    let (_, ranged) = w
        .call(
            Method::GET,
            &format!("/api/channels/c1/vods?from={from}&to={to}"),
            None,
            None,
        )
        .await;
    assert_eq!(
        ids(&ranged),
        vec![vods[5].clone(), vods[4].clone(), vods[3].clone()]
    );
    // Bad parameters.
    for q in [
        "sort=best",
        "page=0",
        "per_page=1000",
        "from=yesterday",
        &format!("from={to}&to={from}"),
    ] {
        let (st, b) = w
            .call(
                Method::GET,
                &format!("/api/channels/c1/vods?{q}"),
                None,
                None,
            )
            .await;
        assert_eq!((st, err_code(&b)), (400, "invalid_parameter"), "{q}: {b}");
    }
    let (st, _) = w
        .call(Method::GET, "/api/channels/nochannel/vods", None, None)
        .await;
    assert_eq!(st, 404);

    // Edit: the creator only; bad visibility 400.
    let path = format!("/api/vods/{}", vods[0]);
    let edit = json!({"title": "New title", "description": "about cats"});
    for (token, want) in [
        (Some(c.bob.as_str()), 403),
        (Some(c.vic.as_str()), 403),
        (None, 401),
    ] {
        let (st, _) = w.call(Method::PUT, &path, token, Some(edit.clone())).await;
        assert_eq!(st, want);
    }
    let (st, b) = w.call(Method::PUT, &path, Some(&c.alice), Some(edit)).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        (b["title"].as_str(), b["description"].as_str()),
        (Some("New title"), Some("about cats"))
    );
    let (_, found) = w
        .call(Method::GET, "/api/channels/c1/vods?q=cats", None, None)
        .await;
    assert_eq!(
        ids(&found),
        vec![vods[0].clone()],
        "the description is searched too"
    );
    let (_, found) = w
        .call(Method::GET, "/api/channels/c1/vods?q=speedrun", None, None)
        .await;
    assert_eq!(
        ids(&found),
        vec![vods[10].clone(), vods[5].clone()],
        "the old title is out of the index"
    );
    let (st, _) = w
        .call(
            Method::PUT,
            &path,
            Some(&c.alice),
            Some(json!({"visibility": "secret"})),
        )
        .await;
    assert_eq!(st, 400);
    let (st, _) = w
        .call(
            Method::PUT,
            &path,
            Some(&c.alice),
            Some(json!({"colour": "red"})),
        )
        .await;
    assert_eq!(st, 400, "unknown fields are refused");
    // Private: hidden from others.
    let private = format!("/api/vods/{}", vods[14]);
    for token in [None, Some(c.vic.as_str()), Some(c.bob.as_str())] {
        let (st, _) = w.call(Method::GET, &private, token, None).await;
        assert_eq!(st, 404);
    }
    let (st, _) = w.call(Method::GET, &private, Some(&c.alice), None).await;
    assert_eq!(st, 200);
    // Soft delete: by its creator; then it is gone from lists and reads.
    let del = format!("/api/vods/{}", vods[1]);
    let (st, _) = w.call(Method::DELETE, &del, Some(&c.bob), None).await;
    assert_eq!(st, 403);
    let (st, _) = w.call(Method::DELETE, &del, Some(&c.alice), None).await;
    assert_eq!(st, 204);
    let (st, _) = w.call(Method::GET, &del, Some(&c.alice), None).await;
    assert_eq!(st, 404);
    let (_, after) = w
        .call(Method::GET, "/api/channels/c1/vods?per_page=50", None, None)
        .await;
    assert_eq!(after["total"], 13);
    let deleted_at: Option<i64> = sqlx::query_scalar("SELECT deleted_at FROM vods WHERE id = $1")
        .bind(vods[1].clone())
        .fetch_one(w.catalog.pool())
        .await
        .expect("row kept");
    assert!(deleted_at.is_some());

    // Watch progress: percentage of the 600 s VOD, computed here independently.
    let v = |i: usize| vods[i].clone();
    let saves = [(v(2), 150.0), (v(3), 590.0), (v(4), 30.0), (v(2), 300.0)];
    for (vod, pos) in &saves {
        let (st, b) = w
            .call(
                Method::POST,
                "/api/watch-progress",
                Some(&c.vic),
                Some(json!({"vod": vod, "position": pos})),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        assert!((b["percentage"].as_f64().expect("pct") - pos / 600.0 * 100.0).abs() < 1e-9);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (st, _) = w
        .call(
            Method::POST,
            "/api/watch-progress",
            None,
            Some(json!({"vod": v(2), "position": 1.0})),
        )
        .await;
    assert_eq!(st, 401);
    let (st, _) = w
        .call(
            Method::POST,
            "/api/watch-progress",
            Some(&c.vic),
            Some(json!({"vod": v(2), "position": -1.0})),
        )
        .await;
    assert_eq!(st, 400);
    let (st, _) = w
        .call(
            Method::POST,
            "/api/watch-progress",
            Some(&c.vic),
            Some(json!({"vod": v(2), "position": 9999.0})),
        )
        .await;
    assert_eq!(st, 422);
    let (st, _) = w
        .call(
            Method::POST,
            "/api/watch-progress",
            Some(&c.vic),
            Some(json!({"vod": v(14), "position": 1.0})),
        )
        .await;
    assert_eq!(st, 404, "a private VOD is unknown to a viewer");
    let (st, b) = w
        .call(
            Method::GET,
            &format!("/api/watch-progress?vod={}", v(2)),
            Some(&c.vic),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        (b["position_s"].as_f64(), b["percentage"].as_f64()),
        (Some(300.0), Some(50.0))
    );
    let (st, _) = w
        .call(
            Method::GET,
            &format!("/api/watch-progress?vod={}", v(2)),
            Some(&c.bob),
            None,
        )
        .await;
    assert_eq!(st, 404, "progress is per user");
    // History newest first (one row per VOD), continue-watching excludes ≥ 95 %.
    let (_, h) = w
        .call(Method::GET, "/api/watch-history", Some(&c.vic), None)
        .await;
    let hv: Vec<&str> = h["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["vod"].as_str().expect("vod"))
        .collect();
    assert_eq!(hv, vec![v(2).as_str(), v(4).as_str(), v(3).as_str()]);
    assert_eq!(h["items"][0]["vod_item"]["id"], json!(v(2)));
    let (_, cw) = w
        .call(Method::GET, "/api/continue-watching", Some(&c.vic), None)
        .await;
    let cv: Vec<&str> = cw["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["vod"].as_str().expect("vod"))
        .collect();
    assert_eq!(
        cv,
        vec![v(2).as_str(), v(4).as_str()],
        "590/600 s is finished"
    );
    // Recommended: vic follows c1: its public VODs not finished, newest first.
    let (st, _) = w
        .call(
            Method::PUT,
            "/api/follows",
            Some(ADMIN),
            Some(json!({"user": "vic", "channel": "c1"})),
        )
        .await;
    assert_eq!(st, 200);
    let (_, rec) = w
        .call(
            Method::GET,
            "/api/recommended?per_page=50",
            Some(&c.vic),
            None,
        )
        .await;
    let want: Vec<String> = (0..14)
        .rev()
        .filter(|i| *i != 1 && *i != 3)
        .map(v)
        .collect();
    assert_eq!(ids(&rec), want);
    let (_, rec_bob) = w
        .call(Method::GET, "/api/recommended", Some(&c.bob), None)
        .await;
    assert_eq!(rec_bob["items"], json!([]), "bob follows nobody");
    // Remove one, clear all.
    let (st, _) = w
        .call(
            Method::DELETE,
            &format!("/api/watch-history/{}", v(4)),
            Some(&c.vic),
            None,
        )
        .await;
    assert_eq!(st, 204);
    let (st, _) = w
        .call(
            Method::DELETE,
            &format!("/api/watch-history/{}", v(4)),
            Some(&c.vic),
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (_, h) = w
        .call(Method::GET, "/api/watch-history", Some(&c.vic), None)
        .await;
    assert_eq!(h["total"], 2);
    let (st, b) = w
        .call(Method::POST, "/api/watch-history/clear", Some(&c.vic), None)
        .await;
    assert_eq!((st, b["removed"].as_i64()), (200, Some(2)));
    let (_, h) = w
        .call(Method::GET, "/api/watch-history", Some(&c.vic), None)
        .await;
    assert_eq!(h["total"], 0);
    w.shutdown().await;
}
