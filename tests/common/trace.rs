//! A deterministic generated trace: several channels and streams, sessions with
//! startup delays, rebuffers (one longer than 5 minutes), pauses, seeks, errors,
//! silent closes (30 s timeouts), sessions first seen mid-way, orphan events after an
//! end, chat (folded counts) and follows (some viewers follow twice).
//! Timestamps strictly increase within a session, so no order question arises inside one.

use serde_json::{Value, json};

pub struct Trace {
    pub events: Vec<Value>,
    pub start: i64,
    pub end: i64,
}

pub const STREAMS: &[(&str, &str)] = &[
    ("chan-a", "stream-a1"),
    ("chan-a", "stream-a2"),
    ("chan-b", "stream-b1"),
];

/// The devices of the trace's sessions, by session number.
pub const DEVICES: &[&str] = &["mobile", "desktop", "tv", "tablet"];
/// ... and their countries.
pub const COUNTRIES: &[&str] = &["US", "DE", "BR"];

pub fn generate(seed: u64, start: i64, sessions: usize, span_ms: i64) -> Trace {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut events = Vec::new();
    for n in 0..sessions {
        let (channel, stream) = STREAMS[rng.usize(..STREAMS.len())];
        let viewer = format!("u{}", rng.usize(..sessions * 2 / 3 + 1));
        let session = format!("x{n}");
        let base =
            json!({"viewer": viewer, "channel": channel, "stream": stream, "session": session});
        let mut t = start + rng.i64(0..span_ms);
        let mut push = |kind: &str, t: i64, extra: Value| {
            let mut e = base.clone();
            e["type"] = json!(kind);
            e["ts"] = json!(t);
            if let (Value::Object(e), Value::Object(x)) = (&mut e, extra) {
                e.extend(x);
            }
            events.push(e);
        };
        let mid_way = rng.u32(0..100) < 8;
        if mid_way {
            let state = ["playing", "paused", "rebuffering"][rng.usize(..3)];
            push("heartbeat", t, json!({"state": state}));
        } else {
            // Breakdown dimensions from the session number (no draw from `rng`, so the
            // rest of the trace is unchanged); some players send no player name.
            let mut dims = json!({
                "device": DEVICES[n % DEVICES.len()],
                "country": COUNTRIES[n % COUNTRIES.len()],
            });
            if n % 5 != 0 {
                dims["player"] = json!(["hls.js/1.5", "shaka/4.7"][n % 2]);
            }
            push("viewstart", t, dims);
            t += 100 + rng.i64(0..3000);
            if rng.u32(0..100) < 4 {
                push("error", t, json!({"code": "E_START"}));
                if rng.bool() {
                    push("heartbeat", t + 2000, json!({}));
                }
                continue;
            }
            push("playing", t, json!({}));
        }
        let steps = rng.usize(1..40);
        let mut ended = false;
        for _ in 0..steps {
            let roll = rng.u32(0..100);
            if roll < 6 {
                t += rng.i64(1..29_000);
                push("rebuffer_start", t, json!({}));
                if rng.u32(0..100) < 3 {
                    // A stall longer than five minutes, kept alive by heartbeats.
                    for _ in 0..34 {
                        t += 9_500;
                        push("heartbeat", t, json!({"state": "rebuffering"}));
                    }
                }
                t += rng.i64(1..20_000);
                push("rebuffer_end", t, json!({}));
            } else if roll < 10 {
                t += rng.i64(1..29_000);
                push("pause", t, json!({}));
                for _ in 0..rng.usize(0..4) {
                    t += 10_000;
                    push("heartbeat", t, json!({"state": "paused"}));
                }
                t += rng.i64(1..20_000);
                push("playing", t, json!({}));
            } else if roll < 12 {
                t += rng.i64(1..20_000);
                push("seek", t, json!({"pos": 33.5}));
            } else if roll < 14 {
                // Silent for longer than the timeout: ended at the last event; what follows is an orphan.
                t += 31_000 + rng.i64(0..20_000);
                push("heartbeat", t, json!({"state": "playing"}));
                ended = true;
                break;
            } else if roll < 15 {
                t += rng.i64(1..10_000);
                push("error", t, json!({"code": "E_NET"}));
                ended = true;
                break;
            } else {
                t += 8_000 + rng.i64(0..4_000);
                push("heartbeat", t, json!({"state": "playing"}));
            }
        }
        if !ended {
            // Six in ten leave with viewend; the rest close the tab silently.
            if rng.u32(0..10) <= 5 {
                t += rng.i64(1..10_000);
                push("viewend", t, json!({}));
                if rng.u32(0..10) == 0 {
                    push("heartbeat", t + 1000, json!({}));
                }
            }
        }
        // Engagement from this viewer on the same stream.
        for _ in 0..rng.usize(0..3) {
            let at = start + rng.i64(0..span_ms);
            let mut e = json!({"type": "chat", "ts": at, "viewer": viewer, "channel": channel, "stream": stream});
            if rng.bool() {
                e["count"] = json!(1 + rng.u32(0..5));
            }
            events.push(e);
        }
        if rng.u32(0..100) < 10 {
            for _ in 0..(1 + rng.usize(0..2)) {
                let at = start + rng.i64(0..span_ms);
                events.push(json!({"type": "follow", "ts": at, "viewer": viewer, "channel": channel, "stream": stream}));
            }
        }
    }
    events.sort_by_key(|e| e["ts"].as_i64().unwrap_or(0));
    let end = events
        .iter()
        .filter_map(|e| e["ts"].as_i64())
        .max()
        .unwrap_or(start);
    Trace { events, start, end }
}
