//! The ClickHouse sink against a real server (Debian's 18.16, started by the harness):
//! rows land once even when a flush is written twice, an outage spools to disk and
//! drains in order when the server is back, and retention drops whole days.

mod common;

use common::clickhouse::ClickHouse;
use pulse_aggregator::WindowSink;
use pulse_aggregator::sinks::Provisional;
use pulse_aggregator::sinks::clickhouse::{ClickHouseConfig, ClickHouseSink, drop_days_before};
use pulse_schemas::clickhouse::DAY_MS;
use pulse_schemas::event::TargetKind;
use pulse_schemas::{ClosedWindows, Id, TickRow};
use std::time::Duration;

const DAY0: i64 = 20_400;

fn windows(days: &[i64], viewers: i64) -> ClosedWindows {
    let id = Id::new_unchecked;
    let mut w = ClosedWindows::default();
    for &d in days {
        for k in 0..3 {
            let mut t = TickRow::empty(
                id("n1"),
                TargetKind::Stream,
                id("s1"),
                id("c1"),
                d * DAY_MS + k * 5000,
            );
            t.viewers = viewers;
            t.events = 1;
            w.ticks.push(t);
        }
    }
    w.closed_through = days.iter().max().map_or(0, |d| (d + 1) * DAY_MS);
    w
}

fn sink(ch: &ClickHouse, spool: &std::path::Path) -> ClickHouseSink {
    let cfg = ClickHouseConfig {
        url: ch.url(),
        spool_dir: spool.to_path_buf(),
        insert_interval_ms: 50,
        retry_min_ms: 50,
        retry_max_ms: 200,
        request_timeout_ms: 5000,
        shutdown_drain_ms: 60_000,
        ..ClickHouseConfig::default()
    };
    ClickHouseSink::open(cfg, Id::new_unchecked("n1")).expect("sink")
}

fn scalar(ch: &ClickHouse, sql: &str) -> i64 {
    ch.sql(sql)
        .expect(sql)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("a number from {sql}"))
}

#[test]
fn writes_once_survives_an_outage_and_drops_old_days() {
    let mut ch = ClickHouse::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let spool = dir.path().join("spool");

    // A flush written twice (as after a lost acknowledgement) counts once.
    let mut s = sink(&ch, &spool);
    let first = windows(&[DAY0, DAY0 + 1], 2);
    s.write(&first, &Provisional::default()).expect("write");
    let mut again = first.clone();
    again.closed_through += 1;
    s.write(&again, &Provisional::default()).expect("write");
    s.shutdown().expect("shutdown drains");
    assert_eq!(s.spooled(), 0);
    drop(s);
    assert_eq!(scalar(&ch, "SELECT count() FROM stream_ticks FINAL"), 6);
    assert_eq!(
        scalar(&ch, "SELECT sum(viewers) FROM stream_ticks FINAL"),
        12
    );
    assert_eq!(
        scalar(
            &ch,
            "SELECT max(closed_through) FROM node_progress WHERE node = 'n1'"
        ),
        again.closed_through
    );

    // Outage: ClickHouse is killed; flushes go to the spool, nothing blocks.
    let mut s = sink(&ch, &spool);
    std::thread::sleep(Duration::from_millis(300));
    ch.kill();
    s.write(&windows(&[DAY0 + 2], 5), &Provisional::default())
        .expect("write while down");
    s.write(&windows(&[DAY0 + 3], 7), &Provisional::default())
        .expect("write while down");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s.spooled(), 2, "both flushes wait on disk");
    assert!(std::fs::read_dir(&spool).expect("spool").count() >= 2);
    ch.restart();
    s.shutdown().expect("drains after the restart");
    assert_eq!(s.spooled(), 0);
    drop(s);
    assert_eq!(scalar(&ch, "SELECT count() FROM stream_ticks FINAL"), 12);
    assert_eq!(
        scalar(&ch, "SELECT sum(viewers) FROM stream_ticks FINAL"),
        12 + 15 + 21
    );
    assert_eq!(
        scalar(&ch, "SELECT max(closed_through) FROM node_progress"),
        (DAY0 + 4) * DAY_MS
    );

    // Retention: keep the last two days.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = pulse_aggregator::sinks::clickhouse::client(&ch.url());
    let dropped = rt
        .block_on(drop_days_before(&client, (DAY0 + 2) * DAY_MS))
        .expect("retention");
    assert_eq!(
        dropped,
        vec![
            ("stream_ticks".to_owned(), DAY0),
            ("stream_ticks".to_owned(), DAY0 + 1)
        ]
    );
    assert_eq!(scalar(&ch, "SELECT count() FROM stream_ticks FINAL"), 6);
    assert_eq!(
        scalar(&ch, "SELECT min(t) FROM stream_ticks"),
        (DAY0 + 2) * DAY_MS
    );
    // Nothing more to drop.
    let again = rt
        .block_on(drop_days_before(&client, (DAY0 + 2) * DAY_MS))
        .expect("retention");
    assert!(again.is_empty());
}
