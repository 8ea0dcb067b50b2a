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
