//! The independent computation: every stream metric of METRICS.md §1–§2 computed
//! straight from the raw events with plain loops, written from the definitions and
//! sharing no code with the aggregator.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const TIMEOUT: i64 = 30_000;
pub const LONG_REBUFFER: i64 = 300_000;

#[derive(Debug, Default, Clone)]
pub struct Expected {
    pub first_tick: i64,
    pub last_tick: i64,
    pub viewers: BTreeMap<i64, i64>,
    pub views: i64,
    pub unique_viewers: i64,
    pub watch_ms: i64,
    pub rebuffer_ms: i64,
    pub rebuffer_count: i64,
    pub startups: Vec<i64>,
    pub failures: i64,
    pub chat: i64,
    pub followers: i64,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum St {
    Starting,
    Playing,
    Rebuffering,
    Paused,
}

/// What one session did: its accepted (non-orphan) events with the state after each.
struct Timeline {
    /// (ts, state after the event, rebuffering since)
    steps: Vec<(i64, St, i64)>,
    /// ts of a viewend/error that ended it
    hard_end: Option<i64>,
}

fn implied(e: &Value) -> St {
    match e["type"].as_str().unwrap_or("") {
        "pause" => St::Paused,
        "rebuffer_start" => St::Rebuffering,
        "heartbeat" => match e["state"].as_str() {
            Some("paused") => St::Paused,
            Some("rebuffering") => St::Rebuffering,
            Some("starting") => St::Starting,
            _ => St::Playing,
        },
        _ => St::Playing,
    }
}

pub fn expected(events: &[Value], stream: &str, tick: i64) -> Expected {
    expected_over(events, stream, tick, None)
}

/// [`expected`] with the viewers sampled at the tick starts of `ticks` (first and last
/// tick start, inclusive) instead of the ticks holding the first and last event.
pub fn expected_over(
    events: &[Value],
    stream: &str,
    tick: i64,
    sample: Option<(i64, i64)>,
) -> Expected {
    let mine: Vec<&Value> = events.iter().filter(|e| e["stream"] == stream).collect();
    let mut x = Expected::default();
    let ticks: Vec<i64> = mine
        .iter()
        .map(|e| e["ts"].as_i64().unwrap_or(0).div_euclid(tick) * tick)
        .collect();
    x.first_tick = ticks.iter().copied().min().unwrap_or(0);
    x.last_tick = ticks.iter().copied().max().unwrap_or(0);
    x.unique_viewers = mine
        .iter()
        .map(|e| e["viewer"].as_str().unwrap_or(""))
        .collect::<BTreeSet<_>>()
        .len() as i64;
    x.chat = mine
        .iter()
        .filter(|e| e["type"] == "chat")
        .map(|e| e["count"].as_i64().unwrap_or(1))
        .sum();
    x.followers = mine
        .iter()
        .filter(|e| e["type"] == "follow")
        .map(|e| e["viewer"].as_str().unwrap_or(""))
        .collect::<BTreeSet<_>>()
        .len() as i64;

    let mut sessions: HashMap<&str, Vec<&Value>> = HashMap::new();
    for e in &mine {
        if let Some(s) = e["session"].as_str() {
            sessions.entry(s).or_default().push(e);
        }
    }
    let mut timelines = Vec::new();
    for evs in sessions.values_mut() {
        evs.sort_by_key(|e| e["ts"].as_i64().unwrap_or(0));
        let ts = |e: &Value| e["ts"].as_i64().unwrap_or(0);
        let first = evs[0];
        let mut state;
        let mut since;
        let mut start_ts = None;
        let mut tl = Timeline {
            steps: Vec::new(),
            hard_end: None,
        };
        match first["type"].as_str().unwrap_or("") {
            "viewstart" => {
                x.views += 1;
                start_ts = Some(ts(first));
                state = St::Starting;
            }
            "viewend" | "error" => {
                if first["type"] == "error" {
                    x.failures += 1;
                }
                tl.steps.push((ts(first), St::Paused, 0));
                tl.hard_end = Some(ts(first));
                timelines.push(tl);
                continue;
            }
            _ => state = implied(first),
        }
        if first["type"] == "rebuffer_start" {
            x.rebuffer_count += 1;
        }
        since = ts(first);
        let mut first_playing_seen = false;
        tl.steps.push((ts(first), state, since));
        let mut prev = ts(first);
        for e in evs.iter().skip(1) {
            let t = ts(e);
            if t - prev > TIMEOUT {
                break; // ended by silence at `prev`; the rest are orphans
            }
            if matches!(state, St::Playing | St::Rebuffering) {
                x.watch_ms += t - prev;
            }
            if state == St::Rebuffering {
                x.rebuffer_ms += t - prev;
            }
            let kind = e["type"].as_str().unwrap_or("");
            match kind {
                "playing" => {
                    if !first_playing_seen {
                        first_playing_seen = true;
                        if let Some(s) = start_ts {
                            x.startups.push(t - s);
                        }
                    }
                    state = St::Playing;
                }
                "rebuffer_end" | "seek" => state = St::Playing,
                "rebuffer_start" => {
                    x.rebuffer_count += 1;
                    if state != St::Rebuffering {
                        since = t;
                    }
                    state = St::Rebuffering;
                }
                "pause" => state = St::Paused,
                "viewend" | "error" => {
                    if kind == "error" {
                        x.failures += 1;
                    }
                    tl.hard_end = Some(t);
                    break;
                }
                _ => {}
            }
            tl.steps.push((t, state, since));
            prev = t;
        }
        timelines.push(tl);
    }

    // Concurrency at each tick end T of the live range.
    let (mut t, last) = sample.unwrap_or((x.first_tick, x.last_tick));
    while t <= last {
        let end = t + tick;
        let mut n = 0;
        for tl in &timelines {
            if tl.hard_end.is_some_and(|h| h < end) {
                continue;
            }
            let Some(&(last, st, since)) = tl.steps.iter().rev().find(|s| s.0 < end) else {
                continue;
            };
            if last < end - TIMEOUT || st == St::Paused {
                continue;
            }
            if st == St::Rebuffering && end - since > LONG_REBUFFER {
                continue;
            }
            n += 1;
        }
        x.viewers.insert(t, n);
        t += tick;
    }
    x
}

impl Expected {
    pub fn peak(&self) -> i64 {
        self.viewers.values().copied().max().unwrap_or(0)
    }
    pub fn avg(&self) -> f64 {
        self.viewers.values().sum::<i64>() as f64 / self.viewers.len().max(1) as f64
    }
    /// Nearest-rank percentile of the exact startup times.
    pub fn startup_pct(&self, q: f64) -> i64 {
        let mut v = self.startups.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }
    /// Viewers series at `step`: (bucket start, average, peak) for buckets with live ticks.
    pub fn viewer_buckets(&self, step: i64) -> Vec<(i64, f64, i64)> {
        let mut b: BTreeMap<i64, (i64, i64, i64)> = BTreeMap::new();
        for (&t, &v) in &self.viewers {
            let e = b.entry(t.div_euclid(step) * step).or_default();
            e.0 += v;
            e.1 += 1;
            e.2 = e.2.max(v);
        }
        b.into_iter()
            .map(|(t, (s, n, p))| (t, s as f64 / n as f64, p))
            .collect()
    }
}
