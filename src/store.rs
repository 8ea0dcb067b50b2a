//! The configured store's writer ([`ConfiguredSink`]) and reader ([`query_state`]), and
//! `pulse migrate`.

use crate::config::{Config, StoreKind};
use anyhow::Context;
use pulse_aggregator::AggregatorError;
use pulse_aggregator::sinks::clickhouse::{self as ch, ClickHouseSink};
use pulse_aggregator::sinks::embedded::EmbeddedSink;
use pulse_aggregator::sinks::{Provisional, WindowSink};
use pulse_query::QueryState;
use pulse_schemas::{ClosedWindows, EmbeddedTables, Id};
use std::sync::Arc;

/// The writer of the configured store.
pub enum ConfiguredSink {
    Embedded(EmbeddedSink),
    ClickHouse(ClickHouseSink),
}

impl WindowSink for ConfiguredSink {
    fn write(
        &mut self,
        closed: &ClosedWindows,
        provisional: &Provisional,
    ) -> Result<(), AggregatorError> {
        match self {
            ConfiguredSink::Embedded(s) => s.write(closed, provisional),
            ConfiguredSink::ClickHouse(s) => s.write(closed, provisional),
        }
    }

    fn wants_provisional(&self) -> bool {
        match self {
            ConfiguredSink::Embedded(s) => s.wants_provisional(),
            ConfiguredSink::ClickHouse(s) => s.wants_provisional(),
        }
    }

    fn shutdown(&mut self) -> Result<(), AggregatorError> {
        match self {
            ConfiguredSink::Embedded(s) => s.shutdown(),
            ConfiguredSink::ClickHouse(s) => s.shutdown(),
        }
    }

    fn drop_days_before(&mut self, cutoff_ms: i64) -> Result<usize, AggregatorError> {
        match self {
            ConfiguredSink::Embedded(s) => WindowSink::drop_days_before(s, cutoff_ms),
            ConfiguredSink::ClickHouse(s) => s.drop_days_before(cutoff_ms),
        }
    }
}

fn node(cfg: &Config) -> anyhow::Result<Id> {
    Id::parse(&cfg.node_id).map_err(|e| anyhow::anyhow!("node_id: {e}"))
}

/// Opens the configured store's writer. With the embedded store, the tables it
/// publishes to are returned too (the query role reads them in the same process).
pub fn open_sink(cfg: &Config) -> anyhow::Result<(Arc<EmbeddedTables>, ConfiguredSink)> {
    match cfg.store {
        StoreKind::Embedded => {
            let (tables, sink) = crate::serve::open_store(cfg)?;
            Ok((tables, ConfiguredSink::Embedded(sink)))
        }
        StoreKind::Clickhouse => {
            let sink = ClickHouseSink::open(cfg.clickhouse_sink(), node(cfg)?)
                .context("opening the ClickHouse sink")?;
            Ok((EmbeddedTables::new(), ConfiguredSink::ClickHouse(sink)))
        }
    }
}

/// The query state over the configured store (`tables`: the embedded tables written in
/// this process, unused with ClickHouse).
pub fn query_state(cfg: &Config, tables: Arc<EmbeddedTables>) -> QueryState {
    match cfg.store {
        StoreKind::Embedded => QueryState::new(tables, cfg.query.clone(), cfg.tick_ms),
        StoreKind::Clickhouse => {
            QueryState::clickhouse(&cfg.clickhouse_url, cfg.query.clone(), cfg.tick_ms)
        }
    }
}

/// `pulse migrate`: applies the ClickHouse DDL (idempotent). Returns the statements run.
pub async fn migrate(cfg: &Config) -> anyhow::Result<usize> {
    if cfg.store != StoreKind::Clickhouse {
        anyhow::bail!(
            "pulse migrate applies the ClickHouse DDL; set store = \"clickhouse\" (the embedded store needs no migration)"
        );
    }
    let client = ch::client(&cfg.clickhouse_url);
    ch::migrate(&client)
        .await
        .with_context(|| format!("migrating ClickHouse at {}", cfg.clickhouse_url))
}
