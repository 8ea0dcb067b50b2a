//! The independent computation for the multi-day trace ([`super`]): what each
//! raw event means under METRICS.md §1–§3, written from the definitions with plain
//! loops and sharing no code with the aggregator or the query service.
//!
//! [`facts`] walks every view session once and records, per target, dated facts (watch
//! stretches, views, rebuffers, failures, startups, chat, follows, every event's viewer)
//! and the concurrent viewers at every tick end. [`aggregate`] sums facts into the
//! buckets of any range and step; the test turns a bucket into each metric.

use super::{Ev, Kind, Records, Trace};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

pub const TICK: i64 = 5_000;
pub const TIMEOUT: i64 = 30_000;
pub const LONG_REBUFFER: i64 = 300_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Starting,
    Playing,
    Rebuffering,
    Paused,
    Ended,
}

/// What happened on one target, dated.
#[derive(Debug, Default)]
pub struct Facts {
    /// Watch time `[from, to)`, and whether it was rebuffering.
    pub watch: Vec<(i64, i64, bool)>,
    /// Counted views (their `viewstart`), and those with `embed: true`.
    pub views: Vec<i64>,
    pub embed_views: Vec<i64>,
    pub rebuffers: Vec<i64>,
    pub failures: Vec<i64>,
    /// (time of the first `playing`, startup ms)
    pub startups: Vec<(i64, i64)>,
    /// (time, messages)
    pub chat: Vec<(i64, i64)>,
    pub follows: Vec<(i64, u32)>,
    /// Every event's (time, viewer), orphans included.
    pub activity: Vec<(i64, u32)>,
    pub likes: Vec<i64>,
    pub shares: Vec<i64>,
    pub clickthroughs: Vec<i64>,
    /// Each counted view's whole watch time (ms).
    pub view_watch: Vec<i64>,
    /// Concurrent viewers at the end of each tick, by tick start (zeros left out).
    pub viewers: HashMap<i64, i64>,
}

fn implied(kind: Kind, state: Option<&str>) -> St {
    match kind {
        Kind::Viewstart => St::Starting,
        Kind::Pause => St::Paused,
        Kind::RebufferStart => St::Rebuffering,
        Kind::Heartbeat => match state {
            Some("paused") => St::Paused,
            Some("rebuffering") => St::Rebuffering,
            Some("starting") => St::Starting,
            _ => St::Playing,
        },
        _ => St::Playing,
    }
}

/// The facts of every target of the trace (indexed like `trace.targets`).
pub fn facts(trace: &Trace) -> Vec<Facts> {
    let mut out: Vec<Facts> = trace.targets.iter().map(|_| Facts::default()).collect();
    let mut sessions: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, e) in trace.events.iter().enumerate() {
        let f = &mut out[e.target];
        f.activity.push((e.ts, e.viewer));
        match e.kind {
            Kind::Chat => f.chat.push((e.ts, i64::from(e.count.unwrap_or(1)))),
            Kind::Follow => f.follows.push((e.ts, e.viewer)),
            Kind::Like => f.likes.push(e.ts),
            Kind::Share => f.shares.push(e.ts),
            Kind::Clickthrough => f.clickthroughs.push(e.ts),
            _ => sessions.entry(e.session).or_default().push(i),
        }
    }
    for idx in sessions.values() {
        let evs: Vec<&Ev> = idx.iter().map(|&i| &trace.events[i]).collect();
        session(&evs, &mut out[evs[0].target]);
    }
    out
}

/// One session's facts (its events in time order, strictly increasing).
fn session(evs: &[&Ev], f: &mut Facts) {
    let first = evs[0];
    let mut counted = None;
    let mut seen_playing = first.kind == Kind::Playing;
    let mut state = implied(first.kind, first.state);
    let mut since = first.ts;
    match first.kind {
        Kind::Viewstart => {
            counted = Some(first.ts);
            f.views.push(first.ts);
            if first.embed {
                f.embed_views.push(first.ts);
            }
        }
        Kind::RebufferStart => f.rebuffers.push(first.ts),
        Kind::Error => {
            f.failures.push(first.ts);
            state = St::Ended;
        }
        Kind::Viewend => state = St::Ended,
        _ => {}
    }
    // (time, state after the event, rebuffering since)
    let mut steps = vec![(first.ts, state, since)];
    let mut watched = 0;
    let mut prev = first.ts;
    for e in &evs[1..] {
        if state == St::Ended || e.ts - prev > TIMEOUT {
            break; // ended (by an event, or by silence at `prev`): the rest are orphans
        }
        if matches!(state, St::Playing | St::Rebuffering) {
            f.watch.push((prev, e.ts, state == St::Rebuffering));
            watched += e.ts - prev;
        }
        match e.kind {
            Kind::Playing => {
                if !seen_playing {
                    seen_playing = true;
                    if let Some(vs) = counted {
                        f.startups.push((e.ts, e.ts - vs));
                    }
                }
                state = St::Playing;
            }
            Kind::RebufferEnd | Kind::Seek => state = St::Playing,
            Kind::RebufferStart => {
                f.rebuffers.push(e.ts);
                if state != St::Rebuffering {
                    since = e.ts;
                }
                state = St::Rebuffering;
            }
            Kind::Pause => state = St::Paused,
            Kind::Viewend => state = St::Ended,
            Kind::Error => {
                f.failures.push(e.ts);
                state = St::Ended;
            }
            _ => {}
        }
        steps.push((e.ts, state, since));
        prev = e.ts;
    }
    if counted.is_some() {
        f.view_watch.push(watched);
    }
    // A viewer at tick end T: its last event before T is at most 30 s old, it has not
    // ended, is not paused, and is not rebuffering for more than five minutes.
    for (i, &(ts, st, since)) in steps.iter().enumerate() {
        if matches!(st, St::Ended | St::Paused) {
            continue;
        }
        let limit = steps
            .get(i + 1)
            .map_or(ts + TIMEOUT, |n| n.0.min(ts + TIMEOUT));
        let mut end = (ts.div_euclid(TICK) + 1) * TICK;
        while end <= limit {
            if st != St::Rebuffering || end - since <= LONG_REBUFFER {
                *f.viewers.entry(end - TICK).or_default() += 1;
            }
            end += TICK;
        }
    }
}

/// A stream's live intervals `[start, end)`: LIVE..ENDED (an open one to `now`), else
/// from the start of the tick of its first event to the end of the tick of its last.
pub fn intervals(trace: &Trace, facts: &[Facts], stream: usize) -> Vec<(i64, i64)> {
    let spec = trace
        .streams
        .iter()
        .find(|s| s.target == stream)
        .expect("a stream");
    match &spec.records {
        Records::Lifecycle(iv) => iv
            .iter()
            .map(|&(live, end)| (live, end.unwrap_or(trace.now)))
            .collect(),
        _ => {
            let ts = facts[stream].activity.iter().map(|a| a.0);
            let first = ts.clone().min().expect("events").div_euclid(TICK) * TICK;
            let last = ts.max().expect("events").div_euclid(TICK) * TICK;
            vec![(first, last + TICK)]
        }
    }
}

/// The tick starts in which a stream is live: every tick overlapping an interval.
pub fn live_ticks(trace: &Trace, facts: &[Facts], stream: usize) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    for (a, b) in intervals(trace, facts, stream) {
        let mut t = a.div_euclid(TICK) * TICK;
        while t < b {
            out.insert(t);
            t += TICK;
        }
    }
    out
}

/// Sums of one bucket.
#[derive(Clone, Debug, Default)]
pub struct Bucket {
    pub views: i64,
    pub embed_views: i64,
    pub watch_ms: i64,
    pub rebuffer_ms: i64,
    pub rebuffer_count: i64,
    pub failures: i64,
    pub chat: i64,
    pub likes: i64,
    pub shares: i64,
    pub clickthroughs: i64,
    pub startups: Vec<i64>,
    pub viewers: HashSet<u32>,
    pub followers: HashSet<u32>,
    /// Live ticks, the sum and the max of their concurrent viewers.
    pub live_ticks: i64,
    pub viewer_sum: i64,
    pub peak: i64,
}

/// The buckets `[from + k·step, from + (k+1)·step)` covering `[from, to)` (a whole
/// number of steps; a series' are epoch-aligned) of the targets `parts`, with `viewers` (per tick) averaged over the `live` ticks.
pub fn aggregate(
    parts: &[&Facts],
    viewers: &HashMap<i64, i64>,
    live: &BTreeSet<i64>,
    from: i64,
    to: i64,
    step: i64,
) -> BTreeMap<i64, Bucket> {
    assert!((to - from) % step == 0 && from < to, "whole buckets");
    let start = |t: i64| from + (t - from).div_euclid(step) * step;
    let mut out: BTreeMap<i64, Bucket> = (0..(to - from) / step)
        .map(|k| (from + k * step, Bucket::default()))
        .collect();
    let at = |t: i64| (t >= from && t < to).then(|| start(t));
    macro_rules! count {
        ($list:expr, $field:ident) => {
            for &t in &$list {
                if let Some(b) = at(t) {
                    out.get_mut(&b).expect("bucket").$field += 1;
                }
            }
        };
    }
    for f in parts {
        count!(f.views, views);
        count!(f.embed_views, embed_views);
        count!(f.rebuffers, rebuffer_count);
        count!(f.failures, failures);
        count!(f.likes, likes);
        count!(f.shares, shares);
        count!(f.clickthroughs, clickthroughs);
        for &(a, b, rebuffering) in &f.watch {
            let mut x = a.max(from);
            while x < b.min(to) {
                let next = start(x) + step;
                let piece = next.min(b) - x;
                let bucket = out.get_mut(&(next - step)).expect("bucket");
                bucket.watch_ms += piece;
                if rebuffering {
                    bucket.rebuffer_ms += piece;
                }
                x = next;
            }
        }
        for &(t, ms) in &f.startups {
            if let Some(b) = at(t) {
                out.get_mut(&b).expect("bucket").startups.push(ms);
            }
        }
        for &(t, n) in &f.chat {
            if let Some(b) = at(t) {
                out.get_mut(&b).expect("bucket").chat += n;
            }
        }
        for &(t, v) in &f.activity {
            if let Some(b) = at(t) {
                out.get_mut(&b).expect("bucket").viewers.insert(v);
            }
        }
        for &(t, v) in &f.follows {
            if let Some(b) = at(t) {
                out.get_mut(&b).expect("bucket").followers.insert(v);
            }
        }
    }
    for &t in live.range(from..to) {
        let b = out.get_mut(&start(t)).expect("bucket");
        let v = viewers.get(&t).copied().unwrap_or(0);
        b.live_ticks += 1;
        b.viewer_sum += v;
        b.peak = b.peak.max(v);
    }
    out
}

/// What a metric should read, and how exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Want {
    Int(i64),
    Float(f64),
    /// An exact startup percentile; the HDR histogram keeps 3 significant digits.
    Startup(i64),
    /// A trending score: the store dates events by their tick's start, which makes a
    /// score up to 2^(5 s / 6 h) − 1 ≈ 0.016 % high.
    Trending(f64),
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Nearest-rank percentile of exact values (0 when there are none).
pub fn percentile(values: &[i64], q: f64) -> i64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return 0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

impl Bucket {
    /// The bucket's value of a series metric (METRICS.md §1–§2), from the sums.
    pub fn want(&self, metric: &str) -> Want {
        let watch_min = self.watch_ms as f64 / 60_000.0;
        let uniq = self.viewers.len() as i64;
        let followers = self.followers.len() as i64;
        match metric {
            "viewers" => Want::Float(ratio(self.viewer_sum as f64, self.live_ticks as f64)),
            "views" => Want::Int(self.views),
            "unique_viewers" => Want::Int(uniq),
            "watch_minutes" => Want::Float(watch_min),
            "chat_messages" => Want::Int(self.chat),
            "new_followers" => Want::Int(followers),
            "conversion_rate" => Want::Float(ratio(followers as f64, uniq as f64)),
            "rebuffer_ratio" => Want::Float(ratio(self.rebuffer_ms as f64, self.watch_ms as f64)),
            "rebuffer_count" => Want::Int(self.rebuffer_count),
            "rebuffer_frequency" => Want::Float(ratio(self.rebuffer_count as f64, watch_min)),
            "startup_p50_ms" => Want::Startup(percentile(&self.startups, 0.50)),
            "startup_p95_ms" => Want::Startup(percentile(&self.startups, 0.95)),
            "startup_p99_ms" => Want::Startup(percentile(&self.startups, 0.99)),
            "playback_failure_rate" => Want::Float(ratio(self.failures as f64, self.views as f64)),
            other => panic!("no expectation for metric {other}"),
        }
    }
}

impl Want {
    pub fn is_zero(self) -> bool {
        match self {
            Want::Int(n) | Want::Startup(n) => n == 0,
            Want::Float(x) | Want::Trending(x) => x == 0.0,
        }
    }

    /// Whether an answered JSON number matches (floats within 1e-9 relative).
    pub fn matches(self, got: &serde_json::Value) -> bool {
        match self {
            Want::Int(n) => got.as_i64() == Some(n),
            Want::Float(x) => got
                .as_f64()
                .is_some_and(|g| (g - x).abs() <= 1e-9 * g.abs().max(x.abs()).max(1e-9)),
            Want::Startup(n) => got
                .as_f64()
                .is_some_and(|g| (g - n as f64).abs() <= n as f64 * 1e-3 + 1.0),
            Want::Trending(x) => got
                .as_f64()
                .is_some_and(|g| (g - x).abs() <= 2e-4 * x.abs().max(1e-9)),
        }
    }
}
