//! The ClickHouse SQL in both dialects: the DDL and every query the reader issues run on
//! Debian's clickhouse-server 18.16 (started by the harness) and on current ClickHouse
//! (chDB, `scripts/chdb_dialect_check.py`); the tables' columns match the Arrow schemas.

mod common;

use common::clickhouse::ClickHouse;
use pulse_schemas::Table;
use pulse_schemas::clickhouse::{DDL, clickhouse_type};
use std::path::Path;

#[test]
fn ddl_and_every_reader_query_run_on_18_16_and_on_current_clickhouse() {
    let ch = ClickHouse::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = pulse_aggregator::sinks::clickhouse::client(&ch.url());
    // Twice: `pulse migrate` and every start-up apply it again.
    for _ in 0..2 {
        let n = rt
            .block_on(pulse_aggregator::sinks::clickhouse::migrate(&client))
            .expect("migrate");
        assert_eq!(n, DDL.len());
    }
    let tables = ch.sql("SHOW TABLES").expect("show tables");
    for (_, ddl) in DDL {
        let name = ddl
            .split("CREATE TABLE IF NOT EXISTS ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .expect("table name");
        assert!(tables.lines().any(|l| l == name), "{name} in {tables}");
    }
    // The server's own view of each table with a Rust row matches its Arrow schema.
    for &t in Table::ALL {
        let desc = ch
            .sql(&format!("DESCRIBE TABLE {} FORMAT TSV", t.name()))
            .expect("describe");
        let got: Vec<(String, String)> = desc
            .lines()
            .map(|l| {
                let mut c = l.split('\t');
                (
                    c.next().unwrap_or_default().to_owned(),
                    c.next().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = t
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), clickhouse_type(f).expect("mapped")))
            .collect();
        assert_eq!(got, want, "{}", t.name());
    }
    let mut queries = pulse_query::store::clickhouse::every_query();
    queries
        .push(pulse_aggregator::sinks::clickhouse::PARTITIONS_SQL.replace('?', "'stream_ticks'"));
    assert!(queries.len() > 30);
    for q in &queries {
        assert!(!q.contains('?'), "unbound placeholder in {q}");
        if let Err(e) = ch.sql(q) {
            panic!("18.16 refuses {q}: {e}");
        }
    }
    // The same DDL and queries through chDB (current ClickHouse).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("queries.sql");
    std::fs::write(&file, queries.join("\n")).expect("write queries");
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/chdb_dialect_check.py"))
        .arg(root.join("schemas/clickhouse"))
        .arg(&file)
        .output()
        .expect("python3 runs (scripts/need-clickhouse.sh installs chDB)");
    assert!(
        out.status.success(),
        "chDB refused our SQL:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `viewer_minutes` table created by a Pulse from before the 5-second slice masks
/// gains them at the next migrate; its old rows read null (in no slice), new rows insert.
#[test]
fn migrate_adds_the_columns_an_older_table_lacks() {
    let ch = ClickHouse::start();
    let old = pulse_schemas::clickhouse::ddl_of("viewer_minutes")
        .expect("viewer_minutes DDL")
        .replace(
            ",\n    seen_mask Nullable(Int64),\n    follow_mask Nullable(Int64)\n",
            "\n",
        );
    assert!(!old.contains("seen_mask"), "{old}");
    ch.sql(&old).expect("create the old table");
    ch.sql(
        "INSERT INTO viewer_minutes (node, kind, target, channel, minute, viewer, events, \
         followed, chat_messages) VALUES ('n', 'stream', 's', 'c', 60000, 'v', 1, 1, 0)",
    )
    .expect("insert an old row");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = pulse_aggregator::sinks::clickhouse::client(&ch.url());
    let n = rt
        .block_on(pulse_aggregator::sinks::clickhouse::migrate(&client))
        .expect("migrate");
    assert_eq!(n, DDL.len() + 2, "two ALTERs");
    let n = rt
        .block_on(pulse_aggregator::sinks::clickhouse::migrate(&client))
        .expect("migrate again");
    assert_eq!(n, DDL.len(), "nothing left to add");
    let desc = ch
        .sql("DESCRIBE TABLE viewer_minutes FORMAT TSV")
        .expect("describe");
    let cols: Vec<&str> = desc.lines().filter_map(|l| l.split('\t').next()).collect();
    let want: Vec<String> = Table::ViewerMinutes
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(cols, want);
    ch.sql(&format!(
        "INSERT INTO viewer_minutes ({}) VALUES ('n', 'stream', 's', 'c', 120000, 'v', 2, 0, 0, 6, 0)",
        want.join(", ")
    ))
    .expect("insert a new row");
    let rows = ch
        .sql("SELECT minute, seen_mask, follow_mask FROM viewer_minutes ORDER BY minute FORMAT TSV")
        .expect("select");
    assert_eq!(rows.trim(), "60000\t\\N\t\\N\n120000\t6\t0");
}
