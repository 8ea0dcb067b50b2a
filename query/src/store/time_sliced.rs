//! [`TimeSliced`]: one source of a table's rows (the Parquet parts, the recent batches
//! or the provisional batches of the embedded store) as a DataFusion table that scans
//! only the slices (parts or batches) whose time span meets the query's time condition.
//!
//! A dashboard poll asks for one target's open bucket only (the series cache holds the
//! rest). Given every part of 30 days and every in-memory batch, DataFusion would plan,
//! open and prune each one per query, which costs far more than the rows it reads. The
//! writer publishes one batch per flush (about a second of closed windows) and one part
//! per segment and day, so slices are short in time. The span of each batch (min and
//! max of the table's time column) is computed when the snapshot is built; that of each
//! part is read once from its footer ([`FileSpans`]). `scan` keeps the slices that meet
//! the bounds found in the pushed-down filters (`col >= v`, `col > v`, `col < v`,
//! `col <= v`, `col = v`, `col BETWEEN a AND b`, with either operand order) and hands
//! them to a `MemTable` or a `ListingTable` (which also gets the filters, for row-group
//! and page pruning). The filters are answered `Inexact`: DataFusion still applies
//! every one of them to the rows, so slicing can only skip rows, never change an answer.
//! `pulse_query_slices_total{source,outcome}` counts the slices scanned and skipped.

use crate::error::QueryError;
use crate::store::file_spans::FileSpans;
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use std::path::PathBuf;
use std::sync::Arc;

/// The slices of one source, `spans[i]` being the time span of slice `i`.
#[derive(Debug)]
enum Slices {
    Memory(Vec<RecordBatch>),
    Parquet(Vec<ListingTableUrl>),
}

/// One source of a table's rows with the time span of each of its slices.
#[derive(Debug)]
pub struct TimeSliced {
    schema: SchemaRef,
    column: &'static str,
    spans: Vec<(i64, i64)>,
    slices: Slices,
}

impl TimeSliced {
    /// In-memory batches; a batch without rows is left out, one whose time column is
    /// not an integer or is all null spans everything.
    pub fn memory(schema: SchemaRef, column: &'static str, batches: Vec<RecordBatch>) -> Self {
        let batches: Vec<_> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        TimeSliced {
            schema,
            column,
            spans: batches.iter().map(|b| span(b, column)).collect(),
            slices: Slices::Memory(batches),
        }
    }

    /// Parquet parts, their spans from `spans`.
    pub fn parquet(
        schema: SchemaRef,
        column: &'static str,
        files: &[PathBuf],
        spans: &FileSpans,
    ) -> Result<Self, QueryError> {
        let urls = files
            .iter()
            .map(|p| ListingTableUrl::parse(p.to_string_lossy()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TimeSliced {
            schema,
            column,
            spans: spans.spans_of(files, column),
            slices: Slices::Parquet(urls),
        })
    }

    /// Indexes of the slices that may hold rows with the time column in `[lo, hi]`.
    pub(crate) fn meeting(&self, lo: i64, hi: i64) -> impl Iterator<Item = usize> + '_ {
        self.spans
            .iter()
            .enumerate()
            .filter(move |(_, (min, max))| *max >= lo && *min <= hi)
            .map(|(i, _)| i)
    }

    /// Whether any slice may hold rows with the time column in `[lo, hi]`.
    #[cfg(test)]
    pub(crate) fn meets(&self, lo: i64, hi: i64) -> bool {
        self.meeting(lo, hi).next().is_some()
    }

    /// The in-memory batches that may hold rows in `[lo, hi]` (none for parts).
    pub(crate) fn batches_meeting(&self, lo: i64, hi: i64) -> Vec<RecordBatch> {
        match &self.slices {
            Slices::Memory(b) => self
                .meeting(lo, hi)
                .filter_map(|i| b.get(i).cloned())
                .collect(),
            Slices::Parquet(_) => Vec::new(),
        }
    }
}

/// Min and max of `column` in `batch`; the widest span when it cannot tell.
fn span(batch: &RecordBatch, column: &str) -> (i64, i64) {
    let all = (i64::MIN, i64::MAX);
    let Some(col) = batch.column_by_name(column) else {
        return all;
    };
    if col.data_type() != &DataType::Int64 {
        return all;
    }
    let a = col.as_primitive::<Int64Type>();
    // A null time meets no condition on it, so nulls need no widening.
    match (arrow::compute::min(a), arrow::compute::max(a)) {
        (Some(lo), Some(hi)) => (lo, hi),
        _ => all,
    }
}

/// The closed interval `[lo, hi]` of the time column allowed by `filters` (each one a
/// conjunct, as DataFusion pushes them), or the whole line when none bounds it.
pub fn time_bounds(filters: &[Expr], column: &str) -> (i64, i64) {
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    for f in filters {
        let (l, h) = bounds_of(f, column);
        lo = lo.max(l);
        hi = hi.min(h);
    }
    (lo, hi)
}

fn bounds_of(expr: &Expr, column: &str) -> (i64, i64) {
    let all = (i64::MIN, i64::MAX);
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            if *op == Operator::And {
                let (a, b) = (bounds_of(left, column), bounds_of(right, column));
                return (a.0.max(b.0), a.1.min(b.1));
            }
            let (op, value) = match (is_column(left, column), literal(right)) {
                (true, Some(v)) => (*op, v),
                _ => match (literal(left), is_column(right, column)) {
                    // `v < col` is `col > v`.
                    (Some(v), true) => match op.swap() {
                        Some(op) => (op, v),
                        None => return all,
                    },
                    _ => return all,
                },
            };
            match op {
                Operator::Eq => (value, value),
                Operator::GtEq => (value, i64::MAX),
                Operator::Gt => (value.saturating_add(1), i64::MAX),
                Operator::LtEq => (i64::MIN, value),
                Operator::Lt => (i64::MIN, value.saturating_sub(1)),
                _ => all,
            }
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) if is_column(expr, column) => match (literal(low), literal(high)) {
            (Some(l), Some(h)) => (l, h),
            _ => all,
        },
        _ => all,
    }
}

fn is_column(expr: &Expr, column: &str) -> bool {
    matches!(expr, Expr::Column(c) if c.name == column)
}

fn literal(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => Some(*v),
        Expr::Literal(ScalarValue::Int32(Some(v)), _) => Some(i64::from(*v)),
        _ => None,
    }
}

#[async_trait]
impl TableProvider for TimeSliced {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (lo, hi) = time_bounds(filters, self.column);
        let kept: Vec<usize> = self.meeting(lo, hi).collect();
        let source = match self.slices {
            Slices::Memory(_) => "memory",
            Slices::Parquet(_) => "parquet",
        };
        let m = &crate::metrics::SLICES;
        m.with_label_values(&[source, "scanned"])
            .inc_by(kept.len() as u64);
        m.with_label_values(&[source, "skipped"])
            .inc_by(self.spans.len().saturating_sub(kept.len()) as u64);
        match &self.slices {
            // The filters stay with DataFusion (Inexact), so the table under it needs none.
            Slices::Memory(batches) => {
                let batches = kept
                    .iter()
                    .filter_map(|&i| batches.get(i).cloned())
                    .collect();
                MemTable::try_new(self.schema.clone(), vec![batches])?
                    .scan(state, projection, &[], limit)
                    .await
            }
            Slices::Parquet(_) if kept.is_empty() => {
                let schema = match projection {
                    Some(p) => Arc::new(self.schema.project(p)?),
                    None => self.schema.clone(),
                };
                Ok(Arc::new(EmptyExec::new(schema)))
            }
            Slices::Parquet(urls) => {
                let urls = kept.iter().filter_map(|&i| urls.get(i).cloned()).collect();
                let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                    .with_file_extension(".parquet");
                let config = ListingTableConfig::new_with_multi_paths(urls)
                    .with_listing_options(options)
                    .with_schema(self.schema.clone());
                ListingTable::try_new(config)?
                    .scan(state, projection, filters, limit)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{SessionContext, col, lit};
    use pulse_schemas::{Id, Table, TableRow, TargetKind, TickRow};

    fn batch(ts: &[i64]) -> RecordBatch {
        let id = Id::new_unchecked;
        let rows: Vec<_> = ts
            .iter()
            .map(|&t| {
                let mut r = TickRow::empty(id("n"), TargetKind::Stream, id("s"), id("c"), t);
                r.events = 1;
                r
            })
            .collect();
        TickRow::to_batch(&rows)
    }

    #[test]
    fn bounds_come_from_every_comparison_form() {
        let c = || col("t");
        assert_eq!(time_bounds(&[c().gt_eq(lit(10i64))], "t"), (10, i64::MAX));
        assert_eq!(time_bounds(&[c().gt(lit(10i64))], "t"), (11, i64::MAX));
        assert_eq!(time_bounds(&[c().lt(lit(10i64))], "t"), (i64::MIN, 9));
        assert_eq!(time_bounds(&[lit(10i64).lt(c())], "t"), (11, i64::MAX));
        assert_eq!(time_bounds(&[lit(10i64).gt_eq(c())], "t"), (i64::MIN, 10));
        assert_eq!(
            time_bounds(&[c().gt_eq(lit(5i64)).and(c().lt(lit(9i64)))], "t"),
            (5, 8)
        );
        assert_eq!(
            time_bounds(&[c().between(lit(3i64), lit(4i64))], "t"),
            (3, 4)
        );
        assert_eq!(time_bounds(&[c().eq(lit(7i64))], "t"), (7, 7));
        // Other columns, other operators and non-literals bound nothing.
        assert_eq!(
            time_bounds(&[col("minute").gt(lit(1i64)), c().not_eq(lit(3i64))], "t"),
            (i64::MIN, i64::MAX)
        );
        assert_eq!(
            time_bounds(&[(c() + lit(1i64)).gt(lit(3i64))], "t"),
            (i64::MIN, i64::MAX)
        );
    }

    /// Runs each condition over `sliced` and over `plain` and compares the answers.
    async fn same_answers(sliced: TimeSliced, plain: Arc<dyn TableProvider>) {
        let ctx = SessionContext::new();
        ctx.register_table("sliced", Arc::new(sliced)).unwrap();
        ctx.register_table("plain", plain).unwrap();
        for cond in [
            "t >= 5000 AND t < 15000",
            "t > 5000",
            "t <= 10000",
            "t BETWEEN 6000 AND 9000",
            "15000 > t",
            "t + 0 >= 10000",
            "events = 1",
        ] {
            let q =
                |name: &str| format!("SELECT COUNT(*) AS n, SUM(t) AS s FROM {name} WHERE {cond}");
            let a = ctx
                .sql(&q("sliced"))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            let b = ctx.sql(&q("plain")).await.unwrap().collect().await.unwrap();
            assert_eq!(a, b, "{cond}");
        }
    }

    #[tokio::test]
    async fn only_batches_meeting_the_range_are_scanned_and_answers_do_not_change() {
        let table = Table::StreamTicks;
        let batches = vec![
            batch(&[0, 5_000]),
            batch(&[10_000, 15_000]),
            batch(&[20_000]),
        ];
        let sliced = TimeSliced::memory(table.schema(), "t", batches.clone());
        assert_eq!(sliced.batches_meeting(12_000, 30_000).len(), 2);
        assert_eq!(sliced.batches_meeting(6_000, 9_000).len(), 0);
        let plain = MemTable::try_new(table.schema(), vec![batches]).unwrap();
        same_answers(sliced, Arc::new(plain)).await;
    }

    #[tokio::test]
    async fn only_parts_meeting_the_range_are_read_and_answers_do_not_change() {
        use crate::store::file_spans::tests::write_part;
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            write_part(dir.path(), "a.parquet", &[0, 5_000]),
            write_part(dir.path(), "b.parquet", &[10_000, 15_000]),
            write_part(dir.path(), "c.parquet", &[20_000]),
        ];
        let schema = Table::StreamTicks.schema();
        let sliced =
            TimeSliced::parquet(schema.clone(), "t", &files, &FileSpans::default()).unwrap();
        assert_eq!(sliced.meeting(12_000, 30_000).count(), 2);
        assert!(!sliced.meets(6_000, 9_000));
        assert!(sliced.batches_meeting(0, 30_000).is_empty());
        let urls = files
            .iter()
            .map(|p| ListingTableUrl::parse(p.to_string_lossy()).unwrap())
            .collect();
        let plain = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(ListingOptions::new(Arc::new(ParquetFormat::default())))
            .with_schema(schema);
        same_answers(sliced, Arc::new(ListingTable::try_new(plain).unwrap())).await;
    }
}
