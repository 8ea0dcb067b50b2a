//! Retention in the embedded store: whole day directories older than the cutoff go,
//! readers stop seeing their files, younger days stay.

use pulse_aggregator::sinks::embedded::{EmbeddedSink, EmbeddedStoreConfig, day_dir};
use pulse_aggregator::sinks::{Provisional, WindowSink};
use pulse_schemas::event::TargetKind;
use pulse_schemas::{ClosedWindows, EmbeddedTables, Id, Table, TickRow};

const DAY: i64 = 86_400_000;
const DAY0: i64 = 20_400;

#[test]
fn drops_whole_days_before_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let tables = EmbeddedTables::new();
    let cfg = EmbeddedStoreConfig {
        data_dir: dir.path().to_path_buf(),
        ..EmbeddedStoreConfig::default()
    };
    let mut sink = EmbeddedSink::open(cfg, Id::new_unchecked("n1"), tables.clone()).unwrap();
    let mut w = ClosedWindows::default();
    for d in 0..4 {
        let t = (DAY0 + d) * DAY + 5000;
        let id = Id::new_unchecked;
        let mut row = TickRow::empty(id("n1"), TargetKind::Stream, id("s1"), id("c1"), t);
        row.events = 1;
        w.ticks.push(row);
    }
    w.closed_through = (DAY0 + 4) * DAY;
    sink.write(&w, &Provisional::default()).unwrap();
    assert!(sink.compact_now().unwrap() > 0);
    let files = |t: &std::sync::Arc<EmbeddedTables>| {
        t.view().files.get(&Table::StreamTicks).map_or(0, Vec::len)
    };
    assert_eq!(files(&tables), 4);

    let dropped = sink.drop_days_before((DAY0 + 2) * DAY + 1).unwrap();
    assert_eq!(
        dropped,
        vec![
            (Table::StreamTicks, "2025-11-08".to_owned()),
            (Table::StreamTicks, "2025-11-09".to_owned())
        ]
    );
    assert_eq!(files(&tables), 2);
    for d in 0..4 {
        let path = day_dir(dir.path(), Table::StreamTicks, (DAY0 + d) * DAY);
        assert_eq!(path.exists(), d >= 2, "{}", path.display());
    }
    // Idempotent: nothing more before the same cutoff.
    assert!(sink.drop_days_before((DAY0 + 2) * DAY).unwrap().is_empty());
    assert_eq!(files(&tables), 2);
    sink.shutdown().unwrap();
}
