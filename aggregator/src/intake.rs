//! `Intake`: how the live loop moves batches from the input channel into the pending
//! buffer without overflowing it.
//!
//! Pending holds the events the watermark has not passed yet, about
//! `allowed_lateness` of input. When input comes faster than `max_pending_events`
//! allows for that long, a batch that does not fit is held here, and the loop takes
//! nothing more from the channel until it fits: the channel fills and ingest waits
//! (backpressure, as PROTOCOL.md's acks promise: a batch is acked once the aggregator
//! has it), instead of pending dropping events ingest had already accepted. Room
//! comes at a flush, when the watermark moves on. While a batch is held the watermark
//! cannot follow the newest event seen (newer events are what waits for room), so it
//! follows the clock, `now − allowed_lateness` as when no input comes, but no further
//! than the held batch's oldest event (of those not late already): pending events
//! before it are passed and let go of, and the held batch is not made late by the
//! wait. Events queued behind it can be older (ingest keeps a client's own time when
//! it is within `skew_threshold_ms` of receive time), so under backpressure a client
//! whose clock is slow by nearly the lateness can see events counted late that would
//! have made it without the wait; `late` counts them.
//!
//! Room never comes if pending is full of events the watermark cannot pass soon
//! (stamped far in the future, or a `max_pending_events` smaller than one batch), and
//! waiting would stall ingest for good. So pending may stay full for at most
//! [`Intake::patience`] (the lateness plus two flush intervals: by then the watermark
//! has passed everything honestly stamped before the wait began); past that, batches
//! go in without waiting, the excess dropped and counted as before
//! (`pending_full`), until one fits again. Pure: the time is an argument.

use crate::engine::Aggregator;
use pulse_schemas::Event;
use std::time::{Duration, Instant};

/// What became of a batch offered to pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// It went in.
    In,
    /// No room: held, and the loop takes no more input until it goes in.
    Held,
    /// Pending has been full for longer than the patience: it went in anyway (what did
    /// not fit dropped and counted), as every batch will until one fits again. Said
    /// once per such stretch.
    GaveUpWaiting,
}

/// The door between the input channel and the pending buffer (module docs).
#[derive(Debug)]
pub(crate) struct Intake {
    /// The batch taken from the channel that did not fit; offered again first.
    held: Option<Vec<Event>>,
    /// Since when pending has had no room for the batch offered.
    full_since: Option<Instant>,
    /// How long pending may stay full before batches go in anyway.
    patience: Duration,
    /// Past the patience: batches go in without waiting.
    gave_up: bool,
}

impl Intake {
    pub(crate) fn new(patience: Duration) -> Self {
        Intake {
            held: None,
            full_since: None,
            patience,
            gave_up: false,
        }
    }

    /// The patience for a loop with this lateness and flush interval.
    pub(crate) fn patience(allowed_lateness_ms: i64, flush_interval_ms: u64) -> Duration {
        Duration::from_millis(u64::try_from(allowed_lateness_ms).unwrap_or(0))
            + Duration::from_millis(flush_interval_ms) * 2
    }

    /// Nothing is held: the loop may take a batch from the channel.
    pub(crate) fn is_open(&self) -> bool {
        self.held.is_none()
    }

    /// The oldest time of a held event at or after `watermark` (events before it are
    /// late whatever happens): while a batch is held the watermark goes no further
    /// (module docs).
    pub(crate) fn held_oldest(&self, watermark: i64) -> Option<i64> {
        self.held
            .as_ref()
            .and_then(|b| b.iter().map(|e| e.ts).filter(|&t| t >= watermark).min())
    }

    /// Offers a batch to pending (nothing must be held). It goes in if it fits, or if
    /// pending has been full for longer than the patience (then what does not fit is
    /// dropped and counted by [`Aggregator::push`]); otherwise it is held. `now` is read
    /// only when the batch does not fit (no clock read per batch on the hot path).
    pub(crate) fn offer(
        &mut self,
        agg: &mut Aggregator,
        batch: Vec<Event>,
        now: impl FnOnce() -> Instant,
    ) -> Offer {
        debug_assert!(self.held.is_none(), "a batch is already held");
        let pending = agg.pending_len();
        let fits = pending == 0
            || batch.is_empty()
            || pending.saturating_add(batch.len()) <= agg.config().max_pending_events;
        let mut said = Offer::In;
        if fits {
            self.full_since = None;
            self.gave_up = false;
        } else {
            let now = now();
            let since = *self.full_since.get_or_insert(now);
            if now.saturating_duration_since(since) < self.patience {
                self.held = Some(batch);
                return Offer::Held;
            }
            if !self.gave_up {
                self.gave_up = true;
                said = Offer::GaveUpWaiting;
            }
        }
        for e in batch {
            agg.push(e);
        }
        said
    }

    /// Offers the held batch again (`In` when nothing was held).
    pub(crate) fn retry(&mut self, agg: &mut Aggregator, now: impl FnOnce() -> Instant) -> Offer {
        match self.held.take() {
            Some(batch) => self.offer(agg, batch, now),
            None => Offer::In,
        }
    }

    /// Shutdown: the held batch, if any, for the caller to push past the bound.
    pub(crate) fn take_held(&mut self) -> Option<Vec<Event>> {
        self.held.take()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::AggregatorConfig;
    use pulse_schemas::{EventKind, Id, Target, TargetKind};

    fn batch(n: usize, ts: i64) -> Vec<Event> {
        let target = Target {
            kind: TargetKind::Stream,
            id: Id::new_unchecked("st"),
        };
        let (v, c) = (Id::new_unchecked("v"), Id::new_unchecked("c"));
        vec![Event::new(EventKind::Chat, ts, v, c, target, None); n]
    }

    /// An aggregator with this pending bound, an intake with 12 s of patience, a time.
    fn start(max_pending_events: usize) -> (Aggregator, Intake, Instant) {
        let agg = Aggregator::new(AggregatorConfig {
            max_pending_events,
            ..Default::default()
        });
        (agg, Intake::new(Duration::from_secs(12)), Instant::now())
    }

    #[test]
    fn a_batch_that_does_not_fit_waits_and_loses_nothing() {
        let (mut agg, mut intake, t0) = start(10);
        assert_eq!(Offer::In, intake.offer(&mut agg, batch(6, 1_000), || t0));
        assert_eq!(Offer::Held, intake.offer(&mut agg, batch(5, 5_000), || t0));
        assert!(!intake.is_open());
        assert_eq!(intake.held_oldest(0), Some(5_000));
        // An event late already does not hold the watermark back.
        assert_eq!(intake.held_oldest(6_000), None);
        assert_eq!(agg.pending_len(), 6);
        // Still no room a second later: held, nothing dropped.
        assert_eq!(
            Offer::Held,
            intake.retry(&mut agg, || t0 + Duration::from_secs(1))
        );
        // The watermark passes the first batch: the held one goes in, whole.
        agg.advance(2_000);
        assert_eq!(
            Offer::In,
            intake.retry(&mut agg, || t0 + Duration::from_secs(2))
        );
        assert!(intake.is_open());
        assert_eq!(agg.pending_len(), 5);
        assert_eq!(agg.stats().dropped_pending_full, 0);
    }

    #[test]
    fn pending_full_for_longer_than_the_patience_drops_instead_of_stalling() {
        let (mut agg, mut intake, t0) = start(10);
        // Stamped far ahead: the watermark will not pass these for a long time.
        assert_eq!(
            Offer::In,
            intake.offer(&mut agg, batch(8, 9_000_000), || t0)
        );
        assert_eq!(
            Offer::Held,
            intake.offer(&mut agg, batch(4, 9_000_000), || t0)
        );
        assert_eq!(
            Offer::Held,
            intake.retry(&mut agg, || t0 + Duration::from_secs(11))
        );
        // Past the patience the batch goes in: what fits is kept, the rest counted.
        assert_eq!(
            Offer::GaveUpWaiting,
            intake.retry(&mut agg, || t0 + Duration::from_secs(12))
        );
        assert_eq!(agg.pending_len(), 10);
        assert_eq!(agg.stats().dropped_pending_full, 2);
        // And the next ones go in without waiting while pending stays full ...
        assert_eq!(
            Offer::In,
            intake.offer(&mut agg, batch(3, 9_000_000), || t0
                + Duration::from_secs(13))
        );
        assert_eq!(agg.stats().dropped_pending_full, 5);
        // ... until one fits again: then a batch that does not fit waits afresh.
        agg.advance(9_000_001);
        assert_eq!(
            Offer::In,
            intake.offer(&mut agg, batch(7, 9_100_000), || t0
                + Duration::from_secs(14))
        );
        assert_eq!(
            Offer::Held,
            intake.offer(&mut agg, batch(7, 9_100_000), || t0
                + Duration::from_secs(14))
        );
        assert_eq!(agg.stats().dropped_pending_full, 5);
    }

    #[test]
    fn the_watermark_waits_for_the_oldest_held_event_not_late_already() {
        let (mut agg, mut intake, t0) = start(4);
        assert_eq!(Offer::In, intake.offer(&mut agg, batch(4, 1_000), || t0));
        let mut mixed = batch(2, 7_000);
        mixed[1].ts = 500;
        assert_eq!(Offer::Held, intake.offer(&mut agg, mixed, || t0));
        assert_eq!(intake.held_oldest(600), Some(7_000));
        assert_eq!(intake.held_oldest(400), Some(500));
        // An empty batch always goes in (it takes no room).
        agg.advance(2_000);
        assert_eq!(Offer::In, intake.retry(&mut agg, || t0));
        assert_eq!(agg.stats().late, 1);
        assert_eq!(Offer::In, intake.offer(&mut agg, Vec::new(), || t0));
    }

    #[test]
    fn a_batch_larger_than_the_bound_goes_into_an_empty_pending() {
        let (mut agg, mut intake, t0) = start(3);
        assert_eq!(Offer::In, intake.offer(&mut agg, batch(5, 1_000), || t0));
        assert_eq!(agg.pending_len(), 3);
        assert_eq!(agg.stats().dropped_pending_full, 2);
        assert!(intake.take_held().is_none());
    }
}
