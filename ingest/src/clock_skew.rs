//! Clock-skew correction (PROTOCOL.md §1).
//!
//! Each frame or body is stamped with the node's receive time (one reading of the
//! injected clock per frame). The FIRST event this node sees of a session decides the
//! session's offset: if it is more than `skew_threshold_ms` from receive time, the
//! offset is `receive − ts`, otherwise 0. Every event of that session (including that
//! first one) then gets `ts + offset`, so the intervals between a player's events are
//! kept even when its clock is wrong. An event without a session that far off takes the
//! receive time. Results are clamped to the valid range `0..=MAX_TS`.
//!
//! The decision is remembered per (viewer, session) in a node-wide
//! [`GenerationalMap`]: the key is a 64-bit foldhash of the pair with a per-node random
//! seed, the value the offset. foldhash is not a keyed MAC: a client able to find a
//! 64-bit collision with another session's pair under an unknown seed would share its
//! offset; with a random seed per process that is a chance of about 2⁻⁶⁴ per pair, and
//! the worst outcome is one session's times shifted. Bounded to twice `skew_table_max_entries`; a session not seen for one to two
//! `skew_table_rotate_ms` periods is forgotten (it would be decided afresh).
//!
//! Counted: `kind="session"` once per session given a non-zero offset, `kind="event"`
//! once per session-less event replaced by the receive time.

use crate::config::IngestConfig;
use crate::generational_map::GenerationalMap;
use foldhash::quality::RandomState;
use pulse_schemas::Event;
use pulse_schemas::event::MAX_TS;
use std::hash::BuildHasher;
use std::sync::Mutex;

/// What one call to [`SkewCorrector::correct`] changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkewStats {
    /// Sessions first seen in this frame and given a non-zero offset.
    pub sessions_corrected: u64,
    /// Session-less events replaced by the receive time.
    pub events_corrected: u64,
}

/// The node-wide skew table.
pub struct SkewCorrector {
    threshold_ms: i64,
    hasher: RandomState,
    table: Mutex<GenerationalMap<u64, i64>>,
}

impl SkewCorrector {
    pub fn new(config: &IngestConfig, now_ms: i64) -> Self {
        SkewCorrector {
            threshold_ms: config.skew_threshold_ms,
            hasher: RandomState::default(),
            table: Mutex::new(GenerationalMap::new(
                config.skew_table_max_entries,
                config.skew_table_rotate_ms,
                now_ms,
            )),
        }
    }

    /// Corrects the timestamps of `events`, all received at `receive_ms`.
    pub fn correct(&self, events: &mut [Event], receive_ms: i64) -> SkewStats {
        let mut stats = SkewStats::default();
        let mut table = None;
        for e in events.iter_mut() {
            let Some(session) = &e.session else {
                if (receive_ms - e.ts).abs() > self.threshold_ms {
                    e.ts = receive_ms.clamp(0, MAX_TS);
                    stats.events_corrected += 1;
                }
                continue;
            };
            let key = self.hasher.hash_one((e.viewer.as_str(), session.as_str()));
            let table = table.get_or_insert_with(|| {
                self.table
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
            });
            let ts = e.ts;
            let threshold = self.threshold_ms;
            let (offset, made) = table.get_or_insert_with(key, receive_ms, || {
                let d = receive_ms - ts;
                if d.abs() > threshold { d } else { 0 }
            });
            if made && *offset != 0 {
                stats.sessions_corrected += 1;
            }
            e.ts = e.ts.saturating_add(*offset).clamp(0, MAX_TS);
        }
        stats
    }

    /// Sessions remembered (both generations).
    pub fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_schemas::parse_event;

    const NOW: i64 = 1_764_000_000_000;
    const MIN: i64 = 60_000;

    fn ev(kind: &str, ts: i64, session: Option<&str>) -> Event {
        let session = session
            .map(|s| format!(r#","session":"{s}""#))
            .unwrap_or_default();
        parse_event(&format!(
            r#"{{"type":"{kind}","ts":{ts},"viewer":"v","channel":"c","stream":"s"{session}}}"#
        ))
        .expect("valid event")
    }

    #[test]
    fn a_session_is_shifted_by_its_first_events_skew() {
        let c = SkewCorrector::new(&IngestConfig::default(), NOW);
        // A player whose clock is in 1970: first event 0, receive NOW.
        let mut a = vec![
            ev("viewstart", 1000, Some("x")),
            ev("playing", 3000, Some("x")),
        ];
        let s = c.correct(&mut a, NOW);
        assert_eq!(
            s,
            SkewStats {
                sessions_corrected: 1,
                events_corrected: 0
            }
        );
        assert_eq!((a[0].ts, a[1].ts), (NOW, NOW + 2000));
        // Later frames of the same session keep the same offset (not counted again).
        let mut b = vec![ev("heartbeat", 13_000, Some("x"))];
        assert_eq!(c.correct(&mut b, NOW + 12_500), SkewStats::default());
        assert_eq!(b[0].ts, NOW + 12_000);
    }

    #[test]
    fn a_session_within_the_threshold_is_left_alone_for_good() {
        let c = SkewCorrector::new(&IngestConfig::default(), NOW);
        let mut a = vec![ev("viewstart", NOW - 4 * MIN, Some("y"))];
        assert_eq!(c.correct(&mut a, NOW), SkewStats::default());
        assert_eq!(a[0].ts, NOW - 4 * MIN);
        // A later event far off is not corrected: the session's decision stands.
        let mut b = vec![ev("heartbeat", NOW + 60 * MIN, Some("y"))];
        c.correct(&mut b, NOW);
        assert_eq!(b[0].ts, NOW + 60 * MIN);
    }

    #[test]
    fn session_less_events_far_off_take_the_receive_time() {
        let c = SkewCorrector::new(&IngestConfig::default(), NOW);
        let year_2100 = 4_102_444_800_000;
        let mut a = vec![
            ev("chat", year_2100, None),
            ev("like", NOW - MIN, None),
            ev("follow", 5, None),
        ];
        let s = c.correct(&mut a, NOW);
        assert_eq!(
            s,
            SkewStats {
                sessions_corrected: 0,
                events_corrected: 2
            }
        );
        assert_eq!((a[0].ts, a[1].ts, a[2].ts), (NOW, NOW - MIN, NOW));
    }

    #[test]
    fn the_table_is_bounded_and_forgets() {
        let cfg = IngestConfig {
            skew_table_max_entries: 10,
            skew_table_rotate_ms: MIN,
            ..IngestConfig::default()
        };
        let c = SkewCorrector::new(&cfg, NOW);
        for i in 0..1000 {
            let mut a = vec![ev("viewstart", 0, Some(&format!("s{i}")))];
            c.correct(&mut a, NOW);
            assert!(c.len() <= 20);
        }
        // A session in 2100, forgotten after two rotations, is decided afresh.
        let mut a = vec![ev("viewstart", NOW + 100 * MIN, Some("z"))];
        assert_eq!(c.correct(&mut a, NOW).sessions_corrected, 1);
        assert_eq!(a[0].ts, NOW);
        let mut b = vec![ev("heartbeat", NOW + 100 * MIN, Some("z"))];
        c.correct(&mut b, NOW + 3 * MIN);
        assert_eq!(
            b[0].ts,
            NOW + 3 * MIN,
            "forgotten: the heartbeat is the first event again"
        );
    }
}
