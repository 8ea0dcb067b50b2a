//! [`Store`]: the configured backend; [`StoreSnapshot`]: one request's view of it,
//! answering every read by handing it to that backend.

use crate::error::QueryError;
use crate::store::clickhouse::{ClickHouseSnapshot, ClickHouseStore};
use crate::store::embedded::{EmbeddedSnapshot, EmbeddedStore};
use crate::store::{
    AnalyticsStore, Bucketing, LiveRange, Scope, StartupHistogram, TickTotals, TimeRange,
    ViewerCounts,
};
use std::sync::Arc;

/// The store the query service reads.
#[derive(Debug)]
pub enum Store {
    Embedded(EmbeddedStore),
    ClickHouse(Box<ClickHouseStore>),
}

impl Store {
    /// One consistent view for one request.
    pub async fn snapshot(&self) -> Result<Arc<StoreSnapshot>, QueryError> {
        Ok(Arc::new(match self {
            Store::Embedded(s) => StoreSnapshot::Embedded(s.snapshot()?),
            Store::ClickHouse(s) => StoreSnapshot::ClickHouse(Box::new(s.snapshot().await?)),
        }))
    }
}

/// One request's view of the configured store.
#[derive(Debug)]
pub enum StoreSnapshot {
    Embedded(Arc<EmbeddedSnapshot>),
    ClickHouse(Box<ClickHouseSnapshot>),
}

impl AnalyticsStore for StoreSnapshot {
    fn closed_through(&self) -> i64 {
        match self {
            StoreSnapshot::Embedded(s) => s.closed_through(),
            StoreSnapshot::ClickHouse(s) => s.closed_through(),
        }
    }

    async fn tick_totals(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
    ) -> Result<Vec<TickTotals>, QueryError> {
        match self {
            StoreSnapshot::Embedded(s) => s.tick_totals(scope, range).await,
            StoreSnapshot::ClickHouse(s) => s.tick_totals(scope, range).await,
        }
    }

    async fn live_ranges_in(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
    ) -> Result<Vec<LiveRange>, QueryError> {
        match self {
            StoreSnapshot::Embedded(s) => s.live_ranges_in(scope, range).await,
            StoreSnapshot::ClickHouse(s) => s.live_ranges_in(scope, range).await,
        }
    }

    async fn viewer_counts(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
        bucketing: Bucketing,
    ) -> Result<Vec<ViewerCounts>, QueryError> {
        match self {
            StoreSnapshot::Embedded(s) => s.viewer_counts(scope, range, bucketing).await,
            StoreSnapshot::ClickHouse(s) => s.viewer_counts(scope, range, bucketing).await,
        }
    }

    async fn startup_histograms(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
        bucketing: Bucketing,
    ) -> Result<Vec<StartupHistogram>, QueryError> {
        match self {
            StoreSnapshot::Embedded(s) => s.startup_histograms(scope, range, bucketing).await,
            StoreSnapshot::ClickHouse(s) => s.startup_histograms(scope, range, bucketing).await,
        }
    }
}

impl StoreSnapshot {
    /// Grows whenever `closed_through` may have moved back (ClickHouse: a node appeared
    /// in `node_progress`); the embedded store's never moves back.
    pub fn generation(&self) -> u64 {
        match self {
            StoreSnapshot::Embedded(_) => 1,
            StoreSnapshot::ClickHouse(s) => s.nodes,
        }
    }

    /// Health ticks of `stream` from `from` (epoch ms), oldest first (`health_reads`,
    /// `clickhouse_health`).
    pub async fn health_ticks(
        &self,
        stream: &pulse_schemas::Id,
        from: i64,
    ) -> Result<Vec<serde_json::Value>, QueryError> {
        match self {
            StoreSnapshot::Embedded(s) => s.health_ticks(stream, from).await,
            StoreSnapshot::ClickHouse(s) => s.health_ticks(stream, from).await,
        }
    }

    /// The newest `limit` alert transitions of `stream` (see `health_reads`).
    pub async fn alert_history(
        &self,
        stream: &pulse_schemas::Id,
        limit: usize,
    ) -> Result<Vec<serde_json::Value>, QueryError> {
        match self {
            StoreSnapshot::Embedded(s) => s.alert_history(stream, limit).await,
            StoreSnapshot::ClickHouse(s) => s.alert_history(stream, limit).await,
        }
    }
}
