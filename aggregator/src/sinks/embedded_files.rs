//! The files of the embedded store: where they live, the write-ahead log (one Arrow IPC
//! stream per table per segment) and the Parquet parts. Pure file handling; when to
//! write what is decided in `embedded.rs`. A [`Segment`] is one WAL segment: its
//! files, its appenders while active, and its rows while they are held in memory.
//!
//! ```text
//! <data_dir>/wal/<node>-<seq>-<table>.arrows                 WAL segment <seq>, one file per table
//! <data_dir>/<table>/day=YYYY-MM-DD/part-<node>-<seq>.parquet rows of segment <seq> on that UTC day
//! <data_dir>/<table>/day=YYYY-MM-DD/.part-<node>-<seq>.parquet.tmp  being written (deleted at open)
//! ```
//!
//! `<seq>` is written as ten or more digits; `<node>` may itself contain `-`, so names
//! are parsed from the right.

use crate::AggregatorError;
use arrow::array::{Array, BooleanArray, Int64Array, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use pulse_schemas::Table;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

const MS_PER_DAY: i64 = 86_400_000;
const WAL_EXT: &str = "arrows";

/// `<data_dir>/wal`: the write-ahead log segments of every node writing here.
pub fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("wal")
}

/// `<data_dir>/wal/<node>-<seq>-<table>.arrows`: one table's rows of one WAL segment.
pub fn wal_segment_path(data_dir: &Path, node: &str, seq: u64, table: Table) -> PathBuf {
    wal_dir(data_dir).join(format!("{node}-{seq:010}-{}.{WAL_EXT}", table.name()))
}

/// `<data_dir>/<table>`: the table's Parquet files, one `day=YYYY-MM-DD` directory per UTC day.
pub fn parquet_dir(data_dir: &Path, table: Table) -> PathBuf {
    data_dir.join(table.name())
}

/// `<data_dir>/<table>/day=YYYY-MM-DD` for the UTC day holding epoch-ms `ms`.
pub fn day_dir(data_dir: &Path, table: Table, ms: i64) -> PathBuf {
    parquet_dir(data_dir, table).join(format!("day={}", utc_day(ms)))
}

/// `<data_dir>/<table>/day=YYYY-MM-DD/part-<node>-<seq>.parquet`: the rows of WAL segment
/// `seq` whose time column falls on the UTC day of `ms`.
pub fn part_path(data_dir: &Path, table: Table, ms: i64, node: &str, seq: u64) -> PathBuf {
    day_dir(data_dir, table, ms).join(format!("part-{node}-{seq:010}.parquet"))
}

/// The UTC day (`YYYY-MM-DD`) of an epoch-ms time.
pub fn utc_day(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Proleptic Gregorian date of a day number since 1970-01-01 (H. Hinnant's algorithm;
/// total over i64 day numbers, unlike chrono's bounded range).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Every finished Parquet file of `table` (any node), sorted by path.
pub fn list_parquet_files(data_dir: &Path, table: Table) -> Result<Vec<PathBuf>, AggregatorError> {
    let mut out = Vec::new();
    for day in read_dir_sorted(&parquet_dir(data_dir, table))? {
        let is_day = day
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("day="));
        if !is_day || !day.is_dir() {
            continue;
        }
        for file in read_dir_sorted(&day)? {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".parquet") && !name.starts_with('.') {
                out.push(file);
            }
        }
    }
    Ok(out)
}

/// `(node, seq)` of a `part-<node>-<seq>.parquet` file name.
pub fn parse_part_name(file_name: &str) -> Option<(&str, u64)> {
    let stem = file_name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (node, seq) = stem.rsplit_once('-')?;
    Some((node, seq.parse().ok()?))
}

/// `(node, seq, table)` of a `<node>-<seq>-<table>.arrows` WAL file name.
pub fn parse_wal_name(file_name: &str) -> Option<(&str, u64, Table)> {
    let stem = file_name.strip_suffix(&format!(".{WAL_EXT}"))?;
    let (rest, table) = stem.rsplit_once('-')?;
    let (node, seq) = rest.rsplit_once('-')?;
    Some((node, seq.parse().ok()?, Table::from_name(table)?))
}

/// This node's WAL files: segment seq → table → path.
pub(crate) fn list_wal(
    data_dir: &Path,
    node: &str,
) -> Result<BTreeMap<u64, BTreeMap<Table, PathBuf>>, AggregatorError> {
    let mut out: BTreeMap<u64, BTreeMap<Table, PathBuf>> = BTreeMap::new();
    for path in read_dir_sorted(&wal_dir(data_dir))? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some((n, seq, table)) = parse_wal_name(name)
            && n == node
        {
            out.entry(seq).or_default().insert(table, path.clone());
        }
    }
    Ok(out)
}

/// Entries of `dir` sorted by path; a missing directory is empty.
fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, AggregatorError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        out.push(entry.map_err(|e| io_err(dir, e))?.path());
    }
    out.sort();
    Ok(out)
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> AggregatorError {
    AggregatorError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn arrow_err(what: &Path, e: impl std::fmt::Display) -> AggregatorError {
    AggregatorError::Arrow(format!("{}: {e}", what.display()))
}

/// Makes a directory's entries (created, renamed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), AggregatorError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

/// Creates `dir` and its missing parents, syncing each parent that gained an entry.
pub(crate) fn create_dir_durable(dir: &Path) -> Result<(), AggregatorError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io_err(dir, e)),
    }
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// One table's file of the WAL segment being appended to. Batches are encoded in memory
/// first and appended with one `write_all`, so a failed append can be cut back off.
pub(crate) struct WalFile {
    path: PathBuf,
    file: File,
    encoder: StreamWriter<Vec<u8>>,
    len: u64,
}

impl WalFile {
    /// Creates the file with the stream's schema message, synced along with its directory.
    pub(crate) fn create(path: PathBuf, table: Table) -> Result<Self, AggregatorError> {
        let mut encoder =
            StreamWriter::try_new(Vec::new(), &table.schema()).map_err(|e| arrow_err(&path, e))?;
        let header = std::mem::take(encoder.get_mut());
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        file.write_all(&header)
            .and_then(|()| file.sync_data())
            .map_err(|e| io_err(&path, e))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(WalFile {
            len: header.len() as u64,
            path,
            file,
            encoder,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends one batch (not yet synced); returns the bytes written.
    pub(crate) fn append(&mut self, batch: &RecordBatch) -> Result<u64, AggregatorError> {
        self.encoder
            .write(batch)
            .map_err(|e| arrow_err(&self.path, e))?;
        let bytes = std::mem::take(self.encoder.get_mut());
        self.file
            .write_all(&bytes)
            .map_err(|e| io_err(&self.path, e))?;
        self.len += bytes.len() as u64;
        Ok(bytes.len() as u64)
    }

    pub(crate) fn sync(&self) -> Result<(), AggregatorError> {
        self.file.sync_data().map_err(|e| io_err(&self.path, e))
    }

    /// Cuts the file back to `len` bytes (undoing appends of a failed write).
    pub(crate) fn truncate_to(&mut self, len: u64) -> Result<(), AggregatorError> {
        self.file.set_len(len).map_err(|e| io_err(&self.path, e))?;
        self.len = len;
        Ok(())
    }
}

/// What a WAL file held: its complete batches, and whether a damaged tail was ignored.
pub(crate) struct WalContents {
    pub batches: Vec<RecordBatch>,
    pub truncated: bool,
}

/// Reads one WAL file. A tail that does not decode (a message cut by a crash) ends the
/// read and sets `truncated`; a schema that is not the table's is an error.
pub(crate) fn read_wal(path: &Path, table: Table) -> Result<WalContents, AggregatorError> {
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let reader = match StreamReader::try_new(BufReader::new(file), None) {
        Ok(r) => r,
        // The schema message itself was cut: the file never held a batch.
        Err(_) => {
            return Ok(WalContents {
                batches: Vec::new(),
                truncated: true,
            });
        }
    };
    let schema = table.schema();
    let (old, new) = (reader.schema().fields().len(), schema.fields().len());
    // A WAL an older Pulse wrote may lack the columns added since; they are nullable
    // (schemas/src/lib.rs) and read as null. Anything else is not this table.
    let older = old <= new
        && reader.schema().fields()[..] == schema.fields()[..old]
        && schema.fields()[old..].iter().all(|f| f.is_nullable());
    if !older {
        return Err(arrow_err(
            path,
            format!("WAL schema is not the schema of {}", table.name()),
        ));
    }
    let mut out = WalContents {
        batches: Vec::new(),
        truncated: false,
    };
    for item in reader {
        let item = item.and_then(|b| {
            if old == new {
                return Ok(b);
            }
            let mut cols = b.columns().to_vec();
            for f in &schema.fields()[old..] {
                cols.push(arrow::array::new_null_array(f.data_type(), b.num_rows()));
            }
            RecordBatch::try_new(schema.clone(), cols)
        });
        match item {
            Ok(batch) => out.batches.push(batch),
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "WAL tail does not decode");
                out.truncated = true;
                break;
            }
        }
    }
    Ok(out)
}

/// Splits batches by the UTC day of the table's time column: day number → batches.
pub(crate) fn split_by_day(
    table: Table,
    batches: &[RecordBatch],
) -> Result<BTreeMap<i64, Vec<RecordBatch>>, AggregatorError> {
    let mut out: BTreeMap<i64, Vec<RecordBatch>> = BTreeMap::new();
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        let times = batch
            .column_by_name(table.time_column())
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| {
                AggregatorError::Arrow(format!("{}: no Int64 time column", table.name()))
            })?;
        let days: Vec<i64> = times
            .values()
            .iter()
            .map(|ms| ms.div_euclid(MS_PER_DAY))
            .collect();
        let first = days[0];
        if days.iter().all(|d| *d == first) {
            out.entry(first).or_default().push(batch.clone());
            continue;
        }
        let mut distinct = days.clone();
        distinct.sort_unstable();
        distinct.dedup();
        for day in distinct {
            let mask = BooleanArray::from_iter(days.iter().map(|d| Some(*d == day)));
            let part = filter_record_batch(batch, &mask)
                .map_err(|e| AggregatorError::Arrow(e.to_string()))?;
            out.entry(day).or_default().push(part);
        }
    }
    Ok(out)
}

/// Epoch ms of the start of a day number (for the path helpers).
pub(crate) fn day_start_ms(day: i64) -> i64 {
    day.saturating_mul(MS_PER_DAY)
}

/// Writes `batches` to `path` as one zstd Parquet file: temp name, fsync, rename, fsync dir.
/// Returns the file's size.
pub(crate) fn write_part(
    path: &Path,
    table: Table,
    batches: &[RecordBatch],
) -> Result<u64, AggregatorError> {
    let dir = path
        .parent()
        .ok_or_else(|| arrow_err(path, "part path has no directory"))?;
    create_dir_durable(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("part.parquet");
    let tmp = dir.join(format!(".{name}.tmp"));
    let sorted = sorted_rows(table, batches).map_err(|e| arrow_err(&tmp, e))?;
    let file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut writer =
        ArrowWriter::try_new(file, table.schema(), Some(props)).map_err(|e| arrow_err(&tmp, e))?;
    writer.write(&sorted).map_err(|e| arrow_err(&tmp, e))?;
    let file = writer.into_inner().map_err(|e| arrow_err(&tmp, e))?;
    file.sync_all().map_err(|e| io_err(&tmp, e))?;
    let size = file.metadata().map_err(|e| io_err(&tmp, e))?.len();
    drop(file);
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    sync_dir(dir)?;
    Ok(size)
}

/// Rows per Parquet row group: small enough that a reader of one target skips most of a
/// day's file by the row groups' statistics, large enough to keep the footer small.
const ROW_GROUP_ROWS: usize = 65_536;

/// `batches` as one batch ordered by [`Table::sort_key`]. Readers sum or merge rows, so
/// the order among rows with equal keys does not matter.
fn sorted_rows(
    table: Table,
    batches: &[RecordBatch],
) -> Result<RecordBatch, arrow::error::ArrowError> {
    use arrow::row::{RowConverter, SortField};
    let all = arrow::compute::concat_batches(&table.schema(), batches)?;
    // The row format turns the key columns into one comparable byte string per row:
    // several times faster to sort than comparing column by column.
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for name in table.sort_key() {
        let column = all.column(all.schema().index_of(name)?).clone();
        fields.push(SortField::new(column.data_type().clone()));
        columns.push(column);
    }
    let keys = RowConverter::new(fields)?.convert_columns(&columns)?;
    let rows = u32::try_from(all.num_rows()).map_err(|_| {
        arrow::error::ArrowError::InvalidArgumentError(format!(
            "a Parquet part holds at most {} rows, this one {}",
            u32::MAX,
            all.num_rows()
        ))
    })?;
    let mut order: Vec<u32> = (0..rows).collect();
    order.sort_unstable_by(|&a, &b| keys.row(a as usize).cmp(&keys.row(b as usize)));
    arrow::compute::take_record_batch(&all, &arrow::array::UInt32Array::from(order))
}

/// Deletes this node's leftover `.part-<node>-*.parquet.tmp` files of `table`
/// (a compaction cut by a crash; its WAL segment still holds the rows).
pub(crate) fn remove_temp_parts(
    data_dir: &Path,
    table: Table,
    node: &str,
) -> Result<usize, AggregatorError> {
    let prefix = format!(".part-{node}-");
    let mut removed = 0;
    for day in read_dir_sorted(&parquet_dir(data_dir, table))? {
        if !day.is_dir() {
            continue;
        }
        for file in read_dir_sorted(&day)? {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.starts_with(&prefix)
                && name.ends_with(".parquet.tmp")
                && parse_part_name(&name[1..name.len() - 4]).is_some_and(|(n, _)| n == node)
            {
                fs::remove_file(&file).map_err(|e| io_err(&file, e))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// One WAL segment: the rows of consecutive writes, compacted together.
pub(crate) struct Segment {
    pub(crate) seq: u64,
    /// Rows per table in write order; `None` once spilled (then only in the WAL).
    pub(crate) batches: Option<BTreeMap<Table, Vec<RecordBatch>>>,
    pub(crate) rows: usize,
    pub(crate) wal: BTreeMap<Table, PathBuf>,
    pub(crate) wal_bytes: u64,
    /// Open appenders while the segment is active; empty once sealed.
    pub(crate) writers: BTreeMap<Table, WalFile>,
    pub(crate) sealed: bool,
    pub(crate) started: Instant,
}

impl Segment {
    pub(crate) fn new(seq: u64) -> Self {
        Segment {
            seq,
            batches: Some(BTreeMap::new()),
            rows: 0,
            wal: BTreeMap::new(),
            wal_bytes: 0,
            writers: BTreeMap::new(),
            sealed: false,
            started: Instant::now(),
        }
    }

    pub(crate) fn seal(&mut self) {
        self.writers.clear();
        self.sealed = true;
    }

    pub(crate) fn memory_rows(&self) -> usize {
        if self.batches.is_some() { self.rows } else { 0 }
    }

    /// Appends and fsyncs `batches` in the WAL, then keeps them in memory. On error the
    /// files are cut back and the segment sealed.
    pub(crate) fn append(
        &mut self,
        data_dir: &Path,
        node: &str,
        batches: &[(Table, RecordBatch)],
    ) -> Result<(), AggregatorError> {
        let mut before = Vec::new();
        match self.append_wal(data_dir, node, batches, &mut before) {
            Ok(bytes) => self.wal_bytes += bytes,
            Err(e) => {
                for (table, len) in before {
                    if let Some(Err(cut)) = self.writers.get_mut(&table).map(|w| w.truncate_to(len))
                    {
                        tracing::error!(error = %cut, "cannot cut back a failed WAL append");
                    }
                }
                self.seal();
                return Err(e);
            }
        }
        let kept = self.batches.get_or_insert_with(BTreeMap::new);
        for (table, batch) in batches {
            self.rows += batch.num_rows();
            kept.entry(*table).or_default().push(batch.clone());
        }
        Ok(())
    }

    fn append_wal(
        &mut self,
        data_dir: &Path,
        node: &str,
        batches: &[(Table, RecordBatch)],
        before: &mut Vec<(Table, u64)>,
    ) -> Result<u64, AggregatorError> {
        let mut bytes = 0;
        for (table, batch) in batches {
            let writer = match self.writers.entry(*table) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let path = wal_segment_path(data_dir, node, self.seq, *table);
                    let created = WalFile::create(path.clone(), *table)?;
                    self.wal.insert(*table, path);
                    bytes += created.len();
                    e.insert(created)
                }
            };
            before.push((*table, writer.len()));
            bytes += writer.append(batch)?;
        }
        for (table, _) in before.iter() {
            if let Some(w) = self.writers.get(table) {
                w.sync()?;
            }
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_match_chrono() {
        for ms in [
            0i64,
            1,
            86_399_999,
            86_400_000,
            951_782_400_000,
            1_700_000_000_000,
            4_102_444_800_000,
        ] {
            let expected = chrono::DateTime::from_timestamp_millis(ms)
                .map(|d| d.format("%Y-%m-%d").to_string());
            assert_eq!(Some(utc_day(ms)), expected, "{ms}");
        }
        assert_eq!(utc_day(-1), "1969-12-31");
        assert!(
            utc_day(i64::MAX).starts_with("292278994-"),
            "{}",
            utc_day(i64::MAX)
        );
    }

    #[test]
    fn a_wal_written_before_the_slice_masks_reads_with_null_masks() {
        use pulse_schemas::{Id, TableRow, TargetKind, ViewerMinuteRow};
        let row = ViewerMinuteRow {
            node: Id::new_unchecked("n"),
            kind: TargetKind::Stream,
            target: Id::new_unchecked("s"),
            channel: Id::new_unchecked("c"),
            minute: 60_000,
            viewer: Id::new_unchecked("v"),
            events: 2,
            followed: true,
            chat_messages: 0,
            seen_mask: 3,
            follow_mask: 1,
        };
        let full = ViewerMinuteRow::to_batch(&[row]);
        let old = full.project(&[0, 1, 2, 3, 4, 5, 6, 7, 8]).expect("project");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.arrows");
        let mut w = StreamWriter::try_new(Vec::new(), &old.schema()).expect("writer");
        w.write(&old).expect("write");
        w.finish().expect("finish");
        std::fs::write(&path, w.into_inner().expect("bytes")).expect("write file");
        let got = read_wal(&path, Table::ViewerMinutes).expect("an older WAL reads");
        assert!(!got.truncated);
        let b = &got.batches[0];
        assert_eq!(b.schema(), Table::ViewerMinutes.schema());
        assert_eq!(b.column(6).as_ref(), full.column(6).as_ref());
        assert_eq!(
            (b.column(9).null_count(), b.column(10).null_count()),
            (1, 1)
        );
        // Another table's WAL is still refused.
        assert!(read_wal(&path, Table::StreamTicks).is_err());
    }

    #[test]
    fn names_parse_back() {
        let d = Path::new("/d");
        let p = part_path(d, Table::ViewSessions, 1_700_000_000_000, "node-a:1", 42);
        assert_eq!(
            p,
            Path::new("/d/view_sessions/day=2023-11-14/part-node-a:1-0000000042.parquet")
        );
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(parse_part_name(name), Some(("node-a:1", 42)));
        let w = wal_segment_path(d, "n-1", 7, Table::ViewerMinutes);
        let name = w.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(parse_wal_name(name), Some(("n-1", 7, Table::ViewerMinutes)));
        assert_eq!(parse_wal_name("n-1-0000000007-nope.arrows"), None);
    }

    #[test]
    fn parts_are_sorted_by_target_and_time_in_bounded_row_groups() {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use pulse_schemas::{Id, TableRow, TargetKind, TickRow};
        let id = Id::new_unchecked;
        // Two writes, each in time order over three streams (as the aggregator flushes).
        let write = |t0: i64| {
            let rows: Vec<_> = (0..3)
                .flat_map(|i| (0..ROW_GROUP_ROWS as i64 / 2).map(move |k| (i, t0 + k * 5_000)))
                .map(|(i, t)| {
                    let s = id(&format!("s{}", 2 - i));
                    TickRow::empty(id("n"), TargetKind::Stream, s, id("c"), t)
                })
                .collect::<Vec<_>>();
            TickRow::to_batch(&rows)
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("part.parquet");
        let batches = [write(1_000_000_000), write(0)];
        write_part(&path, Table::StreamTicks, &batches).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let groups = builder.metadata().row_groups().to_vec();
        let total = 3 * ROW_GROUP_ROWS;
        assert_eq!(
            groups.iter().map(|g| g.num_rows() as usize).sum::<usize>(),
            total
        );
        assert!(
            groups
                .iter()
                .all(|g| g.num_rows() as usize <= ROW_GROUP_ROWS)
        );
        let mut keys = Vec::new();
        for b in builder.build().unwrap() {
            let b = b.unwrap();
            let target = arrow::compute::cast(
                b.column_by_name("target").unwrap(),
                &arrow::datatypes::DataType::Utf8,
            )
            .unwrap();
            let t = b
                .column_by_name("t")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone();
            let target = target
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            for r in 0..b.num_rows() {
                keys.push((target.value(r).to_owned(), t.value(r)));
            }
        }
        assert_eq!(keys.len(), total);
        assert!(
            keys.windows(2).all(|w| w[0] <= w[1]),
            "rows not sorted by (target, t)"
        );
        // The second write's rows (earlier times) come first within each stream.
        assert_eq!(keys.first().map(|k| k.1), Some(0));
        assert_eq!(keys.first().map(|k| k.0.as_str()), Some("s0"));
        assert_eq!(keys.last().map(|k| k.0.as_str()), Some("s2"));
    }
}
