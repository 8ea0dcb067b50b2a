//! Per-viewer minutes of one target (`viewer_minutes`): a [`MinuteWindow`] holds each
//! open minute's viewers, their accumulators in first-seen order and an index by
//! viewer. A minute `[m, m + 60 s)` is aligned to the epoch and closed on the rule of
//! [`crate::window`] (`end + session_timeout ≤ W`); a session holds its viewer's later
//! events of a minute back ([`crate::stage`]) and adds them before that.

use crate::qoe::RowContext;
use crate::window::{Bound, MINUTE_MS, window_start};
use pulse_schemas::{Id, ViewerMinuteRow, minute_slice_bit};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// One viewer's activity on one target in one minute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewerMinuteAcc {
    pub events: i64,
    pub followed: bool,
    pub chat_messages: i64,
    /// The 5-second slices of the minute with an event, and with a `follow`
    /// ([`ViewerMinuteRow::seen_mask`]). Default 0 for snapshots written before them.
    #[serde(default)]
    pub seen_mask: u16,
    #[serde(default)]
    pub follow_mask: u16,
}

impl ViewerMinuteAcc {
    pub fn to_row(&self, ctx: &RowContext<'_>, minute: i64, viewer: &Id) -> ViewerMinuteRow {
        ViewerMinuteRow {
            node: ctx.node.clone(),
            kind: ctx.kind,
            target: ctx.target.clone(),
            channel: ctx.channel.clone(),
            minute,
            viewer: viewer.clone(),
            events: self.events,
            followed: self.followed,
            chat_messages: self.chat_messages,
            seen_mask: i64::from(self.seen_mask),
            follow_mask: i64::from(self.follow_mask),
        }
    }
}

/// Viewers of one minute: their accumulators in first-seen order, and an index by
/// viewer. A session remembers the slot of its viewer's current minute
/// ([`MinuteSlot`]) and holds its later events of that minute back ([`crate::stage`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteViewers {
    index: foldhash::HashMap<Id, u32>,
    accs: Vec<(Id, ViewerMinuteAcc)>,
}

impl MinuteViewers {
    fn with_capacity(n: usize) -> Self {
        MinuteViewers {
            index: foldhash::HashMap::with_capacity_and_hasher(n, Default::default()),
            accs: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.accs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accs.is_empty()
    }

    /// Adds a viewer first seen in this minute; returns its slot. Out of line: most
    /// events are of a viewer already seen.
    #[cold]
    #[inline(never)]
    fn add(&mut self, viewer: &Id, acc: ViewerMinuteAcc) -> usize {
        let i = self.accs.len();
        self.index.insert(viewer.clone(), i as u32);
        self.accs.push((viewer.clone(), acc));
        i
    }

    /// The viewers and their accumulators, in first-seen order.
    pub fn iter(&self) -> impl Iterator<Item = (&Id, &ViewerMinuteAcc)> {
        self.accs.iter().map(|(v, a)| (v, a))
    }
}

/// Where a viewer's accumulator of one minute sits: its place among the minute's viewers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteSlot {
    pub minute: i64,
    pub slot: u32,
}

/// The open minutes of one target, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MinuteWindow {
    minutes: VecDeque<(i64, MinuteViewers)>,
}

impl MinuteWindow {
    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }

    /// Adds one event of `viewer` at `ts` to its minute and says where its accumulator
    /// sits; `None` when a new entry would pass `bound` (the caller counts the drop).
    pub fn record(
        &mut self,
        ts: i64,
        viewer: &Id,
        followed: bool,
        chat_messages: i64,
        bound: &mut Bound,
    ) -> Option<MinuteSlot> {
        let minute = window_start(ts, MINUTE_MS);
        let pos = match self.minutes.iter().rposition(|(m, _)| *m <= minute) {
            Some(i) if self.minutes[i].0 == minute => i,
            found => self.open(minute, found),
        };
        let bit = minute_slice_bit(ts) as u16;
        let follow_bit = if followed { bit } else { 0 };
        let viewers = &mut self.minutes[pos].1;
        let slot = match viewers.index.get(viewer) {
            Some(&i) => {
                let acc = &mut viewers.accs[i as usize].1;
                acc.events += 1;
                acc.followed |= followed;
                acc.chat_messages += chat_messages;
                acc.seen_mask |= bit;
                acc.follow_mask |= follow_bit;
                i as usize
            }
            None => {
                if !bound.take() {
                    return None;
                }
                let acc = ViewerMinuteAcc {
                    events: 1,
                    followed,
                    chat_messages,
                    seen_mask: bit,
                    follow_mask: follow_bit,
                };
                viewers.add(viewer, acc)
            }
        };
        Some(MinuteSlot {
            minute,
            slot: slot as u32,
        })
    }

    /// Adds `events` of `viewer` that a session held back ([`crate::stage`]), with
    /// their 5-second slices, to the viewer's accumulator in the minute `slot` names.
    pub fn add_staged(
        &mut self,
        slot: MinuteSlot,
        viewer: &Id,
        events: u32,
        seen_mask: u16,
        follow_mask: u16,
    ) {
        let Some((_, viewers)) = self.minutes.iter_mut().find(|(m, _)| *m == slot.minute) else {
            // Unreachable: a minute closes only after what sessions staged for it joined it.
            debug_assert!(false, "events staged for a closed minute");
            return;
        };
        let at = match viewers.accs.get(slot.slot as usize) {
            Some((v, _)) if v == viewer => Some(slot.slot as usize),
            _ => viewers.index.get(viewer).map(|&i| i as usize),
        };
        match at.and_then(|i| viewers.accs.get_mut(i)) {
            Some((_, acc)) => {
                acc.events += i64::from(events);
                acc.followed |= follow_mask != 0;
                acc.seen_mask |= seen_mask;
                acc.follow_mask |= follow_mask;
            }
            // Unreachable: a slot is staged into only after `record` made its entry.
            None => debug_assert!(false, "events staged for a viewer without an entry"),
        }
    }

    /// True when [`Self::pop_closed`] with `close_before` would close a minute.
    pub fn closes_any(&self, close_before: i64) -> bool {
        self.minutes
            .front()
            .is_some_and(|(m, _)| m + MINUTE_MS <= close_before)
    }

    /// Opens `minute` after the open minute `before` (its position; `None`: in front)
    /// and returns its position. Out of line: [`Self::record`] rarely needs it.
    #[cold]
    #[inline(never)]
    fn open(&mut self, minute: i64, before: Option<usize>) -> usize {
        match before {
            Some(i) => {
                // Sized like the minute before it: the same audience mostly carries on,
                // so the index does not grow by rehashing every minute.
                let like = self.minutes[i].1.len();
                self.minutes
                    .insert(i + 1, (minute, MinuteViewers::with_capacity(like)));
                i + 1
            }
            None => {
                self.minutes.push_front((minute, MinuteViewers::default()));
                0
            }
        }
    }

    /// Removes every minute `[m, m + 60 s)` with `m + 60 s <= close_before`, oldest first.
    pub fn pop_closed(
        &mut self,
        close_before: i64,
        bound: &mut Bound,
        mut f: impl FnMut(i64, MinuteViewers),
    ) {
        while let Some((m, _)) = self.minutes.front() {
            if m + MINUTE_MS > close_before {
                break;
            }
            if let Some((m, viewers)) = self.minutes.pop_front() {
                bound.release(viewers.len());
                f(m, viewers);
            }
        }
    }

    /// Every open minute, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &(i64, MinuteViewers)> {
        self.minutes.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_minute_marks_the_5s_slices_of_its_events_and_follows() {
        let mut w = MinuteWindow::default();
        let mut bound = Bound { open: 0, max: 10 };
        let (a, b) = (Id::new_unchecked("a"), Id::new_unchecked("b"));
        let m = 600_000;
        assert!(w.record(m + 1, &a, false, 0, &mut bound).is_some());
        assert!(w.record(m + 4_999, &a, false, 0, &mut bound).is_some());
        assert!(w.record(m + 12_000, &a, true, 0, &mut bound).is_some());
        assert_eq!(
            w.record(m + 59_999, &b, false, 2, &mut bound),
            Some(MinuteSlot { minute: m, slot: 1 })
        );
        assert!(w.record(m + 60_000, &b, true, 0, &mut bound).is_some());
        let mut closed = Vec::new();
        w.pop_closed(m + 120_000, &mut bound, |minute, v| {
            for (viewer, acc) in v.iter() {
                closed.push((minute, viewer.to_string(), acc.clone()));
            }
        });
        let acc = |events, followed, chat_messages, seen_mask, follow_mask| ViewerMinuteAcc {
            events,
            followed,
            chat_messages,
            seen_mask,
            follow_mask,
        };
        assert_eq!(
            closed,
            vec![
                (m, "a".to_owned(), acc(3, true, 0, 0b101, 0b100)),
                (m, "b".to_owned(), acc(1, false, 2, 1 << 11, 0)),
                (m + 60_000, "b".to_owned(), acc(1, true, 0, 1, 1)),
            ]
        );
        assert_eq!(bound.open, 0);
    }
}
