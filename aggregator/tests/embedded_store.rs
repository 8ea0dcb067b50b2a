//! The embedded store writer: Parquet per day, no row seen twice or missed by readers,
//! restart after shutdown and after crashes. Test names start with `sinks_`.

use arrow::array::{Array, Int64Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use pulse_aggregator::sinks::embedded::{self, EmbeddedSink, EmbeddedStoreConfig};
use pulse_aggregator::sinks::{Provisional, WindowSink};
use pulse_schemas::{
    ClosedWindows, EmbeddedTables, EndReason, Id, SessionRow, Table, TablesView, TargetKind,
    TickRow, ViewerMinuteRow,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const DAY_MS: i64 = 86_400_000;
/// 2023-11-14T00:00:00Z
const DAY0: i64 = 1_699_920_000_000;
const NODE: &str = "node-1";

fn id(s: &str) -> Id {
    Id::new_unchecked(s)
}

/// Write number `w`: `n` rows per table on UTC day `w % 3`, time values unique per table.
fn windows(w: i64, n: i64) -> ClosedWindows {
    let base = DAY0 + (w % 3) * DAY_MS + w * 1_000_000;
    let times: Vec<i64> = (0..n).map(|i| base + i * 5000).collect();
    ClosedWindows {
        ticks: times
            .iter()
            .map(|&t| TickRow::empty(id(NODE), TargetKind::Stream, id("s1"), id("c1"), t))
            .collect(),
        sessions: times
            .iter()
            .take((n / 2) as usize)
            .map(|&t| SessionRow {
                node: id(NODE),
                kind: TargetKind::Stream,
                target: id("s1"),
                channel: id("c1"),
                session: id(&format!("x{t}")),
                viewer: id("u1"),
                start_ts: t - 60_000,
                end_ts: t,
                end_reason: EndReason::Viewend,
                counted_view: true,
                watch_ms: 50_000,
                rebuffer_ms: 0,
                rebuffer_count: 0,
                startup_ms: Some(300),
                device: Some("desktop"),
                country: None,
                player: Some("p".into()),
                embed: false,
            })
            .collect(),
        viewer_minutes: times
            .iter()
            .map(|&t| ViewerMinuteRow {
                node: id(NODE),
                kind: TargetKind::Stream,
                target: id("s1"),
                channel: id("c1"),
                minute: t,
                viewer: id("u1"),
                events: 3,
                followed: false,
                chat_messages: 1,
                seen_mask: 0b11,
                follow_mask: 0,
            })
            .collect(),
        qoe_minutes: times
            .iter()
            .map(|&t| pulse_schemas::QoeMinuteRow {
                node: id(NODE),
                kind: TargetKind::Stream,
                target: id("s1"),
                channel: id("c1"),
                minute: t,
                device: "mobile".into(),
                country: "DE".into(),
                player: "p".into(),
                viewer_ticks: 12,
                views: 1,
                watch_ms: 60_000,
                rebuffer_ms: 500,
                rebuffer_count: 1,
                startups: 0,
                startup_hist: Vec::new(),
                failures: 0,
            })
            .collect(),
        health_ticks: times
            .iter()
            .map(|&t| pulse_schemas::HealthTickRow {
                node: id(NODE),
                stream: id("s1"),
                channel: id("c1"),
                t,
                reports: 5,
                seconds_reported: 5,
                bitrate_mean_kbps: 5000.0,
                bitrate_min_kbps: 4800,
                target_bitrate_kbps: Some(5500),
                fps_mean: 60.0,
                resolution: Some("1920x1080".into()),
                latency_mean_ms: None,
                packet_loss_mean_pct: Some(0.1),
                dropped_frames: 0,
                status: "excellent",
            })
            .collect(),
        alerts: times
            .iter()
            .take((n / 2) as usize)
            .map(|&t| pulse_schemas::AlertRow {
                node: id(NODE),
                stream: id("s1"),
                channel: id("c1"),
                ts: t + 1,
                alert: "bitrate_drop",
                severity: "warning",
                state: "firing",
                value: 3000.0,
                threshold: 3850.0,
                message: "Bitrate is 3000 kbps".into(),
            })
            .collect(),
        closed_through: base + n * 5000,
    }
}

fn provisional(w: i64) -> Provisional {
    let t = DAY0 + 10 * DAY_MS + w;
    Provisional {
        ticks: vec![TickRow::empty(
            id(NODE),
            TargetKind::Stream,
            id("s1"),
            id("c1"),
            t,
        )],
        viewer_minutes: vec![],
        qoe_minutes: vec![],
    }
}

/// Time-column values per table of writes `0..k`, sorted.
fn expected(writes: &[(i64, i64)]) -> BTreeMap<Table, Vec<i64>> {
    let mut out: BTreeMap<Table, Vec<i64>> = BTreeMap::new();
    for &(w, n) in writes {
        let c = windows(w, n);
        out.entry(Table::StreamTicks)
            .or_default()
            .extend(c.ticks.iter().map(|r| r.t));
        out.entry(Table::ViewSessions)
            .or_default()
            .extend(c.sessions.iter().map(|r| r.end_ts));
        out.entry(Table::ViewerMinutes)
            .or_default()
            .extend(c.viewer_minutes.iter().map(|r| r.minute));
        out.entry(Table::QoeMinutes)
            .or_default()
            .extend(c.qoe_minutes.iter().map(|r| r.minute));
        out.entry(Table::HealthTicks)
            .or_default()
            .extend(c.health_ticks.iter().map(|r| r.t));
        out.entry(Table::Alerts)
            .or_default()
            .extend(c.alerts.iter().map(|r| r.ts));
    }
    out.values_mut().for_each(|v| v.sort_unstable());
    out
}

fn times_of(table: Table, batches: &[RecordBatch]) -> Vec<i64> {
    let mut out = Vec::new();
    for b in batches {
        let col = b.column_by_name(table.time_column()).expect("time column");
        let col = col.as_any().downcast_ref::<Int64Array>().expect("Int64");
        out.extend(col.values().iter().copied());
    }
    out
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).expect("open parquet");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("parquet footer")
        .build()
        .expect("reader");
    reader.map(|b| b.expect("batch")).collect()
}

/// Every closed row a reader of `view` sees (files ∪ recent), as sorted time values.
fn view_rows(
    view: &TablesView,
    cache: &mut HashMap<PathBuf, Vec<RecordBatch>>,
) -> BTreeMap<Table, Vec<i64>> {
    let mut out = BTreeMap::new();
    for &table in Table::ALL {
        let mut rows = Vec::new();
        for path in view.files.get(&table).into_iter().flatten() {
            let batches = cache
                .entry(path.clone())
                .or_insert_with(|| read_parquet(path));
            rows.extend(times_of(table, batches));
        }
        rows.extend(times_of(
            table,
            view.recent.get(&table).map(Vec::as_slice).unwrap_or(&[]),
        ));
        rows.sort_unstable();
        if !rows.is_empty() {
            out.insert(table, rows);
        }
    }
    out
}

fn config(dir: &Path) -> EmbeddedStoreConfig {
    EmbeddedStoreConfig {
        data_dir: dir.to_path_buf(),
        max_recent_rows: 1_000_000,
        compact_after_ms: 3_600_000,
        ..EmbeddedStoreConfig::default()
    }
}

fn open(cfg: &EmbeddedStoreConfig) -> (EmbeddedSink, Arc<EmbeddedTables>) {
    let tables = EmbeddedTables::new();
    let sink = EmbeddedSink::open(cfg.clone(), id(NODE), tables.clone()).expect("open store");
    (sink, tables)
}

fn rows_now(tables: &EmbeddedTables) -> BTreeMap<Table, Vec<i64>> {
    view_rows(&tables.view(), &mut HashMap::new())
}

#[test]
fn sinks_parquet_per_day_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut sink, tables) = open(&config(dir.path()));
    let writes: Vec<(i64, i64)> = (0..6).map(|w| (w, 20)).collect();
    for (k, &(w, n)) in writes.iter().enumerate() {
        sink.write(&windows(w, n), &provisional(w)).expect("write");
        let view = tables.view();
        assert_eq!(
            view_rows(&view, &mut HashMap::new()),
            expected(&writes[..=k])
        );
        assert_eq!(
            view.provisional_ticks
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>(),
            1
        );
        assert_eq!(
            view.closed_through,
            windows(w, n).closed_through.max(view.closed_through)
        );
    }
    sink.shutdown().expect("shutdown");
    let view = tables.view();
    assert!(
        view.recent.values().all(Vec::is_empty),
        "everything compacted"
    );
    assert_eq!(view_rows(&view, &mut HashMap::new()), expected(&writes));
    for &table in Table::ALL {
        let files = embedded::list_parquet_files(dir.path(), table).expect("list");
        assert_eq!(
            files.len(),
            3,
            "{table:?}: one file per day of the single segment"
        );
        let mut all = Vec::new();
        for (d, file) in files.iter().enumerate() {
            let day_ms = DAY0 + d as i64 * DAY_MS;
            assert_eq!(
                file.parent(),
                Some(embedded::day_dir(dir.path(), table, day_ms).as_path())
            );
            let name = file.file_name().and_then(|n| n.to_str()).expect("name");
            assert_eq!(embedded::parse_part_name(name).map(|(n, _)| n), Some(NODE));
            let times = times_of(table, &read_parquet(file));
            assert!(
                times.iter().all(|t| (day_ms..day_ms + DAY_MS).contains(t)),
                "rows of another day in {file:?}"
            );
            all.extend(times);
        }
        all.sort_unstable();
        assert_eq!(all, expected(&writes)[&table]);
    }
    assert!(
        std::fs::read_dir(embedded::wal_dir(dir.path()))
            .expect("wal dir")
            .next()
            .is_none(),
        "WAL deleted"
    );
    let metrics = prometheus::gather();
    assert!(
        metrics
            .iter()
            .any(|m| m.name() == "pulse_store_rows_written_total")
    );
    assert!(
        metrics
            .iter()
            .any(|m| m.name() == "pulse_store_compaction_seconds")
    );
}

#[test]
fn sinks_readers_never_see_rows_twice_or_miss_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = EmbeddedStoreConfig {
        max_recent_rows: 45,
        ..config(dir.path())
    };
    let (mut sink, tables) = open(&cfg);
    let writes: Vec<(i64, i64)> = (0..40).map(|w| (w, 10 + w % 7)).collect();
    let published = Arc::new(Mutex::new(0usize)); // writes whose rows may be visible
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (tables, published, stop, writes) = (
            tables.clone(),
            published.clone(),
            stop.clone(),
            writes.clone(),
        );
        std::thread::spawn(move || {
            let mut cache = HashMap::new();
            let mut checked = 0;
            while !stop.load(Ordering::Relaxed) {
                let view = tables.view();
                let upper = *published.lock().expect("lock");
                let seen = view_rows(&view, &mut cache);
                let ok = (0..=upper).any(|k| seen == expected(&writes[..k]));
                assert!(
                    ok,
                    "view {} is not the rows of a prefix of the writes",
                    view.version
                );
                checked += 1;
            }
            checked
        })
    };
    for (k, &(w, n)) in writes.iter().enumerate() {
        *published.lock().expect("lock") = k + 1;
        sink.write(&windows(w, n), &Provisional::default())
            .expect("write");
        assert_eq!(
            rows_now(&tables),
            expected(&writes[..=k]),
            "after write {k}"
        );
        assert!(tables.view().rows_in_memory() <= 45 + 20);
    }
    sink.shutdown().expect("shutdown");
    assert_eq!(rows_now(&tables), expected(&writes));
    stop.store(true, Ordering::Relaxed);
    let checked = reader.join().expect("reader thread");
    assert!(checked > 0);
    // Compacting at every write (age 0) keeps the same answer.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let (mut sink, tables) = open(&EmbeddedStoreConfig {
        compact_after_ms: 0,
        ..config(dir2.path())
    });
    for (k, &(w, n)) in writes.iter().take(8).enumerate() {
        sink.write(&windows(w, n), &Provisional::default())
            .expect("write");
        let view = tables.view();
        assert!(view.recent.values().all(Vec::is_empty));
        assert_eq!(
            view_rows(&view, &mut HashMap::new()),
            expected(&writes[..=k])
        );
    }
}

#[test]
fn sinks_reopen_after_shutdown_serves_the_same_rows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let writes: Vec<(i64, i64)> = (0..5).map(|w| (w, 12)).collect();
    {
        let (mut sink, _tables) = open(&cfg);
        for &(w, n) in &writes[..3] {
            sink.write(&windows(w, n), &provisional(w)).expect("write");
        }
        sink.shutdown().expect("shutdown");
    }
    let (mut sink, tables) = open(&cfg);
    assert_eq!(rows_now(&tables), expected(&writes[..3]));
    for &(w, n) in &writes[3..] {
        sink.write(&windows(w, n), &provisional(w)).expect("write");
    }
    assert_eq!(rows_now(&tables), expected(&writes));
    sink.shutdown().expect("shutdown");
    drop(sink);
    let (_sink, tables) = open(&cfg);
    assert_eq!(rows_now(&tables), expected(&writes));
}

/// This node's WAL file of `table` in the newest segment.
fn newest_wal_file(dir: &Path, table: Table) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(embedded::wal_dir(dir))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            embedded::parse_wal_name(name).is_some_and(|(n, _, t)| n == NODE && t == table)
        })
        .collect();
    files.sort();
    files.pop().expect("a WAL file")
}

#[test]
fn sinks_reopen_after_crash_serves_every_returned_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let writes: Vec<(i64, i64)> = (0..8).map(|w| (w, 9)).collect();
    {
        let (mut sink, _tables) = open(&cfg);
        for &(w, n) in &writes[..4] {
            sink.write(&windows(w, n), &provisional(w)).expect("write");
        }
        // Dropped without shutdown: a crash after the last write returned.
    }
    // A compaction cut by the crash left a temporary part behind.
    let stale = embedded::day_dir(dir.path(), Table::StreamTicks, DAY0)
        .join(format!(".part-{NODE}-0000000077.parquet.tmp"));
    std::fs::create_dir_all(stale.parent().expect("parent")).expect("mkdir");
    std::fs::write(&stale, b"half a file").expect("write tmp");
    {
        let (mut sink, tables) = open(&cfg);
        assert!(!stale.exists(), "stale temporary part deleted");
        assert_eq!(rows_now(&tables), expected(&writes[..4]));
        for &(w, n) in &writes[4..] {
            sink.write(&windows(w, n), &provisional(w)).expect("write");
        }
        assert_eq!(rows_now(&tables), expected(&writes));
    }
    // The process died inside the last write's WAL append: its ticks message is cut.
    let wal = newest_wal_file(dir.path(), Table::StreamTicks);
    let len = std::fs::metadata(&wal).expect("meta").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .expect("open wal");
    file.set_len(len - 40).expect("truncate");
    drop(file);
    let (mut sink, tables) = open(&cfg);
    let mut want = expected(&writes);
    let last = windows(writes[7].0, writes[7].1);
    want.insert(
        Table::StreamTicks,
        expected(&writes[..7])[&Table::StreamTicks].clone(),
    );
    assert_eq!(rows_now(&tables), want);
    assert!(
        last.ticks
            .iter()
            .all(|r| !rows_now(&tables)[&Table::StreamTicks].contains(&r.t))
    );
    // What was recovered compacts and survives one more restart.
    sink.shutdown().expect("shutdown");
    drop(sink);
    let (_sink, tables) = open(&cfg);
    assert_eq!(rows_now(&tables), want);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
    }
}

#[test]
fn sinks_crash_between_parquet_rename_and_wal_delete_does_not_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backup = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let writes: Vec<(i64, i64)> = (0..6).map(|w| (w, 10)).collect();
    {
        let (mut sink, _tables) = open(&cfg);
        for &(w, n) in &writes {
            sink.write(&windows(w, n), &Provisional::default())
                .expect("write");
        }
        copy_dir(&embedded::wal_dir(dir.path()), backup.path());
        sink.shutdown().expect("shutdown");
    }
    // Put the WAL back as if the process died after the renames, before the delete;
    // and as if it died half way through the days of one table (day 2 not renamed).
    copy_dir(backup.path(), &embedded::wal_dir(dir.path()));
    let day2 = embedded::list_parquet_files(dir.path(), Table::ViewerMinutes).expect("list");
    assert_eq!(day2.len(), 3);
    std::fs::remove_file(&day2[2]).expect("remove day-2 part");
    {
        let (mut sink, tables) = open(&cfg);
        assert_eq!(rows_now(&tables), expected(&writes));
        let recent = &tables.view().recent;
        assert_eq!(
            recent
                .values()
                .flatten()
                .map(RecordBatch::num_rows)
                .sum::<usize>(),
            20,
            "only day 2 of viewer_minutes reloaded"
        );
        sink.shutdown().expect("shutdown");
        assert_eq!(rows_now(&tables), expected(&writes));
    }
    assert!(
        std::fs::read_dir(embedded::wal_dir(dir.path()))
            .expect("wal")
            .next()
            .is_none()
    );
    // Every day of every segment fully renamed: the WAL loads nothing and is deleted.
    copy_dir(backup.path(), &embedded::wal_dir(dir.path()));
    let (_sink, tables) = open(&cfg);
    assert_eq!(rows_now(&tables), expected(&writes));
    assert!(tables.view().recent.values().all(Vec::is_empty));
    assert!(
        std::fs::read_dir(embedded::wal_dir(dir.path()))
            .expect("wal")
            .next()
            .is_none()
    );
}

#[test]
fn sinks_parquet_failure_keeps_rows_and_memory_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = EmbeddedStoreConfig {
        max_recent_rows: 30,
        max_memory_rows: 60,
        compaction_retry_ms: 0,
        ..config(dir.path())
    };
    let (mut sink, tables) = open(&cfg);
    // A file where the stream_ticks directory should be: every compaction fails.
    let blocker = embedded::parquet_dir(dir.path(), Table::StreamTicks);
    std::fs::write(&blocker, b"not a directory").expect("blocker");
    let writes: Vec<(i64, i64)> = (0..12).map(|w| (w, 10)).collect();
    for &(w, n) in &writes {
        sink.write(&windows(w, n), &Provisional::default())
            .expect("write succeeds: the WAL has the rows");
        let view = tables.view();
        assert!(
            view.rows_in_memory() <= 60,
            "memory bounded: {}",
            view.rows_in_memory()
        );
        assert!(
            view.files
                .get(&Table::StreamTicks)
                .is_none_or(Vec::is_empty)
        );
    }
    // Rows spilled out of memory are not served meanwhile, but none is served twice.
    let seen = rows_now(&tables);
    let all = expected(&writes);
    for (table, rows) in &seen {
        let mut dedup = rows.clone();
        dedup.dedup();
        assert_eq!(&dedup, rows);
        assert!(rows.iter().all(|t| all[table].binary_search(t).is_ok()));
    }
    std::fs::remove_file(&blocker).expect("unblock");
    let more = (12, 10);
    sink.write(&windows(more.0, more.1), &Provisional::default())
        .expect("write");
    let mut writes = writes;
    writes.push(more);
    assert_eq!(
        rows_now(&tables),
        expected(&writes),
        "spilled rows reloaded from the WAL and compacted"
    );
    sink.shutdown().expect("shutdown");
    drop(sink);
    let (_sink, tables) = open(&cfg);
    assert_eq!(rows_now(&tables), expected(&writes));
}
