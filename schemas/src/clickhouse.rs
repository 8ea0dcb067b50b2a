//! The ClickHouse side of the tables: the DDL (`schemas/clickhouse/*.sql`, one file per
//! table of DESIGN.md decision 4, applied in file order) and the RowBinary encoding of
//! an Arrow batch of any [`Table`], so a writer needs no per-table code.
//!
//! Choices (kept inside the SQL that ClickHouse 18.16 and current releases both accept):
//! - Partition by UTC day as an integer, `intDiv(time_ms, 86400000)`: no time zone, and
//!   `ALTER TABLE … DROP PARTITION <day>` drops a day.
//! - `ReplacingMergeTree()` ordered by the row's natural key (which includes `node`):
//!   an insert that is retried or drained twice replaces rows instead of adding them, and
//!   readers use `FINAL`. (18.16 has neither `insert_deduplication_token` nor
//!   deduplication on non-replicated tables, so keys are the only way both versions share.)
//! - Column types: `Int64` ↔ `Int64`, `Boolean` ↔ `UInt8`, `Utf8`/`Binary` ↔ `String`,
//!   nullable ↔ `Nullable(T)`.

use crate::tables::Table;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type};

/// Every DDL statement, in the order it is applied (`CREATE TABLE IF NOT EXISTS`, so
/// applying them again changes nothing).
pub const DDL: &[(&str, &str)] = &[
    (
        "001_stream_ticks.sql",
        include_str!("../clickhouse/001_stream_ticks.sql"),
    ),
    (
        "002_view_sessions.sql",
        include_str!("../clickhouse/002_view_sessions.sql"),
    ),
    (
        "003_viewer_minutes.sql",
        include_str!("../clickhouse/003_viewer_minutes.sql"),
    ),
    (
        "004_stream_minutes.sql",
        include_str!("../clickhouse/004_stream_minutes.sql"),
    ),
    (
        "005_health_ticks.sql",
        include_str!("../clickhouse/005_health_ticks.sql"),
    ),
    (
        "006_alerts.sql",
        include_str!("../clickhouse/006_alerts.sql"),
    ),
    (
        "007_content_minutes.sql",
        include_str!("../clickhouse/007_content_minutes.sql"),
    ),
    (
        "008_trending.sql",
        include_str!("../clickhouse/008_trending.sql"),
    ),
    (
        "009_node_progress.sql",
        include_str!("../clickhouse/009_node_progress.sql"),
    ),
    (
        "010_qoe_minutes.sql",
        include_str!("../clickhouse/010_qoe_minutes.sql"),
    ),
];

/// The tables of the DDL that hold day partitions (every one but `node_progress`), with
/// the column that partitions each.
pub const PARTITIONED: &[(&str, &str)] = &[
    ("stream_ticks", "t"),
    ("view_sessions", "end_ts"),
    ("viewer_minutes", "minute"),
    ("stream_minutes", "minute"),
    ("health_ticks", "t"),
    ("alerts", "ts"),
    ("content_minutes", "minute"),
    ("trending", "t"),
    ("qoe_minutes", "minute"),
];

/// The table holding each node's `closed_through`.
pub const NODE_PROGRESS: &str = "node_progress";

/// Milliseconds in a day: the partition of a row is `time_ms / DAY_MS`.
pub const DAY_MS: i64 = 86_400_000;

/// The ClickHouse type of an Arrow field, or `None` for a type the tables never use.
pub fn clickhouse_type(field: &Field) -> Option<String> {
    let base = match field.data_type() {
        DataType::Int64 => "Int64",
        DataType::Boolean => "UInt8",
        DataType::Utf8 | DataType::Binary => "String",
        DataType::Float64 => "Float64",
        _ => return None,
    };
    Some(if field.is_nullable() {
        format!("Nullable({base})")
    } else {
        base.to_owned()
    })
}

/// `INSERT INTO <table> (<columns>) FORMAT RowBinary` for `table`'s Arrow schema.
pub fn insert_sql(table: Table) -> String {
    let schema = table.schema();
    let cols: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    format!(
        "INSERT INTO {} ({}) FORMAT RowBinary",
        table.name(),
        cols.join(", ")
    )
}

/// `INSERT` statement of the progress row encoded by [`encode_progress`].
pub fn progress_insert_sql() -> String {
    format!("INSERT INTO {NODE_PROGRESS} (node, closed_through) FORMAT RowBinary")
}

/// One `node_progress` row in RowBinary.
pub fn encode_progress(node: &str, closed_through: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(node.len() + 10);
    put_bytes(&mut out, node.as_bytes());
    out.extend_from_slice(&closed_through.to_le_bytes());
    out
}

/// A column type [`encode_rowbinary`] cannot write.
#[derive(Debug, thiserror::Error)]
#[error("column {column} has type {data_type}, which has no ClickHouse mapping")]
pub struct UnsupportedColumn {
    pub column: String,
    pub data_type: String,
}

/// Appends `batch` to `out` in ClickHouse's RowBinary format, row by row, columns in
/// schema order (the order of [`insert_sql`]).
pub fn encode_rowbinary(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<(), UnsupportedColumn> {
    let schema = batch.schema();
    if let Some(field) = schema
        .fields()
        .iter()
        .find(|f| clickhouse_type(f).is_none())
    {
        return Err(UnsupportedColumn {
            column: field.name().clone(),
            data_type: field.data_type().to_string(),
        });
    }
    for row in 0..batch.num_rows() {
        for (field, col) in schema.fields().iter().zip(batch.columns()) {
            if field.is_nullable() {
                if col.is_null(row) {
                    out.push(1);
                    continue;
                }
                out.push(0);
            }
            match col.data_type() {
                DataType::Int64 => {
                    let v = col.as_primitive::<Int64Type>().value(row);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                DataType::Float64 => {
                    let v = col
                        .as_primitive::<arrow::datatypes::Float64Type>()
                        .value(row);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                DataType::Boolean => out.push(u8::from(col.as_boolean().value(row))),
                DataType::Utf8 => put_bytes(out, col.as_string::<i32>().value(row).as_bytes()),
                DataType::Binary => put_bytes(out, col.as_binary::<i32>().value(row)),
                // Checked above for every column.
                _ => {}
            }
        }
    }
    Ok(())
}

/// A RowBinary string: LEB128 length, then the bytes.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut n = bytes.len() as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(bytes);
}

/// The column list of a `CREATE TABLE` statement as `(name, type)` pairs (the lines
/// between the parentheses; enough for our own DDL files, which a test keeps in step
/// with the Arrow schemas).
pub fn ddl_columns(ddl: &str) -> Vec<(String, String)> {
    // Comments above the statement may hold parentheses: start at CREATE TABLE.
    let Some(create) = ddl.find("CREATE TABLE") else {
        return Vec::new();
    };
    let body = &ddl[create..];
    let (Some(open), Some(close)) = (body.find('('), body.find(") ENGINE")) else {
        return Vec::new();
    };
    body[open + 1..close]
        .split(',')
        .filter_map(|c| {
            let c = c.trim();
            let (name, ty) = c.split_once(' ')?;
            Some((name.to_owned(), ty.trim().to_owned()))
        })
        .collect()
}

/// The DDL statement creating `table`.
pub fn ddl_of(table: &str) -> Option<&'static str> {
    let needle = format!("CREATE TABLE IF NOT EXISTS {table} (");
    DDL.iter().map(|(_, s)| *s).find(|s| s.contains(&needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::TargetKind;
    use crate::id::Id;
    use crate::tables::{TableRow, TickRow};

    #[test]
    fn every_arrow_table_has_ddl_with_the_same_columns_in_order() {
        for &table in Table::ALL {
            let ddl = ddl_of(table.name()).expect("a DDL file per table");
            let cols = ddl_columns(ddl);
            let schema = table.schema();
            let want: Vec<(String, String)> = schema
                .fields()
                .iter()
                .map(|f| (f.name().clone(), clickhouse_type(f).expect("mapped type")))
                .collect();
            assert_eq!(cols, want, "{}", table.name());
            assert!(
                PARTITIONED
                    .iter()
                    .any(|&(t, c)| t == table.name() && c == table.time_column()),
                "{} partitioned by its time column",
                table.name()
            );
            assert!(ddl.contains(&format!(
                "PARTITION BY intDiv({}, 86400000)",
                table.time_column()
            )));
        }
        for &(t, c) in PARTITIONED {
            let ddl = ddl_of(t).expect("ddl");
            assert!(
                ddl.contains(&format!("PARTITION BY intDiv({c}, 86400000)")),
                "{t}"
            );
        }
    }

    #[test]
    fn rowbinary_of_a_tick_row_is_laid_out_column_by_column() {
        let id = Id::new_unchecked;
        let mut tick = TickRow::empty(id("n1"), TargetKind::Stream, id("s1"), id("c1"), 5000);
        tick.viewers = 3;
        tick.startup_hist = vec![0xAB; 200];
        let batch = TickRow::to_batch(&[tick]);
        let mut out = Vec::new();
        encode_rowbinary(&batch, &mut out).expect("supported");
        // node, kind, target, channel
        assert_eq!(&out[..3], &[2, b'n', b'1']);
        assert_eq!(&out[3..10], &[6, b's', b't', b'r', b'e', b'a', b'm']);
        let after_strings = 3 + 7 + 3 + 3;
        assert_eq!(
            &out[after_strings..after_strings + 8],
            &5000i64.to_le_bytes()
        );
        assert_eq!(
            &out[after_strings + 8..after_strings + 16],
            &3i64.to_le_bytes()
        );
        // 7 more Int64 (events … startups), then the 200-byte histogram with a 2-byte length.
        let hist_at = after_strings + 16 + 6 * 8;
        assert_eq!(&out[hist_at..hist_at + 2], &[0xC8, 0x01]);
        // 20 columns: 4 strings, 15 Int64, one 200-byte string.
        assert_eq!(out.len(), after_strings + 15 * 8 + 2 + 200);
    }

    #[test]
    fn progress_row_encodes_node_then_time() {
        assert_eq!(
            encode_progress("n", 7),
            [vec![1, b'n'], 7i64.to_le_bytes().to_vec()].concat()
        );
    }
}
