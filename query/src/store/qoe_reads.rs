//! The read behind the QoE breakdowns (`&by=device|country|player`): `qoe_minutes`
//! summed per bucket and value of one dimension, across nodes and targets, with the
//! startup histograms merged. Same rows from [`EmbeddedSnapshot`] (DataFusion: closed
//! and open minutes, like `viewer_minutes`) and [`ClickHouseSnapshot`] (closed minutes
//! only, read `FINAL`); [`StoreSnapshot`] picks one. A channel's `viewer_ticks` come
//! from its streams only, as its viewers do.

use super::clickhouse::{ClickHouseSnapshot, ch};
use super::embedded::{EmbeddedSnapshot, i64_col, merge_serialized, str_col};
use super::{Scope, ScopeKind, StoreSnapshot, TimeRange, bucket_start, empty_startup_histogram};
use crate::error::QueryError;
use hdrhistogram::Histogram;
use pulse_schemas::Table;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A dimension a QoE metric can be broken down by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dimension {
    Device,
    Country,
    Player,
}

impl Dimension {
    pub const ALL: [Dimension; 3] = [Dimension::Device, Dimension::Country, Dimension::Player];

    /// The `by=` value and the `qoe_minutes` column.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Device => "device",
            Dimension::Country => "country",
            Dimension::Player => "player",
        }
    }

    /// Parses `by=`; the error lists the dimensions.
    pub fn parse(s: &str) -> Result<Dimension, QueryError> {
        Dimension::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                QueryError::invalid(
                    "by",
                    format!("unknown dimension {s:?}; expected one of device, country, player"),
                )
            })
    }
}

/// `qoe_minutes` counters of one group in one bucket, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QoeTotals {
    pub viewer_ticks: i64,
    pub views: i64,
    pub watch_ms: i64,
    pub rebuffer_ms: i64,
    pub rebuffer_count: i64,
    pub startups: i64,
    pub failures: i64,
}

impl QoeTotals {
    pub fn add(&mut self, o: &QoeTotals) {
        self.viewer_ticks += o.viewer_ticks;
        self.views += o.views;
        self.watch_ms += o.watch_ms;
        self.rebuffer_ms += o.rebuffer_ms;
        self.rebuffer_count += o.rebuffer_count;
        self.startups += o.startups;
        self.failures += o.failures;
    }
}

/// One group value in one bucket.
#[derive(Clone, Debug)]
pub struct GroupBucket {
    pub bucket: i64,
    pub key: String,
    pub totals: QoeTotals,
    /// Merged startup times; `None` when nothing started.
    pub hist: Option<Histogram<u64>>,
}

fn viewer_ticks_expr(scope: &Scope) -> &'static str {
    match scope.kind {
        ScopeKind::Channel => "CASE WHEN kind = 'stream' THEN viewer_ticks ELSE 0 END",
        _ => "viewer_ticks",
    }
}

/// Rows keyed by (bucket, key) → answer ordered by bucket then key, histograms merged.
fn assemble(
    sums: Vec<(i64, String, QoeTotals)>,
    blobs: impl IntoIterator<Item = (i64, String, Vec<u8>)>,
    step: i64,
) -> Vec<GroupBucket> {
    let mut out: BTreeMap<(i64, String), GroupBucket> = BTreeMap::new();
    for (bucket, key, totals) in sums {
        out.entry((bucket, key.clone()))
            .or_insert_with(|| GroupBucket {
                bucket,
                key,
                totals: QoeTotals::default(),
                hist: None,
            })
            .totals
            .add(&totals);
    }
    for (minute, key, blob) in blobs {
        if blob.is_empty() {
            continue;
        }
        let bucket = bucket_start(minute, step);
        if let Some(g) = out.get_mut(&(bucket, key)) {
            merge_serialized(g.hist.get_or_insert_with(empty_startup_histogram), &blob);
        }
    }
    // 18.16 answers an empty input grouped by constants with one all-zero row.
    out.into_values()
        .filter(|g| g.totals != QoeTotals::default())
        .collect()
}

impl EmbeddedSnapshot {
    pub async fn qoe_groups(
        &self,
        scope: &Scope,
        range: TimeRange,
        step: i64,
        by: Dimension,
    ) -> Result<Vec<GroupBucket>, QueryError> {
        let (p, cond) = super::embedded::params(scope, Some(range), "minute");
        let (rel, filter, col) = (
            self.relation(Table::QoeMinutes),
            super::embedded::scope_filter(scope, false),
            by.name(),
        );
        let sql = format!(
            "SELECT (minute / {step}) * {step}, {col}, SUM({vt}), SUM(views), SUM(watch_ms), \
             SUM(rebuffer_ms), SUM(rebuffer_count), SUM(startups), SUM(failures) \
             FROM {rel} WHERE {filter}{cond} GROUP BY 1, 2",
            vt = viewer_ticks_expr(scope),
        );
        let mut sums = Vec::new();
        for b in self.run(&sql, p.clone()).await? {
            let keys = str_col(&b, 1)?;
            let cols = (0..9)
                .map(|i| {
                    if i == 1 {
                        Ok(Vec::new())
                    } else {
                        i64_col(&b, i)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            for (r, key) in keys.into_iter().enumerate() {
                let v = |c: usize| cols[c][r];
                sums.push((
                    v(0),
                    key,
                    QoeTotals {
                        viewer_ticks: v(2),
                        views: v(3),
                        watch_ms: v(4),
                        rebuffer_ms: v(5),
                        rebuffer_count: v(6),
                        startups: v(7),
                        failures: v(8),
                    },
                ));
            }
        }
        let sql = format!(
            "SELECT minute, {col}, startup_hist FROM {rel} WHERE {filter}{cond} AND startups > 0"
        );
        let mut blobs = Vec::new();
        for b in self.run(&sql, p).await? {
            let (minutes, keys) = (i64_col(&b, 0)?, str_col(&b, 1)?);
            let bin = arrow::compute::cast(b.column(2), &arrow::datatypes::DataType::Binary)?;
            let bin = arrow::array::AsArray::as_binary::<i32>(&bin);
            for (r, (m, k)) in minutes.into_iter().zip(keys).enumerate() {
                blobs.push((m, k, bin.value(r).to_vec()));
            }
        }
        Ok(assemble(sums, blobs, step))
    }
}

/// ClickHouse SQL of the sums (`?`: id, closed_through, from, to).
pub(crate) fn sums_ch(scope: &Scope, step: i64, by: Dimension) -> String {
    format!(
        "SELECT intDiv(minute, {step}) * {step} AS b, {col} AS k, toInt64(sum({vt})) AS viewer_ticks, \
         toInt64(sum(views)) AS views, toInt64(sum(watch_ms)) AS watch_ms, \
         toInt64(sum(rebuffer_ms)) AS rebuffer_ms, toInt64(sum(rebuffer_count)) AS rebuffer_count, \
         toInt64(sum(startups)) AS startups, toInt64(sum(failures)) AS failures \
         FROM qoe_minutes FINAL WHERE {filter} AND minute + 60000 <= ? \
         AND minute >= ? AND minute < ? GROUP BY b, k ORDER BY b, k",
        col = by.name(),
        vt = match scope.kind {
            ScopeKind::Channel => "if(kind = 'stream', viewer_ticks, 0)",
            _ => "viewer_ticks",
        },
        filter = super::clickhouse::scope_filter(scope, false),
    )
}

/// ClickHouse SQL of the histograms (same binds).
pub(crate) fn hists_ch(scope: &Scope, by: Dimension) -> String {
    format!(
        "SELECT minute, {col}, startup_hist FROM qoe_minutes FINAL WHERE {filter} \
         AND minute + 60000 <= ? AND minute >= ? AND minute < ? AND startups > 0 \
         ORDER BY minute, {col}, node",
        col = by.name(),
        filter = super::clickhouse::scope_filter(scope, false),
    )
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct SumRow {
    b: i64,
    k: String,
    viewer_ticks: i64,
    views: i64,
    watch_ms: i64,
    rebuffer_ms: i64,
    rebuffer_count: i64,
    startups: i64,
    failures: i64,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct HistRow {
    minute: i64,
    k: String,
    blob: Vec<u8>,
}

impl ClickHouseSnapshot {
    pub async fn qoe_groups(
        &self,
        scope: &Scope,
        range: TimeRange,
        step: i64,
        by: Dimension,
    ) -> Result<Vec<GroupBucket>, QueryError> {
        let rows: Vec<SumRow> = self
            .query(&sums_ch(scope, step, by), scope, Some(range))
            .fetch_all()
            .await
            .map_err(ch)?;
        let sums = rows
            .into_iter()
            .map(|r| {
                (
                    r.b,
                    r.k,
                    QoeTotals {
                        viewer_ticks: r.viewer_ticks,
                        views: r.views,
                        watch_ms: r.watch_ms,
                        rebuffer_ms: r.rebuffer_ms,
                        rebuffer_count: r.rebuffer_count,
                        startups: r.startups,
                        failures: r.failures,
                    },
                )
            })
            .collect();
        let blobs: Vec<HistRow> = self
            .query(&hists_ch(scope, by), scope, Some(range))
            .fetch_all()
            .await
            .map_err(ch)?;
        Ok(assemble(
            sums,
            blobs.into_iter().map(|h| (h.minute, h.k, h.blob)),
            step,
        ))
    }
}

impl StoreSnapshot {
    /// `qoe_minutes` of `scope` in `range` per bucket of `step` and value of `by`,
    /// ordered by bucket then value; groups with nothing are absent.
    pub async fn qoe_groups(
        &self,
        scope: &Scope,
        range: TimeRange,
        step: i64,
        by: Dimension,
    ) -> Result<Vec<GroupBucket>, QueryError> {
        match self {
            StoreSnapshot::Embedded(s) => s.qoe_groups(scope, range, step, by).await,
            StoreSnapshot::ClickHouse(s) => s.qoe_groups(scope, range, step, by).await,
        }
    }
}

/// Every ClickHouse SQL text of this file with sample binds (for the dialect check).
pub fn every_query() -> Vec<String> {
    let c = clickhouse::Client::default();
    let mut out = Vec::new();
    for kind in [ScopeKind::Stream, ScopeKind::Channel] {
        let scope = Scope {
            kind,
            id: pulse_schemas::Id::new_unchecked("stream:x.1-a_b"),
        };
        for by in Dimension::ALL {
            for sql in [sums_ch(&scope, 60_000, by), hists_ch(&scope, by)] {
                let q = c
                    .query(&sql)
                    .bind(scope.id.as_str())
                    .bind(1_764_000_060_000i64)
                    .bind(1_764_000_000_000i64)
                    .bind(1_764_000_060_000i64);
                out.push(q.sql_display().to_string());
            }
        }
    }
    out
}
