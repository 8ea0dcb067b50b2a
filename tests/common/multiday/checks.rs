//! The channel and VOD/clip checks of the multi-day test: every number of the
//! channel analytics, VOD and clip analytics, clip stats and top lists against the
//! facts of [`super::ledger`], as METRICS.md §3 and §5 define them.

use super::super::Server;
use super::ledger::{self, Bucket, Want};
use super::world::{Report, Scope, World, fetch_all};
use super::{CHANNELS, DAY, DAY0, TargetKind, Trace};
use std::collections::{BTreeMap, HashSet};

const HALF_LIFE_MS: f64 = 6.0 * 3_600_000.0;

/// METRICS.md §5 at the clock: view 1, embed view 1 and share 5 (clips), like 3.
fn trending(w: &World, target: usize) -> f64 {
    let f = &w.facts[target];
    let clip = w.trace.targets[target].kind == TargetKind::Clip;
    let now = w.trace.now;
    let sum = |ts: &[i64], weight: f64| -> f64 {
        ts.iter()
            .map(|&t| weight * 0.5f64.powf((now - t) as f64 / HALF_LIFE_MS))
            .sum()
    };
    let mut score = sum(&f.views, 1.0) + sum(&f.likes, 3.0);
    if clip {
        score += sum(&f.embed_views, 1.0) + sum(&f.shares, 5.0);
    }
    score
}

fn growth(cur: f64, prev: f64) -> f64 {
    if prev > 0.0 {
        (cur - prev) / prev * 100.0
    } else {
        0.0
    }
}

/// The ranges the channel and top-list checks use: the whole trace and each day.
fn ranges(t: &Trace) -> Vec<(i64, i64)> {
    let mut out = vec![(t.from, t.to)];
    out.extend((0..3).map(|d| (DAY0 + d * DAY, DAY0 + (d + 1) * DAY)));
    out
}

/// Channel analytics of every channel over each range.
pub async fn channels(s: &Server, w: &World, r: &mut Report) {
    let t = &w.trace;
    let mut keys = Vec::new();
    for c in 0..CHANNELS.len() {
        for (a, b) in ranges(t) {
            keys.push((c, a, b));
        }
    }
    let paths: Vec<String> = keys
        .iter()
        .map(|&(c, a, b)| {
            format!(
                "/api/analytics/channels/{}?from={a}&to={b}&limit=100",
                CHANNELS[c].0
            )
        })
        .collect();
    let answers = fetch_all(s, &paths).await;
    let mut growing = 0;
    for (&(c, a, b), v) in keys.iter().zip(&answers) {
        let what = |k: &str| format!("{} [{a}, {b}): {k}", CHANNELS[c].0);
        let echo = (v["channel"].as_str(), v["from"].as_i64(), v["to"].as_i64());
        r.same(
            || what("echo"),
            (Some(CHANNELS[c].0), Some(a), Some(b)),
            echo,
        );
        let m = &v["metrics"];
        r.same(|| what("keys"), 10, m.as_object().map_or(0, |o| o.len()));
        let one = |st: usize| w.buckets(Scope::Target(st), a, b, b - a).remove(&a);
        // Streams in the range: their live intervals overlap it.
        let mut hours_ms = 0;
        let mut best = Vec::new();
        let mut categories: BTreeMap<&str, i64> = BTreeMap::new();
        for st in w.streams_of(c) {
            let overlap: i64 = ledger::intervals(t, &w.facts, st)
                .iter()
                .map(|&(x, y)| (y.min(b) - x.max(a)).max(0))
                .sum();
            if overlap <= 0 {
                continue;
            }
            hours_ms += overlap;
            let bucket = one(st).expect("one bucket");
            let spec = t.streams.iter().find(|x| x.target == st).expect("spec");
            if !spec.category.is_empty() {
                *categories.entry(spec.category).or_default() += bucket.watch_ms;
            }
            best.push((bucket.watch_ms, bucket.peak, t.targets[st].id.clone()));
        }
        r.want(
            || what("hours_streamed"),
            Want::Float(hours_ms as f64 / 3_600_000.0),
            &m["hours_streamed"],
        );
        let views: usize = w
            .targets_of(c)
            .iter()
            .map(|&x| w.facts[x].views.len())
            .sum();
        r.want(
            || what("total_views"),
            Want::Int(views as i64),
            &m["total_views"],
        );
        let avg_peak = best.iter().map(|x| x.1 as f64).sum::<f64>() / best.len().max(1) as f64;
        r.want(
            || what("avg_peak_viewers"),
            Want::Float(avg_peak),
            &m["avg_peak_viewers"],
        );
        let top = categories
            .iter()
            .fold(None::<(&str, i64)>, |acc, (&k, &n)| match acc {
                Some((_, m)) if m >= n => acc,
                _ => Some((k, n)),
            })
            .map_or("", |x| x.0);
        r.same(
            || what("category"),
            top,
            m["most_watched_category"].as_str().unwrap_or("?"),
        );
        best.sort_by(|x, y| y.0.cmp(&x.0).then(y.1.cmp(&x.1)).then(x.2.cmp(&y.2)));
        let got = m["best_streams"].as_array().cloned().unwrap_or_default();
        r.same(|| what("best_streams"), best.len(), got.len());
        for (g, (watch, peak, id)) in got.iter().zip(&best) {
            r.same(
                || what("best stream"),
                id.as_str(),
                g["stream"].as_str().unwrap_or(""),
            );
            let wm = Want::Float(*watch as f64 / 60_000.0);
            r.want(
                || what(&format!("{id} watch_minutes")),
                wm,
                &g["watch_minutes"],
            );
            r.want(
                || what(&format!("{id} peak")),
                Want::Int(*peak),
                &g["peak_concurrent"],
            );
        }
        // Growth: windows ending at `b`.
        let targets = w.targets_of(c);
        let followers = |x: i64, y: i64| {
            let set: HashSet<u32> = targets
                .iter()
                .flat_map(|&st| &w.facts[st].follows)
                .filter(|f| f.0 >= x && f.0 < y)
                .map(|f| f.1)
                .collect();
            set.len() as f64
        };
        let avg = |x: i64, y: i64| {
            let bucket = w
                .buckets(Scope::Channel(c), x, y, y - x)
                .remove(&x)
                .expect("bucket");
            match bucket.want("viewers") {
                Want::Float(v) => v,
                other => panic!("{other:?}"),
            }
        };
        for (key, days) in [("wow", 7), ("mom", 30)] {
            let (cur, prev) = ((b - days * DAY, b), (b - 2 * days * DAY, b - days * DAY));
            let f = growth(followers(cur.0, cur.1), followers(prev.0, prev.1));
            growing += usize::from(f != 0.0);
            let k = format!("follower_growth_{key}_pct");
            r.want(|| what(&k), Want::Float(f), &m[k.as_str()]);
            let g = growth(avg(cur.0, cur.1), avg(prev.0, prev.1));
            let k = format!("avg_viewers_growth_{key}_pct");
            r.want(|| what(&k), Want::Float(g), &m[k.as_str()]);
        }
        // Top clips: views in the range, then trending score, then id.
        let mut clips: Vec<(i64, f64, &str)> = t
            .clips
            .iter()
            .filter(|k| t.targets[k.target].channel == c)
            .map(|k| {
                let n = w.facts[k.target]
                    .views
                    .iter()
                    .filter(|&&v| v >= a && v < b)
                    .count();
                (
                    n as i64,
                    trending(w, k.target),
                    t.targets[k.target].id.as_str(),
                )
            })
            .collect();
        clips.sort_by(|x, y| y.0.cmp(&x.0).then(y.1.total_cmp(&x.1)).then(x.2.cmp(y.2)));
        let got = m["top_clips"].as_array().cloned().unwrap_or_default();
        r.same(|| what("top_clips"), clips.len(), got.len());
        for (g, (views, score, id)) in got.iter().zip(&clips) {
            r.same(|| what("top clip"), *id, g["clip"].as_str().unwrap_or(""));
            r.want(
                || what(&format!("{id} views")),
                Want::Int(*views),
                &g["views"],
            );
            r.want(
                || what(&format!("{id} score")),
                Want::Trending(*score),
                &g["trending_score"],
            );
        }
    }
    // The older stream's follows make week-over-week growth nonzero for its channel.
    assert!(growing > 0, "no follower growth to check");
}

/// A VOD's or clip's counters over `[a, b)` (watch time split at the bounds).
fn content_bucket(w: &World, target: usize, a: i64, b: i64) -> Bucket {
    w.buckets(Scope::Target(target), a, b, b - a)
        .remove(&a)
        .expect("one bucket")
}

/// VOD and clip analytics, clip stats, and the top lists of every channel.
pub async fn content(s: &Server, w: &World, r: &mut Report) {
    let t = &w.trace;
    let mut items: Vec<(usize, f64)> = t.vods.iter().map(|v| (v.target, v.duration_s)).collect();
    items.extend(t.clips.iter().map(|c| (c.target, c.len_s)));
    let paths: Vec<String> = items
        .iter()
        .map(|&(x, _)| {
            let target = &t.targets[x];
            let kind = if target.kind == TargetKind::Vod {
                "vods"
            } else {
                "clips"
            };
            format!("/api/{kind}/{}/analytics", target.id)
        })
        .collect();
    let answers = fetch_all(s, &paths).await;
    let mut partly_engaged = 0;
    for (&(x, duration_s), v) in items.iter().zip(&answers) {
        let id = &t.targets[x].id;
        let b = w.all_time(Scope::Target(x));
        let f = &w.facts[x];
        let m = &v["metrics"];
        let threshold = ((duration_s * 250.0).ceil() as i64).min(60_000);
        let engaged = f.view_watch.iter().filter(|&&ms| ms >= threshold).count();
        partly_engaged += usize::from(engaged > 0 && engaged < f.view_watch.len());
        let views = b.views.max(1) as f64;
        let want = [
            ("views", Want::Int(b.views)),
            ("unique_viewers", Want::Int(b.viewers.len() as i64)),
            ("watch_minutes", Want::Float(b.watch_ms as f64 / 60_000.0)),
            (
                "avg_watch_time_s",
                Want::Float(b.watch_ms as f64 / 1000.0 / views),
            ),
            (
                "engagement_rate",
                Want::Float(engaged as f64 / f.view_watch.len() as f64),
            ),
            ("likes", Want::Int(b.likes)),
            ("shares", Want::Int(b.shares)),
            ("embed_views", Want::Int(b.embed_views)),
            ("clickthroughs", Want::Int(b.clickthroughs)),
            ("trending_score", Want::Trending(trending(w, x))),
        ];
        for (k, want) in want {
            r.want(|| format!("{id}: {k}"), want, &m[k]);
        }
        r.same(
            || format!("{id}: metric count"),
            10,
            m.as_object().map_or(0, |o| o.len()),
        );
        if t.targets[x].kind == TargetKind::Clip {
            let v = s.json(&format!("/api/clips/{id}/stats")).await;
            for (k, n) in [("views", b.views), ("likes", b.likes), ("shares", b.shares)] {
                r.want(|| format!("{id}: stats {k}"), Want::Int(n), &v[k]);
            }
        }
    }
    assert!(
        partly_engaged * 2 > items.len(),
        "engagement rates are not trivial"
    );
    top_lists(s, w, r).await;
}

/// `top-vods` and `top-clips` of every channel over each range: order and numbers.
async fn top_lists(s: &Server, w: &World, r: &mut Report) {
    let t = &w.trace;
    for (c, &(channel, _)) in CHANNELS.iter().enumerate() {
        for (a, b) in ranges(t) {
            for kind in [TargetKind::Vod, TargetKind::Clip] {
                let list = if kind == TargetKind::Vod {
                    "top-vods"
                } else {
                    "top-clips"
                };
                let what = |k: &str| format!("{channel} {list} [{a}, {b}): {k}");
                let path = format!("/api/channels/{channel}/{list}?from={a}&to={b}&limit=100");
                let v = s.json(&path).await;
                let mut want: Vec<(Bucket, &str, usize)> = w
                    .targets_of(c)
                    .into_iter()
                    .filter(|&x| t.targets[x].kind == kind)
                    .map(|x| (content_bucket(w, x, a, b), t.targets[x].id.as_str(), x))
                    .collect();
                want.sort_by(|x, y| {
                    y.0.views
                        .cmp(&x.0.views)
                        .then(y.0.watch_ms.cmp(&x.0.watch_ms))
                        .then(x.1.cmp(y.1))
                });
                let got = v["items"].as_array().cloned().unwrap_or_default();
                r.same(|| what("items"), want.len(), got.len());
                for (g, (bucket, id, x)) in got.iter().zip(&want) {
                    r.same(|| what("order"), *id, g[kind.key()].as_str().unwrap_or(""));
                    let views = bucket.views.max(1) as f64;
                    let nums = [
                        ("views", Want::Int(bucket.views)),
                        (
                            "watch_minutes",
                            Want::Float(bucket.watch_ms as f64 / 60_000.0),
                        ),
                        (
                            "avg_watch_time_s",
                            Want::Float(bucket.watch_ms as f64 / 1000.0 / views),
                        ),
                        ("likes", Want::Int(bucket.likes)),
                        ("shares", Want::Int(bucket.shares)),
                        ("embed_views", Want::Int(bucket.embed_views)),
                        ("clickthroughs", Want::Int(bucket.clickthroughs)),
                        ("trending_score", Want::Trending(trending(w, *x))),
                    ];
                    for (k, want) in nums {
                        r.want(|| what(&format!("{id} {k}")), want, &g[k]);
                    }
                }
                if kind == TargetKind::Clip {
                    let mut per: BTreeMap<&str, i64> = BTreeMap::new();
                    for k in t.clips.iter().filter(|k| t.targets[k.target].channel == c) {
                        if k.created_at >= a && k.created_at < b {
                            *per.entry(t.targets[k.stream].id.as_str()).or_default() += 1;
                        }
                    }
                    let mut per: Vec<(&str, i64)> = per.into_iter().collect();
                    per.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
                    let got: Vec<(&str, i64)> = v["streams_by_clips"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|e| {
                                    (
                                        e["stream"].as_str().unwrap_or(""),
                                        e["clips"].as_i64().unwrap_or(-1),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    r.same(|| what("streams_by_clips"), per, got);
                }
            }
        }
    }
}
