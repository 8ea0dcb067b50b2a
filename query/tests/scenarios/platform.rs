//! Tokens, the platform mirror, streams and keys, permissions and body errors.

use crate::catalog_harness::{ADMIN, Backend, World, config};
use crate::{cast, err_code, id, stream};
use pulse_schemas::access::{AccessControl, Role};
use reqwest::Method;
use serde_json::json;
use sqlx::Row;

pub async fn run(backend: &Backend<'_>) {
    let w = World::new(backend, config()).await;
    let c = cast(&w).await;

    // Tokens: only admins mint; missing, malformed and unknown tokens are 401.
    let body = json!({"user": "mallory", "role": "admin"});
    let (st, b) = w
        .call(
            Method::POST,
            "/api/tokens",
            Some(&c.alice),
            Some(body.clone()),
        )
        .await;
    assert_eq!((st, err_code(&b)), (403, "forbidden"), "{b}");
    let (st, _) = w
        .call(Method::POST, "/api/tokens", None, Some(body.clone()))
        .await;
    assert_eq!(st, 401);
    let (st, b) = w
        .call(Method::POST, "/api/tokens", Some("not-a-token"), Some(body))
        .await;
    assert_eq!((st, err_code(&b)), (401, "unauthorized"), "{b}");
    let (st, b) = w
        .call(
            Method::POST,
            "/api/tokens",
            Some(ADMIN),
            Some(json!({"user": "x", "role": "god"})),
        )
        .await;
    assert_eq!(st, 400, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap_or("").contains("god"),
        "{b}"
    );

    // The catalog answers the AccessControl contract.
    let alice = w
        .catalog
        .principal(&c.alice)
        .await
        .expect("ok")
        .expect("known");
    assert_eq!((alice.user.as_str(), alice.role), ("alice", Role::Creator));
    let vic = w
        .catalog
        .principal(&c.vic)
        .await
        .expect("ok")
        .expect("known");
    assert_eq!(vic.role, Role::Viewer);
    assert!(w.catalog.principal("nope").await.expect("ok").is_none());
    assert!(
        w.catalog
            .can_read_channel(&alice, &id("c1"))
            .await
            .expect("ok")
    );
    assert!(
        !w.catalog
            .can_read_channel(&alice, &id("c2"))
            .await
            .expect("ok")
    );
    assert!(
        !w.catalog
            .can_read_channel(&vic, &id("c1"))
            .await
            .expect("ok")
    );

    // The mirror routes are for admins.
    let (st, _) = w
        .call(
            Method::PUT,
            "/api/channels/c9",
            Some(&c.alice),
            Some(json!({"owner": "alice"})),
        )
        .await;
    assert_eq!(st, 403);
    let (st, _) = w
        .call(
            Method::PUT,
            "/api/users/u1",
            Some(ADMIN),
            Some(json!({"name": "U"})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = w
        .call(
            Method::PUT,
            "/api/follows",
            Some(ADMIN),
            Some(json!({"user": "vic", "channel": "c1"})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = w
        .call(
            Method::PUT,
            "/api/follows",
            Some(ADMIN),
            Some(json!({"user": "vic", "channel": "nope"})),
        )
        .await;
    assert_eq!(st, 404);

    // Streams: the channel's creator (or an admin) creates them; the key is shown once.
    let key = stream(&w, &c.alice, "s1", "c1", json!({})).await;
    assert_eq!(key.len(), 64);
    let (st, b) = w
        .call(
            Method::PUT,
            "/api/streams/s1",
            Some(&c.alice),
            Some(json!({"channel": "c1", "title": "t2"})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert!(
        b.get("stream_key").is_none(),
        "the key is answered only once: {b}"
    );
    for (token, want) in [
        (Some(c.bob.as_str()), 403),
        (Some(c.vic.as_str()), 403),
        (None, 401),
    ] {
        let (st, _) = w
            .call(
                Method::PUT,
                "/api/streams/s2",
                token,
                Some(json!({"channel": "c1"})),
            )
            .await;
        assert_eq!(st, want);
    }
    let (st, b) = w
        .call(
            Method::PUT,
            "/api/streams/s2",
            Some(ADMIN),
            Some(json!({"channel": "nochannel"})),
        )
        .await;
    assert_eq!((st, err_code(&b)), (422, "unprocessable"), "{b}");
    let (st, _) = w
        .call(
            Method::PUT,
            "/api/streams/s1",
            Some(ADMIN),
            Some(json!({"channel": "c2"})),
        )
        .await;
    assert_eq!(st, 422, "a stream does not move to another channel");

    // Stream keys: verified for the encoder, rotated by the creator only.
    assert_eq!(
        w.catalog
            .verify_stream_key(&id("s1"), &key)
            .await
            .expect("ok"),
        Some(id("c1"))
    );
    assert_eq!(
        w.catalog
            .verify_stream_key(&id("s1"), "wrong")
            .await
            .expect("ok"),
        None
    );
    assert_eq!(
        w.catalog
            .verify_stream_key(&id("s9"), &key)
            .await
            .expect("ok"),
        None
    );
    let (st, _) = w
        .call(Method::POST, "/api/streams/s1/key", Some(&c.bob), None)
        .await;
    assert_eq!(st, 403);
    let (st, _) = w
        .call(Method::POST, "/api/streams/zz/key", Some(&c.alice), None)
        .await;
    assert_eq!(st, 404);
    let (st, b) = w
        .call(Method::POST, "/api/streams/s1/key", Some(&c.alice), None)
        .await;
    assert_eq!(st, 200, "{b}");
    let new_key = b["stream_key"].as_str().expect("key").to_owned();
    assert_ne!(new_key, key);
    assert_eq!(
        w.catalog
            .verify_stream_key(&id("s1"), &key)
            .await
            .expect("ok"),
        None
    );
    assert_eq!(
        w.catalog
            .verify_stream_key(&id("s1"), &new_key)
            .await
            .expect("ok"),
        Some(id("c1"))
    );

    // Secrets are stored hashed: neither the token nor the key appears in the tables.
    let rows = sqlx::query("SELECT token_hash FROM api_tokens")
        .fetch_all(w.catalog.pool())
        .await
        .expect("rows");
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let h: String = r.try_get("token_hash").expect("col");
        assert!(h != c.alice && h != c.bob && h != c.vic);
    }
    let k: String = sqlx::query("SELECT key_hash FROM stream_keys WHERE stream = 's1'")
        .fetch_one(w.catalog.pool())
        .await
        .expect("row")
        .try_get("key_hash")
        .expect("col");
    assert_ne!(k, new_key);

    // Bodies: broken JSON is 400, an oversized one 413, an unknown id 404.
    let resp = w
        .req(Method::PUT, "/api/users/u2", Some(ADMIN))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    let big = json!({"name": "x".repeat(10_000)});
    let (st, b) = w
        .call(Method::PUT, "/api/users/u2", Some(ADMIN), Some(big))
        .await;
    assert_eq!((st, err_code(&b)), (413, "payload_too_large"), "{b}");
    let (st, b) = w.call(Method::GET, "/api/vods/v_unknown", None, None).await;
    assert_eq!((st, err_code(&b)), (404, "not_found"), "{b}");
    let (st, _) = w.call(Method::GET, "/api/vods/bad%20id", None, None).await;
    assert_eq!(st, 400);
    w.shutdown().await;
}
