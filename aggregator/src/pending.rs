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
//! the order is exactly the documented one. A run of equal keys whose events are all
//! identical is left as it is (identical events have no order to find); only a run
//! with a difference is sorted with that comparison. Runs are settled by
//! [`Pending::each_in`] just before their commit, when the commit reads the events
//! anyway, not by [`Pending::due`]'s sort.
//!
//! The buffer is a deque of chunks of at most [`CHUNK`] events in arrival order, each
//! with the smallest key it still holds. Arrival order is nearly time order, so a
//! flush touches only the chunks that hold due events: the rest are neither scanned
//! nor moved (a flat vector was scanned whole and its remainder moved down on every
//! flush: about `allowed_lateness / flush interval` moves of each 232-byte event).
//! Committed events are marked with [`DONE`]; a chunk is freed when all its events are
//! committed, and compacted (its memory given back) when fewer than a quarter of them
//! are left, then merged into the chunk before it when both fit in one: events pending
//! much longer than their neighbours (a future timestamp) hold their own size, not a
//! chunk each, and the chunk count stays near `2 × pending / CHUNK`.

use crate::chunk_events::ChunkEvents;
use crate::engine::{event_order, kind_rank};
use pulse_schemas::Event;
use std::cmp::Ordering;

/// A due event's place in the commit order: its key and its place in the buffer
/// (chunk number `<< CHUNK_BITS |` position), valid until the next `drop_before`.
pub(crate) type Due = (u128, u64);

const CHUNK_BITS: u32 = 12;
/// Events per chunk.
const CHUNK: usize = 1 << CHUNK_BITS;
/// The key of a committed event (no real key has it: a rank is below 15).
const DONE: u128 = u128::MAX;

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

/// `event_order(a, b) == Equal`, answered with equality tests, cheap scalars first
/// (the comparison chain costs several times more on a run of identical events). The
/// destructuring names every field, so a new one cannot be missed here.
fn identical(a: &Event, b: &Event) -> bool {
    let Event {
        kind,
        ts,
        viewer,
        channel,
        target,
        session,
        pos,
        state,
        bitrate_kbps,
        device,
        country,
        player,
        embed,
        code,
        count,
        platform,
    } = a;
    *ts == b.ts
        && *kind == b.kind
        && *state == b.state
        && *count == b.count
        && *embed == b.embed
        && *device == b.device
        && *bitrate_kbps == b.bitrate_kbps
        // total_cmp is Equal exactly when the bits are
        && pos.map(f64::to_bits) == b.pos.map(f64::to_bits)
        && *session == b.session
        && *viewer == b.viewer
        && *target == b.target
        && *channel == b.channel
        && *country == b.country
        && *player == b.player
        && *code == b.code
        && *platform == b.platform
}

/// Events [`Pending::each_in`] prefetches and commits at a time.
const BLOCK: usize = 8;

/// Which pass of [`Pending::each_in`] an event is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Before its block commits: start loading what its commit will read.
    Prefetch,
    /// Its commit, in the commit order.
    Commit,
}

const SIGN: u64 = 1 << 63;

fn time_bits(ts: i64) -> u64 {
    (ts as u64) ^ SIGN
}

/// The key, and the fingerprint's low 4 bits the key has no room for (kept beside it,
/// so a tie compares them without hashing the events again).
fn order_key_and_low(e: &Event) -> (u128, u8) {
    let rank = u128::from(kind_rank(e.kind) & 0xf);
    let fp = identity_fingerprint(e);
    let key = (u128::from(time_bits(e.ts)) << 64) | (rank << 60) | u128::from(fp >> 4);
    (key, (fp & 0xf) as u8)
}

#[cfg(test)]
fn order_key(e: &Event) -> u128 {
    order_key_and_low(e).0
}

/// Up to [`CHUNK`] pending events in arrival order, their keys, and the smallest key
/// not yet committed ([`DONE`] when none is left).
#[derive(Clone, Debug)]
struct Chunk {
    events: ChunkEvents,
    keys: Vec<u128>,
    /// The fingerprints' low 4 bits (see [`order_key_and_low`]).
    low: Vec<u8>,
    min: u128,
    /// The largest key pushed since the chunk was (re)used (committed ones included):
    /// a chunk whose events are all below a range is skipped without a scan.
    max: u128,
    live: usize,
}

impl Chunk {
    fn new() -> Self {
        Chunk {
            events: ChunkEvents::with_capacity(CHUNK),
            keys: Vec::with_capacity(CHUNK),
            low: Vec::with_capacity(CHUNK),
            min: DONE,
            max: 0,
            live: 0,
        }
    }
}

/// The events waiting for the watermark (arrival order) and their keys.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pending {
    chunks: std::collections::VecDeque<Chunk>,
    live: usize,
    /// Emptied chunks kept for reuse: a chunk is about 1 MB, and a fresh one would be
    /// page-faulted in again. At most as many as the last flush freed (at least
    /// [`SPARE`]): in a steady state a flush frees what the next one fills.
    spare: Vec<Chunk>,
}

const SPARE: usize = 4;

/// Reusable buffers of [`Pending::due`]: the due keys, and bucket offsets by
/// millisecond (at most about four per due event).
#[derive(Clone, Debug, Default)]
pub(crate) struct DueBuffers {
    keys: Vec<Due>,
    counts: Vec<u32>,
}

impl DueBuffers {
    /// Gives back memory sized for far more than `events` due events (after a burst,
    /// or after a provisional replay of a pending buffer that has since drained).
    pub fn trim(&mut self, events: usize) {
        give_back(&mut self.keys, events);
        // Bucket offsets: up to four per due event (see `due`).
        give_back(&mut self.counts, 4 * events);
    }
}

/// Shrinks a buffer whose capacity is over four times what is `needed` (and over a
/// small floor) to twice that: buffers kept between flushes follow the load down after
/// a burst without being reallocated on every flush.
pub(crate) fn give_back<T>(buf: &mut Vec<T>, needed: usize) {
    if buf.capacity() > 4 * needed.max(1024) {
        buf.shrink_to(2 * needed);
    }
}

impl Pending {
    pub fn from_events(events: Vec<Event>) -> Self {
        let mut p = Pending::default();
        for e in events {
            p.push(e);
        }
        p
    }

    /// Events not committed yet.
    pub fn len(&self) -> usize {
        self.live
    }

    #[inline]
    pub fn push(&mut self, e: Event) {
        let (key, low) = order_key_and_low(&e);
        if self.chunks.back().is_none_or(|c| c.events.len() >= CHUNK) {
            let c = self.spare.pop().unwrap_or_else(Chunk::new);
            self.chunks.push_back(c);
        }
        if let Some(c) = self.chunks.back_mut() {
            c.min = c.min.min(key);
            c.max = c.max.max(key);
            c.keys.push(key);
            c.low.push(low);
            c.events.push(e);
            c.live += 1;
            self.live += 1;
        }
    }

    /// The events not committed yet, in arrival order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.chunks.iter().flat_map(|c| {
            c.keys
                .iter()
                .zip(c.events.iter())
                .filter(|(k, _)| **k != DONE)
                .map(|(_, e)| e)
        })
    }

    pub fn get(&self, i: u64) -> &Event {
        let (c, at) = self.slot(i);
        c.events.get(at)
    }

    /// Calls `f` on the events of `order` (as [`Self::due`] leaves it: sorted by key) in
    /// the commit order. A run of equal keys (one identity, time and type rank) is
    /// first sorted by [`Self::tie`], unless every event of the run equals the first,
    /// whose order then does not matter: a client that stamps many frames with one
    /// millisecond sends runs of identical heartbeats, and sorting them with the full
    /// comparison was a fifth of the aggregator thread. That check is made here, just
    /// before the run's commit, because it reads the events: made while sorting, it
    /// paid the cache misses of reading them, and the commit paid them again (a
    /// flush's due events are megabytes, evicted in between; the check alone was 29 %
    /// of the aggregator thread in a saturated `frames` run).
    ///
    /// The events sit in arrival order, so the commit order jumps through the buffer,
    /// and each commit jumps to its session in a table of megabytes: read one after
    /// another, both were a miss between two commits (about a quarter of the
    /// aggregator's time together). So the commits go by blocks of [`BLOCK`] events:
    /// while one block commits, the next block's events are already asked for (the
    /// crate's `prefetch` hints), and before a block commits, `f` sees each of its
    /// events with [`Pass::Prefetch`] (the engine asks for its session then), so the
    /// misses of a block overlap and are mostly over when the commits
    /// ([`Pass::Commit`]) read the lines.
    pub fn each_in(&self, order: &mut [Due], mut f: impl FnMut(&Event, Pass)) {
        let n = order.len();
        // Runs of equal keys are settled up to here.
        let mut settled = 0;
        let mut start = 0;
        self.prefetch_events(&order[..BLOCK.min(n)]);
        while start < n {
            let end = (start + BLOCK).min(n);
            self.prefetch_events(&order[end..(end + BLOCK).min(n)]);
            // Every run that begins in this block, settled whole (so the block's order
            // is final): the check reads the events, asked for a block ago (a run's
            // part past the block is asked for with the next block).
            while settled < end {
                let key = order[settled].0;
                let mut run = settled + 1;
                while run < n && order[run].0 == key {
                    run += 1;
                }
                if run - settled > 1 {
                    self.settle_run(&mut order[settled..run]);
                }
                settled = run;
            }
            for &(_, i) in &order[start..end] {
                f(self.get(i), Pass::Prefetch);
            }
            for &(_, i) in &order[start..end] {
                f(self.get(i), Pass::Commit);
            }
            start = end;
        }
    }

    fn prefetch_events(&self, block: &[Due]) {
        for &(_, i) in block {
            crate::prefetch::whole(self.get(i));
        }
    }

    /// Puts a run of equal keys in the commit order (see [`Self::each_in`]).
    fn settle_run(&self, run: &mut [Due]) {
        let first = self.get(run[0].1);
        if !run[1..].iter().all(|d| identical(first, self.get(d.1))) {
            run.sort_unstable_by(|a, b| self.tie(a.1, b.1));
        }
    }

    /// The chunk and position a [`Due`] index names.
    fn slot(&self, i: u64) -> (&Chunk, usize) {
        (
            &self.chunks[(i >> CHUNK_BITS) as usize],
            (i as usize) & (CHUNK - 1),
        )
    }

    /// The events with `from ≤ ts < to`, sorted by key, into `order` (the engine
    /// applies ahead of the watermark: events below `from` are applied but kept);
    /// [`Self::each_in`] settles runs of equal keys into the full commit order.
    ///
    /// Due events usually span a short stretch of time (a flush interval plus the
    /// lateness), so they are first spread by millisecond (a counting sort, linear),
    /// leaving only the few events of one millisecond to compare. Over a long, sparse
    /// stretch a comparison sort is used instead.
    pub fn due(&self, from: i64, to: i64, order: &mut Vec<Due>, bufs: &mut DueBuffers) {
        let above = u128::from(time_bits(from)) << 64;
        let below = u128::from(time_bits(to)) << 64;
        let scratch = &mut bufs.keys;
        scratch.clear();
        order.clear();
        if above >= below {
            return;
        }
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for (c, chunk) in (0u64..).zip(&self.chunks) {
            if chunk.min >= below || chunk.max < above {
                continue;
            }
            for (i, &k) in (c << CHUNK_BITS..).zip(&chunk.keys) {
                // (`DONE` is above every `below`.)
                if k < below && k >= above {
                    let t = (k >> 64) as u64;
                    lo = lo.min(t);
                    hi = hi.max(t);
                    scratch.push((k, i));
                }
            }
        }
        order.clear();
        let n = scratch.len();
        let span = hi.wrapping_sub(lo);
        if n < 64 || span > (4 * n as u64).max(4096) {
            order.append(scratch);
            order.sort_unstable_by_key(|d| d.0);
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
                order[start..end].sort_unstable_by_key(|d| d.0);
            }
            start = end;
        }
        scratch.clear();
    }

    /// Order of two events whose keys are equal.
    fn tie(&self, a: u64, b: u64) -> Ordering {
        let low = |i: u64| {
            let (c, at) = self.slot(i);
            c.low[at]
        };
        low(a)
            .cmp(&low(b))
            .then_with(|| event_order(self.get(a), self.get(b)))
    }

    /// Forgets the events with `ts < w` (committed): frees the chunks left empty,
    /// compacts those left under a quarter full (giving their memory back) and merges a
    /// compacted chunk into the one before it when both fit in one, so events pending
    /// far longer than their neighbours (a future timestamp) cost their own size, not a
    /// chunk each.
    pub fn drop_before(&mut self, w: i64) {
        let below = u128::from(time_bits(w)) << 64;
        let mut freed = 0;
        let chunks = self.chunks.make_contiguous();
        let last = chunks.len().saturating_sub(1);
        // The chunk before this one that still holds events (not the last: it is filling).
        let mut prev: Option<usize> = None;
        for n in 0..chunks.len() {
            let c = &mut chunks[n];
            if c.min < below {
                let mut min = DONE;
                for k in c.keys.iter_mut() {
                    if *k < below {
                        *k = DONE;
                        c.live -= 1;
                        self.live -= 1;
                    } else {
                        min = min.min(*k);
                    }
                }
                c.min = min;
                if c.live == 0 {
                    c.events.clear();
                    c.keys.clear();
                    c.low.clear();
                    freed += 1;
                    continue;
                }
                if n < last && c.live * 4 < c.events.len() {
                    // The uncommitted ones move down in order, with their keys.
                    let mut kept = 0;
                    for at in 0..c.keys.len() {
                        if c.keys[at] != DONE {
                            c.keys.swap(kept, at);
                            c.low.swap(kept, at);
                            c.events.swap(kept, at);
                            kept += 1;
                        }
                    }
                    c.keys.truncate(kept);
                    c.low.truncate(kept);
                    c.events.truncate(kept);
                    c.events.shrink_to_fit();
                    c.keys.shrink_to_fit();
                    c.low.shrink_to_fit();
                }
            }
            if c.live == 0 || n == last {
                continue;
            }
            match prev {
                Some(p) if chunks[p].events.len() + chunks[n].events.len() <= CHUNK => {
                    // Appended after the chunk before it: arrival order is kept.
                    let (head, tail) = chunks.split_at_mut(n);
                    let (to, from) = (&mut head[p], &mut tail[0]);
                    to.events.append(&mut from.events);
                    to.keys.append(&mut from.keys);
                    to.low.append(&mut from.low);
                    to.min = to.min.min(from.min);
                    to.max = to.max.max(from.max);
                    to.live += from.live;
                    from.live = 0;
                    from.min = DONE;
                    freed += 1;
                }
                _ => prev = Some(n),
            }
        }
        if freed > 0 {
            // The emptied last chunk stays to take the next events.
            let n = self.chunks.len();
            let mut kept = std::collections::VecDeque::with_capacity(n);
            for (i, mut c) in self.chunks.drain(..).enumerate() {
                if c.live > 0 || i + 1 == n {
                    kept.push_back(c);
                } else if self.spare.len() < SPARE.max(freed) && c.events.capacity() >= CHUNK {
                    c.min = DONE;
                    c.max = 0;
                    self.spare.push(c);
                }
            }
            self.chunks = kept;
        }
        // Spares for about one flush: after a burst they go back at the next flush.
        self.spare.truncate(SPARE.max(freed));
    }
}

#[cfg(test)]
#[path = "pending_tests.rs"]
mod tests;
