//! The answer of `POST /api/sql` in the asked format, from Arrow batches:
//!
//! - `json`: `{"columns":[{"name","type"}],"rows":[{column: value}],"row_count":N}`
//!   (nulls written as `null`, binary as hex, Arrow type names in `type`);
//! - `csv`: RFC 4180 with a header row;
//! - `arrow`: an Arrow IPC stream (`application/vnd.apache.arrow.stream`);
//! - `parquet`: one Parquet file (zstd), the Arrow schema embedded.
//!
//! The result is already bounded by `sql_max_rows` and `sql_max_memory_bytes`, so it
//! is encoded whole.

use crate::error::QueryError;
use crate::sql::{SqlFormat, SqlResult};
use arrow::json::writer::JsonArray;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::json;

/// Encodes `result` as `format`.
pub fn encode(result: &SqlResult, format: SqlFormat) -> Result<Vec<u8>, QueryError> {
    match format {
        SqlFormat::Json => json_answer(result),
        SqlFormat::Csv => {
            let mut out = Vec::new();
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            if result.batches.is_empty() {
                // The header alone, from the schema.
                w.write(&arrow::array::RecordBatch::new_empty(result.schema.clone()))?;
            }
            for b in &result.batches {
                w.write(b)?;
            }
            drop(w);
            Ok(out)
        }
        SqlFormat::Arrow => {
            let mut out = Vec::new();
            let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, &result.schema)?;
            for b in &result.batches {
                w.write(b)?;
            }
            w.finish()?;
            drop(w);
            Ok(out)
        }
        SqlFormat::Parquet => {
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .build();
            let mut out = Vec::new();
            let mut w = ArrowWriter::try_new(&mut out, result.schema.clone(), Some(props))
                .map_err(|e| QueryError::Store(format!("parquet: {e}")))?;
            for b in &result.batches {
                w.write(b)
                    .map_err(|e| QueryError::Store(format!("parquet: {e}")))?;
            }
            w.close()
                .map_err(|e| QueryError::Store(format!("parquet: {e}")))?;
            Ok(out)
        }
    }
}

fn json_answer(result: &SqlResult) -> Result<Vec<u8>, QueryError> {
    let columns: Vec<_> = result
        .schema
        .fields()
        .iter()
        .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let mut out = br#"{"columns":"#.to_vec();
    serde_json::to_writer(&mut out, &columns)
        .map_err(|e| QueryError::Store(format!("json: {e}")))?;
    out.extend_from_slice(br#","rows":"#);
    let mut rows = Vec::new();
    {
        let mut w = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, JsonArray>(&mut rows);
        for b in &result.batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    // The writer writes nothing at all for no rows.
    if rows.is_empty() {
        rows.extend_from_slice(b"[]");
    }
    out.extend_from_slice(&rows);
    out.extend_from_slice(format!(r#","row_count":{}}}"#, result.num_rows()).as_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn sample() -> SqlResult {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("b", DataType::Binary, true),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(1), None])),
            Arc::new(StringArray::from(vec![Some("a,\"b\""), Some("c")])),
            Arc::new(BinaryArray::from(vec![Some(&[0xffu8, 0x01][..]), None])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), cols).expect("batch");
        SqlResult {
            schema,
            batches: vec![batch],
        }
    }

    #[test]
    fn json_holds_columns_rows_and_nulls() {
        let v: serde_json::Value =
            serde_json::from_slice(&encode(&sample(), SqlFormat::Json).expect("json"))
                .expect("valid json");
        assert_eq!(v["row_count"], 2);
        assert_eq!(v["columns"][0], json!({"name":"n","type":"Int64"}));
        assert_eq!(v["rows"][0]["n"], 1);
        assert_eq!(v["rows"][0]["s"], "a,\"b\"");
        assert_eq!(v["rows"][0]["b"], "ff01");
        assert_eq!(v["rows"][1]["n"], serde_json::Value::Null);
        let empty = SqlResult {
            schema: sample().schema,
            batches: vec![],
        };
        let v: serde_json::Value =
            serde_json::from_slice(&encode(&empty, SqlFormat::Json).expect("json"))
                .expect("valid json");
        assert_eq!(v["rows"], json!([]));
        assert_eq!(v["row_count"], 0);
    }

    #[test]
    fn csv_quotes_and_has_a_header() {
        let text =
            String::from_utf8(encode(&sample(), SqlFormat::Csv).expect("csv")).expect("utf8");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("n,s,b"));
        assert_eq!(lines.next(), Some("1,\"a,\"\"b\"\"\",ff01"));
        assert_eq!(lines.next(), Some(",c,"));
        let empty = SqlResult {
            schema: sample().schema,
            batches: vec![],
        };
        let text = String::from_utf8(encode(&empty, SqlFormat::Csv).expect("csv")).expect("utf8");
        assert_eq!(text.trim(), "n,s,b");
    }

    #[test]
    fn arrow_and_parquet_read_back_the_same_batch() {
        let r = sample();
        let ipc = encode(&r, SqlFormat::Arrow).expect("arrow");
        let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(ipc), None)
            .expect("ipc");
        let back: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("batches");
        assert_eq!(back, r.batches);

        let pq = bytes::Bytes::from(encode(&r, SqlFormat::Parquet).expect("parquet"));
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(pq)
            .expect("parquet")
            .build()
            .expect("reader");
        let back: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("batches");
        assert_eq!(back, r.batches);
    }
}
