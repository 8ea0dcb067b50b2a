//! Rate limits: a token bucket (`TokenBucket`), the per-connection limiter with its
//! abuse rule (`ConnectionLimiter`), and the bounded per-peer-IP table for `POST`
//! (`PeerLimiter`).
//!
//! Cost: every valid event of a frame or body costs one token; a frame or body with no
//! valid event costs one token (so a flood of garbage is limited too). When tokens run
//! out the *last* events of the frame are dropped. Abuse (WebSocket only): more than
//! `abuse_drop_limit` events dropped within one `abuse_window_ms` window (the window
//! starts at the first drop) closes the connection with 1008.

use crate::config::IngestConfig;
use crate::generational_map::GenerationalMap;
use std::net::IpAddr;
use std::sync::Mutex;
use tokio::time::{Duration, Instant};

/// A token bucket: `rate_per_s` tokens a second, at most `burst` saved up; starts full.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate_per_s: f64,
    burst: f64,
}

impl TokenBucket {
    pub fn new(rate_per_s: u32, burst: u32, now: Instant) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            last: now,
            rate_per_s: f64::from(rate_per_s),
            burst: f64::from(burst),
        }
    }

    /// Takes up to `want` tokens; returns how many were granted.
    pub fn take_up_to(&mut self, want: u32, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate_per_s).min(self.burst);
        let granted = (self.tokens.floor() as u32).min(want);
        self.tokens -= f64::from(granted);
        granted
    }
}

/// What the limiter decided for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    /// Events to drop from the end of the frame.
    pub dropped: u32,
    /// The client kept on over its rate: close it with 1008.
    pub abusive: bool,
}

/// Per-WebSocket limiter: token bucket plus the abuse window.
#[derive(Debug)]
pub struct ConnectionLimiter {
    bucket: TokenBucket,
    abuse_limit: u32,
    abuse_window: Duration,
    window_start: Option<Instant>,
    dropped_in_window: u32,
}

impl ConnectionLimiter {
    pub fn new(config: &IngestConfig, now: Instant) -> Self {
        ConnectionLimiter {
            bucket: TokenBucket::new(config.rate_per_s, config.burst, now),
            abuse_limit: config.abuse_drop_limit,
            abuse_window: Duration::from_millis(config.abuse_window_ms),
            window_start: None,
            dropped_in_window: 0,
        }
    }

    /// Admits a frame holding `events` valid events.
    pub fn admit(&mut self, events: usize, now: Instant) -> Admission {
        let dropped = over_budget(&mut self.bucket, events, now);
        if dropped > 0 {
            match self.window_start {
                Some(start) if now.saturating_duration_since(start) < self.abuse_window => {}
                _ => {
                    self.window_start = Some(now);
                    self.dropped_in_window = 0;
                }
            }
            self.dropped_in_window = self.dropped_in_window.saturating_add(dropped);
        }
        Admission {
            dropped,
            abusive: self.dropped_in_window > self.abuse_limit,
        }
    }
}

/// Events of a frame with `events` valid events that the bucket cannot pay for.
fn over_budget(bucket: &mut TokenBucket, events: usize, now: Instant) -> u32 {
    let cost = u32::try_from(events).unwrap_or(u32::MAX).max(1);
    let granted = bucket.take_up_to(cost, now);
    let short = cost - granted;
    short.min(u32::try_from(events).unwrap_or(u32::MAX))
}

/// Token buckets per peer IP for `POST`, in a bounded two-generation table (a peer
/// forgotten after a rotation starts again with a full bucket).
pub struct PeerLimiter {
    table: Mutex<GenerationalMap<IpAddr, TokenBucket>>,
    rate_per_s: u32,
    burst: u32,
}

impl PeerLimiter {
    pub fn new(config: &IngestConfig, now_ms: i64) -> Self {
        PeerLimiter {
            table: Mutex::new(GenerationalMap::new(
                config.peer_table_max_entries,
                config.peer_table_rotate_ms,
                now_ms,
            )),
            rate_per_s: config.rate_per_s,
            burst: config.burst,
        }
    }

    /// Events to drop from the end of a body with `events` valid events from `peer`.
    pub fn admit(&self, peer: IpAddr, events: usize, now_ms: i64, now: Instant) -> u32 {
        let mut table = self
            .table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (rate, burst) = (self.rate_per_s, self.burst);
        let (bucket, _) =
            table.get_or_insert_with(peer, now_ms, || TokenBucket::new(rate, burst, now));
        over_budget(bucket, events, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_the_sustained_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(50, 500, t0);
        assert_eq!(b.take_up_to(400, t0), 400);
        assert_eq!(b.take_up_to(400, t0), 100);
        assert_eq!(b.take_up_to(10, t0), 0);
        // 1 s later: 50 tokens.
        assert_eq!(b.take_up_to(100, t0 + Duration::from_secs(1)), 50);
        // Never more than the burst, however long the pause.
        assert_eq!(b.take_up_to(10_000, t0 + Duration::from_secs(3600)), 500);
    }

    #[test]
    fn a_client_that_keeps_on_is_abusive() {
        let cfg = IngestConfig::default();
        let t0 = Instant::now();
        let mut l = ConnectionLimiter::new(&cfg, t0);
        assert_eq!(
            l.admit(500, t0),
            Admission {
                dropped: 0,
                abusive: false
            }
        );
        assert_eq!(
            l.admit(600, t0),
            Admission {
                dropped: 600,
                abusive: false
            }
        );
        let a = l.admit(500, t0 + Duration::from_millis(100));
        assert!(a.abusive && a.dropped == 495, "{a:?}");
        // A frame with no valid event still costs a token.
        let mut l = ConnectionLimiter::new(
            &IngestConfig {
                burst: 1,
                ..cfg.clone()
            },
            t0,
        );
        assert_eq!(l.admit(0, t0).dropped, 0);
        assert_eq!(l.admit(1, t0).dropped, 1);
    }

    #[test]
    fn drops_spread_over_windows_are_not_abuse() {
        let cfg = IngestConfig::default();
        let t0 = Instant::now();
        let mut l = ConnectionLimiter::new(&cfg, t0);
        l.admit(500, t0);
        for s in 0..10u64 {
            // 600 events per 11 s window: 50/s refill pays for most, drops stay under the limit.
            let a = l.admit(600, t0 + Duration::from_secs(11 * (s + 1)));
            assert!(!a.abusive, "{a:?}");
        }
    }

    #[test]
    fn peers_have_their_own_buckets() {
        let cfg = IngestConfig {
            peer_table_max_entries: 2,
            ..IngestConfig::default()
        };
        let p = PeerLimiter::new(&cfg, 0);
        let now = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        assert_eq!(p.admit(a, 600, 0, now), 100);
        assert_eq!(p.admit(b, 500, 0, now), 0);
        assert_eq!(p.admit(a, 1, 0, now), 1);
    }
}
