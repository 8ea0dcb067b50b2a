//! The reads behind the channel, VOD/clip and trending answers, on both stores:
//! per-target totals of a channel, finished views with their watch time (engagement),
//! the content activity that trending scores decay, and the channel of a target.
//! Same rows from [`EmbeddedSnapshot`] (DataFusion) and [`ClickHouseSnapshot`] (SQL
//! that ClickHouse 18.16 and current accept); [`StoreSnapshot`] picks one.

use super::clickhouse::{ClickHouseSnapshot, ch};
use super::embedded::{EmbeddedSnapshot, i64_col, str_col};
use super::{ScopeKind, StoreSnapshot, TickTotals, TimeRange};
use crate::error::QueryError;
use datafusion::scalar::ScalarValue;
use pulse_schemas::{Id, Table};

/// One target's counters summed over a range (`t` and `viewers` are 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetTotals {
    pub target: String,
    pub totals: TickTotals,
}

/// One tick of one VOD or clip with content activity (summed across nodes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentTick {
    pub kind: ScopeKind,
    pub target: String,
    pub channel: String,
    pub t: i64,
    pub views: i64,
    pub embed_views: i64,
    pub likes: i64,
    pub shares: i64,
}

/// Finished counted views of a target and how many reached the engagement threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Engagement {
    pub finished_views: i64,
    pub engaged_views: i64,
}

fn kind_name(kind: ScopeKind) -> &'static str {
    match kind {
        ScopeKind::Stream => "stream",
        ScopeKind::Vod => "vod",
        ScopeKind::Clip => "clip",
        ScopeKind::Channel => "channel",
    }
}

fn kind_of(name: &str) -> Option<ScopeKind> {
    match name {
        "stream" => Some(ScopeKind::Stream),
        "vod" => Some(ScopeKind::Vod),
        "clip" => Some(ScopeKind::Clip),
        _ => None,
    }
}

const TOTALS_COLS: &str = "SUM(views), SUM(watch_ms), SUM(likes), SUM(shares), SUM(embed_views), \
     SUM(clickthroughs), SUM(events), SUM(chat_messages), SUM(follows)";

fn totals_from(v: &[i64]) -> TickTotals {
    let g = |i: usize| v.get(i).copied().unwrap_or(0);
    TickTotals {
        views: g(0),
        watch_ms: g(1),
        likes: g(2),
        shares: g(3),
        embed_views: g(4),
        clickthroughs: g(5),
        events: g(6),
        chat_messages: g(7),
        follows: g(8),
        ..TickTotals::default()
    }
}

impl EmbeddedSnapshot {
    async fn target_totals(
        &self,
        channel: &Id,
        kind: ScopeKind,
        range: Option<TimeRange>,
    ) -> Result<Vec<TargetTotals>, QueryError> {
        let mut p = vec![
            ScalarValue::Utf8(Some(channel.as_str().to_owned())),
            ScalarValue::Utf8(Some(kind_name(kind).to_owned())),
        ];
        let cond = match range {
            Some(r) => {
                p.push(ScalarValue::Int64(Some(r.from)));
                p.push(ScalarValue::Int64(Some(r.to)));
                " AND t >= $3 AND t < $4"
            }
            None => "",
        };
        let sql = format!(
            "SELECT target, {TOTALS_COLS} FROM {rel} WHERE channel = $1 AND kind = $2{cond} \
             GROUP BY target ORDER BY target",
            rel = self.relation(Table::StreamTicks),
        );
        let mut out = Vec::new();
        for b in self.run(&sql, p).await? {
            let targets = str_col(&b, 0)?;
            let cols = (1..10)
                .map(|i| i64_col(&b, i))
                .collect::<Result<Vec<_>, _>>()?;
            for (r, target) in targets.into_iter().enumerate() {
                let v: Vec<i64> = cols.iter().map(|c| c[r]).collect();
                out.push(TargetTotals {
                    target,
                    totals: totals_from(&v),
                });
            }
        }
        out.sort_by(|a, b| a.target.cmp(&b.target));
        Ok(out)
    }

    async fn engagement(
        &self,
        kind: ScopeKind,
        target: &Id,
        threshold_ms: i64,
    ) -> Result<Engagement, QueryError> {
        let sql = format!(
            "SELECT COUNT(*), SUM(CASE WHEN w >= $3 THEN 1 ELSE 0 END) FROM \
             (SELECT session, SUM(watch_ms) AS w, MAX(CASE WHEN counted_view THEN 1 ELSE 0 END) AS c \
              FROM {rel} WHERE kind = $1 AND target = $2 GROUP BY session) AS s WHERE c = 1",
            rel = self.relation(Table::ViewSessions),
        );
        let p = vec![
            ScalarValue::Utf8(Some(kind_name(kind).to_owned())),
            ScalarValue::Utf8(Some(target.as_str().to_owned())),
            ScalarValue::Int64(Some(threshold_ms)),
        ];
        let mut out = Engagement::default();
        for b in self.run(&sql, p).await? {
            let (n, e) = (i64_col(&b, 0)?, i64_col(&b, 1)?);
            out.finished_views += n.iter().sum::<i64>();
            out.engaged_views += e.iter().sum::<i64>();
        }
        Ok(out)
    }

    async fn content_activity(
        &self,
        range: TimeRange,
        max_rows: usize,
    ) -> Result<Vec<ContentTick>, QueryError> {
        let sql = format!(
            "SELECT kind, target, MAX(channel), t, SUM(views), SUM(embed_views), SUM(likes), \
             SUM(shares) FROM {rel} WHERE kind IN ('vod', 'clip') AND t >= $1 AND t < $2 \
             AND views + embed_views + likes + shares > 0 GROUP BY kind, target, t \
             ORDER BY t DESC, kind, target LIMIT {limit}",
            rel = self.relation(Table::StreamTicks),
            limit = max_rows + 1,
        );
        let p = vec![
            ScalarValue::Int64(Some(range.from)),
            ScalarValue::Int64(Some(range.to)),
        ];
        let mut out = Vec::new();
        for b in self.run(&sql, p).await? {
            let (kinds, targets, channels) = (str_col(&b, 0)?, str_col(&b, 1)?, str_col(&b, 2)?);
            let cols = (3..8)
                .map(|i| i64_col(&b, i))
                .collect::<Result<Vec<_>, _>>()?;
            for r in 0..b.num_rows() {
                let Some(kind) = kind_of(&kinds[r]) else {
                    continue;
                };
                out.push(ContentTick {
                    kind,
                    target: targets[r].clone(),
                    channel: channels[r].clone(),
                    t: cols[0][r],
                    views: cols[1][r],
                    embed_views: cols[2][r],
                    likes: cols[3][r],
                    shares: cols[4][r],
                });
            }
        }
        Ok(out)
    }

    async fn target_channel(
        &self,
        kind: ScopeKind,
        target: &Id,
    ) -> Result<Option<String>, QueryError> {
        let sql = format!(
            // Only a channel every row agrees on: beacons name their own channel, so
            // rows that disagree say nothing trustworthy about the owner.
            "SELECT CASE WHEN MIN(channel) = MAX(channel) THEN MAX(channel) ELSE '' END \
             FROM {rel} WHERE kind = $1 AND target = $2",
            rel = self.relation(Table::StreamTicks),
        );
        let p = vec![
            ScalarValue::Utf8(Some(kind_name(kind).to_owned())),
            ScalarValue::Utf8(Some(target.as_str().to_owned())),
        ];
        let mut found = None;
        for b in self.run(&sql, p).await? {
            found = found.or(str_col(&b, 0)?.into_iter().find(|c| !c.is_empty()));
        }
        Ok(found)
    }
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct TotalsRow {
    target: String,
    views: i64,
    watch_ms: i64,
    likes: i64,
    shares: i64,
    embed_views: i64,
    clickthroughs: i64,
    events: i64,
    chat_messages: i64,
    follows: i64,
}

#[derive(Debug, serde::Deserialize, clickhouse::Row)]
struct ContentRow {
    kind: String,
    target: String,
    channel: String,
    t: i64,
    views: i64,
    embed_views: i64,
    likes: i64,
    shares: i64,
}

/// The ClickHouse SQL of these reads with sample values bound (for the dialect check).
pub fn every_query() -> Vec<String> {
    let c = clickhouse::Client::default();
    let (id, t0, t1) = ("chan:x.1-a_b", 1_764_000_000_000i64, 1_764_000_060_000i64);
    let show = |q: clickhouse::query::Query| q.sql_display().to_string();
    vec![
        show(
            c.query(&target_totals_ch(false))
                .bind(id)
                .bind("clip")
                .bind(t1),
        ),
        show(
            c.query(&target_totals_ch(true))
                .bind(id)
                .bind("vod")
                .bind(t1)
                .bind(t0)
                .bind(t1),
        ),
        show(c.query(ENGAGEMENT_CH).bind(60_000i64).bind("vod").bind(id)),
        show(c.query(CONTENT_CH).bind(t1).bind(t0).bind(t1).bind(1001u64)),
        show(c.query(CHANNEL_CH).bind("clip").bind(id).bind(t1)),
    ]
}

fn target_totals_ch(ranged: bool) -> String {
    format!(
        "SELECT target, sum(views) AS views, sum(watch_ms) AS watch_ms, sum(likes) AS likes, \
         sum(shares) AS shares, sum(embed_views) AS embed_views, sum(clickthroughs) AS clickthroughs, \
         sum(events) AS events, sum(chat_messages) AS chat_messages, sum(follows) AS follows \
         FROM stream_ticks FINAL WHERE channel = ? AND kind = ? AND t < ?{cond} \
         GROUP BY target ORDER BY target",
        cond = if ranged { " AND t >= ? AND t < ?" } else { "" },
    )
}

const ENGAGEMENT_CH: &str = "SELECT toInt64(count()), toInt64(countIf(w >= ?)) FROM \
     (SELECT session, sum(watch_ms) AS w, max(counted_view) AS c FROM view_sessions FINAL \
      WHERE kind = ? AND target = ? GROUP BY session) WHERE c = 1";

// Aliases differ from column names: ClickHouse resolves a WHERE name to its alias.
const CONTENT_CH: &str = "SELECT kind, target, max(channel) AS ch, t, sum(views) AS v, \
     sum(embed_views) AS ev, sum(likes) AS lk, sum(shares) AS sh \
     FROM stream_ticks FINAL WHERE kind IN ('vod', 'clip') AND t < ? AND t >= ? AND t < ? \
     AND views + embed_views + likes + shares > 0 GROUP BY kind, target, t \
     ORDER BY t DESC, kind, target LIMIT ?";

/// The channel every row of the target agrees on ('' when they disagree).
const CHANNEL_CH: &str = "SELECT if(min(channel) = max(channel), max(channel), '') \
     FROM stream_ticks FINAL WHERE kind = ? AND target = ? AND t < ?";

impl ClickHouseSnapshot {
    async fn target_totals(
        &self,
        channel: &Id,
        kind: ScopeKind,
        range: Option<TimeRange>,
    ) -> Result<Vec<TargetTotals>, QueryError> {
        let mut q = self
            .client
            .query(&target_totals_ch(range.is_some()))
            .bind(channel.as_str())
            .bind(kind_name(kind))
            .bind(self.closed_through);
        if let Some(r) = range {
            q = q.bind(r.from).bind(r.to);
        }
        let rows: Vec<TotalsRow> = q.fetch_all().await.map_err(ch)?;
        Ok(rows
            .into_iter()
            .map(|r| TargetTotals {
                target: r.target,
                totals: totals_from(&[
                    r.views,
                    r.watch_ms,
                    r.likes,
                    r.shares,
                    r.embed_views,
                    r.clickthroughs,
                    r.events,
                    r.chat_messages,
                    r.follows,
                ]),
            })
            .collect())
    }

    async fn engagement(
        &self,
        kind: ScopeKind,
        target: &Id,
        threshold_ms: i64,
    ) -> Result<Engagement, QueryError> {
        let rows: Vec<(i64, i64)> = self
            .client
            .query(ENGAGEMENT_CH)
            .bind(threshold_ms)
            .bind(kind_name(kind))
            .bind(target.as_str())
            .fetch_all()
            .await
            .map_err(ch)?;
        Ok(rows
            .into_iter()
            .fold(Engagement::default(), |acc, (n, e)| Engagement {
                finished_views: acc.finished_views + n,
                engaged_views: acc.engaged_views + e,
            }))
    }

    async fn content_activity(
        &self,
        range: TimeRange,
        max_rows: usize,
    ) -> Result<Vec<ContentTick>, QueryError> {
        let rows: Vec<ContentRow> = self
            .client
            .query(CONTENT_CH)
            .bind(self.closed_through)
            .bind(range.from)
            .bind(range.to)
            .bind(max_rows as u64 + 1)
            .fetch_all()
            .await
            .map_err(ch)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(ContentTick {
                    kind: kind_of(&r.kind)?,
                    target: r.target,
                    channel: r.channel,
                    t: r.t,
                    views: r.views,
                    embed_views: r.embed_views,
                    likes: r.likes,
                    shares: r.shares,
                })
            })
            .collect())
    }

    async fn target_channel(
        &self,
        kind: ScopeKind,
        target: &Id,
    ) -> Result<Option<String>, QueryError> {
        let rows: Vec<String> = self
            .client
            .query(CHANNEL_CH)
            .bind(kind_name(kind))
            .bind(target.as_str())
            .bind(self.closed_through)
            .fetch_all()
            .await
            .map_err(ch)?;
        Ok(rows.into_iter().find(|c| !c.is_empty()))
    }
}

impl StoreSnapshot {
    /// Per-target totals of the channel's targets of `kind` in `range` (all time when
    /// `None`), ordered by target.
    pub async fn target_totals(
        &self,
        channel: &Id,
        kind: ScopeKind,
        range: Option<TimeRange>,
    ) -> Result<Vec<TargetTotals>, QueryError> {
        match self {
            StoreSnapshot::Embedded(s) => s.target_totals(channel, kind, range).await,
            StoreSnapshot::ClickHouse(s) => s.target_totals(channel, kind, range).await,
        }
    }

    /// Finished counted views of a VOD or clip (sessions grouped across nodes) and how
    /// many watched at least `threshold_ms`.
    pub async fn engagement(
        &self,
        kind: ScopeKind,
        target: &Id,
        threshold_ms: i64,
    ) -> Result<Engagement, QueryError> {
        match self {
            StoreSnapshot::Embedded(s) => s.engagement(kind, target, threshold_ms).await,
            StoreSnapshot::ClickHouse(s) => s.engagement(kind, target, threshold_ms).await,
        }
    }

    /// Ticks of VODs and clips with views, embed views, likes or shares in `range`,
    /// ordered by kind, target and tick; at most `max_rows + 1` rows (more means cut).
    pub async fn content_activity(
        &self,
        range: TimeRange,
        max_rows: usize,
    ) -> Result<Vec<ContentTick>, QueryError> {
        match self {
            StoreSnapshot::Embedded(s) => s.content_activity(range, max_rows).await,
            StoreSnapshot::ClickHouse(s) => s.content_activity(range, max_rows).await,
        }
    }

    /// The channel of a target from its stored rows, `None` when it has none.
    pub async fn target_channel(
        &self,
        kind: ScopeKind,
        target: &Id,
    ) -> Result<Option<String>, QueryError> {
        match self {
            StoreSnapshot::Embedded(s) => s.target_channel(kind, target).await,
            StoreSnapshot::ClickHouse(s) => s.target_channel(kind, target).await,
        }
    }
}
