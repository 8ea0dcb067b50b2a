//! Alerts across nodes (issue 5 point 5): the alert transitions that *other* nodes
//! write to the shared ClickHouse `alerts` table, re-broadcast to this node's live
//! feeds.
//!
//! One poller per node (not per feed) reads, every `alert_poll_ms` (default 0.5 s), the
//! rows with `node ≠ self` and `ts` at or after the newest `ts` it has seen minus
//! [`LOOKBACK_MS`] (rows of two nodes reach the table out of `ts` order); an
//! [`AlertCursor`] drops the rows it delivered already. Its first read only marks what
//! is there as seen, so a restart does not replay old transitions. A transition reaches
//! a feed on another node after at most one sink flush (`insert_interval_ms`, ~1 s) plus
//! one poll (~0.5 s) — within the 2 s of the issue — with no infrastructure beyond
//! ClickHouse. What stays node-local: the per-second health messages of streams whose
//! encoder is on another node (their history is in `health_ticks`).

use pulse_schemas::{AlertBroadcast, AlertKind, AlertState, AlertUpdate, Id, LiveUpdate, Severity};
use serde::Deserialize;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// How far before the newest seen `ts` each poll looks again.
pub const LOOKBACK_MS: i64 = 30_000;
/// Most rows one poll reads; most row keys remembered as delivered.
pub const MAX_ROWS: usize = 10_000;
/// Capacity of the broadcast to the feeds (a feed that lags re-reads its state).
pub const BROADCAST_CAPACITY: usize = 1024;
/// Longest one poll may take.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// One row of `alerts` as the poller reads it.
#[derive(Clone, Debug, PartialEq, Deserialize, clickhouse::Row)]
pub struct AlertRecord {
    pub node: String,
    pub stream: String,
    pub channel: String,
    pub ts: i64,
    pub alert: String,
    pub severity: String,
    pub state: String,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
}

type RowKey = (String, String, i64, String, String);

impl AlertRecord {
    fn key(&self) -> RowKey {
        (
            self.node.clone(),
            self.stream.clone(),
            self.ts,
            self.alert.clone(),
            self.state.clone(),
        )
    }

    /// The live-feed message of this row, or `None` when a field is not a known value.
    pub fn to_broadcast(&self, guide: fn(AlertKind) -> &'static str) -> Option<AlertBroadcast> {
        let word = |s: &str| serde_json::Value::String(s.to_owned());
        let alert: AlertKind = serde_json::from_value(word(&self.alert)).ok()?;
        let severity: Severity = serde_json::from_value(word(&self.severity)).ok()?;
        let state: AlertState = serde_json::from_value(word(&self.state)).ok()?;
        let update = AlertUpdate {
            stream: Id::parse(&self.stream).ok()?,
            ts: self.ts,
            alert,
            severity,
            state,
            value: self.value,
            threshold: self.threshold,
            message: self.message.clone(),
            guide: guide(alert).to_owned(),
        };
        let json = serde_json::to_string(&LiveUpdate::Alert(update.clone())).ok()?;
        Some(AlertBroadcast {
            channel: Id::parse(&self.channel).ok()?,
            alert: update,
            json: json.into(),
        })
    }
}

/// Which rows are new: pure, no I/O (unit-tested below).
#[derive(Debug, Default)]
pub struct AlertCursor {
    primed: bool,
    newest_ts: Option<i64>,
    /// The last poll filled its page: the next one goes on from its last `ts`
    /// instead of looking back (else a burst of more than a page would be read again
    /// and again).
    page_end: Option<i64>,
    seen: HashSet<RowKey>,
    order: VecDeque<RowKey>,
}

impl AlertCursor {
    /// The `ts` the next poll reads from (`None`: from the start of the table).
    pub fn from_ts(&self) -> Option<i64> {
        self.page_end.or(self.newest_ts.map(|t| t - LOOKBACK_MS))
    }

    /// The rows of one poll (ordered by `ts`) that were not delivered before. The first
    /// poll delivers nothing: it only learns what is already there.
    pub fn accept(&mut self, rows: Vec<AlertRecord>) -> Vec<AlertRecord> {
        self.page_end = if rows.len() >= MAX_ROWS {
            rows.last().map(|r| r.ts)
        } else {
            None
        };
        let mut fresh = Vec::new();
        for r in rows {
            self.newest_ts = Some(self.newest_ts.map_or(r.ts, |t| t.max(r.ts)));
            let key = r.key();
            if self.seen.contains(&key) {
                continue;
            }
            self.seen.insert(key.clone());
            self.order.push_back(key);
            if self.order.len() > MAX_ROWS
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
            if self.primed {
                fresh.push(r);
            }
        }
        self.primed = true;
        fresh
    }
}

/// The poll's SQL: one `?` for this node, one for the first `ts`.
pub fn poll_sql() -> String {
    format!(
        "SELECT node, stream, channel, ts, alert, severity, state, value, threshold, message \
         FROM alerts WHERE node != ? AND ts >= ? ORDER BY ts, stream, alert, state LIMIT {MAX_ROWS}"
    )
}

/// Polls ClickHouse at `url` for other nodes' alert rows until `shutdown`, sending
/// each new one on `tx`; the first poll reads from `clock() − LOOKBACK_MS`. Errors
/// are logged and retried at the next poll.
pub async fn run(
    url: String,
    node: String,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    every: Duration,
    guide: fn(AlertKind) -> &'static str,
    tx: broadcast::Sender<AlertBroadcast>,
    shutdown: CancellationToken,
) {
    let client = clickhouse::Client::default()
        .with_url(url)
        .with_validation(false);
    let sql = poll_sql();
    let mut cursor = AlertCursor::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // The first poll reaches back from this node's clock, not to the table's start.
        let from = cursor.from_ts().unwrap_or_else(|| clock() - LOOKBACK_MS);
        let fetch = client
            .query(&sql)
            .bind(node.as_str())
            .bind(from)
            .fetch_all::<AlertRecord>();
        // A hung ClickHouse must neither stall the feeds' next poll nor shutdown.
        let rows = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = tokio::time::timeout(POLL_TIMEOUT, fetch) => r,
        };
        match rows {
            Ok(Ok(rows)) => {
                for r in cursor.accept(rows) {
                    match r.to_broadcast(guide) {
                        // No feed listening is fine.
                        Some(b) => drop(tx.send(b)),
                        None => tracing::warn!(row = ?r, "alerts row with unknown values"),
                    }
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "polling other nodes' alerts failed"),
            Err(_) => tracing::warn!("polling other nodes' alerts timed out"),
        }
    }
}

/// A broadcast for [`run`] to send on and the live feeds to subscribe to.
pub fn channel() -> broadcast::Sender<AlertBroadcast> {
    broadcast::channel(BROADCAST_CAPACITY).0
}

/// Shared form of the sender kept in the query state.
pub type RemoteAlerts = Arc<broadcast::Sender<AlertBroadcast>>;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(node: &str, ts: i64, state: &str) -> AlertRecord {
        AlertRecord {
            node: node.into(),
            stream: "s1".into(),
            channel: "c1".into(),
            ts,
            alert: "bitrate_drop".into(),
            severity: "warning".into(),
            state: state.into(),
            value: 3000.0,
            threshold: 3500.0,
            message: "m".into(),
        }
    }

    #[test]
    fn first_poll_primes_then_only_new_rows_pass() {
        let mut c = AlertCursor::default();
        assert_eq!(c.from_ts(), None);
        assert!(c.accept(vec![row("a", 1_000, "firing")]).is_empty());
        assert_eq!(c.from_ts(), Some(1_000 - LOOKBACK_MS));
        let got = c.accept(vec![
            row("a", 1_000, "firing"),
            row("a", 900, "resolved"),
            row("b", 2_000, "firing"),
        ]);
        assert_eq!(
            got,
            vec![row("a", 900, "resolved"), row("b", 2_000, "firing")]
        );
        assert!(c.accept(vec![row("b", 2_000, "firing")]).is_empty());
        assert_eq!(c.from_ts(), Some(2_000 - LOOKBACK_MS));
    }

    #[test]
    fn rows_become_feed_messages() {
        let b = row("a", 5, "firing")
            .to_broadcast(|_| "guide")
            .expect("known values");
        assert_eq!(b.channel.as_str(), "c1");
        let v: serde_json::Value = serde_json::from_str(&b.json).expect("json");
        assert_eq!(v["type"], "alert");
        assert_eq!(v["alert"], "bitrate_drop");
        assert_eq!(v["guide"], "guide");
        let mut bad = row("a", 5, "firing");
        bad.severity = "apocalyptic".into();
        assert!(bad.to_broadcast(|_| "g").is_none());
    }

    #[test]
    fn a_full_page_goes_on_from_its_last_row() {
        let mut c = AlertCursor::default();
        c.accept(Vec::new());
        let page: Vec<AlertRecord> = (0..MAX_ROWS as i64)
            .map(|k| {
                let mut r = row("a", 1_000 + k / 2, "firing");
                r.stream = format!("s{k}");
                r
            })
            .collect();
        let last = page.last().map(|r| r.ts);
        assert_eq!(c.accept(page).len(), MAX_ROWS);
        assert_eq!(c.from_ts(), last, "no look-back after a full page");
        c.accept(vec![row("a", 90_000, "firing")]);
        assert_eq!(c.from_ts(), Some(90_000 - LOOKBACK_MS));
    }

    proptest! {
        /// Polls overlapping in any way deliver each row exactly once after priming.
        #[test]
        fn each_row_once(polls in proptest::collection::vec(
            proptest::collection::vec((0i64..50, 0usize..2), 0..20), 1..8)) {
            let mut c = AlertCursor::default();
            c.accept(Vec::new());
            let mut delivered = Vec::new();
            let mut all = HashSet::new();
            for p in polls {
                let rows: Vec<AlertRecord> = p.iter()
                    .map(|&(ts, s)| row("a", ts, ["firing", "resolved"][s]))
                    .collect();
                for r in &rows { all.insert(r.key()); }
                delivered.extend(c.accept(rows).into_iter().map(|r| r.key()));
            }
            let unique: HashSet<_> = delivered.iter().cloned().collect();
            prop_assert_eq!(unique.len(), delivered.len());
            prop_assert_eq!(unique, all);
        }
    }
}
