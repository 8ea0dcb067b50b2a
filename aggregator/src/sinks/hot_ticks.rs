//! The hot tail of `stream_ticks`: in-memory copies of the newest rows of its Parquet
//! parts ([`HotTicks`]), kept by the embedded sink so that the reads dashboards repeat
//! hundreds of times a second (one target's open buckets, the last minutes or hours)
//! are answered from memory even after compaction moved those rows into Parquet.
//!
//! Without it, every compaction (about every 5 minutes) puts the rows of the open
//! buckets into a part, and each poll then plans a DataFusion query and decodes Parquet
//! for a few rows. With it, a reader whose range starts at or after the `from` of every
//! part the range meets reads the hot batches instead of those parts
//! (pulse-query `store/memory_reads.rs`).
//!
//! Rules:
//! - An entry holds **every** row with `t >= from` of its files (never a sample), so a
//!   reader may substitute it for them; rows never sit in both an entry and `recent`.
//! - Rows are ordered by `t` and cut into batches of [`SLICE_ROWS`], so a short range
//!   meets few batches.
//! - Bounds: rows older than the newest hot row minus `hot_ticks_ms` leave (the entry's
//!   `from` rises), and above `hot_ticks_max_rows` whole entries leave, oldest first
//!   (their parts are then read from Parquet, as before). Event time, no clock.
//! - At open, the tail of the newest parts is read back (a restart keeps the fast path);
//!   a part over [`MAX_PART_ROWS_AT_OPEN`] rows or one that cannot be read is skipped
//!   (logged): the hot tail is an optimisation, never a reason to fail.

use crate::AggregatorError;
use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::statistics::Statistics;
use pulse_schemas::{HotTicks, Table};
use std::path::{Path, PathBuf};

/// Rows per hot batch.
pub const SLICE_ROWS: usize = 4_096;

/// Parts larger than this are not read back at open (the cost of a start matters more).
pub const MAX_PART_ROWS_AT_OPEN: i64 = 4_000_000;

fn arrow_err(e: impl std::fmt::Display) -> AggregatorError {
    AggregatorError::Arrow(format!("hot stream_ticks: {e}"))
}

fn times(batch: &RecordBatch) -> Result<&Int64Array, AggregatorError> {
    batch
        .column_by_name("t")
        .and_then(|c| c.as_primitive_opt::<Int64Type>())
        .ok_or_else(|| arrow_err("batch without an Int64 column t"))
}

/// The newest `t` in `batches` (`None` when they hold no row).
pub fn newest(batches: &[RecordBatch]) -> Result<Option<i64>, AggregatorError> {
    let mut out = None;
    for b in batches {
        if let Some(m) = arrow::compute::max(times(b)?) {
            out = Some(out.map_or(m, |o: i64| o.max(m)));
        }
    }
    Ok(out)
}

/// The rows of `batches` with `t >= from`, ordered by `t`, in batches of [`SLICE_ROWS`].
pub fn tail(batches: &[RecordBatch], from: i64) -> Result<Vec<RecordBatch>, AggregatorError> {
    let schema = Table::StreamTicks.schema();
    let mut kept = Vec::new();
    for b in batches.iter().filter(|b| b.num_rows() > 0) {
        let t = times(b)?;
        let mask = arrow::compute::kernels::cmp::gt_eq(t, &Int64Array::new_scalar(from))
            .map_err(arrow_err)?;
        let part = arrow::compute::filter_record_batch(b, &mask).map_err(arrow_err)?;
        if part.num_rows() > 0 {
            kept.push(part);
        }
    }
    if kept.is_empty() {
        return Ok(Vec::new());
    }
    let all = arrow::compute::concat_batches(&schema, &kept).map_err(arrow_err)?;
    let order = arrow::compute::sort_to_indices(times(&all)?, None, None).map_err(arrow_err)?;
    let sorted = arrow::compute::take_record_batch(&all, &order).map_err(arrow_err)?;
    let mut out = Vec::with_capacity(sorted.num_rows().div_ceil(SLICE_ROWS));
    let mut offset = 0;
    while offset < sorted.num_rows() {
        let len = SLICE_ROWS.min(sorted.num_rows() - offset);
        out.push(sorted.slice(offset, len));
        offset += len;
    }
    Ok(out)
}

/// The newest row of an entry (its batches are ordered by `t`).
fn entry_newest(h: &HotTicks) -> i64 {
    h.batches
        .last()
        .and_then(|b| times(b).ok())
        .and_then(|t| (!t.is_empty()).then(|| t.value(t.len() - 1)))
        .unwrap_or(i64::MIN)
}

fn entry_oldest(h: &HotTicks) -> i64 {
    h.batches
        .first()
        .and_then(|b| times(b).ok())
        .and_then(|t| (!t.is_empty()).then(|| t.value(0)))
        .unwrap_or(i64::MAX)
}

/// Keeps `hot` within `window_ms` of its newest row and within `max_rows` rows (whole
/// entries leave, the oldest first). Entries end up ordered oldest first. An entry that
/// cannot be cut leaves whole (its parts are then read from Parquet), logged.
pub fn trim(hot: &mut Vec<HotTicks>, window_ms: u64, max_rows: usize) {
    hot.retain(|h| !h.batches.is_empty());
    let Some(newest) = hot.iter().map(entry_newest).max() else {
        return;
    };
    let cutoff = newest.saturating_sub(i64::try_from(window_ms).unwrap_or(i64::MAX));
    let mut kept = Vec::with_capacity(hot.len());
    for mut h in std::mem::take(hot) {
        if entry_newest(&h) < cutoff {
            continue;
        }
        if entry_oldest(&h) < cutoff {
            match tail(&h.batches, cutoff) {
                Ok(batches) => {
                    h.batches = batches;
                    h.from = h.from.max(cutoff);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "hot tail entry dropped");
                    continue;
                }
            }
        }
        kept.push(h);
    }
    kept.sort_by_key(entry_newest);
    let mut rows: usize = kept.iter().map(HotTicks::rows).sum();
    let mut first = 0;
    while rows > max_rows && first < kept.len() {
        rows -= kept[first].rows();
        first += 1;
    }
    kept.drain(..first);
    *hot = kept;
}

/// Min and max of `t` and the row count of a part, from its footer.
fn part_stats(path: &Path) -> Result<(i64, i64, i64), AggregatorError> {
    let file = std::fs::File::open(path).map_err(|e| super::embedded_files::io_err(path, e))?;
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(arrow_err)?;
    let index = meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().parts() == ["t"])
        .ok_or_else(|| arrow_err(format!("{}: no column t", path.display())))?;
    let (mut lo, mut hi, mut rows) = (i64::MAX, i64::MIN, 0);
    for rg in meta.row_groups() {
        rows += rg.num_rows();
        if rg.num_rows() == 0 {
            continue;
        }
        match rg.column(index).statistics() {
            Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                (Some(a), Some(b)) => {
                    lo = lo.min(*a);
                    hi = hi.max(*b);
                }
                _ => return Err(arrow_err(format!("{}: no t statistics", path.display()))),
            },
            _ => return Err(arrow_err(format!("{}: no t statistics", path.display()))),
        }
    }
    Ok((lo, hi, rows))
}

/// The rows of the part at `path` with `t >= from` (filtered batch by batch as read).
fn read_tail(path: &Path, from: i64) -> Result<Vec<RecordBatch>, AggregatorError> {
    let file = std::fs::File::open(path).map_err(|e| super::embedded_files::io_err(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(arrow_err)?
        .with_batch_size(65_536)
        .build()
        .map_err(arrow_err)?;
    let mut batches = Vec::new();
    for b in reader {
        let b = b.map_err(arrow_err)?;
        let mask = arrow::compute::kernels::cmp::gt_eq(times(&b)?, &Int64Array::new_scalar(from))
            .map_err(arrow_err)?;
        let kept = arrow::compute::filter_record_batch(&b, &mask).map_err(arrow_err)?;
        if kept.num_rows() > 0 {
            batches.push(kept);
        }
    }
    tail(&batches, from)
}

/// The hot tail of the `stream_ticks` parts `files` at open: the rows within `window_ms`
/// of the newest row of any part, newest parts first, within `max_rows`.
pub fn load(files: &[PathBuf], window_ms: u64, max_rows: usize) -> Vec<HotTicks> {
    if window_ms == 0 || max_rows == 0 {
        return Vec::new();
    }
    let mut stats = Vec::new();
    for path in files {
        match part_stats(path) {
            Ok((lo, hi, rows)) if rows > 0 => stats.push((path, lo, hi, rows)),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "part not read into the hot tail"),
        }
    }
    let Some(newest) = stats.iter().map(|s| s.2).max() else {
        return Vec::new();
    };
    let cutoff = newest.saturating_sub(i64::try_from(window_ms).unwrap_or(i64::MAX));
    stats.retain(|s| s.2 >= cutoff);
    stats.sort_by_key(|s| std::cmp::Reverse(s.2));
    let mut out = Vec::new();
    let mut rows = 0;
    for (path, lo, _, part_rows) in stats {
        if part_rows > MAX_PART_ROWS_AT_OPEN {
            tracing::info!(path = %path.display(), rows = part_rows, "part too large to read into the hot tail at open");
            continue;
        }
        match read_tail(path, cutoff) {
            Ok(batches) => {
                let n: usize = batches.iter().map(RecordBatch::num_rows).sum();
                if rows + n > max_rows {
                    break;
                }
                rows += n;
                out.push(HotTicks {
                    files: vec![path.clone()],
                    // A part read whole is mirrored whole.
                    from: if lo >= cutoff { i64::MIN } else { cutoff },
                    batches,
                });
            }
            Err(e) => tracing::warn!(error = %e, "part not read into the hot tail"),
        }
    }
    out.sort_by_key(entry_newest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulse_schemas::{Id, TableRow, TargetKind, TickRow};

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

    fn ts(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| times(b).unwrap().values().to_vec())
            .collect()
    }

    fn entry(file: &str, t: &[i64]) -> HotTicks {
        HotTicks {
            files: vec![PathBuf::from(file)],
            from: i64::MIN,
            batches: tail(&[batch(t)], i64::MIN).unwrap(),
        }
    }

    #[test]
    fn tail_keeps_rows_from_and_orders_them_by_time() {
        let got = tail(&[batch(&[30, 10, 50]), batch(&[20, 40, 5])], 20).unwrap();
        assert_eq!(ts(&got), vec![20, 30, 40, 50]);
        let many: Vec<i64> = (0..10_000).rev().collect();
        let got = tail(&[batch(&many)], 0).unwrap();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|b| b.num_rows() <= SLICE_ROWS));
        assert_eq!(ts(&got), (0..10_000).collect::<Vec<_>>());
        assert!(tail(&[batch(&[1, 2])], 3).unwrap().is_empty());
    }

    #[test]
    fn trim_drops_old_rows_and_raises_from() {
        let mut hot = vec![entry("b", &[100, 200, 300]), entry("a", &[0, 50])];
        trim(&mut hot, 150, 100);
        // Newest row 300: cutoff 150. "a" leaves whole, "b" keeps 200 and 300.
        assert_eq!(hot.len(), 1);
        assert_eq!(hot[0].files, vec![PathBuf::from("b")]);
        assert_eq!(hot[0].from, 150);
        assert_eq!(ts(&hot[0].batches), vec![200, 300]);
    }

    #[test]
    fn trim_keeps_the_newest_entries_within_the_row_bound() {
        let mut hot = vec![
            entry("new", &[300, 301]),
            entry("old", &[100, 101]),
            entry("mid", &[200, 201]),
        ];
        trim(&mut hot, 1_000, 4);
        let files: Vec<_> = hot.iter().map(|h| h.files[0].clone()).collect();
        assert_eq!(files, vec![PathBuf::from("mid"), PathBuf::from("new")]);
        // An entry untouched by the window keeps its `from`.
        assert_eq!(hot[0].from, i64::MIN);
    }
}
