//! The ClickHouse sink (the scale path of DESIGN.md decision 2).
//!
//! `write` (on the aggregator's thread) only encodes the closed windows of every table
//! `ClosedWindows::batches` carries as RowBinary, adds this node's `node_progress` row,
//! and appends that flush to the on-disk [`Spool`]: a local file write, so ClickHouse
//! being slow or down never holds up the aggregator or ingest. A sender thread drains
//! the spool in order: it waits at least `insert_interval_ms` between rounds (about one
//! INSERT per table per second), takes up to `max_batch_rows` rows of the oldest
//! flushes, sends one INSERT per table (progress last, so a reader never sees progress
//! before the rows it covers), and removes the files once every INSERT was
//! acknowledged. A failure is counted, logged and retried with exponential backoff,
//! forever: the spool holds the rows meanwhile, bounded by `max_spool_bytes` (a flush
//! that does not fit is refused, counted and logged).
//!
//! Nothing is written twice: an INSERT that is retried after ClickHouse already took it
//! (a lost acknowledgement), or a flush drained again after a crash, writes rows with
//! the same keys, which `ReplacingMergeTree` collapses and readers read with `FINAL`.
//!
//! The open (provisional) windows are not written to ClickHouse: readers of the
//! ClickHouse store see closed windows only (`closed_through` = min over nodes).

use crate::AggregatorError;
use crate::metrics::ClickHouseMetrics;
use crate::sinks::spool::{Frame, Spool};
use crate::sinks::{Provisional, WindowSink};
use pulse_schemas::clickhouse as ddl;
use pulse_schemas::{ClosedWindows, Id};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Settings of the ClickHouse sink (`[clickhouse]` in the TOML file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// ClickHouse HTTP URL (set from the top-level `clickhouse_url`).
    #[serde(skip)]
    pub url: String,
    /// Spool directory (set to `<data_dir>/clickhouse-spool`).
    #[serde(skip)]
    pub spool_dir: PathBuf,
    /// Most rows in one drain round (one INSERT per table). Default 200 000.
    pub max_batch_rows: u64,
    /// Least time between drain rounds, in ms. Default 1000.
    pub insert_interval_ms: u64,
    /// Bound of the on-disk spool in bytes. Default 1 GiB.
    pub max_spool_bytes: u64,
    /// First wait after a failed INSERT, doubled up to `retry_max_ms`. Default 200.
    pub retry_min_ms: u64,
    /// Longest wait between retries, in ms. Default 5000.
    pub retry_max_ms: u64,
    /// Time limit of one INSERT or DDL statement, in ms. Default 30 000.
    pub request_timeout_ms: u64,
    /// On graceful shutdown, how long to keep draining before leaving the rest in the
    /// spool for the next start, in ms. Default 15 000.
    pub shutdown_drain_ms: u64,
    /// How often a node reads the alert transitions of the other nodes for its live
    /// feeds (`pulse serve` on ClickHouse), in ms. Default 500: with the 1 s insert
    /// interval an alert crosses nodes in at most ~1.5 s plus the query.
    pub alert_poll_ms: u64,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            spool_dir: PathBuf::from("./data/clickhouse-spool"),
            max_batch_rows: 200_000,
            insert_interval_ms: 1000,
            max_spool_bytes: 1 << 30,
            retry_min_ms: 200,
            retry_max_ms: 5000,
            request_timeout_ms: 30_000,
            shutdown_drain_ms: 15_000,
            alert_poll_ms: 500,
        }
    }
}

/// A client for `url` that works with ClickHouse 18.16 and current releases: no
/// schema validation (18.16 lacks `RowBinaryWithNamesAndTypes`), no compression.
pub fn client(url: &str) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(url)
        .with_validation(false)
}

fn ch_err(e: impl std::fmt::Display) -> AggregatorError {
    AggregatorError::ClickHouse(e.to_string())
}

/// Applies every DDL statement (idempotent), then adds to tables an older Pulse created
/// the columns added since (`ALTER TABLE … ADD COLUMN`; such columns are nullable, so
/// old rows read null: for `viewer_minutes`' slice masks, "in no 5-second slice").
/// Returns how many statements were applied.
pub async fn migrate(client: &clickhouse::Client) -> Result<usize, AggregatorError> {
    for (file, sql) in ddl::DDL {
        client
            .query(sql)
            .execute()
            .await
            .map_err(|e| AggregatorError::ClickHouse(format!("{file}: {e}")))?;
    }
    let mut applied = ddl::DDL.len();
    for &table in pulse_schemas::Table::ALL {
        let have: Vec<String> = client
            .query(
                "SELECT name FROM system.columns \
                 WHERE database = currentDatabase() AND table = ?",
            )
            .bind(table.name())
            .fetch_all()
            .await
            .map_err(|e| {
                AggregatorError::ClickHouse(format!("columns of {}: {e}", table.name()))
            })?;
        for field in table.schema().fields() {
            if have.iter().any(|c| c == field.name()) {
                continue;
            }
            let ty = ddl::clickhouse_type(field).ok_or_else(|| {
                AggregatorError::ClickHouse(format!(
                    "{}.{}: no ClickHouse type for {}",
                    table.name(),
                    field.name(),
                    field.data_type()
                ))
            })?;
            let sql = format!(
                "ALTER TABLE {} ADD COLUMN {} {ty}",
                table.name(),
                field.name()
            );
            client
                .query(&sql)
                .execute()
                .await
                .map_err(|e| AggregatorError::ClickHouse(format!("{sql}: {e}")))?;
            tracing::info!(table = table.name(), column = %field.name(), "added a column to a table an older Pulse created");
            applied += 1;
        }
    }
    Ok(applied)
}

/// The day partitions of one table (`?` = table name), read by [`drop_days_before`].
pub const PARTITIONS_SQL: &str = "SELECT DISTINCT partition FROM system.parts \
     WHERE database = currentDatabase() AND table = ? AND active ORDER BY partition";

/// Drops every day partition of every table that ends at or before `cutoff_ms`
/// (retention). Returns `(table, day)` of each partition dropped.
pub async fn drop_days_before(
    client: &clickhouse::Client,
    cutoff_ms: i64,
) -> Result<Vec<(String, i64)>, AggregatorError> {
    let first_kept = cutoff_ms.div_euclid(ddl::DAY_MS);
    let mut dropped = Vec::new();
    for &(table, _) in ddl::PARTITIONED {
        let days: Vec<String> = client
            .query(PARTITIONS_SQL)
            .bind(table)
            .fetch_all()
            .await
            .map_err(ch_err)?;
        for day in days {
            let Ok(d) = day.trim_matches('\'').parse::<i64>() else {
                continue;
            };
            if d < first_kept {
                client
                    .query(&format!("ALTER TABLE {table} DROP PARTITION {d}"))
                    .execute()
                    .await
                    .map_err(ch_err)?;
                dropped.push((table.to_owned(), d));
            }
        }
    }
    Ok(dropped)
}

/// The RowBinary inserts of one flush: one per non-empty table, then the progress row.
pub fn encode_flush(node: &Id, closed: &ClosedWindows) -> Result<Vec<Frame>, AggregatorError> {
    let mut frames = Vec::new();
    for (table, batch) in closed.batches() {
        let mut data = Vec::new();
        ddl::encode_rowbinary(&batch, &mut data).map_err(ch_err)?;
        frames.push(Frame {
            sql: ddl::insert_sql(table),
            rows: batch.num_rows() as u64,
            data,
        });
    }
    frames.push(Frame {
        sql: ddl::progress_insert_sql(),
        rows: 1,
        data: ddl::encode_progress(node.as_str(), closed.closed_through),
    });
    Ok(frames)
}

/// Merges the frames of several flushes into one INSERT per statement, in the order
/// the statements first appear, with the progress INSERT always last.
pub fn combine(frames: Vec<Frame>) -> Vec<Frame> {
    let progress = ddl::progress_insert_sql();
    let mut out: Vec<Frame> = Vec::new();
    for f in frames {
        match out.iter_mut().find(|o| o.sql == f.sql) {
            Some(o) => {
                o.rows += f.rows;
                o.data.extend_from_slice(&f.data);
            }
            None => out.push(f),
        }
    }
    out.sort_by_key(|f| f.sql == progress);
    out
}

struct Shared {
    spool: Mutex<Spool>,
    wake: Condvar,
    /// Graceful shutdown asked: drain, then stop.
    stopping: AtomicBool,
    /// Stop now, leaving the rest in the spool.
    abort: AtomicBool,
    /// A retention cutoff (epoch ms) the sender applies between rounds; 0 = none asked.
    retention_cutoff: AtomicI64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Spool> {
        match self.spool.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The ClickHouse writer. See the module notes.
pub struct ClickHouseSink {
    node: Id,
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
    shutdown_drain: Duration,
    last_closed_through: Option<i64>,
}

impl ClickHouseSink {
    /// Opens the spool (resuming what an earlier run left) and starts the sender thread,
    /// which first applies the DDL (retrying until ClickHouse answers).
    pub fn open(config: ClickHouseConfig, node: Id) -> Result<Self, AggregatorError> {
        let spool = Spool::open(&config.spool_dir, config.max_spool_bytes)?;
        if !spool.is_empty() {
            tracing::info!(
                files = spool.len(),
                bytes = spool.bytes(),
                "resuming the ClickHouse spool"
            );
        }
        set_gauges(&spool);
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            retention_cutoff: AtomicI64::new(0),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AggregatorError::Runtime(format!("ClickHouse sender runtime: {e}")))?;
        let s = shared.clone();
        let shutdown_drain = Duration::from_millis(config.shutdown_drain_ms);
        let sender = std::thread::Builder::new()
            .name("pulse-clickhouse".into())
            .spawn(move || Sender::new(config, s, runtime).run())
            .map_err(|e| AggregatorError::Runtime(format!("ClickHouse sender thread: {e}")))?;
        Ok(ClickHouseSink {
            node,
            shared,
            sender: Some(sender),
            shutdown_drain,
            last_closed_through: None,
        })
    }

    /// Flushes waiting in the spool.
    pub fn spooled(&self) -> usize {
        self.shared.lock().len()
    }
}

fn set_gauges(spool: &Spool) {
    let m = ClickHouseMetrics::get();
    m.spool_bytes.set(spool.bytes() as i64);
    m.spool_files.set(spool.len() as i64);
}

impl WindowSink for ClickHouseSink {
    fn wants_provisional(&self) -> bool {
        false
    }

    /// Hands the cutoff to the sender thread, which drops the partitions between drain
    /// rounds (so a slow or absent ClickHouse never holds up the aggregator). Returns 0:
    /// the days are dropped, logged and counted there.
    fn drop_days_before(&mut self, cutoff_ms: i64) -> Result<usize, AggregatorError> {
        self.shared
            .retention_cutoff
            .fetch_max(cutoff_ms, Ordering::AcqRel);
        self.shared.wake.notify_all();
        Ok(0)
    }

    fn write(
        &mut self,
        closed: &ClosedWindows,
        _provisional: &Provisional,
    ) -> Result<(), AggregatorError> {
        if closed.is_empty() && self.last_closed_through == Some(closed.closed_through) {
            return Ok(());
        }
        let frames = encode_flush(&self.node, closed)?;
        let mut spool = self.shared.lock();
        if spool.push(&frames)? {
            self.last_closed_through = Some(closed.closed_through);
        } else {
            let rows: u64 = frames.iter().map(|f| f.rows).sum::<u64>() - 1;
            let m = ClickHouseMetrics::get();
            m.spool_dropped_total.inc();
            m.spool_dropped_rows_total.inc_by(rows);
            tracing::error!(
                rows,
                spool_bytes = spool.bytes(),
                "ClickHouse spool full: dropping a flush of closed windows"
            );
        }
        set_gauges(&spool);
        drop(spool);
        self.shared.wake.notify_all();
        Ok(())
    }

    fn shutdown(&mut self) -> Result<(), AggregatorError> {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        let deadline = Instant::now() + self.shutdown_drain;
        while Instant::now() < deadline && self.sender.as_ref().is_some_and(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.shared.abort.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        if let Some(h) = self.sender.take() {
            h.join()
                .map_err(|_| AggregatorError::Runtime("the ClickHouse sender panicked".into()))?;
        }
        let left = self.shared.lock().len();
        if left > 0 {
            tracing::warn!(
                files = left,
                "ClickHouse unreachable at shutdown: flushes stay in the spool for the next start"
            );
        }
        Ok(())
    }
}

impl Drop for ClickHouseSink {
    fn drop(&mut self) {
        self.shared.abort.store(true, Ordering::Release);
        self.shared.wake.notify_all();
        if let Some(h) = self.sender.take() {
            let _ = h.join();
        }
    }
}

struct Sender {
    config: ClickHouseConfig,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Runtime,
    client: clickhouse::Client,
    backoff: Duration,
}

impl Sender {
    fn new(
        config: ClickHouseConfig,
        shared: Arc<Shared>,
        runtime: tokio::runtime::Runtime,
    ) -> Self {
        let client = client(&config.url);
        let backoff = Duration::from_millis(config.retry_min_ms);
        Sender {
            config,
            shared,
            runtime,
            client,
            backoff,
        }
    }

    fn aborted(&self) -> bool {
        self.shared.abort.load(Ordering::Acquire)
    }

    /// Sleeps `d`, waking early on abort. Returns false when aborted.
    fn pause(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        let mut spool = self.shared.lock();
        while !self.aborted() {
            let now = Instant::now();
            if now >= until {
                return true;
            }
            spool = match self.shared.wake.wait_timeout(spool, until - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        false
    }

    fn failed(&mut self, what: &str, e: &AggregatorError) -> bool {
        ClickHouseMetrics::get().insert_errors_total.inc();
        tracing::warn!(error = %e, retry_in_ms = self.backoff.as_millis() as u64, "ClickHouse {what} failed; retrying");
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(Duration::from_millis(self.config.retry_max_ms));
        self.pause(wait)
    }

    fn block<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, AggregatorError>>,
    ) -> Result<T, AggregatorError> {
        let limit = Duration::from_millis(self.config.request_timeout_ms);
        self.runtime.block_on(async {
            tokio::time::timeout(limit, fut)
                .await
                .map_err(|_| AggregatorError::ClickHouse(format!("no answer within {limit:?}")))?
        })
    }

    /// Drops the day partitions before an asked retention cutoff (one try; a failure
    /// is logged and the next hourly request tries again).
    fn apply_retention(&self) {
        let cutoff = self.shared.retention_cutoff.swap(0, Ordering::AcqRel);
        if cutoff <= 0 {
            return;
        }
        match self.block(drop_days_before(&self.client, cutoff)) {
            Ok(days) if !days.is_empty() => {
                tracing::info!(
                    partitions = days.len(),
                    "retention dropped ClickHouse day partitions"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "ClickHouse retention failed"),
        }
    }

    fn run(mut self) {
        loop {
            if self.aborted() {
                return;
            }
            match self.block(migrate(&self.client)) {
                Ok(_) => break,
                Err(e) => {
                    if !self.failed("migration", &e) {
                        return;
                    }
                }
            }
        }
        self.backoff = Duration::from_millis(self.config.retry_min_ms);
        let interval = Duration::from_millis(self.config.insert_interval_ms);
        let mut last_round: Option<Instant> = None;
        loop {
            self.apply_retention();
            // Wait for work (or for the end).
            let batch = {
                let mut spool = self.shared.lock();
                while spool.is_empty() {
                    if self.aborted() || self.shared.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    if self.shared.retention_cutoff.load(Ordering::Acquire) > 0 {
                        break;
                    }
                    spool = match self
                        .shared
                        .wake
                        .wait_timeout(spool, Duration::from_millis(250))
                    {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    };
                }
                spool.peek(self.config.max_batch_rows)
            };
            let (last_seq, frames) = match batch {
                Ok(Some(b)) => b,
                Ok(None) => {
                    self.apply_retention();
                    if !self.pause(Duration::from_millis(50)) {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading the ClickHouse spool failed");
                    if !self.pause(Duration::from_millis(self.config.retry_max_ms)) {
                        return;
                    }
                    continue;
                }
            };
            // The time bound: about one round (one INSERT per table) per interval.
            if let Some(t) = last_round
                && !self.shared.stopping.load(Ordering::Acquire)
            {
                let since = t.elapsed();
                if since < interval && !self.pause(interval - since) {
                    return;
                }
            }
            last_round = Some(Instant::now());
            let inserts = combine(frames);
            let mut ok = true;
            for f in &inserts {
                if let Err(e) = self.block(insert(&self.client, f)) {
                    ok = false;
                    if !self.failed("insert", &e) {
                        return;
                    }
                    break;
                }
                let m = ClickHouseMetrics::get();
                m.inserts_total.inc();
                m.rows_inserted_total.inc_by(f.rows);
            }
            if !ok {
                continue;
            }
            self.backoff = Duration::from_millis(self.config.retry_min_ms);
            let mut spool = self.shared.lock();
            if let Err(e) = spool.ack(last_seq) {
                tracing::error!(error = %e, "removing drained spool files failed");
            }
            set_gauges(&spool);
        }
    }
}

async fn insert(client: &clickhouse::Client, f: &Frame) -> Result<(), AggregatorError> {
    let mut ins = client.insert_formatted_with(f.sql.clone());
    ins.send(bytes::Bytes::from(f.data.clone()))
        .await
        .map_err(ch_err)?;
    ins.end().await.map_err(ch_err)
}
