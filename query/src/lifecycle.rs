//! A stream's status and live intervals from its lifecycle records (pure, clock as
//! input). Records come from the catalog (`PUT /api/streams/:id`, the stream webhook,
//! encoder sockets, the grace expiry).
//!
//! Rules, in time order (at one `ts`, LIVE before ENDED):
//! - a LIVE opens an interval unless one is open (a reconnect inside the grace period
//!   does not restart the stream);
//! - an ENDED closes the open interval (an ENDED with none open changes nothing);
//! - status: no record → `UNKNOWN`; an interval still open → `LIVE`; else `ENDED`;
//! - duration = Σ (ENDED − LIVE) over intervals, an open one running to `now`.

use crate::store::{LiveRange, bucket_start};
use pulse_schemas::access::StreamStatus;

/// One LIVE or ENDED record of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifecycleRecord {
    pub status: StreamStatus,
    pub ts: i64,
}

/// `[start, end)` in epoch ms; `end` is `None` while the stream is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub start: i64,
    pub end: Option<i64>,
}

impl Interval {
    /// The end, `now` while open (never before the start).
    pub fn end_at(&self, now: i64) -> i64 {
        self.end.unwrap_or(now).max(self.start)
    }
}

/// The live intervals of the records, oldest first.
pub fn intervals(records: &[LifecycleRecord]) -> Vec<Interval> {
    let mut sorted = records.to_vec();
    sorted.sort_by_key(|r| (r.ts, r.status == StreamStatus::Ended));
    let mut out: Vec<Interval> = Vec::new();
    let mut open: Option<i64> = None;
    for r in sorted {
        match (r.status, open) {
            (StreamStatus::Live, None) => open = Some(r.ts),
            (StreamStatus::Ended, Some(start)) => {
                out.push(Interval {
                    start,
                    end: Some(r.ts),
                });
                open = None;
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        out.push(Interval { start, end: None });
    }
    out
}

/// `LIVE`, `ENDED` or `UNKNOWN` (no record at all).
pub fn status(records: &[LifecycleRecord]) -> &'static str {
    if records.is_empty() {
        return "UNKNOWN";
    }
    match intervals(records).last() {
        Some(Interval { end: None, .. }) => "LIVE",
        _ => "ENDED",
    }
}

/// Σ (end − start) in ms, open intervals ending at `now`.
pub fn duration_ms(iv: &[Interval], now: i64) -> i64 {
    iv.iter().map(|i| i.end_at(now) - i.start).sum()
}

/// How much of the intervals lies inside `[from, to)`, in ms.
pub fn overlap_ms(iv: &[Interval], from: i64, to: i64, now: i64) -> i64 {
    iv.iter()
        .map(|i| (i.end_at(now).min(to) - i.start.max(from)).max(0))
        .sum()
}

/// The ticks an interval covers, as live ranges of `target` (first and last tick start):
/// every tick that overlaps `[start, end)`; an empty interval covers its start's tick.
pub fn tick_ranges(
    iv: &[Interval],
    target: &str,
    channel: &str,
    now: i64,
    tick_ms: i64,
) -> Vec<LiveRange> {
    iv.iter()
        .map(|i| {
            let end = i.end_at(now);
            LiveRange {
                target: target.to_owned(),
                channel: channel.to_owned(),
                first_t: bucket_start(i.start, tick_ms),
                last_t: bucket_start((end - 1).max(i.start), tick_ms),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn live(ts: i64) -> LifecycleRecord {
        LifecycleRecord {
            status: StreamStatus::Live,
            ts,
        }
    }
    fn ended(ts: i64) -> LifecycleRecord {
        LifecycleRecord {
            status: StreamStatus::Ended,
            ts,
        }
    }

    #[test]
    fn status_follows_the_records() {
        assert_eq!(status(&[]), "UNKNOWN");
        assert_eq!(status(&[live(10)]), "LIVE");
        assert_eq!(status(&[live(10), ended(50)]), "ENDED");
        assert_eq!(status(&[ended(50), live(10)]), "ENDED");
        assert_eq!(status(&[live(10), ended(50), live(60)]), "LIVE");
        assert_eq!(status(&[ended(5)]), "ENDED");
    }

    #[test]
    fn reconnects_and_stray_ends_do_not_split_intervals() {
        let iv = intervals(&[live(10), live(20), ended(50), ended(70), live(100)]);
        assert_eq!(
            iv,
            vec![
                Interval {
                    start: 10,
                    end: Some(50)
                },
                Interval {
                    start: 100,
                    end: None
                }
            ]
        );
        assert_eq!(duration_ms(&iv, 130), 40 + 30);
        assert_eq!(overlap_ms(&iv, 0, 30, 130), 20);
        assert_eq!(overlap_ms(&iv, 40, 120, 130), 10 + 20);
        let r = tick_ranges(&iv, "s", "c", 130, 5);
        assert_eq!((r[0].first_t, r[0].last_t), (10, 45));
        assert_eq!((r[1].first_t, r[1].last_t), (100, 125));
    }

    fn records() -> impl Strategy<Value = Vec<LifecycleRecord>> {
        prop::collection::vec(
            (any::<bool>(), 0i64..10_000).prop_map(|(l, ts)| if l { live(ts) } else { ended(ts) }),
            0..20,
        )
    }

    proptest! {
        #[test]
        fn intervals_are_ordered_disjoint_and_order_free(recs in records(), now in 0i64..20_000) {
            let iv = intervals(&recs);
            let mut rev = recs.clone();
            rev.reverse();
            prop_assert_eq!(&iv, &intervals(&rev));
            for w in iv.windows(2) {
                prop_assert!(w[0].end.is_some());
                prop_assert!(w[0].end_at(now) <= w[1].start);
            }
            let total = duration_ms(&iv, now);
            prop_assert!(total >= 0);
            prop_assert_eq!(overlap_ms(&iv, i64::MIN / 4, i64::MAX / 4, now), total);
            // Splitting a range in two splits the overlap in two.
            prop_assert_eq!(
                overlap_ms(&iv, 0, 5_000, now) + overlap_ms(&iv, 5_000, 30_000, now),
                overlap_ms(&iv, 0, 30_000, now)
            );
        }
    }
}
