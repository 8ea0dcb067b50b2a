//! [`MemoryTicks`]: reads of `stream_ticks` answered straight from the in-memory batches,
//! without DataFusion, when no Parquet part meets the asked time range or the writer's
//! hot tail (`TablesView::hot_ticks`) mirrors every part that does from the range's start.
//!
//! A dashboard poll with the series cache on reads one open bucket: rows that are still
//! in memory (recent, hot or provisional), a few hundred at most for one target. Planning
//! and running a DataFusion query for them costs milliseconds, the rows microseconds, and
//! dashboards poll hundreds of times a second. So `tick_totals` and `live_ranges_in`
//! over such a range are computed here over the batches whose span meets it; every other
//! read goes to SQL (`embedded.rs`). The two answer the same:
//! the same row conditions (`embedded::scope_filter`: kind and target, or channel; only
//! streams count as viewers of a channel and as its live ranges; provisional rows only
//! for ticks at or after `closed_through`), the same sums; a test compares them on
//! random rows.

use crate::error::QueryError;
use crate::store::time_sliced::TimeSliced;
use crate::store::{LiveRange, Scope, ScopeKind, TickTotals, TimeRange};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The in-memory `stream_ticks` batches of one snapshot.
#[derive(Debug)]
pub struct MemoryTicks {
    pub(crate) recent: Arc<TimeSliced>,
    /// The hot tail: copies of the newest rows of Parquet parts (`TablesView::hot_ticks`),
    /// read only when the snapshot found them complete for the range.
    pub(crate) hot: Arc<TimeSliced>,
    pub(crate) provisional: Arc<TimeSliced>,
    pub(crate) closed_through: i64,
}

/// Counter columns in `TickTotals` order after `t` and `viewers` (`events` first).
pub(crate) const COUNTERS: [&str; 13] = [
    "events",
    "views",
    "watch_ms",
    "rebuffer_ms",
    "rebuffer_count",
    "startups",
    "failures",
    "chat_messages",
    "follows",
    "likes",
    "shares",
    "embed_views",
    "clickthroughs",
];

/// The typed columns of one batch that the reads need.
struct Columns<'a> {
    kind: &'a arrow::array::StringArray,
    target: &'a arrow::array::StringArray,
    channel: &'a arrow::array::StringArray,
    t: &'a arrow::array::Int64Array,
    viewers: &'a arrow::array::Int64Array,
    counters: Vec<&'a arrow::array::Int64Array>,
}

fn columns(b: &RecordBatch) -> Result<Columns<'_>, QueryError> {
    let col = |name: &str| {
        b.column_by_name(name)
            .ok_or_else(|| QueryError::Store(format!("stream_ticks batch without column {name}")))
    };
    let text = |name: &str| -> Result<&arrow::array::StringArray, QueryError> {
        col(name)?
            .as_string_opt::<i32>()
            .ok_or_else(|| QueryError::Store(format!("stream_ticks column {name} is not Utf8")))
    };
    let int = |name: &str| -> Result<&arrow::array::Int64Array, QueryError> {
        col(name)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| QueryError::Store(format!("stream_ticks column {name} is not Int64")))
    };
    Ok(Columns {
        kind: text("kind")?,
        target: text("target")?,
        channel: text("channel")?,
        t: int("t")?,
        viewers: int("viewers")?,
        counters: COUNTERS.iter().map(|c| int(c)).collect::<Result<_, _>>()?,
    })
}

/// Whether row `r` belongs to `scope` (`streams_only`: a channel's streams).
fn in_scope(c: &Columns<'_>, r: usize, scope: &Scope, streams_only: bool) -> bool {
    let id = scope.id.as_str();
    match scope.kind {
        ScopeKind::Channel => {
            c.channel.value(r) == id && (!streams_only || c.kind.value(r) == "stream")
        }
        kind => c.kind.value(r) == kind.param() && c.target.value(r) == id,
    }
}

impl MemoryTicks {
    /// Calls `row(columns, r, t)` for each in-memory row of `scope` (`streams_only`: a
    /// channel's streams) with `t` in `range`: recent rows, hot rows (the snapshot checked
    /// that they hold every part row of `range`), and provisional rows of ticks at or
    /// after `closed_through` (earlier ones are closed, in `recent` or a part).
    fn each_row(
        &self,
        scope: &Scope,
        range: TimeRange,
        streams_only: bool,
        mut row: impl FnMut(&Columns<'_>, usize, i64),
    ) -> Result<(), QueryError> {
        let (lo, hi) = (range.from, range.to.saturating_sub(1));
        let ct = self.closed_through;
        let recent = self.recent.batches_meeting(lo, hi).into_iter();
        let hot = self.hot.batches_meeting(lo, hi).into_iter();
        let provisional = self.provisional.batches_meeting(lo.max(ct), hi).into_iter();
        let batches = recent
            .chain(hot)
            .map(|b| (b, lo))
            .chain(provisional.map(|b| (b, lo.max(ct))));
        for (b, from) in batches {
            let c = columns(&b)?;
            for r in 0..b.num_rows() {
                let t = c.t.value(r);
                if (from..=hi).contains(&t) && in_scope(&c, r, scope, streams_only) {
                    row(&c, r, t);
                }
            }
        }
        Ok(())
    }

    /// `AnalyticsStore::tick_totals` over the in-memory rows of `range`.
    pub fn tick_totals(
        &self,
        scope: &Scope,
        range: TimeRange,
    ) -> Result<Vec<TickTotals>, QueryError> {
        let mut by_t: BTreeMap<i64, TickTotals> = BTreeMap::new();
        self.each_row(scope, range, false, |c, r, t| {
            let e = by_t.entry(t).or_insert(TickTotals {
                t,
                ..TickTotals::default()
            });
            if scope.kind != ScopeKind::Channel || c.kind.value(r) == "stream" {
                e.viewers += c.viewers.value(r);
            }
            let sums = [
                &mut e.events,
                &mut e.views,
                &mut e.watch_ms,
                &mut e.rebuffer_ms,
                &mut e.rebuffer_count,
                &mut e.startups,
                &mut e.failures,
                &mut e.chat_messages,
                &mut e.follows,
                &mut e.likes,
                &mut e.shares,
                &mut e.embed_views,
                &mut e.clickthroughs,
            ];
            for (sum, column) in sums.into_iter().zip(&c.counters) {
                *sum += column.value(r);
            }
        })?;
        Ok(by_t.into_values().collect())
    }

    /// `AnalyticsStore::live_ranges_in` over the in-memory rows of `range`.
    pub fn live_ranges_in(
        &self,
        scope: &Scope,
        range: TimeRange,
    ) -> Result<Vec<LiveRange>, QueryError> {
        let mut by_target: BTreeMap<String, LiveRange> = BTreeMap::new();
        self.each_row(scope, range, true, |c, r, t| {
            if c.counters.first().map_or(0, |a| a.value(r)) <= 0 {
                return;
            }
            let (target, channel) = (c.target.value(r), c.channel.value(r));
            match by_target.get_mut(target) {
                Some(lr) => {
                    lr.first_t = lr.first_t.min(t);
                    lr.last_t = lr.last_t.max(t);
                    if channel > lr.channel.as_str() {
                        lr.channel = channel.to_owned();
                    }
                }
                None => {
                    let lr = LiveRange {
                        target: target.to_owned(),
                        channel: channel.to_owned(),
                        first_t: t,
                        last_t: t,
                    };
                    by_target.insert(lr.target.clone(), lr);
                }
            }
        })?;
        Ok(by_target.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::embedded::EmbeddedSnapshot;
    use proptest::prelude::*;
    use pulse_schemas::{EmbeddedTables, Id, Table, TableRow, TargetKind, TickRow};

    const KINDS: [TargetKind; 3] = [TargetKind::Stream, TargetKind::Vod, TargetKind::Clip];

    /// (kind, target, channel, tick number, viewers, events)
    type Row = (usize, usize, usize, i64, i64, i64);

    fn rows_strategy() -> impl Strategy<Value = Vec<Vec<Row>>> {
        prop::collection::vec(
            prop::collection::vec(
                (0..3usize, 0..3usize, 0..2usize, 0..12i64, 0..5i64, 0..3i64),
                0..12,
            ),
            0..6,
        )
    }

    fn batch(rows: &[Row]) -> RecordBatch {
        let id = Id::new_unchecked;
        let rows: Vec<_> = rows
            .iter()
            .map(|&(k, target, channel, n, viewers, events)| {
                let mut r = TickRow::empty(
                    id("n"),
                    KINDS[k],
                    id(&format!("x{target}")),
                    id(&format!("c{channel}")),
                    n * 5_000,
                );
                r.viewers = viewers;
                r.events = events;
                r.views = events * 2;
                r.watch_ms = viewers * 1_000;
                r.clickthroughs = n;
                r
            })
            .collect();
        TickRow::to_batch(&rows)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn memory_reads_answer_as_sql(
            recent in rows_strategy(),
            provisional in rows_strategy(),
            ct in 0..12i64,
            from in 0..12i64,
            len in 1..12i64,
        ) {
            let tables = EmbeddedTables::default();
            let recent: Vec<_> = recent.iter().map(|b| batch(b)).collect();
            let provisional: Vec<_> = provisional.iter().map(|b| batch(b)).collect();
            let ct = ct * 5_000;
            tables.update(|v| {
                v.recent.insert(Table::StreamTicks, recent.clone());
                v.provisional_ticks = provisional.clone();
                v.closed_through = ct;
            });
            let rt = Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default());
            let snap = EmbeddedSnapshot::build(&tables.view(), 1, rt, &Default::default()).unwrap();
            let memory = MemoryTicks {
                recent: Arc::new(TimeSliced::memory(Table::StreamTicks.schema(), "t", recent)),
                hot: Arc::new(TimeSliced::memory(Table::StreamTicks.schema(), "t", Vec::new())),
                provisional: Arc::new(TimeSliced::memory(Table::StreamTicks.schema(), "t", provisional)),
                closed_through: ct,
            };
            let range = TimeRange { from: from * 5_000, to: (from + len) * 5_000 };
            let scopes = [
                Scope { kind: ScopeKind::Stream, id: Id::new_unchecked("x1") },
                Scope { kind: ScopeKind::Vod, id: Id::new_unchecked("x0") },
                Scope { kind: ScopeKind::Clip, id: Id::new_unchecked("x2") },
                Scope { kind: ScopeKind::Channel, id: Id::new_unchecked("c0") },
            ];
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            for scope in &scopes {
                let sql = rt.block_on(snap.sql_tick_totals(scope, Some(range))).unwrap();
                prop_assert_eq!(memory.tick_totals(scope, range).unwrap(), sql, "{:?}", scope);
                let sql = rt.block_on(snap.sql_live_ranges_in(scope, Some(range))).unwrap();
                prop_assert_eq!(memory.live_ranges_in(scope, range).unwrap(), sql, "{:?}", scope);
            }
        }

        /// Parquet parts, some mirrored by the hot tail from a random `from` (sometimes
        /// after the asked range starts, sometimes a mirror of a part not published):
        /// the store's reads (memory when the mirrors cover the range, SQL otherwise)
        /// answer as SQL over the files alone.
        #[test]
        fn hot_tail_reads_answer_as_the_parts(
            parts in rows_strategy(),
            recent in rows_strategy(),
            mirrored in prop::collection::vec((any::<bool>(), 0..13i64), 6),
            unpublished in any::<bool>(),
            from in 0..12i64,
            len in 1..12i64,
        ) {
            use crate::store::AnalyticsStore;
            let dir = tempfile::tempdir().unwrap();
            let mut files = Vec::new();
            let mut hot = Vec::new();
            // Whether every part is mirrored from at or before the range's start.
            let mut all_mirrored = true;
            for (i, rows) in parts.iter().enumerate().filter(|(_, r)| !r.is_empty()) {
                let b = batch(rows);
                let path = dir.path().join(format!("part-{i}.parquet"));
                let file = std::fs::File::create(&path).unwrap();
                let mut w = parquet::arrow::ArrowWriter::try_new(file, b.schema(), None).unwrap();
                w.write(&b).unwrap();
                w.close().unwrap();
                let (mirror, hot_from) = mirrored[i];
                all_mirrored &= mirror && hot_from <= from;
                if mirror {
                    let hot_from = hot_from * 5_000;
                    let mask = arrow::compute::kernels::cmp::gt_eq(
                        b.column_by_name("t").unwrap(),
                        &arrow::array::Int64Array::new_scalar(hot_from),
                    ).unwrap();
                    let kept = arrow::compute::filter_record_batch(&b, &mask).unwrap();
                    hot.push(pulse_schemas::HotTicks {
                        files: vec![path.clone()],
                        from: hot_from,
                        batches: vec![kept],
                    });
                }
                files.push(path);
            }
            if unpublished {
                // A mirror whose part is not (or no longer) published must not count.
                hot.push(pulse_schemas::HotTicks {
                    files: vec![dir.path().join("gone.parquet")],
                    from: 0,
                    batches: vec![batch(&[(0, 1, 0, 3, 4, 2)])],
                });
            }
            let recent: Vec<_> = recent.iter().map(|b| batch(b)).collect();
            let with_hot = EmbeddedTables::default();
            let plain = EmbeddedTables::default();
            for (tables, hot) in [(&with_hot, hot), (&plain, Vec::new())] {
                let (files, recent) = (files.clone(), recent.clone());
                tables.update(move |v| {
                    v.files.insert(Table::StreamTicks, files);
                    v.recent.insert(Table::StreamTicks, recent);
                    v.hot_ticks = hot;
                    v.closed_through = 60_000;
                });
            }
            let rt_env = Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default());
            let spans = Default::default();
            let snap = EmbeddedSnapshot::build(&with_hot.view(), 1, rt_env.clone(), &spans).unwrap();
            let reference = EmbeddedSnapshot::build(&plain.view(), 1, rt_env, &spans).unwrap();
            let range = TimeRange { from: from * 5_000, to: (from + len) * 5_000 };
            if all_mirrored {
                prop_assert!(snap.in_memory_only(Some(range)).is_some(), "every part mirrored");
            }
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            for scope in [
                Scope { kind: ScopeKind::Stream, id: Id::new_unchecked("x1") },
                Scope { kind: ScopeKind::Vod, id: Id::new_unchecked("x0") },
                Scope { kind: ScopeKind::Channel, id: Id::new_unchecked("c0") },
            ] {
                let want = rt.block_on(reference.sql_tick_totals(&scope, Some(range))).unwrap();
                let got = rt.block_on(snap.tick_totals(&scope, Some(range))).unwrap();
                prop_assert_eq!(got, want, "{:?}", scope);
                let want = rt.block_on(reference.sql_live_ranges_in(&scope, Some(range))).unwrap();
                let got = rt.block_on(snap.live_ranges_in(&scope, Some(range))).unwrap();
                prop_assert_eq!(got, want, "{:?}", scope);
            }
        }
    }

    #[test]
    fn a_range_inside_the_hot_tail_is_read_from_memory() {
        use crate::store::AnalyticsStore;
        let dir = tempfile::tempdir().unwrap();
        let b = batch(&[(0, 1, 0, 1, 2, 1), (0, 1, 0, 6, 3, 1), (0, 1, 0, 9, 4, 1)]);
        let path = dir.path().join("part.parquet");
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            b.schema(),
            None,
        )
        .unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
        let tables = EmbeddedTables::default();
        let tail = b.slice(1, 2);
        tables.update(|v| {
            v.files.insert(Table::StreamTicks, vec![path.clone()]);
            v.hot_ticks = vec![pulse_schemas::HotTicks {
                files: vec![path.clone()],
                from: 30_000,
                batches: vec![tail],
            }];
        });
        let rt = Arc::new(datafusion::execution::runtime_env::RuntimeEnv::default());
        let snap = EmbeddedSnapshot::build(&tables.view(), 1, rt, &Default::default()).unwrap();
        let inside = TimeRange {
            from: 30_000,
            to: 60_000,
        };
        let before = TimeRange {
            from: 0,
            to: 60_000,
        };
        assert!(snap.in_memory_only(Some(inside)).is_some());
        assert!(snap.in_memory_only(Some(before)).is_none());
        let scope = Scope {
            kind: ScopeKind::Stream,
            id: Id::new_unchecked("x1"),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for range in [inside, before] {
            let got = rt.block_on(snap.tick_totals(&scope, Some(range))).unwrap();
            let want = rt
                .block_on(snap.sql_tick_totals(&scope, Some(range)))
                .unwrap();
            assert_eq!(got, want);
        }
        let got = rt.block_on(snap.tick_totals(&scope, Some(inside))).unwrap();
        assert_eq!(
            got.iter().map(|t| (t.t, t.viewers)).collect::<Vec<_>>(),
            vec![(30_000, 3), (45_000, 4)]
        );
    }
}
