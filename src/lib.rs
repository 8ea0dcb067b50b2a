//! pulse: the one binary's roles, as a library so end-to-end tests run them in-process.
//!
//! Modules:
//! - [`config`]: the TOML file + `PULSE_*` overrides (DESIGN.md decision 9).
//! - [`serve`]: `pulse serve` — ingest, aggregator and query in one process on one
//!   listener; `run(listener, config, shutdown, clock)` so tests bind `127.0.0.1:0`.
//!   `pulse serve` also mounts the creator dashboard (`pulse-dashboards`: `/dashboard/…`)
//!   over the same layered access records, and gives the catalog routes those records
//!   too, so one token (signed in as the dashboard's session cookie) reads analytics,
//!   health and the channel's VOD/clip lists. `pulse query` nodes do not serve it.
//! - [`replay`]: `pulse replay FILE` — an NDJSON trace through the live aggregator code
//!   into the configured store.
//! - [`store`]: the configured store (embedded or ClickHouse): its writer, its reader
//!   and `pulse migrate`. `serve::run_role` runs `pulse ingest` (ingest + aggregator)
//!   and `pulse query` ([`query_node`]: analytics, SQL, catalog and dashboard over the
//!   shared ClickHouse and catalog) as separate processes for the multi-node layout.
//! - [`access`]: `LayeredAccess`, the configuration's static access records in front of
//!   the catalog's (tokens, stream keys; lifecycle changes recorded in both).
//! - [`demo`]: the built-in audience of `pulse serve --demo`; [`demo_encoders`]: its
//!   encoders (real sockets, stream keys in the demo's access records, occasional bitrate sags).
//!
//! Shutdown order (one cancellation token from SIGTERM/SIGINT): the HTTP server stops
//! accepting and the sockets close; then the aggregator drains its channel, writes the
//! closed windows, compacts the embedded store and snapshots its open state; every
//! task and thread is joined before the process exits. A restart on the same data
//! directory restores the snapshot and carries on as if never stopped.

#![forbid(unsafe_code)]
pub mod access;
pub mod config;
pub mod demo;
pub mod demo_encoders;
pub mod query_node;
pub mod replay;
pub mod serve;
pub mod store;

pub use config::Config;
