//! pulse-schemas: the shared vocabulary of Pulse.
//!
//! Modules:
//! - [`id`]: `Id`, the opaque 1–64 character identifier of PROTOCOL.md, stored inline
//!   (`compact_str`) so the hot path does not allocate for typical ids.
//! - [`event`]: the typed wire events of PROTOCOL.md §1 and their parsing; `validate`
//!   (private): the rules serde cannot say; `rejection` (private, re-exported by
//!   `event`): each refusal is a [`Rejection`] with a low-cardinality [`RejectReason`]
//!   (for metrics) and a message that names the field, what was expected and what came.
//! - [`frame`]: WebSocket frames and `POST` bodies (one event, an array, a `seq`
//!   envelope, NDJSON); the valid events of a batch are kept.
//! - `scan` (private): the fast path of `parse_event` and `parse_frame`, a strict
//!   scanner for the plain JSON players send that gives up (and leaves the frame to
//!   serde) on anything else.
//! - [`tables`]: the analytics tables as rows and Arrow schemas (one definition each).
//! - [`access`]: roles, principals, stream lifecycle changes and the `AccessControl`
//!   trait the catalog implements (tokens, channel ownership, stream keys), with an
//!   in-memory `StaticAccess` for tests and tools.
//! - [`clickhouse`]: the ClickHouse DDL (`schemas/clickhouse/*.sql`, day partitions,
//!   `ReplacingMergeTree` keyed by each row's natural key so re-inserts deduplicate) and
//!   the RowBinary encoding of any table's Arrow batch.
//! - [`encoder`]: encoder health reports and `{"type":"end"}` (PROTOCOL.md §2), range-checked
//!   with messages that name the field, the accepted range and what came.
//! - [`live`]: the creator live-feed shapes (PROTOCOL.md §3), the per-channel
//!   [`AlertRules`] (METRICS.md §4 defaults, validated hysteresis), and the
//!   [`LiveHealth`] trait the query service reads the health component through.
//! - [`health_tables`]: `health_ticks` and `alerts` rows and Arrow schemas.
//! - [`qoe_tables`]: `qoe_minutes`, playback quality per minute and (device, country,
//!   player) group, the rows behind the `&by=` breakdowns (non-null dimensions).
//! - [`handoff`]: the channel that carries accepted events from ingest (and the
//!   catalog's likes) to the aggregator, bounded by the events it holds, not by the
//!   number of batches (small single-frame batches and 1 000-event envelopes alike).
//! - [`embedded`]: the in-memory half of the embedded store, one consistent
//!   generation (Parquet files + recent batches) shared by writer and reader.
//!
//! Design choices made here:
//! - **Unknown fields are refused** (`deny_unknown_fields`): a typo such as `sesion`
//!   would otherwise silently turn a playback event into a broken one. New fields
//!   are added to this crate and to `beacon.schema.json` together (a test keeps
//!   them in step), so servers learn a field before players send it.
//! - Fields documented as belonging to one type (`state` on `heartbeat`, `count` on
//!   `chat`, `platform` on `share`) are refused on other types; `code` is required
//!   on `error`. `null` is read as "absent".
//! - **One reader decides, the other only speeds up.** serde reads every event the
//!   scanner gives up on and makes every rejection and message; the scanner reads only
//!   what it can prove serde reads the same way (no escapes, no signs or exponents, no
//!   field twice, …). Proptests compare both paths on generated and mutated frames.
//!   A plain single-event frame went from 6 972 to 3 916 instructions (with skew
//!   correction; `ingest/benches/frames.rs`).
//! - `ts` must be an integer from 0 to 2^53 − 1. Timestamps far from now (1970,
//!   2100) are *not* refused here: clock-skew correction in ingest handles them,
//!   and `pulse replay` takes a trace's times as the truth.
//! - Free-text fields (`player`, `code`, `platform`) are 1–128 printable characters;
//!   `country` is two upper-case letters; `bitrate_kbps` 0–1 000 000; chat `count`
//!   1–10 000; `pos` finite and ≥ 0.
//! - Table counters are `Int64` and times epoch-ms `Int64`, so the Parquet files read
//!   the same in DataFusion, Polars and DuckDB, and map one-to-one onto ClickHouse.
//! - **Columns are only ever added, and added nullable.** Parts written before a column
//!   existed then read null there (DataFusion fills a missing nullable column), and on
//!   ClickHouse `migrate` adds the column to a table an older Pulse created. The DDL files
//!   always show the current table. First such columns: `viewer_minutes.seen_mask` and
//!   `follow_mask`, the 5-second slices of the minute with an event and with a follow.

#![forbid(unsafe_code)]
pub mod access;
pub mod clickhouse;
pub mod embedded;
pub mod encoder;
pub mod event;
pub mod frame;
pub mod handoff;
pub mod health_tables;
pub mod id;
pub mod live;
pub mod qoe_tables;
mod rejection;
mod scan;
pub mod tables;
mod validate;

pub use access::{
    AccessControl, AccessError, LifecycleChange, LifecycleSource, Principal, Role, StaticAccess,
    StreamStatus,
};
pub use embedded::{EmbeddedTables, HotTicks, TablesView};
pub use encoder::{EncoderFrame, EncoderReport, parse_encoder_frame};
pub use event::{
    Device, Event, EventKind, PlayerState, RejectReason, Rejection, Target, TargetKind, parse_event,
};
pub use frame::{MAX_BATCH_EVENTS, ParsedFrame, parse_frame, parse_frame_into, parse_ndjson};
pub use health_tables::{AlertRow, HealthTickRow};
pub use id::Id;
pub use live::{
    AlertBroadcast, AlertKind, AlertRules, AlertState, AlertUpdate, ConnectionStatus, HealthUpdate,
    LiveHealth, LiveUpdate, RulesError, Severity, StreamHealthNow,
};
pub use qoe_tables::QoeMinuteRow;
pub use tables::{
    ClosedWindows, EndReason, MINUTE_SLICE_MS, SessionRow, Table, TableRow, TickRow,
    ViewerMinuteRow, minute_slice_bit,
};
