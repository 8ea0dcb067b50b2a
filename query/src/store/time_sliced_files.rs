//! [`TimeSlicedFiles`]: the Parquet parts of one table as a DataFusion table that hands
//! only the parts whose time span meets the query's time condition to a `ListingTable`.
//!
//! A dashboard poll asks for one target's open bucket. Given every part of 30 days,
//! DataFusion plans, opens (footer from the metadata cache), and prunes each one per
//! query, which costs more than the rows it reads. Each part's span (min and max of the
//! table's time column over its row groups' statistics) is read from its footer once,
//! when a snapshot first lists it, and kept in a [`FileSpans`] cache shared by every
//! snapshot (parts never change once published; a part no longer listed leaves the
//! cache at the next build). A part whose statistics cannot be read spans its UTC day
//! (from its `day=YYYY-MM-DD` directory), or everything. As for the in-memory batches
//! (`time_sliced.rs`), the filters are `Inexact`: DataFusion applies them all to the
//! rows, and the `ListingTable` also gets them for row-group and page pruning.

use crate::error::QueryError;
use crate::store::time_sliced::time_bounds;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use parquet::file::metadata::ParquetMetaDataReader;
use parquet::file::statistics::Statistics;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const MS_PER_DAY: i64 = 86_400_000;

/// Time spans of Parquet parts by path, read once per part.
#[derive(Debug, Default)]
pub struct FileSpans {
    spans: Mutex<HashMap<PathBuf, (i64, i64)>>,
}

impl FileSpans {
    /// The span of each of `files` (time column `column`), read from the footers of the
    /// parts not seen before.
    pub fn spans_of(&self, files: &[PathBuf], column: &str) -> Vec<(i64, i64)> {
        let mut known = match self.spans.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        files
            .iter()
            .map(|p| {
                *known
                    .entry(p.clone())
                    .or_insert_with(|| read_span(p, column))
            })
            .collect()
    }

    /// Drops the spans of parts that are no longer published (retention).
    pub fn retain_only(&self, all: &[&PathBuf]) {
        let mut known = match self.spans.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if known.len() > all.len() {
            let keep: std::collections::HashSet<&PathBuf> = all.iter().copied().collect();
            known.retain(|p, _| keep.contains(p));
        }
    }
}

/// Min and max of `column` over the row groups of the part at `path`.
fn read_span(path: &Path, column: &str) -> (i64, i64) {
    match footer_span(path, column) {
        Some(span) => span,
        None => {
            crate::metrics::BAD_FILE_SPANS.inc();
            tracing::warn!(path = %path.display(), "no time statistics in a Parquet part; it is read by every query of its day");
            day_span(path).unwrap_or((i64::MIN, i64::MAX))
        }
    }
}

fn footer_span(path: &Path, column: &str) -> Option<(i64, i64)> {
    let file = std::fs::File::open(path).ok()?;
    let meta = ParquetMetaDataReader::new().parse_and_finish(&file).ok()?;
    let index = meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().parts() == [column])?;
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for rg in meta.row_groups() {
        if rg.num_rows() == 0 {
            continue;
        }
        match rg.column(index).statistics()? {
            Statistics::Int64(s) => {
                lo = lo.min(*s.min_opt()?);
                hi = hi.max(*s.max_opt()?);
            }
            _ => return None,
        }
    }
    // A part without rows meets nothing.
    Some((lo, hi))
}

/// `[start, end]` of the UTC day named by the part's `day=YYYY-MM-DD` directory.
fn day_span(path: &Path) -> Option<(i64, i64)> {
    let dir = path.parent()?.file_name()?.to_str()?;
    let date = chrono::NaiveDate::parse_from_str(dir.strip_prefix("day=")?, "%Y-%m-%d").ok()?;
    let start = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
    Some((start, start + MS_PER_DAY - 1))
}

/// The Parquet parts of one table with the time span of each.
#[derive(Debug)]
pub struct TimeSlicedFiles {
    schema: SchemaRef,
    column: &'static str,
    parts: Vec<(i64, i64, ListingTableUrl)>,
}

impl TimeSlicedFiles {
    pub fn new(
        schema: SchemaRef,
        column: &'static str,
        files: &[PathBuf],
        spans: &FileSpans,
    ) -> Result<Self, QueryError> {
        let parts = spans
            .spans_of(files, column)
            .into_iter()
            .zip(files)
            .map(|((lo, hi), p)| Ok((lo, hi, ListingTableUrl::parse(p.to_string_lossy())?)))
            .collect::<Result<Vec<_>, QueryError>>()?;
        Ok(TimeSlicedFiles {
            schema,
            column,
            parts,
        })
    }

    /// Whether any part may hold rows with the time column in `[lo, hi]`.
    pub(crate) fn meets(&self, lo: i64, hi: i64) -> bool {
        self.parts
            .iter()
            .any(|(min, max, _)| *max >= lo && *min <= hi)
    }

    fn meeting(&self, lo: i64, hi: i64) -> Vec<ListingTableUrl> {
        self.parts
            .iter()
            .filter(|(min, max, _)| *max >= lo && *min <= hi)
            .map(|(_, _, url)| url.clone())
            .collect()
    }
}

#[async_trait]
impl TableProvider for TimeSlicedFiles {
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
        let urls = self.meeting(lo, hi);
        let m = &crate::metrics::PARQUET_PARTS;
        m.with_label_values(&["scanned"]).inc_by(urls.len() as u64);
        m.with_label_values(&["skipped"])
            .inc_by(self.parts.len().saturating_sub(urls.len()) as u64);
        if urls.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.schema.project(p)?),
                None => self.schema.clone(),
            };
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(self.schema.clone());
        ListingTable::try_new(config)?
            .scan(state, projection, filters, limit)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;
    use pulse_schemas::{Id, Table, TableRow, TargetKind, TickRow};

    fn write_part(dir: &Path, name: &str, ts: &[i64]) -> PathBuf {
        let id = Id::new_unchecked;
        let rows: Vec<_> = ts
            .iter()
            .map(|&t| {
                let mut r = TickRow::empty(id("n"), TargetKind::Stream, id("s"), id("c"), t);
                r.events = 1;
                r
            })
            .collect();
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(file, Table::StreamTicks.schema(), None).unwrap();
        w.write(&TickRow::to_batch(&rows)).unwrap();
        w.close().unwrap();
        path
    }

    #[tokio::test]
    async fn only_parts_meeting_the_range_are_read_and_answers_do_not_change() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            write_part(dir.path(), "a.parquet", &[0, 5_000]),
            write_part(dir.path(), "b.parquet", &[10_000, 15_000]),
            write_part(dir.path(), "c.parquet", &[20_000]),
        ];
        let spans = FileSpans::default();
        assert_eq!(
            spans.spans_of(&files, "t"),
            vec![(0, 5_000), (10_000, 15_000), (20_000, 20_000)]
        );
        let schema = Table::StreamTicks.schema();
        let sliced = TimeSlicedFiles::new(schema.clone(), "t", &files, &spans).unwrap();
        assert_eq!(sliced.meeting(12_000, 30_000).len(), 2);
        assert_eq!(sliced.meeting(6_000, 9_000).len(), 0);
        let ctx = SessionContext::new();
        ctx.register_table("sliced", Arc::new(sliced)).unwrap();
        let urls = files
            .iter()
            .map(|p| ListingTableUrl::parse(p.to_string_lossy()).unwrap())
            .collect();
        let plain = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(ListingOptions::new(Arc::new(ParquetFormat::default())))
            .with_schema(schema);
        ctx.register_table("plain", Arc::new(ListingTable::try_new(plain).unwrap()))
            .unwrap();
        for cond in [
            "t >= 5000 AND t < 15000",
            "t > 5000",
            "t <= 10000",
            "t BETWEEN 6000 AND 9000",
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
        // A part no longer published leaves the cache.
        spans.retain_only(&[&files[0]]);
        assert_eq!(spans.spans.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_part_without_statistics_spans_its_day() {
        let p = Path::new("/nowhere/stream_ticks/day=2023-11-14/part-n-0000000001.parquet");
        assert_eq!(
            read_span(p, "t"),
            (1_699_920_000_000, 1_699_920_000_000 + MS_PER_DAY - 1)
        );
        assert_eq!(
            read_span(Path::new("/nowhere/x.parquet"), "t"),
            (i64::MIN, i64::MAX)
        );
    }
}
