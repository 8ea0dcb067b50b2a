//! `ChunkEvents`: the events of one pending chunk, dropped without being read again.
//!
//! Committed events leave the pending buffer at a later flush than the one whose commit
//! read them, out of the cache by then, and dropping an `Event` reads every id it holds
//! (to see whether the text is on the heap): about three cache misses an event, 8 % of
//! the first-level read misses of the aggregator bench. Most events own no heap memory
//! (ids of up to 24 bytes are inline, the optional strings absent), and dropping them
//! does nothing. So the events are kept as `ManuallyDrop<Event>` with a flag per event,
//! set on push while the event is hot, for the ones that do own heap memory: only those
//! are dropped; the others are forgotten, which reads nothing. A flag wrongly false
//! would leak (it cannot be unsound); [`owns_heap`] names every field of `Event` and
//! requires the fields it does not test to be `Copy` (which owns nothing), so neither a
//! new field nor a field changed to an owning type can be missed: both fail to compile.

use pulse_schemas::{Event, EventKind, Id, Target, TargetKind};
use std::mem::ManuallyDrop;

/// True when dropping `e` frees memory.
pub(crate) fn owns_heap(e: &Event) -> bool {
    /// Compiles only for a `Copy` field: one that owns no memory to free.
    fn owns_nothing<T: Copy>(_: &T) {}
    let Event {
        kind,
        ts,
        viewer,
        channel,
        target: Target {
            kind: target_kind,
            id: target,
        },
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
    } = e;
    owns_nothing(kind);
    owns_nothing(ts);
    owns_nothing(target_kind);
    owns_nothing(pos);
    owns_nothing(state);
    owns_nothing(bitrate_kbps);
    owns_nothing(device);
    owns_nothing(embed);
    owns_nothing(count);
    viewer.is_heap_allocated()
        || channel.is_heap_allocated()
        || target.is_heap_allocated()
        || session.as_ref().is_some_and(Id::is_heap_allocated)
        || country.as_ref().is_some_and(Id::is_heap_allocated)
        || player.is_some()
        || code.is_some()
        || platform.is_some()
}

/// The events of a chunk, in arrival order (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct ChunkEvents {
    events: Vec<ManuallyDrop<Event>>,
    /// `heap[i]`: `events[i]` owns heap memory and must be dropped.
    heap: Vec<bool>,
}

impl ChunkEvents {
    pub fn with_capacity(n: usize) -> Self {
        ChunkEvents {
            events: Vec::with_capacity(n),
            heap: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn capacity(&self) -> usize {
        self.events.capacity()
    }

    #[inline]
    pub fn push(&mut self, e: Event) {
        self.heap.push(owns_heap(&e));
        self.events.push(ManuallyDrop::new(e));
    }

    pub fn get(&self, i: usize) -> &Event {
        &self.events[i]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.events.iter().map(|e| &**e)
    }

    pub fn swap(&mut self, a: usize, b: usize) {
        self.events.swap(a, b);
        self.heap.swap(a, b);
    }

    /// Keeps the first `len` events; drops the rest that own heap memory.
    pub fn truncate(&mut self, len: usize) {
        for i in len..self.events.len() {
            if self.heap[i] {
                let e = std::mem::replace(&mut self.events[i], ManuallyDrop::new(inert()));
                drop(ManuallyDrop::into_inner(e));
            }
        }
        self.events.truncate(len);
        self.heap.truncate(len);
    }

    pub fn clear(&mut self) {
        self.truncate(0);
    }

    pub fn shrink_to_fit(&mut self) {
        self.events.shrink_to_fit();
        self.heap.shrink_to_fit();
    }

    /// Moves every event of `other` to the end of this one.
    pub fn append(&mut self, other: &mut ChunkEvents) {
        self.events.append(&mut other.events);
        self.heap.append(&mut other.heap);
    }
}

impl Drop for ChunkEvents {
    fn drop(&mut self) {
        self.clear();
    }
}

/// An event that owns no heap memory, left in a slot whose event was taken to drop.
fn inert() -> Event {
    let id = Id::new_unchecked("x");
    Event::new(
        EventKind::Heartbeat,
        0,
        id.clone(),
        id.clone(),
        Target {
            kind: TargetKind::Stream,
            id,
        },
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(viewer: &str, player: Option<&str>) -> Event {
        let mut e = inert();
        e.viewer = Id::new_unchecked(viewer);
        e.player = player.map(Into::into);
        e
    }

    #[test]
    fn only_events_owning_heap_memory_are_flagged() {
        assert!(!owns_heap(&event("short", None)));
        assert!(owns_heap(&event(&"v".repeat(40), None)));
        assert!(owns_heap(&event("short", Some("hls.js"))));
        let mut e = event("short", None);
        e.country = Some(Id::new_unchecked(&"c".repeat(30)));
        assert!(owns_heap(&e));
    }

    /// Keeps order through append, swap and truncate. That the heap events are freed,
    /// not leaked, is not checked here (a counting allocator needs `unsafe`, which the
    /// crate keeps to its prefetch hints); it was checked when this was written with `valgrind
    /// --leak-check=full <lib test binary> chunk_events`: nothing lost, and 252 bytes
    /// definitely lost with the drop in `truncate` replaced by a `forget`.
    #[test]
    fn truncate_append_and_drop_keep_the_right_events() {
        let long = "l".repeat(40);
        let all: Vec<Event> = (0..6)
            .map(|i| {
                if i % 2 == 0 {
                    event(&format!("{long}{i}"), Some("p"))
                } else {
                    event(&format!("s{i}"), None)
                }
            })
            .collect();
        let mut a = ChunkEvents::with_capacity(4);
        let mut b = ChunkEvents::with_capacity(4);
        for e in &all[..3] {
            a.push(e.clone());
        }
        for e in &all[3..] {
            b.push(e.clone());
        }
        a.append(&mut b);
        assert_eq!(b.len(), 0);
        assert!(a.iter().eq(all.iter()));
        a.swap(0, 5);
        assert_eq!(a.get(0), &all[5]);
        a.truncate(2);
        assert!(a.iter().eq([&all[5], &all[1]]));
        a.clear();
        assert_eq!(a.len(), 0);
        // Dropped with events left in it (the heap ones are freed by `Drop`).
        for e in &all {
            a.push(e.clone());
        }
    }
}
