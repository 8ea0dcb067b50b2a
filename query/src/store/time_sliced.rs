//! [`TimeSlicedBatches`]: the in-memory rows of one table (recent or provisional) as a
//! DataFusion table that scans only the batches whose time span meets the query's time
//! condition.
//!
//! The writer publishes one batch per flush (about a second of closed windows), so the
//! batches of a table are short time slices. A dashboard poll asks for the open bucket
//! only (the series cache holds the rest): scanning every in-memory row for it would
//! cost each poll as much as a full read of the recent rows. The time span of each batch
//! (min and max of the table's time column) is computed once, when the snapshot is
//! built; `scan` keeps the batches that meet the bounds found in the pushed-down filters
//! (`col >= v`, `col > v`, `col < v`, `col <= v`, `col = v`, `col BETWEEN a AND b`, with
//! either operand order). The filters are answered `Inexact`: DataFusion still applies
//! every one of them to the rows, so the slicing can only skip rows, never change an
//! answer.

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// In-memory batches of one table with the time span of each.
#[derive(Debug)]
pub struct TimeSlicedBatches {
    schema: SchemaRef,
    column: &'static str,
    /// `(min, max, batch)`; a batch without rows is left out, one whose time column is
    /// not an integer or is all null spans everything.
    slices: Vec<(i64, i64, RecordBatch)>,
}

impl TimeSlicedBatches {
    pub fn new(schema: SchemaRef, column: &'static str, batches: Vec<RecordBatch>) -> Self {
        let slices = batches
            .into_iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| {
                let (lo, hi) = span(&b, column);
                (lo, hi, b)
            })
            .collect();
        TimeSlicedBatches {
            schema,
            column,
            slices,
        }
    }

    /// The batches that may hold rows with the time column in `[lo, hi]`.
    pub(crate) fn meeting(&self, lo: i64, hi: i64) -> Vec<RecordBatch> {
        self.slices
            .iter()
            .filter(|(min, max, _)| *max >= lo && *min <= hi)
            .map(|(_, _, b)| b.clone())
            .collect()
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
impl TableProvider for TimeSlicedBatches {
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
        let batches = self.meeting(lo, hi);
        let m = &crate::metrics::MEMORY_BATCHES;
        m.with_label_values(&["scanned"])
            .inc_by(batches.len() as u64);
        m.with_label_values(&["skipped"])
            .inc_by(self.slices.len().saturating_sub(batches.len()) as u64);
        // The filters stay with DataFusion (Inexact), so the table under it needs none.
        MemTable::try_new(self.schema.clone(), vec![batches])?
            .scan(state, projection, &[], limit)
            .await
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

    #[tokio::test]
    async fn only_batches_meeting_the_range_are_scanned_and_answers_do_not_change() {
        let table = Table::StreamTicks;
        let batches = vec![
            batch(&[0, 5_000]),
            batch(&[10_000, 15_000]),
            batch(&[20_000]),
        ];
        let sliced = TimeSlicedBatches::new(table.schema(), "t", batches.clone());
        assert_eq!(sliced.meeting(12_000, 30_000).len(), 2);
        assert_eq!(sliced.meeting(6_000, 9_000).len(), 0);
        let ctx = SessionContext::new();
        ctx.register_table("sliced", Arc::new(sliced)).unwrap();
        ctx.register_table(
            "plain",
            Arc::new(MemTable::try_new(table.schema(), vec![batches]).unwrap()),
        )
        .unwrap();
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
}
