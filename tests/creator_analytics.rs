//! Issue 4: the channel, VOD/clip, trending and stream-status answers against an
//! independent computation from the raw events written here (and `common::reference`
//! for concurrency), with catalog records (lifecycle, categories, VOD, clips), on each
//! store: the embedded one and a real ClickHouse server (Debian's, started by the
//! harness); access by the channel's creator only. tests/store_conformance.rs holds the
//! two stores equal on many more route cases.

mod common;

use common::content::{self, CLIPS, DAY, VOD, VOD_DURATION_S};
use common::reference::{expected, expected_over};
use common::{close, config, start};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const START: i64 = 1_764_000_000_000;
const TICK: i64 = 5_000;
const HALF_LIFE: f64 = 6.0 * 3_600_000.0;

fn ts(e: &Value) -> i64 {
    e["ts"].as_i64().unwrap_or(0)
}
fn bucket(t: i64) -> i64 {
    t.div_euclid(TICK) * TICK
}

async fn get_as(s: &common::Server, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(s.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Sessions of a target: (viewer, watch ms, embed) from viewstart/playing/viewend.
fn sessions(events: &[Value], key: &str, id: &str) -> Vec<(String, i64, bool)> {
    let mut by: BTreeMap<String, (String, i64, i64, bool)> = BTreeMap::new();
    for e in events.iter().filter(|e| e[key] == id) {
        let Some(s) = e["session"].as_str() else {
            continue;
        };
        let x = by.entry(s.to_owned()).or_default();
        x.0 = e["viewer"].as_str().unwrap_or("").to_owned();
        match e["type"].as_str().unwrap_or("") {
            "viewstart" => x.3 = e["embed"] == true,
            "playing" => x.1 = ts(e),
            "viewend" => x.2 = ts(e),
            _ => {}
        }
    }
    by.into_values()
        .map(|(v, p, end, embed)| (v, end - p, embed))
        .collect()
}

fn count(events: &[Value], key: &str, id: &str, kind: &str) -> i64 {
    events
        .iter()
        .filter(|e| e[key] == id && e["type"] == kind)
        .count() as i64
}

/// METRICS.md §5 from single events: view 1, embed view +1 (clips), like 3, share 5.
fn trending(events: &[Value], key: &str, id: &str, now: i64) -> f64 {
    events
        .iter()
        .filter(|e| e[key] == id && ts(e) <= now)
        .map(|e| {
            let w = match (e["type"].as_str().unwrap_or(""), key) {
                ("viewstart", "clip") if e["embed"] == true => 2.0,
                ("viewstart", _) => 1.0,
                ("like", _) => 3.0,
                ("share", "clip") => 5.0,
                _ => 0.0,
            };
            w * 0.5f64.powf((now - ts(e)) as f64 / HALF_LIFE)
        })
        .sum()
}

fn followers(events: &[Value], from: i64, to: i64) -> f64 {
    events
        .iter()
        .filter(|e| e["channel"] == "chan-a" && e["type"] == "follow")
        .filter(|e| {
            let m = ts(e).div_euclid(60_000) * 60_000;
            m >= from && m < to
        })
        .map(|e| e["viewer"].as_str().unwrap_or(""))
        .collect::<BTreeSet<_>>()
        .len() as f64
}

fn growth(cur: f64, prev: f64) -> f64 {
    if prev <= 0.0 {
        0.0
    } else {
        (cur - prev) / prev * 100.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creator_analytics_match_the_raw_events() {
    check(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creator_analytics_match_the_raw_events_on_clickhouse() {
    let ch = tokio::task::spawn_blocking(common::clickhouse::ClickHouse::start)
        .await
        .expect("start ClickHouse");
    check(Some(ch.url())).await;
}

/// The whole check on the embedded store, or on ClickHouse at `clickhouse_url`.
async fn check(clickhouse_url: Option<String>) {
    let trace = common::trace::generate(11, START, 150, 6 * 60_000);
    let mut events = trace.events.clone();
    events.extend(content::events(START));
    // Replay reads in event time: events behind the watermark would be late.
    events.sort_by_key(ts);
    let last = trace.end.max(START + 18 * 60_000);
    let to = (last + 120_000).div_euclid(60_000) * 60_000 + 60_000;
    let now = to + 3_600_000;
    assert!(events.iter().all(|e| ts(e) < to));

    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&dir.path().join("data"));
    if let Some(url) = clickhouse_url {
        cfg.store = pulse::config::StoreKind::Clickhouse;
        cfg.clickhouse_url = url;
    }
    cfg.catalog.count_sync_interval_ms = 200;
    // The trace is dated 2025: keep its VOD from the 365-day retention job.
    cfg.catalog.delete_after_days = 100_000;
    let (alice, bob) = content::seed(&cfg, START).await;
    let file = dir.path().join("events.ndjson");
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&file, text).expect("write events");
    let c = cfg.clone();
    let report = tokio::task::spawn_blocking(move || pulse::replay::replay_file(&c, &file))
        .await
        .expect("join")
        .expect("replay");
    assert_eq!(report.events as usize, events.len(), "{report:?}");
    assert_eq!((report.rejected, report.late), (0, 0), "{report:?}");
    let s = start(cfg, now).await;
    let probe = format!(
        "/api/analytics/series?metric=views&channel=chan-a&from={START}&to={to}&step=3600000"
    );
    common::wait_for(&s, &probe, 30, |v| {
        v["points"]
            .as_array()
            .is_some_and(|p| p.iter().all(|x| x["final"] == true))
    })
    .await;

    // Stream status and live range from the lifecycle records.
    let a1_ticks = (bucket(START - 60_000), bucket(START + 7 * 60_000 - 1));
    let a2_ticks = (bucket(START + 60_000), bucket(now - 1));
    let a1 = expected_over(&events, "stream-a1", TICK, Some(a1_ticks));
    let a2 = expected_over(&events, "stream-a2", TICK, Some(a2_ticks));
    let v = s.json("/api/analytics/streams/stream-a1").await;
    assert_eq!(v["status"], "ENDED", "{v}");
    assert_eq!(v["channel"], "chan-a");
    assert_eq!(f(&v["metrics"]["duration_s"]), 480.0);
    assert!(
        close(f(&v["metrics"]["avg_concurrent"]), a1.avg(), 1e-9),
        "{v}"
    );
    assert_eq!(v["metrics"]["peak_concurrent"], a1.peak());
    assert_eq!(v["metrics"]["views"], a1.views);
    let v = s.json("/api/analytics/streams/stream-a2").await;
    assert_eq!(v["status"], "LIVE", "{v}");
    assert_eq!(
        f(&v["metrics"]["duration_s"]),
        ((now - START - 60_000) / 1000) as f64
    );
    assert!(
        close(f(&v["metrics"]["avg_concurrent"]), a2.avg(), 1e-9),
        "{v}"
    );
    // The viewers chart averages over the same lifecycle ticks.
    let v = s
        .json(&format!(
            "/api/analytics/series?metric=viewers&stream=stream-a1&from={}&to={to}&step=60000",
            START - 60_000
        ))
        .await;
    let points: BTreeMap<i64, (f64, i64)> = v["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            (
                p["t"].as_i64().unwrap_or(0),
                (f(&p["value"]), p["peak"].as_i64().unwrap_or(-1)),
            )
        })
        .collect();
    let buckets = a1.viewer_buckets(60_000);
    assert!(buckets.len() >= 8);
    for (t, avg, peak) in buckets {
        let (got, got_peak) = points[&t];
        assert!(close(got, avg, 1e-9), "bucket {t}: {got} vs {avg}");
        assert_eq!(got_peak, peak, "bucket {t}");
    }
    // Unique viewers, new followers and conversion at 5 s and 1 min, against the raw
    // events, over a range that starts and ends inside a minute.
    for step in [5_000, 60_000] {
        let range = (START + 35_000, START + 7 * 60_000 + 20_000);
        let range = (
            range.0.div_euclid(step) * step,
            range.1.div_euclid(step) * step,
        );
        for stream in ["stream-a1", "stream-a2"] {
            common::distinct::check_series(&s, &events, stream, step, range).await;
        }
    }
    let v = s.json("/api/analytics/streams/stream-b1").await;
    assert_eq!(v["status"], "UNKNOWN", "{v}");

    // The channel's views and chat per hour and per day over the eleven days the trace
    // spans (its older stream included), against the raw events.
    let from = (START - 11 * DAY).div_euclid(DAY) * DAY;
    for step in [3_600_000, DAY] {
        for (metric, kind) in [("views", "viewstart"), ("chat_messages", "chat")] {
            let mut want: BTreeMap<i64, i64> = BTreeMap::new();
            for e in events
                .iter()
                .filter(|e| e["channel"] == "chan-a" && e["type"] == kind)
            {
                let n = if kind == "chat" {
                    e["count"].as_i64().unwrap_or(1)
                } else {
                    1
                };
                *want.entry(ts(e).div_euclid(step) * step).or_default() += n;
            }
            // Views span the older stream's day and today; chat is today's streams only.
            let min_buckets = if kind == "viewstart" { 2 } else { 1 };
            assert!(want.len() >= min_buckets, "{metric}: {want:?}");
            let path = format!(
                "/api/analytics/series?metric={metric}&channel=chan-a&from={from}&to={to}&step={step}"
            );
            let (status, v) = get_as(&s, &path, Some(&alice)).await;
            assert_eq!(status, 200, "{v}");
            let got: BTreeMap<i64, i64> = v["points"]
                .as_array()
                .expect("points")
                .iter()
                .map(|p| {
                    (
                        p["t"].as_i64().unwrap_or(0),
                        p["value"].as_i64().unwrap_or(-1),
                    )
                })
                .filter(|&(_, n)| n != 0)
                .collect();
            assert_eq!(got, want, "{metric} at step {step}");
        }
    }

    // Channel analytics, as chan-a's creator.
    let path = format!("/api/analytics/channels/chan-a?from={START}&to={to}");
    assert_eq!(get_as(&s, &path, None).await.0, 401);
    assert_eq!(get_as(&s, &path, Some(&bob)).await.0, 403);
    let (status, v) = get_as(&s, &path, Some(&alice)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["channel"].clone(), f(&v["from"]), f(&v["to"])),
        ("chan-a".into(), START as f64, to as f64)
    );
    let m = &v["metrics"];
    let keys: Vec<&str> = m
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 10, "{m}");
    let hours = (7 * 60_000 + (to - START - 60_000)) as f64 / 3_600_000.0;
    assert!(close(f(&m["hours_streamed"]), hours, 1e-12), "{m}");
    let a0 = expected(&events, "stream-a0", TICK);
    let content_views = events
        .iter()
        .filter(|e| e["type"] == "viewstart" && (e["vod"].is_string() || e["clip"].is_string()))
        .count() as i64;
    assert_eq!(
        m["total_views"],
        a0.views + a1.views + a2.views + content_views,
        "{m}"
    );
    let in_range = |x: &common::reference::Expected| {
        x.viewers
            .range(START..to)
            .map(|(_, &n)| n)
            .max()
            .unwrap_or(0)
    };
    let (p1, p2) = (in_range(&a1), in_range(&a2));
    assert!(
        close(f(&m["avg_peak_viewers"]), (p1 + p2) as f64 / 2.0, 1e-12),
        "{m}"
    );
    // Best streams: watch minutes in the range, then peak.
    let w1 = expected(&events, "stream-a1", TICK).watch_ms;
    let w2 = expected(&events, "stream-a2", TICK).watch_ms;
    let mut best = vec![("stream-a1", w1, p1), ("stream-a2", w2, p2)];
    best.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(b.0)));
    let got = m["best_streams"].as_array().expect("best");
    assert_eq!(got.len(), 2, "{m}");
    for (g, (id, w, p)) in got.iter().zip(&best) {
        assert_eq!(g["stream"], *id);
        assert!(
            close(f(&g["watch_minutes"]), *w as f64 / 60_000.0, 1e-9),
            "{g}"
        );
        assert_eq!(g["peak_concurrent"], *p);
    }
    assert_eq!(
        m["most_watched_category"],
        if w1 >= w2 { "Chess" } else { "Art" }
    );
    // Growth: windows ending at `to`.
    let fw = growth(
        followers(&events, to - 7 * DAY, to),
        followers(&events, to - 14 * DAY, to - 7 * DAY),
    );
    let fm = growth(
        followers(&events, to - 30 * DAY, to),
        followers(&events, to - 60 * DAY, to - 30 * DAY),
    );
    assert!(fw != 0.0);
    assert!(
        close(f(&m["follower_growth_wow_pct"]), fw, 1e-9),
        "{m} {fw}"
    );
    assert!(
        close(f(&m["follower_growth_mom_pct"]), fm, 1e-9),
        "{m} {fm}"
    );
    // Average viewers this week: per-tick sum over the channel's streams, averaged over
    // the ticks in which any of them is live (a1 ∪ a2, contiguous, up to `to`).
    let union = (bucket(START - 60_000), bucket(to - 1));
    let sum: i64 = ["stream-a1", "stream-a2"]
        .iter()
        .map(|st| {
            expected_over(&events, st, TICK, Some(union))
                .viewers
                .values()
                .sum::<i64>()
        })
        .sum();
    let cur = sum as f64 / ((union.1 - union.0) / TICK + 1) as f64;
    let prev = a0.avg(); // stream-a0: no records, live from its first to its last event's tick
    assert!(
        close(f(&m["avg_viewers_growth_wow_pct"]), growth(cur, prev), 1e-9),
        "{m}"
    );
    assert_eq!(f(&m["avg_viewers_growth_mom_pct"]), 0.0); // nothing 30..60 days back
    // Top clips: views in the range, then trending score now.
    let mut clips: Vec<(&str, i64, f64)> = CLIPS
        .iter()
        .map(|&(c, ..)| {
            (
                c,
                count(&events, "clip", c, "viewstart"),
                trending(&events, "clip", c, now),
            )
        })
        .collect();
    clips.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.total_cmp(&a.2)).then(a.0.cmp(b.0)));
    let got = m["top_clips"].as_array().expect("clips");
    assert_eq!(got.len(), CLIPS.len(), "{m}");
    for (g, (c, views, score)) in got.iter().zip(&clips) {
        assert_eq!(
            (&g["clip"], g["views"].as_i64()),
            (&Value::from(*c), Some(*views)),
            "{m}"
        );
        assert!(
            close(f(&g["trending_score"]), *score, 2e-4),
            "{g} vs {score}"
        );
    }

    // VOD analytics.
    let vs = sessions(&events, "vod", VOD);
    let views = count(&events, "vod", VOD, "viewstart");
    let watch: i64 = vs.iter().map(|x| x.1).sum();
    let threshold = (0.25 * VOD_DURATION_S * 1000.0).min(60_000.0) as i64;
    let engaged = vs.iter().filter(|x| x.1 >= threshold).count();
    let path = format!("/api/vods/{VOD}/analytics");
    assert_eq!(get_as(&s, &path, Some(&bob)).await.0, 403);
    let (status, v) = get_as(&s, &path, Some(&alice)).await;
    assert_eq!(status, 200, "{v}");
    let m = &v["metrics"];
    assert_eq!(m["views"], views);
    assert!(views > 5 && engaged > 0 && engaged < vs.len());
    let uniq = events
        .iter()
        .filter(|e| e["vod"] == VOD)
        .map(|e| e["viewer"].as_str())
        .collect::<BTreeSet<_>>()
        .len();
    assert_eq!(m["unique_viewers"], uniq as i64);
    assert!(
        close(f(&m["watch_minutes"]), watch as f64 / 60_000.0, 1e-12),
        "{m}"
    );
    assert!(close(
        f(&m["avg_watch_time_s"]),
        watch as f64 / 1000.0 / views as f64,
        1e-12
    ));
    assert!(
        close(
            f(&m["engagement_rate"]),
            engaged as f64 / vs.len() as f64,
            1e-12
        ),
        "{m}"
    );
    assert_eq!(m["likes"], count(&events, "vod", VOD, "like"));
    assert_eq!(m["shares"], count(&events, "vod", VOD, "share"));
    assert_eq!(
        m["clickthroughs"],
        count(&events, "vod", VOD, "clickthrough")
    );
    assert_eq!(m["embed_views"], vs.iter().filter(|x| x.2).count() as i64);
    assert!(
        close(
            f(&m["trending_score"]),
            trending(&events, "vod", VOD, now),
            2e-4
        ),
        "{m}"
    );

    // Clip analytics and public stats.
    let (c1, _, _, len1) = CLIPS[0];
    let cs = sessions(&events, "clip", c1);
    let (status, v) = get_as(&s, &format!("/api/clips/{c1}/analytics"), Some(&alice)).await;
    assert_eq!(status, 200, "{v}");
    let m = &v["metrics"];
    let thr = (len1 * 250.0) as i64;
    assert!(
        close(
            f(&m["engagement_rate"]),
            cs.iter().filter(|x| x.1 >= thr).count() as f64 / cs.len() as f64,
            1e-12
        ),
        "{m}"
    );
    assert_eq!(m["embed_views"], cs.iter().filter(|x| x.2).count() as i64);
    assert_eq!(
        m["clickthroughs"],
        count(&events, "clip", c1, "clickthrough")
    );
    let (status, v) = get_as(&s, &format!("/api/clips/{c1}/stats"), None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["views"], count(&events, "clip", c1, "viewstart"));
    assert_eq!(v["likes"], count(&events, "clip", c1, "like"));
    assert_eq!(v["shares"], count(&events, "clip", c1, "share"));
    // The catalog's VOD and clip objects carry the same counts (copied from analytics
    // by the counter sync, every 200 ms here).
    let want_vod = (views, count(&events, "vod", VOD, "like"));
    let want_clip = (
        count(&events, "clip", c1, "viewstart"),
        count(&events, "clip", c1, "like"),
        count(&events, "clip", c1, "share"),
    );
    let mut seen = (Value::Null, Value::Null);
    for _ in 0..100 {
        let vod = get_as(&s, &format!("/api/vods/{VOD}"), None).await.1;
        let clip = get_as(&s, &format!("/api/clips/{c1}"), None).await.1;
        let done = vod["view_count"] == want_vod.0
            && vod["like_count"] == want_vod.1
            && clip["view_count"] == want_clip.0
            && clip["like_count"] == want_clip.1
            && clip["share_count"] == want_clip.2;
        seen = (vod, clip);
        if done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(want_vod.0 > 0 && want_clip.0 > 0);
    assert_eq!(seen.0["view_count"], want_vod.0, "{}", seen.0);
    assert_eq!(seen.0["like_count"], want_vod.1, "{}", seen.0);
    assert_eq!(seen.1["view_count"], want_clip.0, "{}", seen.1);
    assert_eq!(seen.1["like_count"], want_clip.1, "{}", seen.1);
    assert_eq!(seen.1["share_count"], want_clip.2, "{}", seen.1);
    // clip-3 is unpublished: hidden from the public, shown to its creator.
    assert_eq!(get_as(&s, "/api/clips/clip-3/stats", None).await.0, 404);
    assert_eq!(
        get_as(&s, "/api/clips/clip-3/stats", Some(&bob)).await.0,
        404
    );
    assert_eq!(
        get_as(&s, "/api/clips/clip-3/stats", Some(&alice)).await.0,
        200
    );

    // Trending: public, published clips only, score order.
    for path in [
        "/api/clips/trending?channel=chan-a&limit=10",
        "/api/clips/trending",
    ] {
        let (status, v) = get_as(&s, path, None).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["at"], now);
        let items = v["items"].as_array().expect("items");
        let mut want: Vec<(&str, f64)> = CLIPS
            .iter()
            .filter(|c| c.2)
            .map(|&(c, ..)| (c, trending(&events, "clip", c, now)))
            .collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        assert_eq!(items.len(), want.len(), "{v}");
        for (g, (c, score)) in items.iter().zip(&want) {
            assert_eq!(g["clip"], *c, "{v}");
            assert!(
                close(f(&g["trending_score"]), *score, 2e-4),
                "{g} vs {score}"
            );
        }
    }

    // Top lists and the streams that generate the most clips.
    let (status, v) = get_as(&s, "/api/channels/chan-a/top-clips?limit=5", Some(&alice)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["items"][0]["clip"], clips[0].0, "{v}");
    assert_eq!(v["streams_by_clips"][0]["stream"], "stream-a1");
    assert_eq!(v["streams_by_clips"][0]["clips"], 2);
    let (status, v) = get_as(&s, "/api/channels/chan-a/top-vods", Some(&alice)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["items"][0]["vod"], VOD);
    assert_eq!(v["items"][0]["views"], views);
    assert_eq!(
        get_as(&s, "/api/channels/chan-a/top-vods", Some(&bob))
            .await
            .0,
        403
    );
    s.stop().await;
}
