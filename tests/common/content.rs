//! Issue 4's test data beside the stream trace: VOD and clip views (some embedded),
//! likes, shares and clickthroughs on channel `chan-a`, an older stream `stream-a0`
//! ten days before with follows (so growth has a previous week), and the catalog
//! records (channels, owners, categories, lifecycle, the VOD, the clips).

use pulse::Config;
use pulse_query::catalog::streams::StreamInput;
use pulse_query::catalog::{Catalog, Secrets};
use pulse_schemas::{Id, LifecycleChange, LifecycleSource, Principal, Role, StreamStatus};
use serde_json::{Value, json};

pub const DAY: i64 = 86_400_000;
pub const VOD: &str = "vod-a1";
pub const VOD_DURATION_S: f64 = 480.0;
/// (clip, stream, published, length in s)
pub const CLIPS: &[(&str, &str, bool, f64)] = &[
    ("clip-1", "stream-a1", true, 20.0),
    ("clip-2", "stream-a1", true, 30.0),
    ("clip-3", "stream-a2", false, 10.0),
];
/// (stream, category, LIVE offset from start, ENDED offset or none)
pub const LIFECYCLE: &[(&str, &str, i64, Option<i64>)] = &[
    ("stream-a1", "Chess", -60_000, Some(7 * 60_000)),
    ("stream-a2", "Art", 60_000, None),
];

fn ev(kind: &str, ts: i64, viewer: &str, target: (&str, &str), extra: Value) -> Value {
    let mut e = json!({"type": kind, "ts": ts, "viewer": viewer, "channel": "chan-a"});
    e[target.0] = json!(target.1);
    if let (Value::Object(e), Value::Object(x)) = (&mut e, extra) {
        e.extend(x);
    }
    e
}

/// One plain view: viewstart, playing 500 ms later, heartbeats every 10 s, viewend
/// after `watch_ms` of playing.
fn view(
    out: &mut Vec<Value>,
    target: (&str, &str),
    viewer: &str,
    session: &str,
    t0: i64,
    watch_ms: i64,
    embed: bool,
) {
    let s = json!({"session": session});
    let mut first = s.clone();
    first["embed"] = json!(embed);
    out.push(ev("viewstart", t0, viewer, target, first));
    let start = t0 + 500;
    out.push(ev("playing", start, viewer, target, s.clone()));
    let mut t = start + 10_000;
    while t < start + watch_ms {
        out.push(ev(
            "heartbeat",
            t,
            viewer,
            target,
            json!({"session": session, "state": "playing"}),
        ));
        t += 10_000;
    }
    out.push(ev("viewend", start + watch_ms, viewer, target, s));
}

/// The content and old-stream events (deterministic).
pub fn events(start: i64) -> Vec<Value> {
    let mut rng = fastrand::Rng::with_seed(42);
    let mut out = Vec::new();
    for i in 0..48 {
        let viewer = format!("w{}", i % 17);
        let session = format!("cs{i}");
        let t0 = start + rng.i64(0..15 * 60_000);
        let embed = rng.u32(0..100) < 30;
        match i % 4 {
            0 | 1 => view(
                &mut out,
                ("vod", VOD),
                &viewer,
                &session,
                t0,
                rng.i64(5_000..150_000),
                embed,
            ),
            _ => {
                let (clip, ..) = CLIPS[rng.usize(..CLIPS.len())];
                view(
                    &mut out,
                    ("clip", clip),
                    &viewer,
                    &session,
                    t0,
                    rng.i64(2_000..25_000),
                    embed,
                );
            }
        }
    }
    for i in 0..40 {
        let viewer = format!("w{}", rng.usize(..17));
        let t = start + rng.i64(0..15 * 60_000);
        let target = if rng.u32(0..4) == 0 {
            ("vod", VOD)
        } else {
            ("clip", CLIPS[rng.usize(..CLIPS.len())].0)
        };
        let kind = ["like", "share", "clickthrough"][i % 3];
        let extra = if kind == "share" {
            json!({"platform": "x"})
        } else {
            json!({})
        };
        out.push(ev(kind, t, &viewer, target, extra));
    }
    // Ten days before: a short stream with four viewers, two of whom follow.
    let old = start - 10 * DAY;
    for i in 0..4 {
        let viewer = format!("o{i}");
        view(
            &mut out,
            ("stream", "stream-a0"),
            &viewer,
            &format!("os{i}"),
            old + i * 7_000,
            90_000,
            false,
        );
        if i < 2 {
            out.push(ev(
                "follow",
                old + 30_000 + i,
                &viewer,
                ("stream", "stream-a0"),
                json!({}),
            ));
        }
    }
    out.sort_by_key(|e| e["ts"].as_i64().unwrap_or(0));
    out
}

/// Opens the catalog `pulse serve` will open for `cfg`.
pub async fn catalog(cfg: &Config) -> Catalog {
    std::fs::create_dir_all(&cfg.data_dir).expect("data dir");
    let url = pulse_query::catalog::open::catalog_url(&cfg.catalog_url, &cfg.data_dir);
    pulse_query::catalog::open::open(&url, cfg.catalog.clone(), Secrets::default())
        .await
        .expect("open catalog")
}

/// Writes the catalog records; returns the creator tokens of chan-a (alice) and chan-b (bob).
pub async fn seed(cfg: &Config, start: i64) -> (String, String) {
    let cat = catalog(cfg).await;
    let id = Id::new_unchecked;
    let admin = Principal {
        user: id("root"),
        role: Role::Admin,
    };
    cat.put_channel(&id("chan-a"), "A", &id("alice"))
        .await
        .expect("channel");
    cat.put_channel(&id("chan-b"), "B", &id("bob"))
        .await
        .expect("channel");
    for (stream, channel, category) in [
        ("stream-a1", "chan-a", "Chess"),
        ("stream-a2", "chan-a", "Art"),
        ("stream-b1", "chan-b", "Chess"),
    ] {
        let input = StreamInput {
            channel: id(channel),
            title: format!("{stream} title"),
            category: category.into(),
            playback_url: String::new(),
            is_test: false,
        };
        cat.put_stream(&admin, &id(stream), &input)
            .await
            .expect("stream");
    }
    // The VOD first, so the ENDED below does not archive another one for stream-a1.
    let (live, ended) = (start - 60_000, start + 7 * 60_000);
    sqlx::query(
        "INSERT INTO vods (id, stream, channel, title, search_text, duration_s, status, live_at, \
         ended_at, created_at, updated_at) VALUES ($1, 'stream-a1', 'chan-a', 'A1', 'a1', $2, \
         'READY', $3, $4, $4, $4)",
    )
    .bind(VOD)
    .bind(VOD_DURATION_S)
    .bind(live)
    .bind(ended)
    .execute(cat.pool())
    .await
    .expect("vod");
    for (i, &(clip, stream, published, len)) in CLIPS.iter().enumerate() {
        sqlx::query(
            "INSERT INTO clips (id, vod, stream, channel, creator, title, start_s, end_s, source_url, \
             status, published, created_at, updated_at) VALUES ($1, NULL, $2, 'chan-a', 'alice', $1, \
             10.0, $3, '', 'READY', $4, $5, $5)",
        )
        .bind(clip)
        .bind(stream)
        .bind(10.0 + len)
        .bind(i64::from(published))
        .bind(start + 60_000 * i as i64)
        .execute(cat.pool())
        .await
        .expect("clip");
    }
    for &(stream, _, live_off, end_off) in LIFECYCLE {
        let mut changes = vec![(StreamStatus::Live, start + live_off)];
        if let Some(e) = end_off {
            changes.push((StreamStatus::Ended, start + e));
        }
        for (status, ts) in changes {
            let change = LifecycleChange {
                stream: id(stream),
                channel: id("chan-a"),
                status,
                ts,
                source: LifecycleSource::Webhook,
            };
            cat.apply_lifecycle(&change).await.expect("lifecycle");
        }
    }
    let alice = cat
        .mint_token(&id("alice"), Role::Creator)
        .await
        .expect("token");
    let bob = cat
        .mint_token(&id("bob"), Role::Creator)
        .await
        .expect("token");
    cat.close().await;
    (alice, bob)
}
