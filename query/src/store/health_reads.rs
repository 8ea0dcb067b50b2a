//! Reads of the stream-health tables (`health_ticks`, `alerts`) on one embedded
//! snapshot, returned as JSON rows (column name → value) for the health routes.
//! Rows of several nodes (or two rows of one tick) are merged per tick here.

use super::embedded::EmbeddedSnapshot;
use crate::error::QueryError;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::scalar::ScalarValue;
use pulse_schemas::{Id, Table};
use serde_json::{Map, Value};

fn rows(batches: &[RecordBatch]) -> Vec<Value> {
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        for r in 0..b.num_rows() {
            let mut m = Map::new();
            for (c, field) in schema.fields().iter().enumerate() {
                let col = b.column(c);
                let v = if col.is_null(r) {
                    Value::Null
                } else {
                    match col.data_type() {
                        DataType::Int64 => Value::from(col.as_primitive::<Int64Type>().value(r)),
                        DataType::Float64 => {
                            Value::from(col.as_primitive::<Float64Type>().value(r))
                        }
                        DataType::Utf8 => Value::from(col.as_string::<i32>().value(r)),
                        DataType::Utf8View => Value::from(col.as_string_view().value(r)),
                        _ => Value::Null,
                    }
                };
                m.insert(field.name().clone(), v);
            }
            out.push(Value::Object(m));
        }
    }
    out
}

impl EmbeddedSnapshot {
    /// Health ticks of `stream` from `from` on, merged per tick across nodes (report-
    /// weighted means, min of mins, sums of counts), ordered by `t`.
    pub async fn health_ticks(&self, stream: &Id, from: i64) -> Result<Vec<Value>, QueryError> {
        let sql = format!(
            "SELECT t, MAX(channel) AS channel, SUM(reports) AS reports, \
             SUM(seconds_reported) AS seconds_reported, \
             SUM(bitrate_mean_kbps * reports) / SUM(reports) AS bitrate_mean_kbps, \
             MIN(bitrate_min_kbps) AS bitrate_min_kbps, MAX(target_bitrate_kbps) AS target_bitrate_kbps, \
             SUM(fps_mean * reports) / SUM(reports) AS fps_mean, MAX(resolution) AS resolution, \
             AVG(latency_mean_ms) AS latency_mean_ms, AVG(packet_loss_mean_pct) AS packet_loss_mean_pct, \
             SUM(dropped_frames) AS dropped_frames, MAX(status) AS status \
             FROM {rel} WHERE stream = $1 AND t >= $2 GROUP BY t ORDER BY t",
            rel = self.relation(Table::HealthTicks)
        );
        let params = vec![
            ScalarValue::Utf8(Some(stream.as_str().to_owned())),
            ScalarValue::Int64(Some(from)),
        ];
        Ok(rows(&self.run(&sql, params).await?))
    }

    /// Alert transitions of `stream`, oldest first, at most `limit` (the newest ones).
    pub async fn alert_history(&self, stream: &Id, limit: usize) -> Result<Vec<Value>, QueryError> {
        let sql = format!(
            "SELECT * FROM (SELECT ts, node, channel, alert, severity, state, value, threshold, message \
             FROM {rel} WHERE stream = $1 ORDER BY ts DESC, alert DESC, state DESC LIMIT {limit}) \
             ORDER BY ts, alert, state",
            rel = self.relation(Table::Alerts)
        );
        let params = vec![ScalarValue::Utf8(Some(stream.as_str().to_owned()))];
        Ok(rows(&self.run(&sql, params).await?))
    }
}
