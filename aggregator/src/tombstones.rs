//! Tombstones: the ids of recently ended view sessions, so that an event for an ended
//! session is recognised as an orphan ("starts nothing", METRICS.md §1) instead of
//! starting a session first seen mid-way.
//!
//! Bounded twice: by time (a tombstone answers only for events up to `ttl` after the
//! session's end, and is dropped once the watermark is past that), and by count
//! (`max_tombstones`; the oldest buried is evicted first and the eviction counted).
//! The time rule is checked on every lookup, so when exactly a tombstone is removed
//! never changes a number; only evictions by count (an overload) can.

use pulse_schemas::{Id, Target};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Where ended sessions are looked up and recorded. The real store is [`Tombstones`];
/// the scratch copy used for provisional rows layers its own on top ([`Overlay`]).
pub trait Graves {
    /// End time of the ended session `session` of `target`, if it is known as ended for
    /// an event at `ts`.
    fn ended(&self, target: &Target, session: &Id, ts: i64) -> bool;
    /// Records that a session ended at `end_ts`.
    fn bury(&mut self, target: &Target, session: &Id, end_ts: i64);
}

/// The bounded set of ended sessions.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tombstones {
    ttl_ms: i64,
    max: usize,
    /// target → session → end time.
    #[serde(with = "by_target")]
    map: foldhash::HashMap<Target, foldhash::HashMap<Id, i64>>,
    /// Burial order (for eviction by count and expiry by time).
    order: VecDeque<(Target, Id, i64)>,
    len: usize,
    /// Tombstones evicted by count before their time.
    pub evicted: u64,
}

impl Tombstones {
    pub fn new(ttl_ms: i64, max: usize) -> Self {
        Tombstones {
            ttl_ms,
            max,
            ..Tombstones::default()
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Applies new bounds (after a restore with a different configuration).
    pub fn set_bounds(&mut self, ttl_ms: i64, max: usize) {
        self.ttl_ms = ttl_ms;
        self.max = max;
    }

    fn remove(&mut self, target: &Target, session: &Id, end_ts: i64) {
        if let Some(sessions) = self.map.get_mut(target) {
            if sessions.get(session) == Some(&end_ts) {
                sessions.remove(session);
                self.len -= 1;
            }
            if sessions.is_empty() {
                self.map.remove(target);
            }
        }
    }

    /// Drops tombstones that can no longer answer for any event at or after `watermark`.
    pub fn expire(&mut self, watermark: i64) {
        while let Some((_, _, end)) = self.order.front() {
            if end.saturating_add(self.ttl_ms) >= watermark {
                break;
            }
            if let Some((t, s, end)) = self.order.pop_front() {
                self.remove(&t, &s, end);
            }
        }
    }
}

impl Graves for Tombstones {
    fn ended(&self, target: &Target, session: &Id, ts: i64) -> bool {
        match self.map.get(target).and_then(|s| s.get(session)) {
            Some(&end) => ts <= end.saturating_add(self.ttl_ms),
            None => false,
        }
    }

    fn bury(&mut self, target: &Target, session: &Id, end_ts: i64) {
        if self.max == 0 {
            return;
        }
        while self.len >= self.max {
            match self.order.pop_front() {
                Some((t, s, end)) => {
                    let before = self.len;
                    self.remove(&t, &s, end);
                    if self.len < before {
                        self.evicted += 1;
                    }
                }
                None => break,
            }
        }
        let sessions = match self.map.get_mut(target) {
            Some(s) => s,
            None => self.map.entry(target.clone()).or_default(),
        };
        if sessions.insert(session.clone(), end_ts).is_none() {
            self.len += 1;
        }
        self.order
            .push_back((target.clone(), session.clone(), end_ts));
    }
}

/// Read-only real tombstones plus the ones buried in a scratch run (provisional rows).
pub struct Overlay<'a> {
    pub base: &'a Tombstones,
    pub added: foldhash::HashMap<(Target, Id), i64>,
}

impl<'a> Overlay<'a> {
    pub fn new(base: &'a Tombstones) -> Self {
        Overlay {
            base,
            added: Default::default(),
        }
    }
}

impl Graves for Overlay<'_> {
    fn ended(&self, target: &Target, session: &Id, ts: i64) -> bool {
        if self.base.ended(target, session, ts) {
            return true;
        }
        if self.added.is_empty() {
            return false;
        }
        match self.added.get(&(target.clone(), session.clone())) {
            Some(&end) => ts <= end.saturating_add(self.base.ttl_ms),
            None => false,
        }
    }

    fn bury(&mut self, target: &Target, session: &Id, end_ts: i64) {
        self.added.insert((target.clone(), session.clone()), end_ts);
    }
}

/// JSON maps need string keys: the map is written as a list of (target, sessions).
mod by_target {
    use super::*;
    use serde::{Deserializer, Serializer};

    type Map = foldhash::HashMap<Target, foldhash::HashMap<Id, i64>>;

    pub fn serialize<S: Serializer>(map: &Map, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        let list: Vec<(Target, foldhash::HashMap<Id, i64>)> = Vec::deserialize(d)?;
        Ok(list.into_iter().collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use pulse_schemas::TargetKind;

    fn target(s: &str) -> Target {
        Target {
            kind: TargetKind::Stream,
            id: Id::new_unchecked(s),
        }
    }

    #[test]
    fn answers_within_ttl_and_expires() {
        let mut t = Tombstones::new(1000, 10);
        let (a, x) = (target("a"), Id::new_unchecked("x"));
        t.bury(&a, &x, 5000);
        assert!(t.ended(&a, &x, 5500));
        assert!(t.ended(&a, &x, 6000));
        assert!(!t.ended(&a, &x, 6001));
        assert!(!t.ended(&target("b"), &x, 5500));
        t.expire(6000);
        assert_eq!(t.len(), 1);
        t.expire(6001);
        assert_eq!(t.len(), 0);
        assert!(t.is_empty());
    }

    #[test]
    fn bounded_by_count() {
        let mut t = Tombstones::new(1_000_000, 2);
        let a = target("a");
        for (i, s) in ["x", "y", "z"].iter().enumerate() {
            t.bury(&a, &Id::new_unchecked(s), i as i64);
        }
        assert_eq!(t.len(), 2);
        assert_eq!(t.evicted, 1);
        assert!(!t.ended(&a, &Id::new_unchecked("x"), 10));
        assert!(t.ended(&a, &Id::new_unchecked("z"), 10));
        let json = serde_json::to_string(&t).unwrap();
        let back: Tombstones = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 2);
        assert!(back.ended(&a, &Id::new_unchecked("z"), 10));
    }

    #[test]
    fn overlay_layers() {
        let mut t = Tombstones::new(1000, 10);
        let (a, x, y) = (target("a"), Id::new_unchecked("x"), Id::new_unchecked("y"));
        t.bury(&a, &x, 0);
        let mut o = Overlay::new(&t);
        o.bury(&a, &y, 0);
        assert!(o.ended(&a, &x, 1) && o.ended(&a, &y, 1));
        assert!(!t.ended(&a, &y, 1));
    }
}
