//! Replay twice gives identical rows; the live loop on its own thread with an injected
//! clock; graceful shutdown snapshots and a restart resumes.
#![allow(clippy::unwrap_used)]

mod common;

use common::{CollectSink, Rows, cfg, engage, ev, heartbeat, on, run_all};
use pulse_aggregator::{AggregatorConfig, RunOptions, channel, replay, spawn};
use pulse_schemas::{Event, EventKind as K, PlayerState};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio_util::sync::CancellationToken;

/// A small trace: 40 sessions over 4 streams, ~3 minutes, with rebuffers, pauses,
/// errors, silent tab closes and chat; slightly out of order.
fn trace() -> Vec<Event> {
    let mut out = Vec::new();
    for i in 0..40i64 {
        let s = format!("x{i}");
        let stream = format!("s{}", i % 4);
        let start = 1_700_000_000_000 + i * 3_137;
        out.push(on(ev(K::Viewstart, start, &s), &stream));
        out.push(on(ev(K::Playing, start + 300 + i * 17, &s), &stream));
        let mut ts = start + 300;
        for k in 0..(6 + i % 9) {
            ts += 10_000;
            out.push(on(heartbeat(ts, &s, Some(PlayerState::Playing)), &stream));
            if (i + k) % 7 == 0 {
                out.push(on(ev(K::RebufferStart, ts + 1_000, &s), &stream));
                out.push(on(ev(K::RebufferEnd, ts + 2_500, &s), &stream));
            }
            if (i * k) % 11 == 5 {
                let mut c = on(engage(K::Chat, ts + 500, &format!("v-{s}")), &stream);
                c.count = Some(2);
                out.push(c);
            }
        }
        match i % 4 {
            0 => out.push(on(ev(K::Viewend, ts + 3_000, &s), &stream)),
            1 => out.push(on(ev(K::Error, ts + 3_000, &s), &stream)),
            _ => {} // silent tab close
        }
    }
    out.sort_by_key(|e| e.ts);
    // a little disorder inside the lateness
    for i in (0..out.len().saturating_sub(1)).step_by(3) {
        out.swap(i, i + 1);
    }
    out
}

#[test]
fn replay_twice_is_identical() {
    let events = trace();
    let mut a = CollectSink::default();
    let mut b = CollectSink::default();
    let sa = replay(&cfg(), events.clone(), &mut a).unwrap();
    let sb = replay(&cfg(), events.clone(), &mut b).unwrap();
    assert_eq!(sa, sb);
    assert_eq!(format!("{:?}", a.closed), format!("{:?}", b.closed));
    assert_eq!((a.shutdowns, b.shutdowns), (1, 1));
    let rows = a.rows();
    assert!(!rows.ticks.is_empty() && rows.sessions.len() == 40);
    assert_eq!(sa.late, 0);
    assert_eq!(sa.sessions, 0);
    // the same as pushing everything and finishing
    let (whole, _) = run_all(cfg(), events);
    assert_eq!(rows.sorted(), whole);
}

#[test]
fn replay_counts_events_beyond_the_lateness_as_late() {
    let events = vec![
        ev(K::Viewstart, 100_000, "a"),
        ev(K::Viewstart, 89_999, "b"),
        ev(K::Viewstart, 90_000, "c"),
    ];
    let mut sink = CollectSink::default();
    let stats = replay(&cfg(), events, &mut sink).unwrap();
    assert_eq!(stats.late, 1);
    assert_eq!(sink.rows().sessions.len(), 2);
}

fn manual_clock(start: i64) -> (Arc<AtomicI64>, pulse_aggregator::Clock) {
    let now = Arc::new(AtomicI64::new(start));
    let n = now.clone();
    (now, Arc::new(move || n.load(Ordering::SeqCst)))
}

#[test]
fn live_loop_flushes_shuts_down_snapshots_and_resumes() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("aggregator.snapshot.json");
    let config = AggregatorConfig {
        flush_interval_ms: 20,
        ..cfg()
    };
    let events = trace();
    let t0 = events[0].ts;
    let (first, second) = events.split_at(events.len() / 2);

    // First run: half the trace, then SIGTERM.
    let (now, clock) = manual_clock(t0);
    let shared = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = SharedSink(shared.clone(), CollectSink::default());
    let (tx, shutdown, handle) = start_live(&rt, &config, clock, Some(snap.clone()), sink);
    for chunk in first.chunks(50) {
        now.store(chunk.last().unwrap().ts, Ordering::SeqCst);
        rt.block_on(tx.send(chunk.to_vec())).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    shutdown.cancel();
    let report = handle.join().unwrap().unwrap();
    assert!(!report.restored);
    assert!(report.flushes >= 2);
    assert!(snap.exists());
    let provisional_seen = shared
        .lock()
        .unwrap()
        .iter()
        .any(|(_, p): &(Rows, usize)| *p > 0);
    assert!(
        provisional_seen,
        "provisional rows were written while windows were open"
    );

    // Second run: restores, takes the rest, then SIGTERM again.
    let (now, clock) = manual_clock(first.last().unwrap().ts);
    let sink = SharedSink(shared.clone(), CollectSink::default());
    let (tx, shutdown, handle) = start_live(&rt, &config, clock, Some(snap.clone()), sink);
    for chunk in second.chunks(50) {
        now.store(chunk.last().unwrap().ts, Ordering::SeqCst);
        rt.block_on(tx.send(chunk.to_vec())).unwrap();
    }
    // let the wall clock run far ahead so every window closes
    std::thread::sleep(std::time::Duration::from_millis(60));
    now.store(events.last().unwrap().ts + 600_000, Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(150));
    shutdown.cancel();
    let report = handle.join().unwrap().unwrap();
    assert!(report.restored);
    assert!(pulse_aggregator::snapshot::loaded_path(&snap).exists());
    assert_eq!(report.stats.late, 0);
    assert_eq!(report.stats.sessions, 0);

    let (whole, _) = run_all(cfg(), events.clone());
    assert_eq!(
        merged(&shared.lock().unwrap()).sorted(),
        whole,
        "live with a restart = replay"
    );
}

/// A sink that does not use provisional rows (the ClickHouse one) is never handed any:
/// the live loop does not compute them for it, while the closed rows are the same.
#[test]
fn provisional_rows_are_not_computed_for_a_sink_that_does_not_want_them() {
    let rt = runtime();
    let config = AggregatorConfig {
        flush_interval_ms: 20,
        ..cfg()
    };
    let events = trace();
    let (now, clock) = manual_clock(events[0].ts);
    let shared = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = NoProvisional(SharedSink(shared.clone(), CollectSink::default()));
    let (tx, shutdown, handle) = start_live(&rt, &config, clock, None, sink);
    for chunk in events.chunks(50) {
        now.store(chunk.last().unwrap().ts, Ordering::SeqCst);
        rt.block_on(tx.send(chunk.to_vec())).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    std::thread::sleep(std::time::Duration::from_millis(60));
    now.store(events.last().unwrap().ts + 600_000, Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(150));
    shutdown.cancel();
    let report = handle.join().unwrap().unwrap();
    let writes = shared.lock().unwrap();
    assert!(report.flushes >= 5 && writes.len() >= 5, "{}", writes.len());
    assert!(writes.iter().all(|(_, provisional)| *provisional == 0));
    let (whole, _) = run_all(cfg(), events);
    assert_eq!(merged(&writes).sorted(), whole);
}

/// A tokio runtime for the live loop's timer (one worker).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// The live loop on its own thread (spawned from `rt`), writing into `sink`: its
/// sender, its shutdown token and its thread.
fn start_live<S: pulse_aggregator::WindowSink + 'static>(
    rt: &tokio::runtime::Runtime,
    config: &AggregatorConfig,
    clock: pulse_aggregator::Clock,
    snapshot_path: Option<std::path::PathBuf>,
    sink: S,
) -> (
    pulse_aggregator::EventSender,
    CancellationToken,
    std::thread::JoinHandle<Result<pulse_aggregator::RunReport, pulse_aggregator::AggregatorError>>,
) {
    let (tx, rx) = channel(config);
    let shutdown = CancellationToken::new();
    let opts = RunOptions {
        clock,
        shutdown: shutdown.clone(),
        snapshot_path,
    };
    let handle = rt
        .block_on(async { spawn(config.clone(), rx, sink, opts) })
        .unwrap();
    (tx, shutdown, handle)
}

/// The closed rows of every write, together.
fn merged(writes: &[(Rows, usize)]) -> Rows {
    let mut live = Rows::default();
    for (r, _) in writes {
        live.ticks.extend(r.ticks.iter().cloned());
        live.sessions.extend(r.sessions.iter().cloned());
        live.viewer_minutes.extend(r.viewer_minutes.iter().cloned());
        live.qoe_minutes.extend(r.qoe_minutes.iter().cloned());
    }
    live
}

struct NoProvisional(SharedSink);

impl pulse_aggregator::WindowSink for NoProvisional {
    fn write(
        &mut self,
        closed: &pulse_schemas::ClosedWindows,
        provisional: &pulse_aggregator::Provisional,
    ) -> Result<(), pulse_aggregator::AggregatorError> {
        self.0.write(closed, provisional)
    }

    fn wants_provisional(&self) -> bool {
        false
    }

    fn shutdown(&mut self) -> Result<(), pulse_aggregator::AggregatorError> {
        self.0.shutdown()
    }
}

/// Records every write's closed rows and the number of provisional rows.
struct SharedSink(Arc<std::sync::Mutex<Vec<(Rows, usize)>>>, CollectSink);

impl pulse_aggregator::WindowSink for SharedSink {
    fn write(
        &mut self,
        closed: &pulse_schemas::ClosedWindows,
        provisional: &pulse_aggregator::Provisional,
    ) -> Result<(), pulse_aggregator::AggregatorError> {
        let mut r = Rows::default();
        r.add(closed);
        self.0.lock().unwrap().push((r, provisional.ticks.len()));
        self.1.write(closed, provisional)
    }

    fn shutdown(&mut self) -> Result<(), pulse_aggregator::AggregatorError> {
        self.1.shutdown()
    }
}

/// Input faster than `max_pending_events` allows for the lateness: the live loop stops
/// taking batches until the watermark makes room, so the channel fills and the sender
/// waits; nothing is dropped or late, and the rows are the replay's of what was sent.
#[test]
fn a_full_pending_buffer_makes_the_sender_wait_and_loses_nothing() {
    // Steady traffic stamped when sent, as ingest stamps it (a batch of 10 every
    // millisecond, when the sender is not held up), on a clock running 10 times real
    // time: pending (200) holds a fraction of the lateness of it, and room comes only
    // as the clock moves the watermark on while the sender waits.
    let start = 1_700_000_000_000i64;
    let (t0, speed) = (std::time::Instant::now(), 10);
    let skip = Arc::new(AtomicI64::new(0));
    let skipped = skip.clone();
    let running: pulse_aggregator::Clock = Arc::new(move || {
        start
            + i64::try_from(t0.elapsed().as_millis()).unwrap() * speed
            + skipped.load(Ordering::SeqCst)
    });
    let (live, stats) = run_live(200, running.clone(), |tx, rt| {
        let mut sent = Vec::new();
        for b in 0..100 {
            let ts = running();
            let batch: Vec<Event> = (0..10)
                .map(|i| {
                    on(
                        heartbeat(
                            ts,
                            &format!("u{}", (b + i) % 20),
                            Some(PlayerState::Playing),
                        ),
                        "s0",
                    )
                })
                .collect();
            sent.extend(batch.iter().cloned());
            rt.block_on(tx.send(batch)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Ten minutes later every window has closed.
        skip.store(600_000, Ordering::SeqCst);
        sent
    });
    assert_eq!((stats.dropped_pending_full, stats.late), (0, 0));
    assert!(stats.events >= 1_000);
    assert_eq!(
        live.sessions.len(),
        20,
        "every session ended and was written"
    );
}

/// Runs the live loop (flushes every 20 ms, a channel of 20 events, `max_pending`)
/// while `send` sends its batches and returns them; then shuts it down and checks the
/// rows equal a replay of what was sent. Returns the rows written and the final stats.
fn run_live(
    max_pending: usize,
    clock: pulse_aggregator::Clock,
    send: impl FnOnce(&pulse_aggregator::EventSender, &tokio::runtime::Runtime) -> Vec<Event>,
) -> (Rows, pulse_aggregator::AggregatorStats) {
    let rt = runtime();
    let config = AggregatorConfig {
        flush_interval_ms: 20,
        max_pending_events: max_pending,
        channel_capacity_events: 20,
        ..cfg()
    };
    let shared = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = SharedSink(shared.clone(), CollectSink::default());
    let (tx, shutdown, handle) = start_live(&rt, &config, clock, None, sink);
    let sent = send(&tx, &rt);
    std::thread::sleep(std::time::Duration::from_millis(150));
    shutdown.cancel();
    let report = handle.join().unwrap().unwrap();
    let rows = merged(&shared.lock().unwrap()).sorted();
    // (Not `assert_eq!`: the rows would fill the screen.)
    assert!(
        rows == run_all(cfg(), sent).0,
        "live = replay of what was sent; live stats {:?}",
        report.stats
    );
    (rows, report.stats)
}
