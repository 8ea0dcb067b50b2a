//! pulse-aggregator: view sessions, event-time windows and HDR histograms
//! (METRICS.md §1–§2), and the sinks that store the windows.
//!
//! Modules:
//! - [`session`]: the view-session state machine (`ViewSession`), pure.
//! - [`session_table`]: `SessionTable`, one target's open sessions in a hash table of
//!   the sessions themselves, found by the id each carries (no separate key line).
//! - `prefetch` (private): cache prefetch hints, the crate's only `unsafe` (the
//!   workspace denies `unsafe_code`, every other crate forbids it at its root, and
//!   only this module's one function allows it: `_mm_prefetch` is an `unsafe fn`,
//!   as it takes a raw pointer, though it cannot fault or change memory).
//! - [`window`]: tick accumulators (`TickWindow` → `TickRow`), time split at tick
//!   boundaries; [`minute`]: viewer-minute accumulators (`MinuteWindow` →
//!   `ViewerMinuteRow`, with the 5-second slices of the minute in which the viewer had
//!   an event and a follow as two 12-bit masks, so the query side answers distinct
//!   viewers at a 5 s step).
//! - [`stage`]: what a session holds back for its target's minute windows (the events
//!   of its viewer and its watch time in the minute of its latest event), added to the
//!   accumulators once instead of at every event: when its events move to another
//!   minute, when it ends, before the minute closes or a snapshot is written.
//!   Provisional rows add what is held. Every field of those accumulators is a sum or
//!   an or, so the rows are the ones booking each event at once gives.
//! - [`target`]: one target's open sessions and windows; what each event counts for.
//! - [`tombstones`]: the bounded set of recently ended sessions (orphan detection).
//! - [`qoe`]: `QoeWindow`, playback quality per minute and (device, country, player)
//!   group of one target (`qoe_minutes`, the `&by=` breakdowns), pure.
//! - [`histogram`]: startup-time HDR histograms, V2 serialization, [`decode_hist`] /
//!   [`merge_hists`] for readers.
//! - [`engine`]: [`Aggregator`], the deterministic core (`push`, `advance`,
//!   `provisional`, `finish`, `stats`); [`snapshot`]: its save/restore.
//! - `pending` (private): the pending buffer and its commit-order keys (its chunks'
//!   events in `chunk_events`, dropped without being read again); `row_order`
//!   (private): the order rows leave the core in; `ahead` (private): the marks and held
//!   rows of the state applied ahead of the watermark.
//! - [`config`]: [`AggregatorConfig`] with the documented defaults.
//! - [`runtime`]: the live loop on its own OS thread ([`spawn`]) and [`replay`];
//!   `intake` (private): how it moves batches into pending without overflowing it.
//! - [`metrics`]: `pulse_aggregator_*` Prometheus metrics.
//! - [`sinks`]: where closed windows go ([`sinks::WindowSink`]): the embedded store, and
//!   ClickHouse ([`sinks::clickhouse`]: RowBinary inserts of every table `ClosedWindows`
//!   carries, fed from a bounded on-disk [`sinks::spool`] by a sender thread, so a slow
//!   or absent ClickHouse never holds up ingest; retries with backoff; duplicates from a
//!   retried insert collapse in `ReplacingMergeTree` keys and are read with `FINAL`).
//!   Retention (`retention_days`) drops whole UTC days hourly in either store.
//! - [`sinks`]: where closed windows go ([`sinks::WindowSink`]; the embedded store;
//!   `sinks::with_health` adds the health rows to every flush; [`sinks::hot_ticks`]: the
//!   embedded store's in-memory copy of the newest compacted `stream_ticks` rows, which
//!   lets readers of the last hours skip Parquet).
//! - Stream health (issue 5), a component of its own beside the beacon core (encoder
//!   reports are not beacons and have their own bounded input and fast path):
//!   [`alerts`] (the METRICS.md §4 rules with hysteresis, pure), [`health`]
//!   (`HealthEngine`: per-stream windows, ticks, status, uptime, lifecycle; pure, clock
//!   as input), [`live_health`] (`HealthService`: the engine behind a mutex, alert
//!   fan-out on a bounded broadcast channel, lifecycle records, the sweeper),
//!   [`rule_overrides`] (per-channel rules kept in `data_dir/alert_rules.json`, atomic
//!   replace, behind a trait the catalog can implement), [`health_config`] (`[health]`).
//!
//! Design choices:
//! - **Health alerts do not wait for flushes.** A report is evaluated on arrival and its
//!   alert transitions go straight to the live feeds (broadcast); only the rows for the
//!   store (`health_ticks`, `alerts`) ride the once-a-second flush. Rule windows use the
//!   reports' own time (deterministic for a scripted encoder); silence, grace and uptime
//!   use the injected clock. Across nodes, a live feed on node B learns node A's alerts
//!   by polling the `alerts` table that every node writes (see pulse-query `live`).
//! - **Event time, deterministic.** The core has no clock and no I/O. Events wait in a
//!   pending buffer until the watermark `W` passes them, then are committed in one total
//!   order: `(ts, fixed rank of the event type, a fixed-seed fingerprint of (target,
//!   session, viewer), then target, session, viewer and every other field)`. So any
//!   arrival order within the allowed lateness gives the same rows, and row lists are
//!   sorted before they leave the core. (The fingerprint only orders events of
//!   different sessions within one millisecond, which no metric depends on; it makes
//!   the commit sort compare integers.) Each event's key — time, rank and fingerprint
//!   packed in a `u128` — is computed once on arrival and kept beside it; the due keys
//!   are spread by millisecond (a counting sort over the short stretch a flush
//!   commits) and only events of one millisecond are compared.
//! - **Row order.** Targets are sampled and closed in `(kind, id)` order and a
//!   minute's viewers are written in viewer order, so the rows of one flush come out
//!   nearly sorted; the final sort (stable, run-adaptive) compares integer keys (time,
//!   kind, the ids' first 16 bytes) and the full ids only on a tie, then swaps the
//!   rows into place along the permutation's cycles (no second buffer of rows).
//! - **Watermark.** Live: `W = max(W, min(max event ts, now) − allowed_lateness)`, and
//!   `max(W, now − allowed_lateness)` after a flush interval without events (none
//!   taken, none queued), so windows close when traffic stops; while a batch waits for
//!   room in pending, `now − allowed_lateness` but no further than its oldest event
//!   (below). Replay: `W = max ts so far − allowed_lateness`, checked
//!   event by event, then `finish()`. An event with `ts < W` on arrival is late:
//!   counted (`late`), dropped.
//! - **Closing rule.** The watch time between two events of a session is known only
//!   when the later one arrives or the 30 s timeout passes; so a tick `[t, t + tick)`
//!   (and a viewer minute) is closed — its row written once, final — when
//!   `W ≥ end + session_timeout`. `ClosedWindows::closed_through` says up to where.
//!   Rows are written only for windows with something nonzero. Open windows are shown
//!   as provisional rows (below).
//! - **Applied ahead.** Provisional rows need every pending event applied, up to
//!   `allowed_lateness` of input. Replaying all of it on a copy of the state at every
//!   flush applied each event about twice at high rates (and stalled the loop for
//!   seconds, filling the input channel). So the state itself runs ahead of the
//!   watermark: at each provisional computation it applies the pending events up to a
//!   frontier `F` a margin behind the newest event time (kept, not a scratch), and only
//!   the last margin's events go on a scratch copy. What the state closes beyond `W` is
//!   held back (shown as provisional) until `W` passes it. Copies of the state (marks)
//!   are kept along the way: at most one per eighth of the lateness, and only once the
//!   events applied since the last outnumber the sessions, minutes and targets a copy
//!   holds (or four eighths have passed), so a small state at a high rate is marked
//!   often and a large one at a low rate rarely (at most 12); an event that
//!   arrives behind `F` (but not late) rewinds the state to the newest mark before it,
//!   and the next move applies the events from there again in the commit order: the
//!   same order, the same rows, every time (a property test runs each trace both
//!   ways). The margin is twice the deepest straggler seen, decaying by 1/32 a move,
//!   at least 100 ms, so rewinds stay rare. The newest mark at or below `W` is the
//!   base: rows are released, `closed_through` is set and pending events are forgotten
//!   only up to it (so pending holds more: up to half the lateness more while a large
//!   state is marked rarely, an eighth when it is marked often), counters in
//!   the stats are the base's (they never go back), and a snapshot saves the base with
//!   the events after it. The live loop moves the state ahead at every flush in steps
//!   of 50 ms of event time, taking input between steps (while pending has room; for
//!   at most a flush interval), so ingest does not wait behind a long flush,
//!   and between flushes by one step after each intake whenever it lags more than
//!   a step (polling input instead of waiting for it while it does), so the work is
//!   spread over the interval instead of done in one burst per flush while the input
//!   queue fills and ingest waits;
//!   it still spaces the scratch part out when it is costly (after four times its cost,
//!   but rows at most 10 s old), bounds the events it applies to the margin plus
//!   200 ms past the frontier, and skips all of it for a sink that ignores provisional
//!   rows (ClickHouse): then the state moves only with `W`. The bound: once the
//!   frontier has caught up no pending event is past it, and the rows are the exact
//!   ones (tick ends are sampled up to `now`); when input outruns the thread and the
//!   frontier lags seconds behind, the rows stop at the bound (tick rows not sampled
//!   by then are left out, so a reader shows the newest sampled count, older, not 0)
//!   instead of the whole lag being replayed on a copy at every flush, work thrown
//!   away that kept the state from catching up (+7 to +27 % frames/s in saturated
//!   runs). After a deep straggler the margin, and so the replay, can still reach the
//!   lateness until it decays.
//! - **Pending buffer** (`pending`): chunks of 4 096 events in arrival order, each
//!   with its smallest uncommitted key; a flush scans and frees only the chunks holding
//!   due events, so its cost follows what it commits, not the whole lateness window.
//! - **Commits ask for their memory a block ahead.** The commit order jumps through
//!   the pending buffer (arrival order) and from session to session across megabytes,
//!   so most commits began with two cache misses, each waited for in turn. Commits go
//!   by blocks of 8 events: the next block's events are prefetched while one block
//!   commits, and each block's sessions just before it commits (a hash probe that
//!   reads the table's tag bytes but compares no key, so it waits for no session), so
//!   the misses overlap instead of adding up (+33 % events/s in the aggregator bench;
//!   `load-tests/RESULTS.md`). A prefetch is a hint: a wrong address (another entry
//!   whose 7-bit tag matches first, a session not in the table yet, a table grown in
//!   between) costs a useless load, never a wrong row.
//! - **Viewers** are sampled at each tick end `T` (every event before `T` applied):
//!   sessions alive, with an event in `[T − 30 s, T)`, not paused, not rebuffering for
//!   more than 5 min. A session silent for more than 30 s ends at its last event.
//! - **What is counted where.** Every committed event counts in its tick's `events`
//!   and its viewer's minute, orphans included. Orphans (events of an ended session)
//!   start nothing and are counted in `orphans`. Late events and events dropped by a
//!   bound count nowhere but in their drop counter (`late`, `dropped_*`). Engagement
//!   events (chat, follow, like, share, clickthrough) never touch sessions.
//! - **Bounds** (all in [`AggregatorConfig`]): pending events (applied ones held for a
//!   rewind count too), marks (12), open sessions, targets, open viewer-minutes,
//!   tombstones (by count and time); the input channel is bounded in events (ingest
//!   waits when it is full).
//! - **A full pending buffer makes ingest wait** (`intake`). Ingest acks a batch once
//!   the aggregator has it, so dropping it later for want of room would lose acked
//!   events. The live loop holds a batch that does not fit and takes nothing more
//!   until a flush makes room; the channel fills and ingest waits. Meanwhile the
//!   watermark follows the clock (newer events, which would move it, are what waits)
//!   but stops at the held batch's oldest event, so the wait does not make it late
//!   (events queued behind it with older client times can be; `late` counts them).
//!   Waiting for good is worse than dropping: if pending stays full for longer than
//!   the lateness plus two flush intervals (events stamped far ahead fill it), input
//!   is taken again, the excess dropped and counted (`pending_full`), with a warning.
//!   So a `max_pending_events` too small for the input rate slows ingest down to about
//!   `max_pending_events / (1.125 × lateness)` (up to 1.5 × for a large state at a low
//!   rate, whose marks are rarer) instead of losing events. On shutdown
//!   what ingest already handed over goes in past the bound (by at most the channel's
//!   capacity, plus the held batch) and into the snapshot. Replay has no one to make
//!   wait: it advances whenever pending is half full, and drops (counted) only if a
//!   trace's lateness of events does not fit in half the bound.
//! - **Shutdown.** On SIGTERM (the cancellation token) the live loop drains the
//!   channel, drops what is ahead of the watermark (back to the base), flushes (so
//!   everything up to `W` is final and written), calls `sink.shutdown()` and writes a snapshot of the whole state
//!   (open sessions and windows, pending events, watermark); the next start restores it
//!   and renames it `*.loaded`, so nothing is lost. A `kill -9` loses what only lives in
//!   memory: the open (not yet closed) windows and the pending events; sessions that
//!   were open then resume as "first seen mid-way" (not counted as new views). Closed
//!   windows are the sink's to make durable (the embedded sink's WAL: at most the last
//!   flush interval).

mod ahead;
pub mod alerts;
mod chunk_events;
pub mod config;
pub mod engine;
pub mod health;
pub mod health_config;
pub mod histogram;
mod intake;
pub mod live_health;
pub mod metrics;
pub mod minute;
mod pending;
mod prefetch;
pub mod qoe;
mod row_order;
pub mod rule_overrides;
pub mod runtime;
pub mod session;
pub mod session_table;
pub mod sinks;
pub mod snapshot;
pub mod stage;
pub mod target;
pub mod tombstones;
pub mod window;

pub use config::AggregatorConfig;
pub use engine::{Admission, Aggregator, AggregatorStats, event_order};
pub use health_config::HealthConfig;
pub use histogram::{decode_hist, encode_startups, merge_hists, merge_into};
pub use live_health::HealthService;
pub use rule_overrides::{FileRuleOverrides, RuleOverrides};
pub use runtime::{Clock, RunOptions, RunReport, channel, replay, run, spawn, system_clock};
pub use session::{SessionState, ViewSession};
pub use sinks::{Provisional, WindowSink};

/// The hand-off from ingest (and the catalog's likes) to the aggregator: a channel
/// bounded by the events it holds (`channel_capacity_events`), whatever the batch
/// sizes (`pulse_schemas::handoff`).
pub use pulse_schemas::handoff::{EventReceiver, EventSender};

/// Errors of the aggregator and its sinks.
#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    #[error("store I/O on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Arrow/Parquet: {0}")]
    Arrow(String),
    #[error("snapshot {path}: {message}")]
    Snapshot { path: String, message: String },
    #[error("startup histogram: {0}")]
    Histogram(String),
    #[error("aggregator configuration: {0}")]
    Config(String),
    #[error("aggregator runtime: {0}")]
    Runtime(String),
    #[error("ClickHouse: {0}")]
    ClickHouse(String),
}
