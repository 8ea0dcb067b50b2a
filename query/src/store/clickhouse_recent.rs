//! [`RecentTicks`]: the query node's memory of ClickHouse's newest closed `stream_ticks`
//! rows and of `closed_through`, so a dashboard poll (one target's open buckets) sends
//! ClickHouse no query at all.
//!
//! Without it every poll costs a `node_progress` read plus one or two `stream_ticks`
//! reads, and a fleet of dashboards polling 500 times a second queues up on ClickHouse.
//! With it:
//! - `closed_through` (and the node count) is read at most once per [`PROGRESS_TTL_MS`]
//!   and shared by the requests in between. Closed windows are final, so a view a few
//!   hundred milliseconds old only shows fewer points as final, never a wrong one.
//! - When `closed_through` advances, the rows between the old and the new value are
//!   fetched once for all targets (`FINAL`, so a retried insert counts once), ordered by
//!   `t` and appended. Those rows are complete: a node records its progress only after
//!   the rows it covers (see `clickhouse.rs`). When the node count changes or
//!   `closed_through` moves back, the mirror is rebuilt from scratch. The first fill
//!   takes the newest [`WINDOW_MS`] before `closed_through`.
//! - [`Mirror`] holds every row with `from <= t < through`. A read whose range starts at
//!   or after `from` is answered by the same code as the embedded store's in-memory reads
//!   (`memory_reads.rs`); any other read goes to SQL as before.
//! - Bounds: rows older than `through - WINDOW_MS` leave, and so do the oldest above
//!   [`MAX_ROWS`] (`from` rises past them). A fetch asks for at most `MAX_ROWS + 1` rows;
//!   a fuller answer drops the mirror (reads go to SQL until the next rebuild).

use crate::error::QueryError;
use crate::store::clickhouse::ch;
use crate::store::memory_reads::{COUNTERS, MemoryTicks};
use crate::store::time_sliced::TimeSliced;
use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Deserialize;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// How long one `closed_through` read serves the requests after it.
pub const PROGRESS_TTL_MS: u64 = 250;
/// How far back from `closed_through` the mirror reaches.
pub const WINDOW_MS: i64 = 2 * 3_600_000;
/// Rows the mirror may hold.
pub const MAX_ROWS: usize = 500_000;
/// Rows per batch (batches are ordered by `t`, so a short range meets few).
const SLICE_ROWS: usize = 4_096;

/// The columns the in-memory reads use.
static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("target", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("t", DataType::Int64, false),
        Field::new("viewers", DataType::Int64, false),
    ];
    fields.extend(
        COUNTERS
            .iter()
            .map(|c| Field::new(*c, DataType::Int64, false)),
    );
    Arc::new(Schema::new(fields))
});

/// The fetch of the closed rows with `? <= t < ?`, at most `?` of them.
pub const FETCH_SQL: &str = "SELECT kind, target, channel, t, viewers, events, views, \
     watch_ms, rebuffer_ms, rebuffer_count, startups, failures, chat_messages, follows, \
     likes, shares, embed_views, clickthroughs FROM stream_ticks FINAL \
     WHERE t >= ? AND t < ? ORDER BY t LIMIT ?";

/// One row of [`FETCH_SQL`], its fields in the SELECT's order (RowBinary is positional).
#[derive(Debug, Deserialize, clickhouse::Row)]
struct TickRowCh {
    kind: String,
    target: String,
    channel: String,
    t: i64,
    viewers: i64,
    events: i64,
    views: i64,
    watch_ms: i64,
    rebuffer_ms: i64,
    rebuffer_count: i64,
    startups: i64,
    failures: i64,
    chat_messages: i64,
    follows: i64,
    likes: i64,
    shares: i64,
    embed_views: i64,
    clickthroughs: i64,
}

impl TickRowCh {
    /// The counters in [`COUNTERS`] order.
    fn counters(&self) -> [i64; 13] {
        [
            self.events,
            self.views,
            self.watch_ms,
            self.rebuffer_ms,
            self.rebuffer_count,
            self.startups,
            self.failures,
            self.chat_messages,
            self.follows,
            self.likes,
            self.shares,
            self.embed_views,
            self.clickthroughs,
        ]
    }
}

/// Every closed `stream_ticks` row with `from <= t < through`, as of `nodes` nodes.
#[derive(Debug)]
pub struct Mirror {
    pub from: i64,
    pub through: i64,
    pub nodes: u64,
    batches: Vec<RecordBatch>,
    rows: usize,
    /// `batches` with their time spans, built once per mirror (not per request).
    sliced: Arc<TimeSliced>,
}

fn sliced(batches: Vec<RecordBatch>) -> Arc<TimeSliced> {
    Arc::new(TimeSliced::memory(SCHEMA.clone(), "t", batches))
}

impl Mirror {
    fn empty(from: i64, through: i64, nodes: u64) -> Mirror {
        Mirror {
            from,
            through,
            nodes,
            batches: Vec::new(),
            rows: 0,
            sliced: sliced(Vec::new()),
        }
    }

    /// The in-memory reader over these rows (nothing provisional on ClickHouse).
    pub fn ticks(&self) -> MemoryTicks {
        MemoryTicks {
            recent: self.sliced.clone(),
            hot: sliced(Vec::new()),
            provisional: sliced(Vec::new()),
            closed_through: self.through,
        }
    }

    /// Appends rows (ordered by `t`, all in `[self.through, through)`) and moves
    /// `through`; then applies the window and the row bound.
    fn append(&mut self, rows: &[TickRowCh], through: i64) -> Result<(), QueryError> {
        for chunk in rows.chunks(SLICE_ROWS) {
            self.batches.push(batch(chunk)?);
            self.rows += chunk.len();
        }
        self.through = through;
        let oldest_kept = through.saturating_sub(WINDOW_MS);
        while let Some(first) = self.batches.first() {
            let newest = last_t(first);
            if newest >= oldest_kept && self.rows <= MAX_ROWS {
                break;
            }
            self.rows -= first.num_rows();
            self.batches.remove(0);
            // Rows at `newest` may go on in the next batch: start after them.
            self.from = self.from.max(newest.saturating_add(1));
        }
        self.from = self.from.max(oldest_kept.min(self.through));
        self.sliced = sliced(self.batches.clone());
        Ok(())
    }
}

fn last_t(b: &RecordBatch) -> i64 {
    b.column_by_name("t")
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .and_then(|a| a.values().last().copied())
        .unwrap_or(i64::MIN)
}

fn batch(rows: &[TickRowCh]) -> Result<RecordBatch, QueryError> {
    let text = |f: fn(&TickRowCh) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let int = |f: &dyn Fn(&TickRowCh) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(f)))
    };
    let mut columns = vec![
        text(|r| r.kind.as_str()),
        text(|r| r.target.as_str()),
        text(|r| r.channel.as_str()),
        int(&|r| r.t),
        int(&|r| r.viewers),
    ];
    for i in 0..COUNTERS.len() {
        columns.push(int(&|r| r.counters().get(i).copied().unwrap_or(0)));
    }
    RecordBatch::try_new(SCHEMA.clone(), columns)
        .map_err(|e| QueryError::Store(format!("recent ticks batch: {e}")))
}

#[derive(Debug, Default)]
struct State {
    /// `(read at, closed_through, nodes)` of the last `node_progress` read.
    progress: Option<(Instant, i64, u64)>,
    mirror: Option<Arc<Mirror>>,
}

/// The shared progress and mirror of one query node (see the module notes).
#[derive(Debug, Default)]
pub struct RecentTicks {
    state: tokio::sync::Mutex<State>,
}

impl RecentTicks {
    /// `(closed_through, nodes, mirror)` for a new request: the progress read again when
    /// older than [`PROGRESS_TTL_MS`], the mirror brought up to it. One request at a
    /// time refreshes; the others wait for it and share its answer.
    pub async fn view(
        &self,
        client: &clickhouse::Client,
        read_progress: impl AsyncFnOnce() -> Result<(i64, u64), QueryError>,
    ) -> Result<(i64, u64, Option<Arc<Mirror>>), QueryError> {
        let mut st = self.state.lock().await;
        let (ct, nodes) = match st.progress {
            Some((at, ct, n)) if at.elapsed() < Duration::from_millis(PROGRESS_TTL_MS) => (ct, n),
            _ => {
                let (ct, n) = read_progress().await?;
                st.progress = Some((Instant::now(), ct, n));
                (ct, n)
            }
        };
        let current = st.mirror.clone();
        let next = match current {
            Some(m) if m.nodes == nodes && m.through == ct => Some(m),
            Some(m) if m.nodes == nodes && m.through < ct => {
                match fetch(client, m.through, ct).await? {
                    Some(rows) => {
                        let mut grown = Mirror {
                            from: m.from,
                            through: m.through,
                            nodes,
                            batches: m.batches.clone(),
                            rows: m.rows,
                            sliced: m.sliced.clone(),
                        };
                        grown.append(&rows, ct)?;
                        Some(Arc::new(grown))
                    }
                    None => None,
                }
            }
            // First fill, a new node, or `closed_through` moved back: start over.
            _ => {
                let from = ct.saturating_sub(WINDOW_MS);
                match fetch(client, from, ct).await? {
                    Some(rows) => {
                        let mut m = Mirror::empty(from, from, nodes);
                        m.append(&rows, ct)?;
                        Some(Arc::new(m))
                    }
                    None => None,
                }
            }
        };
        st.mirror = next.clone();
        crate::metrics::RECENT_TICK_ROWS.set(next.as_ref().map_or(0, |m| m.rows) as i64);
        Ok((ct, nodes, next))
    }
}

/// The closed rows with `from <= t < to`, or `None` when there are more than
/// [`MAX_ROWS`] (the mirror is then dropped).
async fn fetch(
    client: &clickhouse::Client,
    from: i64,
    to: i64,
) -> Result<Option<Vec<TickRowCh>>, QueryError> {
    let rows: Vec<TickRowCh> = client
        .query(FETCH_SQL)
        .bind(from)
        .bind(to)
        .bind(MAX_ROWS as u64 + 1)
        .fetch_all()
        .await
        .map_err(ch)?;
    Ok((rows.len() <= MAX_ROWS).then_some(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: i64) -> TickRowCh {
        TickRowCh {
            kind: "stream".into(),
            target: "s".into(),
            channel: "c".into(),
            t,
            viewers: 1,
            events: 1,
            views: 1,
            watch_ms: 1,
            rebuffer_ms: 1,
            rebuffer_count: 1,
            startups: 1,
            failures: 1,
            chat_messages: 1,
            follows: 1,
            likes: 1,
            shares: 1,
            embed_views: 1,
            clickthroughs: 1,
        }
    }

    #[test]
    fn the_window_moves_from_past_whole_batches_only() {
        let mut m = Mirror::empty(0, 0, 1);
        let rows: Vec<_> = (0..10_000).map(|i| row(i / 2)).collect();
        m.append(&rows, 5_000).expect("append");
        assert_eq!((m.from, m.through, m.rows), (0, 5_000, 10_000));
        assert_eq!(m.batches.len(), 3);
        // Two hours later: everything before through - WINDOW_MS leaves.
        let later = WINDOW_MS + 2_048;
        m.append(&[row(later - 1)], later).expect("append");
        assert_eq!(m.through, later);
        assert!(m.from >= 2_048, "{}", m.from);
        let kept: usize = m.batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(kept, m.rows);
        // Every row at or after `from` is still there.
        let ts: Vec<i64> = m
            .batches
            .iter()
            .flat_map(|b| {
                b.column_by_name("t")
                    .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                    .map(|a| a.values().to_vec())
                    .unwrap_or_default()
            })
            .collect();
        let want: Vec<i64> = (0..10_000)
            .map(|i| i / 2)
            .chain([later - 1])
            .filter(|t| *t >= m.from)
            .collect();
        assert_eq!(ts, want);
    }
}
