//! pulse: the one binary's roles, as a library so end-to-end tests run them in-process.
//!
//! Modules:
//! - [`config`]: the TOML file + `PULSE_*` overrides (DESIGN.md decision 9).
//! - [`serve`]: `pulse serve` — ingest, aggregator and query in one process on one
//!   listener; `run(listener, config, shutdown, clock)` so tests bind `127.0.0.1:0`.
//! - [`replay`]: `pulse replay FILE` — an NDJSON trace through the live aggregator code
//!   into the configured store.
//! - [`demo`]: the built-in audience of `pulse serve --demo`; [`demo_encoders`]: its
//!   encoders (real sockets, stream keys in the demo's access records, occasional bitrate sags).
//!
//! Shutdown order (one cancellation token from SIGTERM/SIGINT): the HTTP server stops
//! accepting and the sockets close; then the aggregator drains its channel, writes the
//! closed windows, compacts the embedded store and snapshots its open state; every
//! task and thread is joined before the process exits. A restart on the same data
//! directory restores the snapshot and carries on as if never stopped.

pub mod config;
pub mod demo;
pub mod demo_encoders;
pub mod replay;
pub mod serve;

pub use config::Config;
