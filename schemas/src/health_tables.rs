//! The two stream-health tables (DESIGN.md decision 4, METRICS.md §4): `health_ticks`
//! (one row per node, stream and tick with an encoder report) and `alerts` (one row
//! per alert transition). Same conventions as [`crate::tables`]: a `node` on every row,
//! epoch-ms `Int64` times; means are `Float64`.

use crate::id::Id;
use crate::tables::{Table, TableRow, batch, col, i64f, opt_str_col, str_col, utf8, utf8_null};
use arrow::array::{ArrayRef, Float64Builder, Int64Builder, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::sync::{Arc, LazyLock};

fn f64f(name: &str) -> Field {
    Field::new(name, DataType::Float64, false)
}
fn f64_null(name: &str) -> Field {
    Field::new(name, DataType::Float64, true)
}

pub(crate) static HEALTH_TICKS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("node"),
        utf8("stream"),
        utf8("channel"),
        i64f("t"),
        i64f("reports"),
        i64f("seconds_reported"),
        f64f("bitrate_mean_kbps"),
        i64f("bitrate_min_kbps"),
        Field::new("target_bitrate_kbps", DataType::Int64, true),
        f64f("fps_mean"),
        utf8_null("resolution"),
        f64_null("latency_mean_ms"),
        f64_null("packet_loss_mean_pct"),
        i64f("dropped_frames"),
        utf8("status"),
    ]))
});

pub(crate) static ALERTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("node"),
        utf8("stream"),
        utf8("channel"),
        i64f("ts"),
        utf8("alert"),
        utf8("severity"),
        utf8("state"),
        f64f("value"),
        f64f("threshold"),
        utf8("message"),
    ]))
});

/// `health_ticks`: what one node's encoder reports of one stream said in `[t, t + tick)`.
///
/// `seconds_reported` counts the distinct seconds with a report (the numerator of
/// uptime %); `status` is the connection status when the tick closed.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthTickRow {
    pub node: Id,
    pub stream: Id,
    pub channel: Id,
    pub t: i64,
    pub reports: i64,
    pub seconds_reported: i64,
    pub bitrate_mean_kbps: f64,
    pub bitrate_min_kbps: i64,
    pub target_bitrate_kbps: Option<i64>,
    pub fps_mean: f64,
    pub resolution: Option<String>,
    pub latency_mean_ms: Option<f64>,
    pub packet_loss_mean_pct: Option<f64>,
    pub dropped_frames: i64,
    pub status: &'static str,
}

/// `alerts`: one alert transition (`state` firing or resolved) of one stream.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRow {
    pub node: Id,
    pub stream: Id,
    pub channel: Id,
    pub ts: i64,
    pub alert: &'static str,
    pub severity: &'static str,
    pub state: &'static str,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
}

fn opt_f64(rows: impl ExactSizeIterator<Item = Option<f64>>) -> ArrayRef {
    let mut b = Float64Builder::with_capacity(rows.len());
    for v in rows {
        b.append_option(v);
    }
    Arc::new(b.finish())
}

impl TableRow for HealthTickRow {
    const TABLE: Table = Table::HealthTicks;
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let mut target = Int64Builder::with_capacity(rows.len());
        for r in rows {
            target.append_option(r.target_bitrate_kbps);
        }
        batch(
            Table::HealthTicks,
            vec![
                str_col(rows.iter().map(|r| r.node.as_str())),
                str_col(rows.iter().map(|r| r.stream.as_str())),
                str_col(rows.iter().map(|r| r.channel.as_str())),
                col!(rows, Int64Builder, |r| r.t),
                col!(rows, Int64Builder, |r| r.reports),
                col!(rows, Int64Builder, |r| r.seconds_reported),
                col!(rows, Float64Builder, |r| r.bitrate_mean_kbps),
                col!(rows, Int64Builder, |r| r.bitrate_min_kbps),
                Arc::new(target.finish()),
                col!(rows, Float64Builder, |r| r.fps_mean),
                opt_str_col(rows.iter().map(|r| r.resolution.as_deref())),
                opt_f64(rows.iter().map(|r| r.latency_mean_ms)),
                opt_f64(rows.iter().map(|r| r.packet_loss_mean_pct)),
                col!(rows, Int64Builder, |r| r.dropped_frames),
                str_col(rows.iter().map(|r| r.status)),
            ],
        )
    }
}

impl TableRow for AlertRow {
    const TABLE: Table = Table::Alerts;
    fn to_batch(rows: &[Self]) -> RecordBatch {
        batch(
            Table::Alerts,
            vec![
                str_col(rows.iter().map(|r| r.node.as_str())),
                str_col(rows.iter().map(|r| r.stream.as_str())),
                str_col(rows.iter().map(|r| r.channel.as_str())),
                col!(rows, Int64Builder, |r| r.ts),
                str_col(rows.iter().map(|r| r.alert)),
                str_col(rows.iter().map(|r| r.severity)),
                str_col(rows.iter().map(|r| r.state)),
                col!(rows, Float64Builder, |r| r.value),
                col!(rows, Float64Builder, |r| r.threshold),
                str_col(rows.iter().map(|r| r.message.as_str())),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_rows_build_batches_of_their_schema() {
        let id = Id::new_unchecked;
        let row = HealthTickRow {
            node: id("n1"),
            stream: id("s1"),
            channel: id("c1"),
            t: 5000,
            reports: 5,
            seconds_reported: 5,
            bitrate_mean_kbps: 5000.0,
            bitrate_min_kbps: 4900,
            target_bitrate_kbps: None,
            fps_mean: 60.0,
            resolution: Some("1920x1080".into()),
            latency_mean_ms: None,
            packet_loss_mean_pct: Some(0.1),
            dropped_frames: 0,
            status: "excellent",
        };
        let b = HealthTickRow::to_batch(&[row]);
        assert_eq!(b.schema(), Table::HealthTicks.schema());
        let a = AlertRow {
            node: id("n1"),
            stream: id("s1"),
            channel: id("c1"),
            ts: 1,
            alert: "bitrate_drop",
            severity: "warning",
            state: "firing",
            value: 3100.0,
            threshold: 3850.0,
            message: "m".into(),
        };
        assert_eq!(AlertRow::to_batch(&[a]).num_rows(), 1);
    }
}
