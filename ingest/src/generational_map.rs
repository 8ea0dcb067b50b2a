//! `GenerationalMap`: a bounded map whose entries expire, made of two generations of
//! `HashMap`. Lookups and inserts go to the current generation (an entry found in the
//! previous one is moved forward); every `period_ms`, or when the current generation
//! reaches `max_entries`, the previous generation is dropped and the current one
//! becomes the previous. So the map never holds more than `2 × max_entries` entries,
//! and an entry untouched for two periods is gone, with O(1) work per access and no
//! timer task.

use std::collections::HashMap;
use std::hash::Hash;

/// foldhash: the keys here are short (the skew table's are already keyed hashes), and
/// SipHash was a visible share of the per-frame cost.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub(crate) struct GenerationalMap<K, V> {
    current: Map<K, V>,
    previous: Map<K, V>,
    max_entries: usize,
    period_ms: i64,
    rotated_at_ms: i64,
}

impl<K: Hash + Eq, V> GenerationalMap<K, V> {
    pub(crate) fn new(max_entries: usize, period_ms: i64, now_ms: i64) -> Self {
        GenerationalMap {
            current: Map::default(),
            previous: Map::default(),
            max_entries: max_entries.max(1),
            period_ms: period_ms.max(1),
            rotated_at_ms: now_ms,
        }
    }

    fn rotate(&mut self, now_ms: i64) {
        self.previous = std::mem::take(&mut self.current);
        self.rotated_at_ms = now_ms;
    }

    /// The entry for `key`, made with `make` if it is not (or no longer) known;
    /// the flag says whether it was made now.
    pub(crate) fn get_or_insert_with(
        &mut self,
        key: K,
        now_ms: i64,
        make: impl FnOnce() -> V,
    ) -> (&mut V, bool) {
        // A clock that jumps backwards clears the map, so entries cannot live forever.
        let age = now_ms - self.rotated_at_ms;
        if age >= self.period_ms || age < 0 {
            self.rotate(now_ms);
            if age >= 2 * self.period_ms || age < 0 {
                // Two periods passed without an access: the old current has expired too.
                self.previous.clear();
            }
        }
        if !self.current.contains_key(&key) && self.current.len() >= self.max_entries {
            self.rotate(now_ms);
        }
        let previous = &mut self.previous;
        let mut made = false;
        let value = self
            .current
            .entry(key)
            .or_insert_with_key(|k| match previous.remove(k) {
                Some(v) => v,
                None => {
                    made = true;
                    make()
                }
            });
        (value, made)
    }

    pub(crate) fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_two_periods_and_the_size_is_bounded() {
        let mut m = GenerationalMap::new(3, 100, 0);
        assert!(m.get_or_insert_with(1, 0, || 10).1);
        assert_eq!(*m.get_or_insert_with(1, 50, || 99).0, 10);
        // One rotation: still found (moved forward).
        assert_eq!(*m.get_or_insert_with(1, 150, || 99).0, 10);
        // Untouched for two rotations: forgotten.
        m.get_or_insert_with(2, 260, || 0);
        m.get_or_insert_with(3, 370, || 0);
        assert!(m.get_or_insert_with(1, 380, || 7).1);
        for k in 0..100 {
            m.get_or_insert_with(k, 400, || 0);
            assert!(m.len() <= 6);
        }
    }
}
