//! Ad-hoc SQL on ClickHouse: the checked statement, rendered back to SQL by
//! `sqlparser`, runs with the limits as settings of the request —
//! `readonly=1` (no writes, no setting changes, no table functions),
//! `max_execution_time`, `max_result_rows` with `result_overflow_mode=throw`,
//! `max_memory_usage` and `max_result_bytes` — and `wait_end_of_query=1`, so a limit hit mid-answer is an
//! HTTP error, not a truncated body. The answer is read as
//! `TabSeparatedWithNamesAndTypes` (a format ClickHouse 18.16 writes), at most
//! `sql_max_memory_bytes` of it, and turned into one Arrow batch:
//! integers → Int64 (UInt64 → UInt64), floats → Float64, `String`/`FixedString` → Utf8
//! (Binary when a value is not UTF-8), any other type → Utf8 as ClickHouse writes it;
//! `Nullable(…)` columns are nullable (`\N`).

use crate::error::QueryError;
use crate::sql::{SqlLimits, SqlRefusal, SqlResult, SqlRule};
use crate::store::clickhouse::ClickHouseStore;
use arrow::array::{
    ArrayRef, BinaryArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use sqlparser::ast::Statement;
use std::sync::Arc;

/// The format the answer is read in.
pub const ANSWER_FORMAT: &str = "TabSeparatedWithNamesAndTypes";

/// Runs one checked statement within `limits` (the caller also applies the time limit).
pub async fn run(
    store: &ClickHouseStore,
    statement: &Statement,
    limits: &SqlLimits,
) -> Result<SqlResult, QueryError> {
    let seconds = limits.timeout_ms.div_ceil(1000).max(1);
    let client = store
        .client()
        .clone()
        .with_setting("readonly", "1")
        .with_setting("max_execution_time", seconds.to_string())
        .with_setting("max_result_rows", limits.max_rows.to_string())
        .with_setting("result_overflow_mode", "throw")
        .with_setting("max_memory_usage", limits.max_memory_bytes.to_string())
        .with_setting("max_result_bytes", limits.max_memory_bytes.to_string())
        .with_setting("wait_end_of_query", "1");
    let sql = statement.to_string();
    let mut cursor = client
        .query_raw(&sql)
        .fetch_bytes(ANSWER_FORMAT)
        .map_err(|e| classify(e, limits))?;
    let mut body = Vec::new();
    while let Some(chunk) = cursor.next().await.map_err(|e| classify(e, limits))? {
        if body.len() + chunk.len() > limits.max_memory_bytes {
            return Err(limits
                .memory_refusal("the answer is larger than that")
                .into());
        }
        body.extend_from_slice(&chunk);
    }
    decode_tsv(&body, limits)
}

/// A ClickHouse failure: a limit (by its error code) → that rule; a refusal of the
/// server's read-only mode → `sql_read_only`; another error answer of the server is
/// the query's fault (400 naming `sql`); a network failure is 500.
fn classify(e: clickhouse::error::Error, limits: &SqlLimits) -> QueryError {
    let clickhouse::error::Error::BadResponse(text) = &e else {
        return QueryError::Store(format!("ClickHouse: {e}"));
    };
    let code = text
        .split("Code: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u32>().ok());
    let short: String = text.chars().take(500).collect();
    match code {
        // TIMEOUT_EXCEEDED
        Some(159) => limits.time_refusal().into(),
        // MEMORY_LIMIT_EXCEEDED
        Some(241) => limits.memory_refusal(&short).into(),
        // TOO_MANY_ROWS, TOO_MANY_BYTES, TOO_MANY_ROWS_OR_BYTES: which limit it names
        Some(158 | 307 | 396) if text.contains("max bytes") => limits.memory_refusal(&short).into(),
        Some(158 | 307 | 396) => limits.row_refusal().into(),
        // READONLY
        Some(164) => SqlRefusal::new(SqlRule::ReadOnly, short).into(),
        Some(_) => QueryError::invalid("sql", short),
        None => QueryError::Store(format!("ClickHouse: {short}")),
    }
}

/// The column types of the answer, as Arrow types.
fn arrow_type(ch_type: &str, values: &[Option<Vec<u8>>]) -> (DataType, bool) {
    let mut t = ch_type.trim();
    let mut nullable = false;
    loop {
        if let Some(inner) = t
            .strip_prefix("Nullable(")
            .and_then(|r| r.strip_suffix(')'))
        {
            nullable = true;
            t = inner;
        } else if let Some(inner) = t
            .strip_prefix("LowCardinality(")
            .and_then(|r| r.strip_suffix(')'))
        {
            t = inner;
        } else {
            break;
        }
    }
    let dt = match t {
        "Int8" | "Int16" | "Int32" | "Int64" | "UInt8" | "UInt16" | "UInt32" => DataType::Int64,
        "UInt64" => DataType::UInt64,
        "Float32" | "Float64" => DataType::Float64,
        "String"
            if values
                .iter()
                .flatten()
                .any(|v| std::str::from_utf8(v).is_err()) =>
        {
            DataType::Binary
        }
        t if t.starts_with("FixedString(")
            && values
                .iter()
                .flatten()
                .any(|v| std::str::from_utf8(v).is_err()) =>
        {
            DataType::Binary
        }
        _ => DataType::Utf8,
    };
    (dt, nullable || values.iter().any(Option::is_none))
}

/// One field of a TSV line, unescaped; `None` for `\N`.
fn unescape(field: &[u8]) -> Option<Vec<u8>> {
    if field == b"\\N" {
        return None;
    }
    let mut out = Vec::with_capacity(field.len());
    let mut it = field.iter();
    while let Some(&c) = it.next() {
        if c != b'\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'b') => out.push(0x08),
            Some(b'f') => out.push(0x0c),
            Some(b'a') => out.push(0x07),
            Some(b'v') => out.push(0x0b),
            Some(b'0') => out.push(0),
            Some(&other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    Some(out)
}

fn bad(what: String) -> QueryError {
    QueryError::Store(format!("ClickHouse answer ({ANSWER_FORMAT}): {what}"))
}

/// Parses a `TabSeparatedWithNamesAndTypes` answer into one batch.
pub fn decode_tsv(body: &[u8], limits: &SqlLimits) -> Result<SqlResult, QueryError> {
    let mut lines = body.split(|&b| b == b'\n');
    let split =
        |l: &[u8]| -> Vec<Option<Vec<u8>>> { l.split(|&b| b == b'\t').map(unescape).collect() };
    let text = |v: Option<Vec<u8>>| String::from_utf8_lossy(&v.unwrap_or_default()).into_owned();
    let names: Vec<String> = split(lines.next().unwrap_or_default())
        .into_iter()
        .map(text)
        .collect();
    let types: Vec<String> = split(lines.next().unwrap_or_default())
        .into_iter()
        .map(text)
        .collect();
    if names.len() != types.len() {
        return Err(bad(format!(
            "{} column names but {} types",
            names.len(),
            types.len()
        )));
    }
    let mut columns: Vec<Vec<Option<Vec<u8>>>> = vec![Vec::new(); names.len()];
    let mut rows = 0usize;
    for line in lines.filter(|l| !l.is_empty()) {
        rows += 1;
        if rows > limits.max_rows {
            return Err(limits.row_refusal().into());
        }
        let fields = split(line);
        if fields.len() != names.len() {
            return Err(bad(format!(
                "row {rows} has {} fields, expected {}",
                fields.len(),
                names.len()
            )));
        }
        for (col, v) in columns.iter_mut().zip(fields) {
            col.push(v);
        }
    }
    let mut fields = Vec::with_capacity(names.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(names.len());
    for ((name, ch_type), values) in names.iter().zip(&types).zip(&columns) {
        let (dt, nullable) = arrow_type(ch_type, values);
        arrays.push(array(&dt, values, name)?);
        fields.push(Field::new(name, dt, nullable));
    }
    let schema = Arc::new(Schema::new(fields));
    let batches = if names.is_empty() {
        Vec::new()
    } else {
        vec![RecordBatch::try_new(schema.clone(), arrays)?]
    };
    Ok(SqlResult { schema, batches })
}

fn parsed<T: std::str::FromStr>(
    values: &[Option<Vec<u8>>],
    name: &str,
) -> Result<Vec<Option<T>>, QueryError> {
    values
        .iter()
        .map(|v| match v {
            None => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<T>().ok())
                .map(Some)
                .ok_or_else(|| {
                    bad(format!(
                        "column {name}: {:?} is not a number",
                        String::from_utf8_lossy(b)
                    ))
                }),
        })
        .collect()
}

fn array(dt: &DataType, values: &[Option<Vec<u8>>], name: &str) -> Result<ArrayRef, QueryError> {
    Ok(match dt {
        DataType::Int64 => Arc::new(Int64Array::from(parsed::<i64>(values, name)?)),
        DataType::UInt64 => Arc::new(UInt64Array::from(parsed::<u64>(values, name)?)),
        DataType::Float64 => Arc::new(Float64Array::from(parsed::<f64>(values, name)?)),
        DataType::Binary => Arc::new(BinaryArray::from(
            values.iter().map(|v| v.as_deref()).collect::<Vec<_>>(),
        )),
        _ => Arc::new(StringArray::from(
            values
                .iter()
                .map(|v| v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
                .collect::<Vec<_>>(),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int64Type, UInt64Type};

    const LIMITS: SqlLimits = SqlLimits {
        max_rows: 3,
        timeout_ms: 1000,
        max_memory_bytes: 1 << 20,
        target_partitions: 1,
    };

    #[test]
    fn decodes_names_types_escapes_and_nulls() {
        let body = b"t\tname\tblob\tx\tu\tday\n\
            Int64\tString\tString\tNullable(Float64)\tUInt64\tDate\n\
            1\ta\\tb\\\\c\\n\t\\xff\t1.5\t18446744073709551615\t2026-11-24\n\
            -2\t\t\\0\t\\N\t0\t2026-11-25\n";
        let mut body = body.to_vec();
        // A raw 0xff byte, as ClickHouse writes binary strings.
        let at = body.windows(4).position(|w| w == b"\\xff").expect("marker");
        body.splice(at..at + 4, [0xffu8]);
        let r = decode_tsv(&body, &LIMITS).expect("decodes");
        assert_eq!(r.num_rows(), 2);
        let b = &r.batches[0];
        assert_eq!(b.column(0).as_primitive::<Int64Type>().values(), &[1, -2]);
        assert_eq!(b.column(1).as_string::<i32>().value(0), "a\tb\\c\n");
        assert_eq!(b.column(2).data_type(), &DataType::Binary);
        assert_eq!(b.column(2).as_binary::<i32>().value(0), &[0xff]);
        assert_eq!(b.column(2).as_binary::<i32>().value(1), &[0]);
        assert_eq!(b.column(3).as_primitive::<Float64Type>().value(0), 1.5);
        assert!(b.column(3).is_null(1));
        assert_eq!(b.column(4).as_primitive::<UInt64Type>().value(0), u64::MAX);
        assert_eq!(b.column(5).as_string::<i32>().value(1), "2026-11-25");
        assert!(r.schema.field(3).is_nullable());
        assert!(!r.schema.field(0).is_nullable());
    }

    #[test]
    fn rows_past_the_limit_are_refused_and_bad_answers_are_errors() {
        let body = b"n\nUInt8\n1\n2\n3\n4\n";
        let e = decode_tsv(body, &LIMITS).unwrap_err();
        assert_eq!(e.code(), "sql_row_limit");
        let e = decode_tsv(b"n\nInt64\nx\n", &LIMITS).unwrap_err();
        assert_eq!(e.code(), "store_error");
        let e = decode_tsv(b"a\tb\nInt64\n", &LIMITS).unwrap_err();
        assert_eq!(e.code(), "store_error");
        let empty = decode_tsv(b"n\nInt64\n", &LIMITS).expect("no rows");
        assert_eq!(empty.num_rows(), 0);
        assert_eq!(empty.schema.field(0).data_type(), &DataType::Int64);
    }

    #[test]
    fn limit_errors_become_their_rules() {
        let err = |t: &str| classify(clickhouse::error::Error::BadResponse(t.into()), &LIMITS);
        assert_eq!(
            err("Code: 159, e.displayText() = DB::Exception: Timeout exceeded").code(),
            "sql_time_limit"
        );
        assert_eq!(
            err("Code: 241, e.displayText() = DB::Exception: Memory limit").code(),
            "sql_memory_limit"
        );
        assert_eq!(
            err("Code: 396. DB::Exception: Limit for result exceeded").code(),
            "sql_row_limit"
        );
        assert_eq!(
            err("Code: 164, e.displayText() = DB::Exception: readonly").code(),
            "sql_read_only"
        );
        assert_eq!(
            err("Code: 47, e.displayText() = DB::Exception: Unknown identifier").code(),
            "invalid_parameter"
        );
        assert_eq!(err("bad gateway").code(), "store_error");
    }
}
