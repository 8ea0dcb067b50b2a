//! The embedded store's hot tail (`sinks/hot_ticks.rs`): after compaction and after a
//! reopen, `TablesView::hot_ticks` holds exactly the rows of the newest `hot_ticks_ms` of
//! the `stream_ticks` parts it names, within its row bound, and retention takes it away
//! with its parts.

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pulse_aggregator::sinks::embedded::{EmbeddedSink, EmbeddedStoreConfig};
use pulse_aggregator::sinks::{Provisional, WindowSink};
use pulse_schemas::{ClosedWindows, EmbeddedTables, Id, Table, TargetKind, TickRow};
use std::path::Path;
use std::sync::Arc;

/// 2023-11-14T00:00:00Z
const DAY0: i64 = 1_699_920_000_000;

fn id(s: &str) -> Id {
    Id::new_unchecked(s)
}

/// One tick row per stream (`s0`, `s1`) at each of `times`.
fn ticks(times: &[i64]) -> ClosedWindows {
    let mut rows = Vec::new();
    for &t in times {
        for s in ["s0", "s1"] {
            let mut r = TickRow::empty(id("n1"), TargetKind::Stream, id(s), id("c1"), t);
            r.events = 1;
            r.viewers = 3;
            rows.push(r);
        }
    }
    ClosedWindows {
        ticks: rows,
        closed_through: times.iter().max().map_or(0, |t| t + 5_000),
        ..ClosedWindows::default()
    }
}

fn config(dir: &Path, window_ms: u64, max_rows: usize) -> EmbeddedStoreConfig {
    EmbeddedStoreConfig {
        data_dir: dir.to_path_buf(),
        max_recent_rows: 1_000_000,
        compact_after_ms: 3_600_000,
        hot_ticks_ms: window_ms,
        hot_ticks_max_rows: max_rows,
        ..EmbeddedStoreConfig::default()
    }
}

/// The `t` values of `batches`, in their order.
fn times_in_order(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("t")
                .expect("t")
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

/// The `t` values of `batches`, sorted.
fn times(batches: &[RecordBatch]) -> Vec<i64> {
    let mut out = times_in_order(batches);
    out.sort_unstable();
    out
}

fn part_times(path: &Path) -> Vec<i64> {
    let file = std::fs::File::open(path).expect("part");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet")
        .build()
        .expect("reader");
    times(&reader.map(|b| b.expect("batch")).collect::<Vec<_>>())
}

/// Checks every entry: it holds exactly its parts' rows with `t >= from`, in `t` order.
fn check_entries(tables: &EmbeddedTables) -> usize {
    let view = tables.view();
    let files = view
        .files
        .get(&Table::StreamTicks)
        .cloned()
        .unwrap_or_default();
    let mut rows = 0;
    for h in &view.hot_ticks {
        assert!(h.files.iter().all(|f| files.contains(f)), "published parts");
        let want: Vec<i64> = h
            .files
            .iter()
            .flat_map(|p| part_times(p))
            .filter(|t| *t >= h.from)
            .collect::<Vec<_>>();
        let mut want = want;
        want.sort_unstable();
        let in_order = times_in_order(&h.batches);
        assert!(in_order.windows(2).all(|w| w[0] <= w[1]), "ordered by t");
        assert_eq!(
            times(&h.batches),
            want,
            "entry of {:?} from {}",
            h.files,
            h.from
        );
        rows += h.rows();
    }
    rows
}

#[test]
fn sinks_hot_tail_follows_compaction_reopen_and_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tables = EmbeddedTables::new();
    let cfg = config(dir.path(), 20_000, 1_000);
    let mut sink = EmbeddedSink::open(cfg.clone(), id("n1"), tables.clone()).expect("open");
    let first: Vec<i64> = (0..10).map(|i| DAY0 + i * 5_000).collect();
    sink.write(&ticks(&first), &Provisional::default())
        .expect("write");
    assert!(tables.view().hot_ticks.is_empty(), "nothing compacted yet");
    sink.compact_now().expect("compact");
    let view = tables.view();
    assert_eq!(view.hot_ticks.len(), 1);
    assert_eq!(view.hot_ticks[0].from, DAY0 + 45_000 - 20_000);
    // Rows of t in [25 s, 45 s]: 5 ticks × 2 streams.
    assert_eq!(check_entries(&tables), 10);

    // A later segment moves the window: the first entry keeps only what is inside it.
    let second: Vec<i64> = (10..14).map(|i| DAY0 + i * 5_000).collect();
    sink.write(&ticks(&second), &Provisional::default())
        .expect("write");
    sink.compact_now().expect("compact");
    let view = tables.view();
    assert_eq!(view.hot_ticks.len(), 2);
    // The older entry was cut at the new cutoff; the newer one holds its segment whole.
    assert_eq!(view.hot_ticks[0].from, DAY0 + 65_000 - 20_000);
    assert_eq!(view.hot_ticks[1].from, i64::MIN);
    assert_eq!(check_entries(&tables), 10);
    sink.shutdown().expect("shutdown");
    drop(sink);

    // Reopen: the tail comes back from the parts themselves.
    let tables = EmbeddedTables::new();
    let mut sink = EmbeddedSink::open(cfg, id("n1"), tables.clone()).expect("reopen");
    assert_eq!(check_entries(&tables), 10);
    assert_eq!(
        times(
            &tables
                .view()
                .hot_ticks
                .iter()
                .flat_map(|h| h.batches.clone())
                .collect::<Vec<_>>()
        ),
        (9..14)
            .flat_map(|i| [DAY0 + i * 5_000; 2])
            .collect::<Vec<_>>()
    );

    // Retention of the day takes the tail with the parts.
    sink.drop_days_before(DAY0 + 86_400_000).expect("retention");
    assert!(tables.view().hot_ticks.is_empty());
}

#[test]
fn sinks_hot_tail_stays_within_its_row_bound_and_can_be_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tables = EmbeddedTables::new();
    let mut sink = EmbeddedSink::open(config(dir.path(), 3_600_000, 12), id("n1"), tables.clone())
        .expect("open");
    for w in 0..4 {
        let ts: Vec<i64> = (0..4).map(|i| DAY0 + (w * 4 + i) * 5_000).collect();
        sink.write(&ticks(&ts), &Provisional::default())
            .expect("write");
        sink.compact_now().expect("compact");
        let rows = check_entries(&tables);
        assert!(rows <= 12, "{rows} hot rows over the bound of 12");
    }
    // Whole entries leave, oldest first: the newest segment (8 rows) stays.
    let newest = tables.view().hot_ticks.last().map(|h| times(&h.batches));
    assert_eq!(
        newest,
        Some((12..16).flat_map(|i| [DAY0 + i * 5_000; 2]).collect())
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let tables: Arc<EmbeddedTables> = EmbeddedTables::new();
    let mut sink =
        EmbeddedSink::open(config(dir.path(), 0, 1_000), id("n1"), tables.clone()).expect("open");
    sink.write(&ticks(&[DAY0]), &Provisional::default())
        .expect("write");
    sink.compact_now().expect("compact");
    assert!(
        tables.view().hot_ticks.is_empty(),
        "hot_ticks_ms = 0 turns it off"
    );
}
