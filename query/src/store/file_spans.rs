//! [`FileSpans`]: the time span of each Parquet part of the embedded store (min and max
//! of the table's time column over its row groups' statistics), read from its footer
//! once, when a snapshot first lists the part, and shared by every snapshot (parts never
//! change once published; a part no longer listed leaves the cache at the next build).
//! A part whose statistics cannot be read spans its UTC day (from its `day=YYYY-MM-DD`
//! directory), or everything. `time_sliced.rs` uses the spans to hand DataFusion only
//! the parts a query's time condition can meet.

use parquet::file::metadata::ParquetMetaDataReader;
use parquet::file::statistics::Statistics;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
            .map(|p| match known.get(p) {
                Some(span) => *span,
                None => *known
                    .entry(p.clone())
                    .or_insert_with(|| read_span(p, column)),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pulse_schemas::{Id, Table, TableRow, TargetKind, TickRow};

    /// A Parquet part of `stream_ticks` with one row per time in `ts`.
    pub(crate) fn write_part(dir: &Path, name: &str, ts: &[i64]) -> PathBuf {
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

    #[test]
    fn spans_come_from_the_footers_and_leave_with_their_parts() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            write_part(dir.path(), "a.parquet", &[0, 5_000]),
            write_part(dir.path(), "b.parquet", &[15_000, 10_000]),
        ];
        let spans = FileSpans::default();
        assert_eq!(
            spans.spans_of(&files, "t"),
            vec![(0, 5_000), (10_000, 15_000)]
        );
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
