//! Issue 4 point 8: a three-day generated trace (`common::multiday`: three channels,
//! nineteen streams (one of them nine days before), seven VODs, ten clips, about 256 000
//! events with hundreds of concurrent viewers at the peaks) replayed into each store —
//! the embedded one and a real ClickHouse server — and every number the creator routes
//! report checked against `common::multiday::ledger`, an independent computation from
//! the raw events written in the tests:
//! - every stream's summary (`/api/analytics/streams/:id`);
//! - every series metric per stream, channel, VOD and clip at 1 d and 1 h over the
//!   whole trace, per stream and channel at 1 min (the stream's span; the channel's three
//!   days) and at 5 s over ten-minute slices (every metric: distinct viewers come from
//!   the minute rows' 5-second slice masks); the viewers
//!   chart per stream and channel at 1 h;
//! - channel analytics over the whole trace and over each day;
//! - VOD and clip analytics, clip stats, and the top-VOD and top-clip lists.
//!
//! Mismatches are collected, so a failing run lists all of them (the first 60 shown).

mod common;

use common::multiday::ledger::{self, TICK, Want};
use common::multiday::world::{Report, Scope, World, fetch_all};
use common::multiday::{CHANNELS, DAY, DAY0, HOUR, MIN, Records, TargetKind};
use pulse_query::series::Metric;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_days_of_numbers_match_the_raw_events() {
    check(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_days_of_numbers_match_the_raw_events_on_clickhouse() {
    let ch = tokio::task::spawn_blocking(common::clickhouse::ClickHouse::start)
        .await
        .expect("start ClickHouse");
    check(Some(ch.url())).await;
}

async fn check(clickhouse_url: Option<String>) {
    let store = if clickhouse_url.is_some() {
        "clickhouse"
    } else {
        "embedded"
    };
    let clock = Instant::now();
    let trace = common::multiday::generate(2025);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = common::config(&dir.path().join("data"));
    if let Some(url) = clickhouse_url {
        cfg.store = pulse::config::StoreKind::Clickhouse;
        cfg.clickhouse_url = url;
    }
    // The trace is dated 2025: keep its VODs from the retention job; and no archive
    // VODs beside the trace's own for the streams that end.
    cfg.catalog.delete_after_days = 100_000;
    cfg.catalog.min_vod_duration_s = 1e12;
    trace.seed(&cfg).await;
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, trace.ndjson()).expect("write events");
    let generated = clock.elapsed();
    let c = cfg.clone();
    let report = tokio::task::spawn_blocking(move || pulse::replay::replay_file(&c, &file))
        .await
        .expect("join")
        .expect("replay");
    assert_eq!(report.events as usize, trace.events.len(), "{report:?}");
    assert_eq!((report.rejected, report.late), (0, 0), "{report:?}");
    let replayed = clock.elapsed();
    let world = World::new(trace);
    let (from, to, now) = (world.trace.from, world.trace.to, world.trace.now);
    let s = common::start(cfg, now).await;
    for c in CHANNELS {
        let probe = format!(
            "/api/analytics/series?metric=views&channel={}&from={from}&to={to}&step={DAY}",
            c.0
        );
        common::wait_for(&s, &probe, 60, |v| {
            v["points"]
                .as_array()
                .is_some_and(|p| p.iter().all(|x| x["final"] == true))
        })
        .await;
    }
    let served = clock.elapsed();

    let mut r = Report::default();
    check_summaries(&s, &world, &mut r).await;
    let summaries = r.checked;
    let series = check_all_series(&s, &world, &mut r).await;
    let series_checks = r.checked - summaries;
    common::multiday::checks::channels(&s, &world, &mut r).await;
    common::multiday::checks::content(&s, &world, &mut r).await;
    s.stop().await;
    let t = &world.trace;
    eprintln!(
        "{store}: {} events, {} channels, {} streams, {} VODs, {} clips over {} days (and a \
         stream {} days before); {series} requests of series; {} checks ({summaries} in \
         summaries, {series_checks} in series), {} of nonzero numbers; generated \
         {generated:.1?}, replayed {:.1?}, served {:.1?}, checked {:.1?}",
        t.events.len(),
        CHANNELS.len(),
        t.streams.len(),
        t.vods.len(),
        t.clips.len(),
        (to - DAY0) / DAY,
        (DAY0 - from) / DAY,
        r.checked,
        r.nonzero,
        replayed - generated,
        served - replayed,
        clock.elapsed() - served,
    );
    assert!(
        r.nonzero > 40_000,
        "only {} nonzero expectations",
        r.nonzero
    );
    assert!(
        r.failures.is_empty(),
        "{store}: {} of {} checks failed; the first ones:\n{}",
        r.failures.len(),
        r.checked,
        r.failures[..r.failures.len().min(60)].join("\n")
    );
}

/// Every stream's summary against its facts over all time and its live ticks.
async fn check_summaries(s: &common::Server, w: &World, r: &mut Report) {
    let t = &w.trace;
    let paths: Vec<String> = t
        .streams
        .iter()
        .map(|x| format!("/api/analytics/streams/{}", t.targets[x.target].id))
        .collect();
    let answers = fetch_all(s, &paths).await;
    for (spec, v) in t.streams.iter().zip(&answers) {
        let id = &t.targets[spec.target].id;
        let b = w.all_time(Scope::Target(spec.target));
        let status = match &spec.records {
            Records::Lifecycle(iv) if iv.last().is_some_and(|l| l.1.is_none()) => "LIVE",
            Records::Lifecycle(_) => "ENDED",
            _ => "UNKNOWN",
        };
        r.same(
            || format!("{id}: status"),
            status,
            v["status"].as_str().unwrap_or(""),
        );
        r.same(
            || format!("{id}: channel"),
            t.channel_of(spec.target),
            v["channel"].as_str().unwrap_or(""),
        );
        let duration: i64 = ledger::intervals(t, &w.facts, spec.target)
            .iter()
            .map(|(a, b)| b - a)
            .sum();
        let m = &v["metrics"];
        let want = |k: &str| match k {
            "duration_s" => Want::Float(duration as f64 / 1000.0),
            "peak_concurrent" => Want::Int(b.peak),
            "avg_concurrent" => b.want("viewers"),
            other => b.want(other),
        };
        let keys = ["duration_s", "peak_concurrent", "avg_concurrent"];
        let rest = Metric::ALL
            .iter()
            .map(|m| m.name())
            .filter(|&n| n != "viewers");
        for k in keys.into_iter().chain(rest) {
            r.want(|| format!("{id}: {k}"), want(k), &m[k]);
        }
        r.same(
            || format!("{id}: metric count"),
            16,
            m.as_object().map_or(0, |o| o.len()),
        );
        assert!(b.views > 0 && b.peak > 0, "{id}: an empty stream");
    }
    let big = t
        .streams
        .iter()
        .map(|x| w.all_time(Scope::Target(x.target)).peak)
        .max();
    assert!(big >= Some(150), "the raids reach hundreds: {big:?}");
}

/// The series checks of one scope: (from, to, step, metrics).
type Plan = Vec<(i64, i64, i64, Vec<&'static str>)>;

/// Every series of every scope; returns the number of requests.
async fn check_all_series(s: &common::Server, w: &World, r: &mut Report) -> usize {
    let t = &w.trace;
    let (from, to) = (t.from, t.to);
    // Every metric the series route knows (a new one fails `Bucket::want` until the
    // ledger computes it).
    let all: Vec<&'static str> = Metric::ALL.iter().map(|m| m.name()).collect();
    let whole: Plan = vec![(from, to, DAY, all.clone()), (from, to, HOUR, all.clone())];
    let mut scopes: Vec<(Scope, Plan)> = Vec::new();
    for spec in &t.streams {
        let st = spec.target;
        let acts = &w.facts[st].activity;
        let first = acts.iter().map(|a| a.0).min().expect("events");
        let last = acts.iter().map(|a| a.0).max().expect("events");
        let a = (first.div_euclid(MIN) - 5) * MIN;
        let b = ((last.div_euclid(MIN) + 6) * MIN).min(to);
        let mid = (first + last) / 2 / MIN * MIN;
        let mut plan = whole.clone();
        plan.push((a, b, MIN, all.clone()));
        plan.push((mid - 5 * MIN, mid + 5 * MIN, TICK, all.clone()));
        scopes.push((Scope::Target(st), plan));
    }
    for c in 0..CHANNELS.len() {
        // Ten minutes around the first day-1 stream's LIVE of the channel.
        let live = w
            .streams_of(c)
            .iter()
            .filter_map(|&st| w.live[st].first().copied())
            .filter(|&l| l >= DAY0 + DAY)
            .min()
            .expect("a day-1 stream");
        let l = live.div_euclid(MIN) * MIN;
        let mut plan = whole.clone();
        plan.push((DAY0, to, MIN, all.clone()));
        plan.push((l - 5 * MIN, l + 5 * MIN, TICK, all.clone()));
        // The same step again over an hour inside the three days (the series cache, when
        // on, serves part of it from the answer above).
        plan.push((l - 30 * MIN, l + 30 * MIN, MIN, all.clone()));
        scopes.push((Scope::Channel(c), plan));
    }
    for x in t
        .vods
        .iter()
        .map(|v| v.target)
        .chain(t.clips.iter().map(|c| c.target))
    {
        scopes.push((Scope::Target(x), whole.clone()));
    }
    let mut requests = 0;
    for (scope, plan) in scopes {
        for (a, b, step, metrics) in plan {
            let want = w.buckets(scope, a, b, step);
            let param = w.param(scope);
            let range = format!("{param}&from={a}&to={b}&step={step}");
            let mut asks: Vec<(&str, String)> = metrics
                .iter()
                .map(|m| (*m, format!("/api/analytics/series?metric={m}&{range}")))
                .collect();
            let chart = match scope {
                Scope::Channel(_) => true,
                Scope::Target(x) => t.targets[x].kind == TargetKind::Stream,
            };
            if step == HOUR && chart {
                // The viewers chart answers the same points.
                asks.push(("viewers", format!("/api/analytics/charts/viewers?{range}")));
            }
            let paths: Vec<String> = asks.iter().map(|x| x.1.clone()).collect();
            requests += paths.len();
            let answers = fetch_all(s, &paths).await;
            for ((m, _), v) in asks.iter().zip(&answers) {
                let what = |t: i64| format!("{param} {m} step {step} at {t}");
                let points = v["points"].as_array().cloned().unwrap_or_default();
                r.same(|| format!("{} points", what(a)), want.len(), points.len());
                r.same(
                    || format!("{} step_ms", what(a)),
                    step,
                    v["step_ms"].as_i64().unwrap_or(0),
                );
                for (p, (&bt, bucket)) in points.iter().zip(&want) {
                    r.same(|| what(bt), bt, p["t"].as_i64().unwrap_or(-1));
                    r.same(|| format!("{} final", what(bt)), true, p["final"] == true);
                    r.want(|| what(bt), bucket.want(m), &p["value"]);
                    if *m == "viewers" {
                        r.want(
                            || format!("{} peak", what(bt)),
                            Want::Int(bucket.peak),
                            &p["peak"],
                        );
                    }
                }
            }
        }
    }
    requests
}
