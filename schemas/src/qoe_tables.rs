//! `qoe_minutes`: playback quality per minute broken down by the viewer's device,
//! country and player (issue 4 point 5). Same conventions as [`crate::tables`]: a
//! `node` on every row, epoch-ms `Int64` times, counters `Int64`.
//!
//! A row holds what the sessions of one (device, country, player) group did on one
//! target in `[minute, minute + 60 s)`. The three dimensions are never null: a value
//! the player did not send is stored as [`UNKNOWN`], and a group past the per-target
//! bound of the aggregator as [`OTHER`] in all three columns, so `GROUP BY device`
//! works the same in DataFusion, ClickHouse (no nullable sort keys) and Polars.

use crate::TargetKind;
use crate::id::Id;
use crate::tables::{Table, TableRow, batch, col, i64f, str_col, utf8};
use arrow::array::{ArrayRef, BinaryBuilder, Int64Builder, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::sync::{Arc, LazyLock};

/// The text of a group dimension (device, country or player) in a row and in the
/// aggregator's group key. Up to 24 bytes live inline, so building a row copies the
/// three of them without an allocation; a shared `Arc<str>` cost two atomic counts per
/// dimension and row (made and dropped), on a line read cold, which was a twentieth
/// of the aggregator's time. A longer text (a player string may have up to 128
/// characters) is on the heap, and each row then copies it: rare in practice (player
/// names are short), and a copy per row and minute, not per event.
pub type Label = compact_str::CompactString;

/// The stored value of a dimension the player did not send.
pub const UNKNOWN: &str = "unknown";
/// The stored value of every dimension of the overflow group.
pub const OTHER: &str = "other";

pub(crate) static QOE_MINUTES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("node"),
        utf8("kind"),
        utf8("target"),
        utf8("channel"),
        i64f("minute"),
        utf8("device"),
        utf8("country"),
        utf8("player"),
        i64f("viewer_ticks"),
        i64f("views"),
        i64f("watch_ms"),
        i64f("rebuffer_ms"),
        i64f("rebuffer_count"),
        i64f("startups"),
        Field::new("startup_hist", DataType::Binary, false),
        i64f("failures"),
    ]))
});

/// One `qoe_minutes` row.
///
/// `viewer_ticks` is the sum, over the minute's ticks, of the group's concurrency
/// sample at each tick end (the same sample as `stream_ticks.viewers`), so the average
/// concurrent viewers of a bucket is `viewer_ticks / ticks in the bucket`. Every other
/// counter is the group's share of the matching `stream_ticks` counter: summed over the
/// groups of a minute they give the sum over the minute's ticks.
#[derive(Clone, Debug, PartialEq)]
pub struct QoeMinuteRow {
    pub node: Id,
    pub kind: TargetKind,
    pub target: Id,
    pub channel: Id,
    pub minute: i64,
    pub device: Label,
    pub country: Label,
    pub player: Label,
    pub viewer_ticks: i64,
    pub views: i64,
    pub watch_ms: i64,
    pub rebuffer_ms: i64,
    pub rebuffer_count: i64,
    pub startups: i64,
    pub startup_hist: Vec<u8>,
    pub failures: i64,
}

impl TableRow for QoeMinuteRow {
    const TABLE: Table = Table::QoeMinutes;
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let mut hist = BinaryBuilder::with_capacity(rows.len(), 0);
        for r in rows {
            hist.append_value(&r.startup_hist);
        }
        batch(
            Table::QoeMinutes,
            vec![
                str_col(rows.iter().map(|r| r.node.as_str())),
                str_col(rows.iter().map(|r| r.kind.as_str())),
                str_col(rows.iter().map(|r| r.target.as_str())),
                str_col(rows.iter().map(|r| r.channel.as_str())),
                col!(rows, Int64Builder, |r| r.minute),
                str_col(rows.iter().map(|r| &*r.device)),
                str_col(rows.iter().map(|r| &*r.country)),
                str_col(rows.iter().map(|r| &*r.player)),
                col!(rows, Int64Builder, |r| r.viewer_ticks),
                col!(rows, Int64Builder, |r| r.views),
                col!(rows, Int64Builder, |r| r.watch_ms),
                col!(rows, Int64Builder, |r| r.rebuffer_ms),
                col!(rows, Int64Builder, |r| r.rebuffer_count),
                col!(rows, Int64Builder, |r| r.startups),
                Arc::new(hist.finish()),
                col!(rows, Int64Builder, |r| r.failures),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_build_a_batch_of_the_schema() {
        let id = Id::new_unchecked;
        let row = QoeMinuteRow {
            node: id("n1"),
            kind: TargetKind::Stream,
            target: id("s1"),
            channel: id("c1"),
            minute: 60_000,
            device: "mobile".into(),
            country: UNKNOWN.into(),
            player: "hls.js/1.5".into(),
            viewer_ticks: 12,
            views: 1,
            watch_ms: 60_000,
            rebuffer_ms: 0,
            rebuffer_count: 0,
            startups: 0,
            startup_hist: Vec::new(),
            failures: 0,
        };
        let b = QoeMinuteRow::to_batch(&[row.clone(), row]);
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.schema(), Table::QoeMinutes.schema());
    }
}
