//! What a view session holds back for its target's minute windows: the events of its
//! own viewer in the minute of its latest one (for `viewer_minutes`), and the watch
//! and rebuffer time it spent in that minute (for its QoE group's `qoe_minutes`).
//!
//! Every event of a session used to reach two accumulators of its target: its viewer's
//! in the minute ([`MinuteWindow`], through a slot cached in the session) and its QoE
//! group's in the minute ([`QoeWindow`]). Both are spread over megabytes (a target's
//! viewers and groups, times its open minutes), and each event paid a cache miss on
//! each. A viewer sends about six events a minute, so the session keeps what they add
//! in one [`Stage`], beside the fields its event reads anyway, and adds it to the two
//! accumulators once ([`release`]):
//! - when an event of its viewer falls in another minute (before it is booked),
//! - when watch time of the held minute comes under another QoE group (the session's
//!   attributes changed its group: the held time goes to the group it was spent in),
//! - when the session ends or times out,
//! - before the minute closes ([`crate::target::TargetState::close`]) and before a
//!   snapshot is written (a snapshot holds no stage: staging is not part of the
//!   persisted state, so any version reads it).
//!
//! Provisional rows of open minutes add what sessions hold. Every field these
//! accumulators keep is a sum or an or, so where an event was added first changes no
//! row. The first event of a minute goes through [`MinuteWindow::record`] as before:
//! it makes the viewer's entry (and takes the `max_viewer_minutes` bound) or is
//! dropped and counted. An event of another viewer than the session's (a client may
//! send them) goes to that viewer's minute directly; its watch time, which belongs to
//! the session's group whoever the viewer is, is held as any other. After a bound
//! refused a viewer minute, nothing is held until the next minute is booked.

use crate::minute::{MinuteSlot, MinuteWindow};
use crate::qoe::QoeWindow;
use crate::session::Interval;
use crate::window::MINUTE_MS;
use pulse_schemas::{Id, minute_slice_bit};

/// `slot` of a stage with no minute.
const NO_SLOT: u32 = u32::MAX;

/// A session's staged events and watch time (see the module docs). 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage {
    /// Start of the minute staged for (meaningful when `slot != NO_SLOT`).
    pub minute: i64,
    /// The session viewer's place among the minute's viewers ([`MinuteSlot`]).
    pub slot: u32,
    /// Events of the viewer not yet in its accumulator, and their 5-second slices.
    pub events: u32,
    pub seen_mask: u16,
    pub follow_mask: u16,
    /// The QoE group the staged time belongs to.
    pub group: u32,
    /// Watch and rebuffer time in the minute not yet in the group's accumulator
    /// (at most a minute: a session's intervals do not overlap).
    pub watch_ms: u32,
    pub rebuffer_ms: u32,
}

impl Default for Stage {
    fn default() -> Self {
        Stage {
            minute: 0,
            slot: NO_SLOT,
            events: 0,
            seen_mask: 0,
            follow_mask: 0,
            group: 0,
            watch_ms: 0,
            rebuffer_ms: 0,
        }
    }
}

impl Stage {
    /// True when `ts` falls in the staged minute.
    fn holds(&self, ts: i64) -> bool {
        self.slot != NO_SLOT && ts >= self.minute && ts < self.minute.saturating_add(MINUTE_MS)
    }

    /// Holds an event of the session's own viewer when it falls in the staged minute
    /// (and carries no chat messages, which only engagement events do); false when it
    /// must go through [`record_own`].
    #[inline]
    pub fn hold(&mut self, ts: i64, followed: bool, chat_messages: i64) -> bool {
        if !(self.holds(ts) && chat_messages == 0 && self.events < u32::MAX) {
            return false;
        }
        let bit = minute_slice_bit(ts) as u16;
        self.events += 1;
        self.seen_mask |= bit;
        if followed {
            self.follow_mask |= bit;
        }
        true
    }

    /// Nothing staged.
    pub fn is_empty(&self) -> bool {
        self.events == 0 && self.watch_ms == 0 && self.rebuffer_ms == 0
    }

    /// True when the staged minute closes at `close_before` (it must be released).
    pub fn closes_at(&self, close_before: i64) -> bool {
        !self.is_empty() && self.minute.saturating_add(MINUTE_MS) <= close_before
    }
}

/// Books an event of the session's own `viewer` that [`Stage::hold`] did not take:
/// releases the stage, then books the event through [`MinuteWindow::record`], whose
/// slot becomes the staged minute. False when the viewer-minute bound refused it (the
/// caller counts the drop). Out of line: about one event a minute.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub fn record_own(
    stage: &mut Stage,
    ts: i64,
    viewer: &Id,
    followed: bool,
    chat_messages: i64,
    bound: &mut crate::window::Bound,
    minutes: &mut MinuteWindow,
    qoe: &mut QoeWindow,
) -> bool {
    release(stage, viewer, minutes, qoe);
    match minutes.record(ts, viewer, followed, chat_messages, bound) {
        Some(MinuteSlot { minute, slot }) => {
            stage.minute = minute;
            stage.slot = slot;
            true
        }
        None => {
            stage.slot = NO_SLOT;
            false
        }
    }
}

/// Books a session's watch (and rebuffer) interval into its QoE `group`: the part in
/// the staged minute is staged (the interval ends at the event, which the caller has
/// just put in that minute), the rest goes to the group's accumulators directly.
#[inline]
pub fn book_interval(stage: &mut Stage, group: u32, iv: Interval, qoe: &mut QoeWindow) {
    let mut direct_to = iv.to;
    if stage.holds(iv.to - 1) {
        if stage.watch_ms > 0 && stage.group != group {
            release_qoe(stage, qoe);
        }
        let cut = iv.from.max(stage.minute);
        // 0 < to − cut ≤ a minute: both ends lie in the staged minute. A session's
        // intervals do not overlap, so the sums stay within a minute too.
        let w = (iv.to - cut) as u32;
        debug_assert!(i64::from(w) <= MINUTE_MS && i64::from(stage.watch_ms) < MINUTE_MS);
        stage.group = group;
        stage.watch_ms = stage.watch_ms.saturating_add(w);
        if iv.rebuffering {
            stage.rebuffer_ms = stage.rebuffer_ms.saturating_add(w);
        }
        direct_to = cut;
    }
    if iv.from < direct_to {
        qoe.book_interval(group, iv.from, direct_to, iv.rebuffering);
    }
}

/// Adds everything `stage` holds to the accumulators (viewer minute and QoE group) and
/// empties it. The slot stays: it may name a minute that has since closed, which is
/// harmless, as events after a close lie past that minute and are never held for it.
#[inline(never)]
pub fn release(stage: &mut Stage, viewer: &Id, minutes: &mut MinuteWindow, qoe: &mut QoeWindow) {
    if stage.events > 0 {
        let slot = MinuteSlot {
            minute: stage.minute,
            slot: stage.slot,
        };
        minutes.add_staged(
            slot,
            viewer,
            stage.events,
            stage.seen_mask,
            stage.follow_mask,
        );
        stage.events = 0;
        stage.seen_mask = 0;
        stage.follow_mask = 0;
    }
    release_qoe(stage, qoe);
}

#[inline(never)]
fn release_qoe(stage: &mut Stage, qoe: &mut QoeWindow) {
    if stage.watch_ms > 0 || stage.rebuffer_ms > 0 {
        qoe.add_time(
            stage.minute,
            stage.group,
            i64::from(stage.watch_ms),
            i64::from(stage.rebuffer_ms),
        );
        stage.watch_ms = 0;
        stage.rebuffer_ms = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Bound;
    use proptest::prelude::*;

    proptest! {
        /// A session's events booked through its stage, released at random moments and
        /// at the end, leave both windows exactly as booking each event at once does:
        /// with events of another viewer in between, group changes, intervals across
        /// minute boundaries, events with chat messages (never held) and a
        /// viewer-minute bound that refuses entries.
        #[test]
        fn staging_books_what_booking_at_once_does(
            steps in proptest::collection::vec(
                (1i64..25_000, 0u8..4, any::<bool>(), 0u32..3, any::<bool>(), 0u8..6, 0i64..2),
                1..80,
            ),
            max in 1usize..8,
        ) {
            let (me, other) = (Id::new_unchecked("me"), Id::new_unchecked("other"));
            let (mut m1, mut q1) = (MinuteWindow::default(), QoeWindow::default());
            let (mut m2, mut q2) = (MinuteWindow::default(), QoeWindow::default());
            let (mut b1, mut b2) = (Bound { open: 0, max }, Bound { open: 0, max });
            let mut stage = Stage::default();
            let (mut last, mut ts) = (0i64, 0i64);
            for (gap, who, rebuffering, group, followed, release_now, chat) in steps {
                ts += gap;
                let viewer = if who == 3 { &other } else { &me };
                let iv = Interval { from: last, to: ts, rebuffering };
                let direct = m1.record(ts, viewer, followed, chat, &mut b1).is_some();
                q1.book_interval(group, iv.from, iv.to, iv.rebuffering);
                let staged = if viewer == &me {
                    stage.hold(ts, followed, chat)
                        || record_own(&mut stage, ts, viewer, followed, chat, &mut b2, &mut m2, &mut q2)
                } else {
                    m2.record(ts, viewer, followed, chat, &mut b2).is_some()
                };
                book_interval(&mut stage, group, iv, &mut q2);
                prop_assert_eq!(direct, staged, "booked at {}", ts);
                if release_now == 0 {
                    release(&mut stage, &me, &mut m2, &mut q2);
                }
                last = ts;
            }
            release(&mut stage, &me, &mut m2, &mut q2);
            prop_assert!(stage.is_empty());
            prop_assert_eq!(m1, m2);
            prop_assert_eq!(q1, q2);
            prop_assert_eq!(b1, b2);
        }
    }
}
