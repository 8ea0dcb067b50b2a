//! The pending buffer: events waiting for the watermark, in arrival order, each with
//! its commit-order key computed once on arrival.
//!
//! The commit order (lib.rs, [`crate::engine::event_order`]) is `(ts, type rank,
//! identity fingerprint)`, then the full [`event_order`] for events of one identity.
//! A key packs the first three into one `u128`: `ts` with its sign bit flipped (so
//! unsigned order is signed order) in the high 64 bits, the rank (< 16) in the next 4
//! and the fingerprint's high 60 bits below. Sorting the due keys is then an integer
//! sort; keys that tie (same time, type and 60-bit fingerprint prefix: the same
//! session, or a 2⁻⁶⁰ collision) compare the full fingerprint, then [`event_order`], so
//! the order is exactly the documented one.

use crate::engine::{event_order, kind_rank};
use pulse_schemas::Event;
use std::cmp::Ordering;

/// A due event's place in the commit order: its key and its index in the buffer.
pub(crate) type Due = (u128, u32);

/// Fingerprint of an event's identity (target, session, viewer) with a fixed seed: a
/// deterministic tie-break among events of the same millisecond and type that sorts
/// as integers instead of comparing ids. Events of one session share it.
fn identity_fingerprint(e: &Event) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x005e_ed0f_7075_15e5).build_hasher();
    e.target.hash(&mut h);
    e.session.hash(&mut h);
    e.viewer.hash(&mut h);
    h.finish()
}

const SIGN: u64 = 1 << 63;

fn time_bits(ts: i64) -> u64 {
    (ts as u64) ^ SIGN
}

fn order_key(e: &Event) -> u128 {
    let rank = u128::from(kind_rank(e.kind) & 0xf);
    (u128::from(time_bits(e.ts)) << 64) | (rank << 60) | u128::from(identity_fingerprint(e) >> 4)
}

/// Order of two events whose keys are equal.
fn tie(events: &[Event], a: u32, b: u32) -> Ordering {
    let (a, b) = (&events[a as usize], &events[b as usize]);
    identity_fingerprint(a)
        .cmp(&identity_fingerprint(b))
        .then_with(|| event_order(a, b))
}

/// The events waiting for the watermark (arrival order) and their keys.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pending {
    events: Vec<Event>,
    keys: Vec<u128>,
}

/// Reusable buffers of [`Pending::due`]: the due keys, and bucket offsets by
/// millisecond (at most about four per due event).
#[derive(Clone, Debug, Default)]
pub(crate) struct DueBuffers {
    keys: Vec<Due>,
    counts: Vec<u32>,
}

impl Pending {
    pub fn from_events(events: Vec<Event>) -> Self {
        let keys = events.iter().map(order_key).collect();
        Pending { events, keys }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn push(&mut self, e: Event) {
        self.keys.push(order_key(&e));
        self.events.push(e);
    }

    /// The events in arrival order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn get(&self, i: u32) -> &Event {
        &self.events[i as usize]
    }

    /// The events with `ts < w`, in the commit order, into `order`.
    ///
    /// Due events usually span a short stretch of time (a flush interval plus the
    /// lateness), so they are first spread by millisecond (a counting sort, linear),
    /// leaving only the few events of one millisecond to compare. Over a long, sparse
    /// stretch a comparison sort is used instead.
    pub fn due(&self, w: i64, order: &mut Vec<Due>, bufs: &mut DueBuffers) {
        let below = u128::from(time_bits(w)) << 64;
        let scratch = &mut bufs.keys;
        scratch.clear();
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for (i, &k) in (0u32..).zip(&self.keys) {
            if k < below {
                let t = (k >> 64) as u64;
                lo = lo.min(t);
                hi = hi.max(t);
                scratch.push((k, i));
            }
        }
        order.clear();
        let n = scratch.len();
        let span = hi.wrapping_sub(lo);
        let events = &self.events;
        let cmp = |a: &Due, b: &Due| a.0.cmp(&b.0).then_with(|| tie(events, a.1, b.1));
        if n < 64 || span > (4 * n as u64).max(4096) {
            order.append(scratch);
            order.sort_unstable_by(cmp);
            return;
        }
        // Bucket starts by millisecond, then a stable scatter.
        let counts = &mut bufs.counts;
        counts.clear();
        counts.resize(span as usize + 2, 0);
        for d in scratch.iter() {
            counts[((d.0 >> 64) as u64 - lo) as usize + 1] += 1;
        }
        for b in 1..counts.len() {
            counts[b] += counts[b - 1];
        }
        order.resize(n, (0, 0));
        for &d in scratch.iter() {
            let b = ((d.0 >> 64) as u64 - lo) as usize;
            order[counts[b] as usize] = d;
            counts[b] += 1;
        }
        // Within one millisecond: the rest of the key.
        let mut start = 0;
        while start < n {
            let t = order[start].0 >> 64;
            let mut end = start + 1;
            while end < n && order[end].0 >> 64 == t {
                end += 1;
            }
            if end - start > 1 {
                order[start..end].sort_unstable_by(cmp);
            }
            start = end;
        }
        scratch.clear();
    }

    /// Drops the events with `ts < w` (committed).
    pub fn drop_before(&mut self, w: i64) {
        let below = u128::from(time_bits(w)) << 64;
        let mut keep = self.keys.iter().map(|&k| k >= below);
        self.events.retain(|_| keep.next().unwrap_or(true));
        self.keys.retain(|&k| k >= below);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_like_time_then_rank() {
        let e = |ts: i64, kind| {
            let mut e = pulse_schemas::parse_event(
                r#"{"type":"viewstart","ts":1000,"viewer":"u","session":"s","stream":"st","channel":"c"}"#,
            )
            .expect("valid");
            e.ts = ts;
            e.kind = kind;
            e
        };
        use pulse_schemas::EventKind as K;
        let list = [
            e(i64::MIN, K::Viewend),
            e(-5, K::Viewstart),
            e(0, K::Viewstart),
            e(0, K::Viewend),
            e(7, K::Playing),
            e(i64::MAX, K::Viewstart),
        ];
        for w in list.windows(2) {
            assert!(order_key(&w[0]) < order_key(&w[1]), "{w:?}");
        }
        let mut p = Pending::from_events(list.to_vec());
        let mut order = Vec::new();
        p.due(7, &mut order, &mut DueBuffers::default());
        assert_eq!(order.iter().map(|d| d.1).collect::<Vec<_>>(), [0, 1, 2, 3]);
        p.drop_before(7);
        assert_eq!(p.len(), 2);
        assert_eq!(p.events()[0].ts, 7);
    }
}
