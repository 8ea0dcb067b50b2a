//! The ingest → aggregator hand-off: a channel of accepted batches bounded by the
//! **events** it holds, not by the number of batches.
//!
//! Why events: a single-event frame connection hands on small batches (a few frames
//! read in one burst) and an envelope sender large ones (up to 1 000 events). A bound
//! in batches is either too small for the first (the queue fills during one flush of
//! the aggregator thread, and ingest stalls while the cores sit idle) or far too
//! large for the second (1 000 times the events). Counting events bounds the memory
//! the queue can hold, whatever the batch sizes.
//!
//! How: an unbounded tokio channel carries the batches and a fair semaphore holds one
//! permit per event of room. A sender takes `len` permits (a batch larger than the
//! whole capacity takes all of them, so it goes alone) before it enqueues, and waits
//! while there is no room: backpressure. The receiver gives a batch's permits back
//! when it takes the batch. An empty batch costs one permit, so the number of queued
//! messages is bounded too. Dropping or closing the receiver closes the semaphore:
//! a waiting sender then gets [`HandoffError::Closed`] instead of waiting forever.
//!
//! It lives here, beside [`Event`], because three stages share it: ingest and the
//! query service's catalog (clip likes) send, the aggregator receives.

use crate::event::Event;
use std::sync::Arc;
use tokio::sync::{Semaphore, TryAcquireError, mpsc};

/// Why a batch was not enqueued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandoffError {
    /// The receiver is closed or gone: the aggregator is shutting down.
    #[error("the aggregator's input channel is closed")]
    Closed,
    /// [`EventSender::try_send`] found no room.
    #[error("the aggregator's input channel is full ({capacity} events)")]
    Full { capacity: usize },
}

/// The largest capacity (events): a batch's cost must fit the semaphore's `u32`.
pub const MAX_CAPACITY_EVENTS: usize = 1 << 30;

/// A hand-off channel holding at most `capacity_events` events (clamped to
/// 1 ..= [`MAX_CAPACITY_EVENTS`]).
pub fn bounded(capacity_events: usize) -> (EventSender, EventReceiver) {
    let capacity = capacity_events.clamp(1, MAX_CAPACITY_EVENTS);
    let (tx, rx) = mpsc::unbounded_channel();
    let room = Arc::new(Semaphore::new(capacity));
    (
        EventSender {
            tx,
            room: room.clone(),
            capacity,
        },
        EventReceiver { rx, room, capacity },
    )
}

/// Permits a batch of `len` events takes: at least one, at most the capacity.
fn cost(len: usize, capacity: usize) -> u32 {
    // capacity ≤ MAX_CAPACITY_EVENTS < u32::MAX
    len.clamp(1, capacity) as u32
}

/// The ingest side: cloned into every connection.
#[derive(Clone, Debug)]
pub struct EventSender {
    tx: mpsc::UnboundedSender<Vec<Event>>,
    room: Arc<Semaphore>,
    capacity: usize,
}

impl EventSender {
    /// Enqueues `batch`, waiting while the channel holds too many events to take it.
    pub async fn send(&self, batch: Vec<Event>) -> Result<(), HandoffError> {
        let permits = self
            .room
            .acquire_many(cost(batch.len(), self.capacity))
            .await
            .map_err(|_| HandoffError::Closed)?;
        // Given back by the receiver when it takes the batch.
        permits.forget();
        self.tx.send(batch).map_err(|_| HandoffError::Closed)
    }

    /// Enqueues `batch` if there is room now; never waits.
    pub fn try_send(&self, batch: Vec<Event>) -> Result<(), HandoffError> {
        let permits = self
            .room
            .try_acquire_many(cost(batch.len(), self.capacity))
            .map_err(|e| match e {
                TryAcquireError::Closed => HandoffError::Closed,
                TryAcquireError::NoPermits => HandoffError::Full {
                    capacity: self.capacity,
                },
            })?;
        permits.forget();
        self.tx.send(batch).map_err(|_| HandoffError::Closed)
    }

    /// Events queued now (batches taken by a sender and not yet by the receiver; room
    /// already promised to a sender still waiting for the rest counts too).
    pub fn queued_events(&self) -> usize {
        self.capacity.saturating_sub(self.room.available_permits())
    }

    /// The bound, in events.
    pub fn capacity_events(&self) -> usize {
        self.capacity
    }
}

/// The aggregator side.
#[derive(Debug)]
pub struct EventReceiver {
    rx: mpsc::UnboundedReceiver<Vec<Event>>,
    room: Arc<Semaphore>,
    capacity: usize,
}

impl EventReceiver {
    /// The next batch; `None` once every sender is gone (or the channel is closed) and
    /// the queue is empty.
    pub async fn recv(&mut self) -> Option<Vec<Event>> {
        let batch = self.rx.recv().await?;
        self.room
            .add_permits(cost(batch.len(), self.capacity) as usize);
        Some(batch)
    }

    /// The next batch if one is queued.
    pub fn try_recv(&mut self) -> Option<Vec<Event>> {
        let batch = self.rx.try_recv().ok()?;
        self.room
            .add_permits(cost(batch.len(), self.capacity) as usize);
        Some(batch)
    }

    /// Events queued now (as [`EventSender::queued_events`] counts them).
    pub fn queued_events(&self) -> usize {
        self.capacity.saturating_sub(self.room.available_permits())
    }

    /// Refuses further sends (waiting ones too); what is queued can still be taken.
    pub fn close(&mut self) {
        self.room.close();
        self.rx.close();
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        self.room.close();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Target, TargetKind};
    use crate::id::Id;
    use std::time::Duration;

    fn batch(n: usize) -> Vec<Event> {
        let target = Target {
            kind: TargetKind::Stream,
            id: Id::new_unchecked("s"),
        };
        let (v, c) = (Id::new_unchecked("v"), Id::new_unchecked("c"));
        vec![Event::new(EventKind::Chat, 1, v, c, target, None); n]
    }

    async fn waits(tx: &EventSender, n: usize) -> bool {
        tokio::time::timeout(Duration::from_millis(50), tx.send(batch(n)))
            .await
            .is_err()
    }

    #[tokio::test]
    async fn holds_at_most_its_capacity_in_events_whatever_the_batch_sizes() {
        let (tx, mut rx) = bounded(10);
        tx.send(batch(4)).await.unwrap();
        tx.send(batch(6)).await.unwrap();
        assert_eq!(tx.queued_events(), 10);
        assert!(waits(&tx, 1).await, "full: a one-event batch waits");
        assert_eq!(rx.try_recv().unwrap().len(), 4);
        assert_eq!(rx.queued_events(), 6);
        tx.send(batch(4)).await.unwrap();
        assert!(waits(&tx, 1).await);
        // Many small batches fill it the same way.
        assert_eq!(rx.recv().await.unwrap().len(), 6);
        assert_eq!(rx.recv().await.unwrap().len(), 4);
        for _ in 0..10 {
            tx.send(batch(1)).await.unwrap();
        }
        assert!(waits(&tx, 1).await);
        // An empty batch costs one event of room.
        for _ in 0..10 {
            rx.try_recv().unwrap();
        }
        for _ in 0..10 {
            tx.send(Vec::new()).await.unwrap();
        }
        assert!(waits(&tx, 0).await);
        // try_send says so instead of waiting.
        assert_eq!(
            tx.try_send(batch(1)),
            Err(HandoffError::Full { capacity: 10 })
        );
        rx.try_recv().unwrap();
        assert_eq!(tx.try_send(batch(1)), Ok(()));
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_capacity_goes_alone() {
        let (tx, mut rx) = bounded(10);
        tx.send(batch(3)).await.unwrap();
        assert!(waits(&tx, 25).await, "it waits for the whole capacity");
        rx.try_recv().unwrap();
        tx.send(batch(25)).await.unwrap();
        assert!(waits(&tx, 1).await, "and holds all of it");
        assert_eq!(rx.try_recv().unwrap().len(), 25);
        assert_eq!(rx.queued_events(), 0);
    }

    #[tokio::test]
    async fn a_waiting_sender_fails_when_the_receiver_goes() {
        let (tx, rx) = bounded(2);
        tx.send(batch(2)).await.unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(batch(1)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(rx);
        let r = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting send returns")
            .unwrap();
        assert_eq!(r, Err(HandoffError::Closed));
        assert_eq!(tx.send(batch(1)).await, Err(HandoffError::Closed));
        assert_eq!(tx.try_send(batch(1)), Err(HandoffError::Closed));
    }

    #[tokio::test]
    async fn close_refuses_new_sends_but_keeps_what_is_queued() {
        let (tx, mut rx) = bounded(8);
        tx.send(batch(3)).await.unwrap();
        rx.close();
        assert!(tx.send(batch(1)).await.is_err());
        assert_eq!(rx.try_recv().unwrap().len(), 3);
        assert!(rx.try_recv().is_none());
        drop(tx);
        assert!(rx.recv().await.is_none());
    }
}
