//! The live loop and the replay entry point: the only places with a clock, a channel
//! and a sink. Both drive the same [`Aggregator`] calls, so a replay of a trace gives
//! the numbers the live system gave for the same events.
//!
//! Live ([`spawn`] / [`run`]): on its own OS thread (blocking sink I/O never stalls a
//! tokio worker), it receives batches from the bounded channel and, every flush
//! interval, moves the watermark to `max(W, min(max event ts, now) − lateness)` — or to
//! `now − lateness` when no event came during the interval, so windows close when
//! traffic stops, and to `now − lateness` but not past a batch held for room in
//! pending (below) — then `advance`, `move_ahead(now)` and `provisional(now)` (for a
//! sink that shows open windows) and `sink.write`. Between flushes, for such a sink, it
//! also moves the state ahead by one 50 ms step after each intake while it lags more
//! than that. A batch that does not fit in pending is held, and nothing more is taken
//! until it does (`crate::intake`: backpressure on ingest). On shutdown it drains the
//! channel (past the pending bound), flushes once more, calls `sink.shutdown()` and
//! writes a state snapshot that the next start restores.
//!
//! Replay ([`replay`]): pushes the trace in order, the watermark following
//! `max ts − lateness` event by event, advances every [`REPLAY_ADVANCE_EVERY`] events,
//! then `finish()`.

use crate::engine::{Aggregator, AggregatorStats};
use crate::intake::{Intake, Offer};
use crate::metrics::Metrics;
use crate::sinks::{Provisional, WindowSink};
use crate::{AggregatorConfig, AggregatorError, EventReceiver, EventSender};
use pulse_schemas::{ClosedWindows, Event};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Wall clock in epoch ms, injected so tests can drive time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock (UTC epoch ms). Read straight from `SystemTime`: `chrono::Utc::now`
/// builds a calendar date first, and the ingest path reads this clock for every frame.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

/// The bounded ingest → aggregator channel (`channel_capacity_events` events).
pub fn channel(cfg: &AggregatorConfig) -> (EventSender, EventReceiver) {
    pulse_schemas::handoff::bounded(cfg.channel_capacity_events)
}

/// Replay advances (and writes to the sink) every this many events.
pub const REPLAY_ADVANCE_EVERY: usize = 65_536;

/// Batches taken from the channel without blocking before the loop looks at the clock.
const DRAIN_BURST: usize = 256;

/// What the live loop needs besides the channel and the sink.
#[derive(Clone)]
pub struct RunOptions {
    pub clock: Clock,
    pub shutdown: CancellationToken,
    /// State snapshot written on shutdown and restored (then renamed `*.loaded`) on start.
    pub snapshot_path: Option<PathBuf>,
}

/// How a live run went.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub stats: AggregatorStats,
    pub flushes: u64,
    /// The state came from a snapshot.
    pub restored: bool,
}

impl<S: WindowSink + ?Sized> WindowSink for Box<S> {
    fn write(
        &mut self,
        closed: &ClosedWindows,
        provisional: &Provisional,
    ) -> Result<(), AggregatorError> {
        (**self).write(closed, provisional)
    }

    fn wants_provisional(&self) -> bool {
        (**self).wants_provisional()
    }

    fn shutdown(&mut self) -> Result<(), AggregatorError> {
        (**self).shutdown()
    }

    fn drop_days_before(&mut self, cutoff_ms: i64) -> Result<usize, AggregatorError> {
        (**self).drop_days_before(cutoff_ms)
    }
}

/// How often the live loop applies `retention_days`.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Starts the live loop on its own OS thread; join the handle after cancelling
/// `opts.shutdown`. Must be called from inside a tokio runtime (whose timer it uses).
pub fn spawn<S: WindowSink + 'static>(
    cfg: AggregatorConfig,
    rx: EventReceiver,
    sink: S,
    opts: RunOptions,
) -> Result<std::thread::JoinHandle<Result<RunReport, AggregatorError>>, AggregatorError> {
    cfg.validate()?;
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|e| AggregatorError::Runtime(format!("spawn needs a tokio runtime: {e}")))?;
    std::thread::Builder::new()
        .name("pulse-aggregator".into())
        .spawn(move || run(&handle, cfg, rx, sink, opts))
        .map_err(|e| AggregatorError::Io {
            path: "<thread>".into(),
            source: e,
        })
}

enum Wake {
    Batch(Vec<Event>),
    Timer,
    /// Nothing queued, and the state has ahead work to do (no waiting for input).
    Idle,
    Stop,
}

/// The live loop (blocking; [`spawn`] runs it on a thread of its own).
pub fn run<S: WindowSink>(
    handle: &tokio::runtime::Handle,
    cfg: AggregatorConfig,
    mut rx: EventReceiver,
    mut sink: S,
    opts: RunOptions,
) -> Result<RunReport, AggregatorError> {
    cfg.validate()?;
    let mut report = RunReport::default();
    let mut agg = match &opts.snapshot_path {
        Some(path) => match Aggregator::load_snapshot(cfg.clone(), path) {
            Ok(Some(agg)) => {
                report.restored = true;
                tracing::info!(path = %path.display(), watermark = agg.watermark(), "aggregator state restored");
                agg
            }
            Ok(None) => Aggregator::new(cfg.clone()),
            Err(e) => {
                tracing::warn!(error = %e, "aggregator snapshot not usable; starting empty");
                Aggregator::new(cfg.clone())
            }
        },
        None => Aggregator::new(cfg.clone()),
    };
    let mut live = Live {
        metrics: Metrics::get(),
        last: agg.stats(),
        received: false,
        clock: opts.clock.clone(),
        provisional: Provisional::default(),
        next_provisional: Instant::now(),
        closed: ClosedWindows::default(),
        every: Duration::from_millis(cfg.flush_interval_ms),
        closing: false,
        intake: Intake::new(Intake::patience(
            cfg.allowed_lateness_ms,
            cfg.flush_interval_ms,
        )),
    };
    let every = Duration::from_millis(cfg.flush_interval_ms);
    let mut next_flush = Instant::now() + every;
    let mut next_retention = Instant::now();
    // Between flushes the state is moved ahead whenever it lags more than a step
    // (`Live::step_between`); while it does, input is polled, not waited for.
    let ahead_between = sink.wants_provisional();
    let mut lagging = false;
    loop {
        let wait = next_flush.saturating_duration_since(Instant::now());
        // A batch held for want of room in pending goes first; until it is in, the loop
        // takes nothing from the channel (backpressure: see `intake`).
        let open = live.retry(&mut agg);
        let wake = if wait.is_zero() {
            Wake::Timer
        } else if lagging {
            if opts.shutdown.is_cancelled() {
                Wake::Stop
            } else if open {
                rx.try_recv().map_or(Wake::Idle, Wake::Batch)
            } else {
                Wake::Idle
            }
        } else {
            handle.block_on(async {
                tokio::select! {
                    biased;
                    _ = opts.shutdown.cancelled() => Wake::Stop,
                    r = tokio::time::timeout(wait, rx.recv()), if open => match r {
                        Ok(Some(batch)) => Wake::Batch(batch),
                        Ok(None) => Wake::Stop,
                        Err(_) => Wake::Timer,
                    },
                    // Held: only the flush makes room.
                    () = tokio::time::sleep(wait), if !open => Wake::Timer,
                }
            })
        };
        match wake {
            Wake::Stop => break,
            Wake::Timer | Wake::Idle => {}
            Wake::Batch(batch) => {
                live.take(&mut agg, batch);
                for _ in 0..DRAIN_BURST {
                    if !live.intake.is_open() {
                        break;
                    }
                    match rx.try_recv() {
                        Some(batch) => live.take(&mut agg, batch),
                        None => break,
                    }
                }
            }
        }
        live.metrics
            .input_queue_depth
            .set(rx.queued_events() as i64);
        if Instant::now() >= next_flush {
            live.flush(&mut agg, &mut sink, &mut rx);
            report.flushes += 1;
            next_flush = Instant::now() + every;
            // A flush that stopped at its time limit leaves work for in between.
            lagging = ahead_between && live.lags(&agg);
            if cfg.retention_days > 0 && Instant::now() >= next_retention {
                next_retention = Instant::now() + RETENTION_EVERY;
                let cutoff = (live.clock)() - i64::from(cfg.retention_days) * 86_400_000;
                if let Err(e) = sink.drop_days_before(cutoff) {
                    tracing::warn!(error = %e, "retention failed; trying again in an hour");
                }
            }
        } else if ahead_between && report.flushes > 0 {
            // (Not before the first flush: until it moves the watermark to the
            // present, the steps would start from where it stood, epoch 0 on a fresh
            // start.)
            lagging = live.step_between(&mut agg);
        }
    }
    // Shutdown: take what ingest already handed over (past the pending bound, by at most
    // the held batch and the channel's contents: it was accepted, and the snapshot keeps
    // it), flush, make it durable, snapshot.
    rx.close();
    let held = live.intake.take_held();
    for batch in held.into_iter().chain(std::iter::from_fn(|| rx.try_recv())) {
        live.received |= !batch.is_empty();
        for e in batch {
            agg.push_over_bound(e);
        }
    }
    // Back from ahead of the watermark to the base, and not ahead again: the last flush
    // makes everything up to the watermark final, and the snapshot stands there.
    agg.settle();
    live.closing = true;
    live.flush(&mut agg, &mut sink, &mut rx);
    report.flushes += 1;
    let shut = sink.shutdown();
    if let Some(path) = &opts.snapshot_path {
        agg.save_snapshot(path)?;
        tracing::info!(path = %path.display(), pending = agg.stats().pending, "aggregator state saved");
    }
    shut?;
    report.stats = agg.stats();
    Ok(report)
}

struct Live {
    metrics: &'static Metrics,
    last: AggregatorStats,
    /// An event arrived since the last flush.
    received: bool,
    clock: Clock,
    /// The provisional rows last computed, published again until the next computation.
    provisional: Provisional,
    /// When the provisional rows may be computed again.
    next_provisional: Instant,
    /// The closed windows of a flush; kept so its buffers are reused.
    closed: ClosedWindows,
    /// The flush interval.
    every: Duration,
    /// Shutting down: the last flush goes no further than the watermark.
    closing: bool,
    /// Batches into pending, held while it has no room.
    intake: Intake,
}

/// Event time applied ahead per step, in a flush ([`Live::flush`]) and between flushes
/// ([`Live::step_between`]).
const AHEAD_STEP_MS: i64 = 50;

/// Event time the provisional rows replay past the frontier and its margin
/// ([`Aggregator::provisional_within`]): exact rows once the frontier has caught up;
/// when the state lags (input faster than the thread), rows that stop short of `now`
/// instead of a replay of the whole lag at every flush taking the time the state needs
/// to catch up.
const PROVISIONAL_REACH_MS: i64 = 4 * AHEAD_STEP_MS;

/// The provisional rows may take at most 1 / (1 + this) of the aggregator's time:
/// after a computation that took `d`, the next waits `d × PROVISIONAL_COST_FACTOR`.
/// (The state is moved ahead first, at every flush: that is commit work. What is
/// rationed is the rest: a copy of the state, the last margin's events applied on it,
/// and the rows dumped; after a rewind, or with a wide margin, that can be costly.)
const PROVISIONAL_COST_FACTOR: u32 = 4;

/// ... but no longer than keeps the rows younger than [`MAX_PROVISIONAL_AGE`] (wait +
/// cost; this binds once a computation costs over 2 s: millions of pending events),
/// and never shorter than [`MIN_PROVISIONAL_WAIT`]. So under overload the rows take a fifth of the thread as
/// long as they can stay young enough, and more only as the cost nears that age.
const MAX_PROVISIONAL_AGE: Duration = Duration::from_secs(10);

/// The shortest wait that the age bound can impose.
const MIN_PROVISIONAL_WAIT: Duration = Duration::from_secs(2);

/// How long to wait after a provisional computation that took `cost`. `/v1/live`
/// reads provisional ticks of the last 15 s, so rows at most 10 s old keep the live
/// count from falling to zero behind a burst (computed at most 10 s ago; while the
/// frontier lags they also stand that far behind `now` in event time).
fn provisional_wait(cost: Duration) -> Duration {
    let young = MAX_PROVISIONAL_AGE
        .saturating_sub(cost)
        .max(MIN_PROVISIONAL_WAIT);
    (cost * PROVISIONAL_COST_FACTOR).min(young)
}

impl Live {
    /// Offers a batch taken from the channel to pending (held if it has no room).
    fn take(&mut self, agg: &mut Aggregator, batch: Vec<Event>) {
        self.received |= !batch.is_empty();
        let offer = self.intake.offer(agg, batch, Instant::now);
        self.said(offer, agg);
    }

    /// Offers the held batch again; true when nothing is held any more.
    fn retry(&mut self, agg: &mut Aggregator) -> bool {
        if self.intake.is_open() {
            return true;
        }
        let offer = self.intake.retry(agg, Instant::now);
        if offer == Offer::Held {
            return false;
        }
        self.received = true;
        self.said(offer, agg);
        true
    }

    /// Counts a batch held (once: [`Self::retry`] does not count it again) and warns
    /// when the intake gives up waiting.
    fn said(&self, offer: Offer, agg: &Aggregator) {
        match offer {
            Offer::In => {}
            Offer::Held => self.metrics.intake_held_total.inc(),
            Offer::GaveUpWaiting => tracing::warn!(
                pending = agg.pending_len(),
                max_pending_events = agg.config().max_pending_events,
                watermark = agg.watermark(),
                "pending has had no room for longer than the lateness plus two flush intervals: taking input again, \
                 dropping what does not fit (events stamped far ahead, or max_pending_events \
                 smaller than a batch)"
            ),
        }
    }

    /// Between flushes: moves the state ahead by one step when it lags more than a step
    /// behind where a flush would move it; true while it still does. So the thread
    /// applies input as it comes instead of in one burst per flush, during which it
    /// took little input: the queue filled and ingest waited while, between bursts,
    /// the thread sat idle (in a saturated `frames` run the queue swung between empty
    /// and full every two seconds, with a quarter of a core idle). Only whole steps:
    /// the margin decays when a move reaches the front, and a step for every batch
    /// would make it decay far faster than once a flush, so a step is taken only when
    /// it stops short of the front. Nor while a rewind is pending: stragglers that
    /// come between flushes are gathered into the flush's one rewind, as before,
    /// rather than costing a rewind (a copy of a mark) at every step.
    fn step_between(&mut self, agg: &mut Aggregator) -> bool {
        if !self.lags(agg) {
            return false;
        }
        agg.move_ahead_step((self.clock)(), AHEAD_STEP_MS);
        self.lags(agg)
    }

    /// The state lags more than a step behind where a flush would move it, with no
    /// rewind pending: [`Self::step_between`] has work.
    fn lags(&self, agg: &Aggregator) -> bool {
        !agg.rewind_pending() && agg.ahead_lag((self.clock)()) > AHEAD_STEP_MS
    }

    fn flush<S: WindowSink>(&mut self, agg: &mut Aggregator, sink: &mut S, rx: &mut EventReceiver) {
        let started = Instant::now();
        let now = (self.clock)();
        let lateness = agg.config().allowed_lateness_ms;
        let mut w = agg.max_event_ts().min(now) - lateness;
        // Input queued counts as input (a sender held up behind a full channel).
        let quiet = !self.received && rx.queued_events() == 0;
        if !self.intake.is_open() {
            // Input waits for room in pending (`intake`): the events that would move the
            // watermark are what waits, so it follows the clock, but not past the oldest
            // of them: the wait does not make them late.
            w = w.max(now - lateness);
            if let Some(oldest) = self.intake.held_oldest(agg.watermark()) {
                w = w.min(oldest);
            }
        } else if quiet {
            // No input: windows close as time passes.
            w = w.max(now - lateness);
        }
        self.received = false;
        let mut closed = std::mem::take(&mut self.closed);
        agg.advance_into(w, &mut closed);
        if sink.wants_provisional() && !self.closing {
            // In steps, taking input in between: a second of input at a high rate takes
            // a good part of a second to apply, and a full channel would hold ingest up.
            // For at most a flush interval: past that the watermark must move on (or
            // pending fills), and the rest waits for the next flush. Input is taken only
            // while pending has room (`intake`): past that, ingest waits.
            while !agg.move_ahead_step(now, AHEAD_STEP_MS) && started.elapsed() < self.every {
                for _ in 0..DRAIN_BURST {
                    if !self.retry(agg) {
                        break;
                    }
                    match rx.try_recv() {
                        Some(batch) => self.take(agg, batch),
                        None => break,
                    }
                }
            }
            if Instant::now() >= self.next_provisional {
                let t = Instant::now();
                self.provisional = agg.provisional_within(now, PROVISIONAL_REACH_MS);
                self.next_provisional = Instant::now() + provisional_wait(t.elapsed());
            } else {
                // Rows of windows closed since then are ignored by readers (they read
                // provisional rows only past `closed_through`).
                self.metrics.provisional_reused_total.inc();
            }
        }
        if let Err(e) = sink.write(&closed, &self.provisional) {
            tracing::error!(error = %e, rows = closed.ticks.len() + closed.sessions.len() + closed.viewer_minutes.len() + closed.qoe_minutes.len(),
                "sink write failed");
        }
        self.closed = closed;
        self.metrics
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        let now_stats = agg.stats();
        self.metrics.record(&self.last, &now_stats);
        self.last = now_stats;
    }
}

/// Replays a trace into `sink` with the live code path: push every event (lateness
/// judged against `max ts so far − allowed_lateness`), advance every
/// [`REPLAY_ADVANCE_EVERY`] events, then `finish()`, write, and `sink.shutdown()`.
/// The same trace gives the same rows every time.
pub fn replay<S: WindowSink + ?Sized>(
    cfg: &AggregatorConfig,
    events: impl IntoIterator<Item = Event>,
    sink: &mut S,
) -> Result<AggregatorStats, AggregatorError> {
    cfg.validate()?;
    let metrics = Metrics::get();
    let mut agg = Aggregator::new(cfg.clone());
    let mut last = agg.stats();
    let none = Provisional::default();
    let mut since = 0usize;
    let mut closed = ClosedWindows::default();
    for e in events {
        agg.push(e);
        agg.raise_watermark(agg.max_event_ts() - cfg.allowed_lateness_ms);
        since += 1;
        if since >= REPLAY_ADVANCE_EVERY || agg.pending_len() >= cfg.max_pending_events / 2 {
            since = 0;
            agg.advance_into(agg.watermark(), &mut closed);
            sink.write(&closed, &none)?;
            let now = agg.stats();
            metrics.record(&last, &now);
            last = now;
        }
    }
    let closed = agg.finish();
    sink.write(&closed, &none)?;
    sink.shutdown()?;
    let now = agg.stats();
    metrics.record(&last, &now);
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::provisional_wait;
    use std::time::Duration;

    #[test]
    fn provisional_wait_bounds_age_and_share() {
        let ms = Duration::from_millis;
        // Four times the cost (at most a fifth of the thread) while the rows stay
        // under 10 s old.
        assert_eq!(provisional_wait(ms(100)), ms(400));
        assert_eq!(provisional_wait(ms(2_000)), ms(8_000));
        // Beyond, the age bound: cost + wait = 10 s ...
        assert_eq!(provisional_wait(ms(3_000)), ms(7_000));
        // ... but never less than 2 s between computations.
        assert_eq!(provisional_wait(ms(9_000)), ms(2_000));
    }
}
