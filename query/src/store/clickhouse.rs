//! The ClickHouse reader: the same reads as [`super::embedded`], in SQL that ClickHouse
//! 18.16 and current releases both accept (`FINAL`, `intDiv`, `uniqExact`, `-If`).
//!
//! A snapshot is `closed_through` read once per request: the minimum over nodes of each
//! node's latest `node_progress` row. A node inserts that row only after the rows it
//! covers, so every window before it is complete in the store; each read is limited to
//! those windows (ticks with `t < closed_through`, minutes ending by it), which makes the
//! reads of one request agree with each other while inserts go on. Tables are read
//! with `FINAL`, so rows inserted twice (a retried INSERT) count once. Request values are
//! bound with `?` (escaped by the client), never spliced into SQL text.

use crate::error::QueryError;
use crate::store::clickhouse_recent::{Mirror, RecentTicks};
use crate::store::embedded::merge_serialized;
use crate::store::{
    AnalyticsStore, Bucketing, LiveRange, Scope, ScopeKind, SliceRead, StartupHistogram,
    TickTotals, TimeRange, ViewerCounts, bucket_start, empty_startup_histogram,
};
use pulse_schemas::MINUTE_SLICE_MS;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The reader half of the ClickHouse store: hands out one snapshot per request.
#[derive(Clone)]
pub struct ClickHouseStore {
    client: clickhouse::Client,
    /// Shared `closed_through` and newest closed ticks (`clickhouse_recent.rs`).
    recent: Arc<RecentTicks>,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore").finish_non_exhaustive()
    }
}

pub(crate) fn ch(e: clickhouse::error::Error) -> QueryError {
    QueryError::Store(format!("ClickHouse: {e}"))
}

impl ClickHouseStore {
    /// A reader of the ClickHouse server at `url` (18.16 or current).
    pub fn new(url: &str) -> Self {
        ClickHouseStore {
            client: clickhouse::Client::default()
                .with_url(url)
                .with_validation(false),
            recent: Arc::new(RecentTicks::default()),
        }
    }

    /// The HTTP client (ad-hoc SQL adds its own limits as settings).
    pub(crate) fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    /// The view of this request: `closed_through` (read at most every
    /// `PROGRESS_TTL_MS`, shared in between) and the mirror of the newest closed ticks.
    pub async fn snapshot(&self) -> Result<ClickHouseSnapshot, QueryError> {
        let client = &self.client;
        let read_progress = async || {
            let nodes: Vec<(String, i64)> =
                client.query(PROGRESS_SQL).fetch_all().await.map_err(ch)?;
            let closed_through = nodes.iter().map(|&(_, c)| c).min().unwrap_or(0);
            Ok((closed_through, nodes.len() as u64))
        };
        let (closed_through, nodes, recent) = self.recent.view(client, read_progress).await?;
        Ok(ClickHouseSnapshot {
            client: self.client.clone(),
            closed_through,
            nodes,
            recent,
        })
    }
}

/// One request's view of the ClickHouse tables.
#[derive(Clone)]
pub struct ClickHouseSnapshot {
    pub(crate) client: clickhouse::Client,
    pub(crate) closed_through: i64,
    /// Nodes in `node_progress`: `closed_through` (their minimum) moves back only when
    /// one appears.
    pub(crate) nodes: u64,
    /// Every closed `stream_ticks` row from `recent.from` to `closed_through`, in memory.
    pub(crate) recent: Option<Arc<Mirror>>,
}

impl std::fmt::Debug for ClickHouseSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseSnapshot")
            .field("closed_through", &self.closed_through)
            .finish_non_exhaustive()
    }
}

/// `WHERE` condition selecting a scope's rows; the one `?` is the id.
pub(super) fn scope_filter(scope: &Scope, streams_only: bool) -> &'static str {
    match (scope.kind, streams_only) {
        (ScopeKind::Stream, _) => "kind = 'stream' AND target = ?",
        (ScopeKind::Vod, _) => "kind = 'vod' AND target = ?",
        (ScopeKind::Clip, _) => "kind = 'clip' AND target = ?",
        (ScopeKind::Channel, false) => "channel = ?",
        (ScopeKind::Channel, true) => "kind = 'stream' AND channel = ?",
    }
}

fn bucket_expr(column: &str, bucketing: Bucketing) -> String {
    match bucketing {
        // Times are ≥ 0 (PROTOCOL.md), so truncating division aligns to the epoch.
        Some(step) => format!("intDiv({column}, {step}) * {step}"),
        None => "toInt64(0)".to_owned(),
    }
}

/// The range condition (two `?`), or nothing.
fn range_cond(range: Option<TimeRange>, column: &str) -> String {
    match range {
        Some(_) => format!(" AND {column} >= ? AND {column} < ?"),
        None => String::new(),
    }
}

/// Every SQL text the reader issues, with sample values bound the way requests bind
/// them (for the dialect check: chDB runs each against the same DDL).
pub fn every_query() -> Vec<String> {
    let snap = ClickHouseSnapshot {
        client: clickhouse::Client::default(),
        closed_through: 1_764_000_060_000,
        nodes: 1,
        recent: None,
    };
    let scope = |kind| Scope {
        kind,
        id: pulse_schemas::Id::new_unchecked("stream:x.1-a_b"),
    };
    let mut out = vec![
        PROGRESS_SQL.to_owned(),
        snap.client
            .query(crate::store::clickhouse_recent::FETCH_SQL)
            .bind(1_763_992_860_000_i64)
            .bind(1_764_000_060_000_i64)
            .bind(500_001_u64)
            .sql_display()
            .to_string(),
    ];
    for kind in ScopeKind::ALL {
        let s = scope(kind);
        for range in [
            None,
            Some(TimeRange {
                from: 1_764_000_000_000,
                to: 1_764_000_060_000,
            }),
        ] {
            let mut sqls = vec![
                tick_totals_sql(&s, range),
                startup_sql(&s, range),
                live_ranges_sql(&s, range),
            ];
            for b in [None, Some(5_000), Some(60_000)] {
                sqls.push(viewer_counts_sql(&s, range, b));
            }
            for sql in sqls {
                out.push(snap.query(&sql, &s, range).sql_display().to_string());
            }
        }
    }
    let stream = "stream:x.1-a_b";
    for sql in [
        super::clickhouse_health::HEALTH_TICKS_SQL.to_owned(),
        super::clickhouse_health::alert_history_sql(1000),
    ] {
        let q = snap.client.query(&sql).bind(stream);
        let q = if sql.contains("t >= ?") {
            q.bind(1_764_000_000_000_i64)
        } else {
            q
        };
        out.push(q.sql_display().to_string());
    }
    out.extend(super::content_reads::every_query());
    out.extend(super::qoe_reads::every_query());
    out
}

const PROGRESS_SQL: &str =
    "SELECT node, max(closed_through) FROM node_progress GROUP BY node ORDER BY node";

fn tick_totals_sql(scope: &Scope, range: Option<TimeRange>) -> String {
    let viewers = match scope.kind {
        ScopeKind::Channel => "sum(if(kind = 'stream', viewers, 0))",
        _ => "sum(viewers)",
    };
    format!(
        "SELECT t, {viewers} AS viewers, sum(events) AS events, sum(views) AS views, \
         sum(watch_ms) AS watch_ms, sum(rebuffer_ms) AS rebuffer_ms, \
         sum(rebuffer_count) AS rebuffer_count, sum(startups) AS startups, \
         sum(failures) AS failures, sum(chat_messages) AS chat_messages, \
         sum(follows) AS follows, sum(likes) AS likes, sum(shares) AS shares, \
         sum(embed_views) AS embed_views, sum(clickthroughs) AS clickthroughs \
         FROM stream_ticks FINAL WHERE {filter} AND t < ?{cond} GROUP BY t ORDER BY t",
        filter = scope_filter(scope, false),
        cond = range_cond(range, "t"),
    )
}

fn live_ranges_sql(scope: &Scope, range: Option<TimeRange>) -> String {
    format!(
        "SELECT target, max(channel), min(t), max(t) FROM stream_ticks FINAL \
         WHERE {filter} AND t < ?{cond} AND events > 0 GROUP BY target ORDER BY target",
        filter = scope_filter(scope, true),
        cond = range_cond(range, "t"),
    )
}

fn viewer_counts_sql(scope: &Scope, range: Option<TimeRange>, bucketing: Bucketing) -> String {
    if let Some(s) = SliceRead::of(range, bucketing) {
        // Each minute row once per 5-second slice its mask marks.
        return format!(
            "SELECT {b} AS b, toInt64(uniqExact(viewer)), \
             toInt64(uniqExactIf(viewer, bitAnd(ifNull(follow_mask, 0), bitShiftLeft(toInt64(1), k)) != 0)) \
             FROM viewer_minutes FINAL ARRAY JOIN range({n}) AS k \
             WHERE {filter} AND minute + 60000 <= ?{cond} \
             AND bitAnd(ifNull(seen_mask, 0), bitShiftLeft(toInt64(1), k)) != 0 \
             GROUP BY b ORDER BY b",
            b = bucket_expr(&format!("(minute + k * {MINUTE_SLICE_MS})"), Some(s.step)),
            n = 60_000 / MINUTE_SLICE_MS,
            filter = scope_filter(scope, false),
            cond = range_cond(s.minutes, "minute"),
        );
    }
    format!(
        "SELECT {b} AS b, toInt64(uniqExact(viewer)), toInt64(uniqExactIf(viewer, followed = 1)) \
         FROM viewer_minutes FINAL WHERE {filter} AND minute + 60000 <= ?{cond} \
         GROUP BY b ORDER BY b",
        b = bucket_expr("minute", bucketing),
        filter = scope_filter(scope, false),
        cond = range_cond(range, "minute"),
    )
}

fn startup_sql(scope: &Scope, range: Option<TimeRange>) -> String {
    format!(
        "SELECT t, startup_hist FROM stream_ticks FINAL \
         WHERE {filter} AND t < ?{cond} AND startups > 0 ORDER BY t, node",
        filter = scope_filter(scope, false),
        cond = range_cond(range, "t"),
    )
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct TickTotalsRow {
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

#[derive(Debug, Deserialize, clickhouse::Row)]
struct HistRow {
    t: i64,
    blob: Vec<u8>,
}

impl ClickHouseSnapshot {
    /// The range clipped to the closed windows, when the mirror holds all of its rows.
    fn mirrored(&self, range: Option<TimeRange>) -> Option<(&Mirror, TimeRange)> {
        let (m, r) = (self.recent.as_deref()?, range?);
        let covered = m.through == self.closed_through && r.from >= m.from;
        let path = if covered { "memory" } else { "sql" };
        crate::metrics::TICK_READS.with_label_values(&[path]).inc();
        covered.then_some((
            m,
            TimeRange {
                from: r.from,
                to: r.to.min(self.closed_through),
            },
        ))
    }

    /// The client this snapshot reads with (the health reads bind their own values).
    pub(super) fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    pub(super) fn query(
        &self,
        sql: &str,
        scope: &Scope,
        range: Option<TimeRange>,
    ) -> clickhouse::query::Query {
        let mut q = self
            .client
            .query(sql)
            .bind(scope.id.as_str())
            .bind(self.closed_through);
        if let Some(r) = range {
            q = q.bind(r.from).bind(r.to);
        }
        q
    }
}

impl AnalyticsStore for ClickHouseSnapshot {
    fn closed_through(&self) -> i64 {
        self.closed_through
    }

    async fn tick_totals(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
    ) -> Result<Vec<TickTotals>, QueryError> {
        if let Some((m, r)) = self.mirrored(range) {
            return if r.from < r.to {
                m.ticks().tick_totals(scope, r)
            } else {
                Ok(Vec::new())
            };
        }
        let rows: Vec<TickTotalsRow> = self
            .query(&tick_totals_sql(scope, range), scope, range)
            .fetch_all()
            .await
            .map_err(ch)?;
        Ok(rows
            .into_iter()
            .map(|r| TickTotals {
                t: r.t,
                viewers: r.viewers,
                events: r.events,
                views: r.views,
                watch_ms: r.watch_ms,
                rebuffer_ms: r.rebuffer_ms,
                rebuffer_count: r.rebuffer_count,
                startups: r.startups,
                failures: r.failures,
                chat_messages: r.chat_messages,
                follows: r.follows,
                likes: r.likes,
                shares: r.shares,
                embed_views: r.embed_views,
                clickthroughs: r.clickthroughs,
            })
            .collect())
    }

    async fn live_ranges_in(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
    ) -> Result<Vec<LiveRange>, QueryError> {
        if let Some((m, r)) = self.mirrored(range) {
            return if r.from < r.to {
                m.ticks().live_ranges_in(scope, r)
            } else {
                Ok(Vec::new())
            };
        }
        let rows: Vec<(String, String, i64, i64)> = self
            .query(&live_ranges_sql(scope, range), scope, range)
            .fetch_all()
            .await
            .map_err(ch)?;
        Ok(rows
            .into_iter()
            .map(|(target, channel, first_t, last_t)| LiveRange {
                target,
                channel,
                first_t,
                last_t,
            })
            .collect())
    }

    async fn viewer_counts(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
        bucketing: Bucketing,
    ) -> Result<Vec<ViewerCounts>, QueryError> {
        let slices = SliceRead::of(range, bucketing);
        let rows_range = slices.map_or(range, |s| s.minutes);
        let rows: Vec<(i64, i64, i64)> = self
            .query(
                &viewer_counts_sql(scope, range, bucketing),
                scope,
                rows_range,
            )
            .fetch_all()
            .await
            .map_err(ch)?;
        // A bucket with a viewer minute has a viewer; 18.16 answers an empty input
        // grouped by a constant with one all-zero row, which means "no bucket".
        let mut out: Vec<ViewerCounts> = rows
            .into_iter()
            .filter(|&(_, unique_viewers, _)| unique_viewers > 0)
            .map(|(bucket, unique_viewers, followers)| ViewerCounts {
                bucket,
                unique_viewers,
                followers,
            })
            .collect();
        if let Some(s) = slices {
            s.keep(&mut out);
        }
        Ok(out)
    }

    async fn startup_histograms(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
        bucketing: Bucketing,
    ) -> Result<Vec<StartupHistogram>, QueryError> {
        // `String` holds bytes in ClickHouse; RowBinary writes it as length + bytes,
        // which is what a `Vec<u8>` reads.
        let rows: Vec<HistRow> = self
            .query(&startup_sql(scope, range), scope, range)
            .fetch_all()
            .await
            .map_err(ch)?;
        let mut merged: BTreeMap<i64, StartupHistogram> = BTreeMap::new();
        for HistRow { t, blob } in rows {
            if blob.is_empty() {
                continue;
            }
            let bucket = bucketing.map_or(0, |step| bucket_start(t, step));
            let entry = merged.entry(bucket).or_insert_with(|| StartupHistogram {
                bucket,
                hist: empty_startup_histogram(),
            });
            merge_serialized(&mut entry.hist, &blob);
        }
        Ok(merged.into_values().collect())
    }
}
