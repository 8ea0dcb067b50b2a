//! The analytics tables (DESIGN.md decision 4) as Rust rows and Arrow schemas.
//!
//! Every row carries the `node` that produced it: readers sum or merge across nodes.
//! All counters are `Int64` (what Parquet readers, DataFusion and ClickHouse agree on),
//! all times are epoch milliseconds in `Int64`. Each table has one time column that
//! partitions it by UTC day.

use crate::event::TargetKind;
use crate::id::Id;
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Int64Builder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::sync::{Arc, LazyLock};

/// One of the analytics tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    StreamTicks,
    ViewSessions,
    ViewerMinutes,
    HealthTicks,
    Alerts,
    QoeMinutes,
}

impl Table {
    pub const ALL: &'static [Table] = &[
        Table::StreamTicks,
        Table::ViewSessions,
        Table::ViewerMinutes,
        Table::HealthTicks,
        Table::Alerts,
        Table::QoeMinutes,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::StreamTicks => "stream_ticks",
            Table::ViewSessions => "view_sessions",
            Table::ViewerMinutes => "viewer_minutes",
            Table::HealthTicks => "health_ticks",
            Table::Alerts => "alerts",
            Table::QoeMinutes => "qoe_minutes",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.iter().copied().find(|t| t.name() == name)
    }

    /// The epoch-ms column whose UTC day partitions the table.
    pub fn time_column(self) -> &'static str {
        match self {
            Table::StreamTicks => "t",
            Table::ViewSessions => "end_ts",
            Table::ViewerMinutes => "minute",
            Table::HealthTicks => "t",
            Table::Alerts => "ts",
            Table::QoeMinutes => "minute",
        }
    }

    /// The order of rows inside an embedded Parquet part, the same as the ClickHouse
    /// table's `ORDER BY` prefix: one target's (or stream's) rows are contiguous, so a
    /// reader's `target = $1` skips the other row groups and pages by their statistics.
    pub fn sort_key(self) -> &'static [&'static str] {
        match self {
            Table::StreamTicks => &["kind", "target", "t"],
            Table::ViewSessions => &["kind", "target", "end_ts"],
            Table::ViewerMinutes => &["kind", "target", "minute"],
            Table::HealthTicks => &["stream", "t"],
            Table::Alerts => &["stream", "ts"],
            Table::QoeMinutes => &["kind", "target", "minute"],
        }
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            Table::StreamTicks => STREAM_TICKS.clone(),
            Table::ViewSessions => VIEW_SESSIONS.clone(),
            Table::ViewerMinutes => VIEWER_MINUTES.clone(),
            Table::HealthTicks => crate::health_tables::HEALTH_TICKS.clone(),
            Table::Alerts => crate::health_tables::ALERTS.clone(),
            Table::QoeMinutes => crate::qoe_tables::QOE_MINUTES.clone(),
        }
    }
}

pub(crate) fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}
pub(crate) fn utf8_null(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}
pub(crate) fn i64f(name: &str) -> Field {
    Field::new(name, DataType::Int64, false)
}

static STREAM_TICKS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("node"),
        utf8("kind"),
        utf8("target"),
        utf8("channel"),
        i64f("t"),
        i64f("viewers"),
        i64f("events"),
        i64f("views"),
        i64f("watch_ms"),
        i64f("rebuffer_ms"),
        i64f("rebuffer_count"),
        i64f("startups"),
        Field::new("startup_hist", DataType::Binary, false),
        i64f("failures"),
        i64f("chat_messages"),
        i64f("follows"),
        i64f("likes"),
        i64f("shares"),
        i64f("embed_views"),
        i64f("clickthroughs"),
    ]))
});

static VIEW_SESSIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("node"),
        utf8("kind"),
        utf8("target"),
        utf8("channel"),
        utf8("session"),
        utf8("viewer"),
        i64f("start_ts"),
        i64f("end_ts"),
        utf8("end_reason"),
        Field::new("counted_view", DataType::Boolean, false),
        i64f("watch_ms"),
        i64f("rebuffer_ms"),
        i64f("rebuffer_count"),
        Field::new("startup_ms", DataType::Int64, true),
        utf8_null("device"),
        utf8_null("country"),
        utf8_null("player"),
        Field::new("embed", DataType::Boolean, false),
    ]))
});

static VIEWER_MINUTES: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("node"),
        utf8("kind"),
        utf8("target"),
        utf8("channel"),
        i64f("minute"),
        utf8("viewer"),
        i64f("events"),
        Field::new("followed", DataType::Boolean, false),
        i64f("chat_messages"),
        // Nullable: parts written before the masks existed lack them (read as null,
        // which counts in no 5-second slice).
        Field::new("seen_mask", DataType::Int64, true),
        Field::new("follow_mask", DataType::Int64, true),
    ]))
});

/// `stream_ticks`: one row per node, target and tick with anything to say.
///
/// `viewers` is the concurrency sample at the tick's end; every other counter is
/// what happened inside `[t, t + tick)`. `startup_hist` is an HDR histogram
/// (V2 serialization, empty when `startups` is 0) of startup times whose first
/// `playing` fell in the tick.
#[derive(Clone, Debug, PartialEq)]
pub struct TickRow {
    pub node: Id,
    pub kind: TargetKind,
    pub target: Id,
    pub channel: Id,
    pub t: i64,
    pub viewers: i64,
    pub events: i64,
    pub views: i64,
    pub watch_ms: i64,
    pub rebuffer_ms: i64,
    pub rebuffer_count: i64,
    pub startups: i64,
    pub startup_hist: Vec<u8>,
    pub failures: i64,
    pub chat_messages: i64,
    pub follows: i64,
    pub likes: i64,
    pub shares: i64,
    pub embed_views: i64,
    pub clickthroughs: i64,
}

/// How a view session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    Viewend,
    Error,
    Timeout,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Viewend => "viewend",
            EndReason::Error => "error",
            EndReason::Timeout => "timeout",
        }
    }
}

/// `view_sessions`: one row per finished view, written when it ends.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRow {
    pub node: Id,
    pub kind: TargetKind,
    pub target: Id,
    pub channel: Id,
    pub session: Id,
    pub viewer: Id,
    pub start_ts: i64,
    pub end_ts: i64,
    pub end_reason: EndReason,
    /// false for a session first seen mid-way (its `viewstart` went elsewhere).
    pub counted_view: bool,
    pub watch_ms: i64,
    pub rebuffer_ms: i64,
    pub rebuffer_count: i64,
    pub startup_ms: Option<i64>,
    pub device: Option<&'static str>,
    pub country: Option<Id>,
    pub player: Option<Box<str>>,
    pub embed: bool,
}

/// `viewer_minutes`: one row per node, target, minute and viewer with any event.
///
/// `seen_mask` and `follow_mask` say in which of the minute's twelve 5-second slices
/// the viewer had an event and a `follow` (bit k: `[minute + 5k s, minute + 5k s + 5 s)`),
/// so distinct viewers and followers answer at a 5 s step from the same rows.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewerMinuteRow {
    pub node: Id,
    pub kind: TargetKind,
    pub target: Id,
    pub channel: Id,
    pub minute: i64,
    pub viewer: Id,
    pub events: i64,
    pub followed: bool,
    pub chat_messages: i64,
    pub seen_mask: i64,
    pub follow_mask: i64,
}

/// The width of one bit of [`ViewerMinuteRow::seen_mask`]: 5 s, twelve to the minute.
pub const MINUTE_SLICE_MS: i64 = 5_000;

/// The bit of `ts`'s 5-second slice in its minute's masks.
#[inline]
pub fn minute_slice_bit(ts: i64) -> i64 {
    1 << (ts.rem_euclid(60_000) / MINUTE_SLICE_MS)
}

/// A row type that belongs to one table and turns into its Arrow batch.
pub trait TableRow: Sized {
    const TABLE: Table;
    /// Builds one batch with [`Table::schema`]. Rows are taken as they come.
    fn to_batch(rows: &[Self]) -> RecordBatch;
}

pub(crate) fn batch(table: Table, cols: Vec<ArrayRef>) -> RecordBatch {
    // Columns are built from the schema's own field list just above, so the
    // shapes always agree; a mismatch is a programming error caught by tests.
    RecordBatch::try_new(table.schema(), cols).expect("row builders match the table schema")
}

macro_rules! col {
    ($rows:expr, $builder:ty, |$r:ident| $val:expr) => {{
        let mut b = <$builder>::with_capacity($rows.len());
        for $r in $rows {
            b.append_value($val);
        }
        Arc::new(b.finish()) as ArrayRef
    }};
}
pub(crate) use col;

pub(crate) fn str_col<'a>(rows: impl ExactSizeIterator<Item = &'a str>) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
    for s in rows {
        b.append_value(s);
    }
    Arc::new(b.finish())
}

pub(crate) fn opt_str_col<'a>(rows: impl ExactSizeIterator<Item = Option<&'a str>>) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
    for s in rows {
        b.append_option(s);
    }
    Arc::new(b.finish())
}

impl TickRow {
    /// An all-zero row for one node, target and tick.
    pub fn empty(node: Id, kind: TargetKind, target: Id, channel: Id, t: i64) -> Self {
        TickRow {
            node,
            kind,
            target,
            channel,
            t,
            viewers: 0,
            events: 0,
            views: 0,
            watch_ms: 0,
            rebuffer_ms: 0,
            rebuffer_count: 0,
            startups: 0,
            startup_hist: Vec::new(),
            failures: 0,
            chat_messages: 0,
            follows: 0,
            likes: 0,
            shares: 0,
            embed_views: 0,
            clickthroughs: 0,
        }
    }
}

impl TableRow for TickRow {
    const TABLE: Table = Table::StreamTicks;
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let mut hist = BinaryBuilder::with_capacity(rows.len(), 0);
        for r in rows {
            hist.append_value(&r.startup_hist);
        }
        batch(
            Table::StreamTicks,
            vec![
                str_col(rows.iter().map(|r| r.node.as_str())),
                str_col(rows.iter().map(|r| r.kind.as_str())),
                str_col(rows.iter().map(|r| r.target.as_str())),
                str_col(rows.iter().map(|r| r.channel.as_str())),
                col!(rows, Int64Builder, |r| r.t),
                col!(rows, Int64Builder, |r| r.viewers),
                col!(rows, Int64Builder, |r| r.events),
                col!(rows, Int64Builder, |r| r.views),
                col!(rows, Int64Builder, |r| r.watch_ms),
                col!(rows, Int64Builder, |r| r.rebuffer_ms),
                col!(rows, Int64Builder, |r| r.rebuffer_count),
                col!(rows, Int64Builder, |r| r.startups),
                Arc::new(hist.finish()),
                col!(rows, Int64Builder, |r| r.failures),
                col!(rows, Int64Builder, |r| r.chat_messages),
                col!(rows, Int64Builder, |r| r.follows),
                col!(rows, Int64Builder, |r| r.likes),
                col!(rows, Int64Builder, |r| r.shares),
                col!(rows, Int64Builder, |r| r.embed_views),
                col!(rows, Int64Builder, |r| r.clickthroughs),
            ],
        )
    }
}

impl TableRow for SessionRow {
    const TABLE: Table = Table::ViewSessions;
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let mut startup = Int64Builder::with_capacity(rows.len());
        for r in rows {
            startup.append_option(r.startup_ms);
        }
        batch(
            Table::ViewSessions,
            vec![
                str_col(rows.iter().map(|r| r.node.as_str())),
                str_col(rows.iter().map(|r| r.kind.as_str())),
                str_col(rows.iter().map(|r| r.target.as_str())),
                str_col(rows.iter().map(|r| r.channel.as_str())),
                str_col(rows.iter().map(|r| r.session.as_str())),
                str_col(rows.iter().map(|r| r.viewer.as_str())),
                col!(rows, Int64Builder, |r| r.start_ts),
                col!(rows, Int64Builder, |r| r.end_ts),
                str_col(rows.iter().map(|r| r.end_reason.as_str())),
                col!(rows, BooleanBuilder, |r| r.counted_view),
                col!(rows, Int64Builder, |r| r.watch_ms),
                col!(rows, Int64Builder, |r| r.rebuffer_ms),
                col!(rows, Int64Builder, |r| r.rebuffer_count),
                Arc::new(startup.finish()),
                opt_str_col(rows.iter().map(|r| r.device)),
                opt_str_col(rows.iter().map(|r| r.country.as_ref().map(Id::as_str))),
                opt_str_col(rows.iter().map(|r| r.player.as_deref())),
                col!(rows, BooleanBuilder, |r| r.embed),
            ],
        )
    }
}

impl TableRow for ViewerMinuteRow {
    const TABLE: Table = Table::ViewerMinutes;
    fn to_batch(rows: &[Self]) -> RecordBatch {
        batch(
            Table::ViewerMinutes,
            vec![
                str_col(rows.iter().map(|r| r.node.as_str())),
                str_col(rows.iter().map(|r| r.kind.as_str())),
                str_col(rows.iter().map(|r| r.target.as_str())),
                str_col(rows.iter().map(|r| r.channel.as_str())),
                col!(rows, Int64Builder, |r| r.minute),
                str_col(rows.iter().map(|r| r.viewer.as_str())),
                col!(rows, Int64Builder, |r| r.events),
                col!(rows, BooleanBuilder, |r| r.followed),
                col!(rows, Int64Builder, |r| r.chat_messages),
                col!(rows, Int64Builder, |r| r.seen_mask),
                col!(rows, Int64Builder, |r| r.follow_mask),
            ],
        )
    }
}

/// Closed windows handed from the aggregator to a sink in one flush.
#[derive(Clone, Debug, Default)]
pub struct ClosedWindows {
    pub ticks: Vec<TickRow>,
    pub sessions: Vec<SessionRow>,
    pub viewer_minutes: Vec<ViewerMinuteRow>,
    /// Closed minutes of playback quality per (device, country, player) group.
    pub qoe_minutes: Vec<crate::QoeMinuteRow>,
    /// Closed encoder-health ticks (written by the health component, not the beacon core).
    pub health_ticks: Vec<crate::HealthTickRow>,
    /// Alert transitions (firing / resolved) since the last flush.
    pub alerts: Vec<crate::AlertRow>,
    /// Every tick starting before this time is closed (final) for this node.
    pub closed_through: i64,
}

impl ClosedWindows {
    /// Empties every table, keeping the vectors' buffers for the next flush.
    pub fn clear(&mut self) {
        self.ticks.clear();
        self.sessions.clear();
        self.viewer_minutes.clear();
        self.qoe_minutes.clear();
        self.health_ticks.clear();
        self.alerts.clear();
        self.closed_through = 0;
    }

    /// Moves the beacon tables' rows of `other` (ticks, sessions, viewer and QoE
    /// minutes) to the end of these; `closed_through` is left to the caller.
    pub fn append_rows(&mut self, other: &mut ClosedWindows) {
        self.ticks.append(&mut other.ticks);
        self.sessions.append(&mut other.sessions);
        self.viewer_minutes.append(&mut other.viewer_minutes);
        self.qoe_minutes.append(&mut other.qoe_minutes);
    }

    pub fn is_empty(&self) -> bool {
        self.ticks.is_empty()
            && self.sessions.is_empty()
            && self.viewer_minutes.is_empty()
            && self.qoe_minutes.is_empty()
            && self.health_ticks.is_empty()
            && self.alerts.is_empty()
    }

    /// The tables as Arrow batches (empty tables left out).
    pub fn batches(&self) -> Vec<(Table, RecordBatch)> {
        let mut out = Vec::with_capacity(6);
        if !self.ticks.is_empty() {
            out.push((Table::StreamTicks, TickRow::to_batch(&self.ticks)));
        }
        if !self.sessions.is_empty() {
            out.push((Table::ViewSessions, SessionRow::to_batch(&self.sessions)));
        }
        if !self.viewer_minutes.is_empty() {
            out.push((
                Table::ViewerMinutes,
                ViewerMinuteRow::to_batch(&self.viewer_minutes),
            ));
        }
        if !self.qoe_minutes.is_empty() {
            out.push((
                Table::QoeMinutes,
                crate::QoeMinuteRow::to_batch(&self.qoe_minutes),
            ));
        }
        if !self.health_ticks.is_empty() {
            out.push((
                Table::HealthTicks,
                crate::HealthTickRow::to_batch(&self.health_ticks),
            ));
        }
        if !self.alerts.is_empty() {
            out.push((Table::Alerts, crate::AlertRow::to_batch(&self.alerts)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_build_batches_of_their_schema() {
        let id = Id::new_unchecked;
        let mut tick = TickRow::empty(id("n1"), TargetKind::Stream, id("s1"), id("c1"), 5000);
        tick.viewers = 3;
        let b = TickRow::to_batch(&[tick.clone(), tick]);
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.schema(), Table::StreamTicks.schema());
        let s = SessionRow {
            node: id("n1"),
            kind: TargetKind::Vod,
            target: id("v1"),
            channel: id("c1"),
            session: id("x"),
            viewer: id("u"),
            start_ts: 1,
            end_ts: 2,
            end_reason: EndReason::Timeout,
            counted_view: true,
            watch_ms: 1,
            rebuffer_ms: 0,
            rebuffer_count: 0,
            startup_ms: None,
            device: Some("tv"),
            country: None,
            player: None,
            embed: false,
        };
        assert_eq!(SessionRow::to_batch(&[s]).num_rows(), 1);
        for t in Table::ALL {
            assert_eq!(Table::from_name(t.name()), Some(*t));
            assert!(t.schema().field_with_name(t.time_column()).is_ok());
            for c in t.sort_key() {
                assert!(t.schema().field_with_name(c).is_ok(), "{c} of {}", t.name());
            }
            assert_eq!(t.sort_key().last(), Some(&t.time_column()));
        }
    }
}
