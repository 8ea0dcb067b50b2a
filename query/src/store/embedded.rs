//! The embedded store's reader: DataFusion over one [`TablesView`].
//!
//! Each table is the `UNION ALL` of
//! - a [`TimeSliced`] over the view's explicit Parquet file list (schema given, never
//!   inferred; left out when there is no file yet), which hands a `ListingTable` only
//!   the parts whose time span (read once from each footer) meets the query's,
//! - a [`TimeSliced`] over the recent (closed, not yet compacted) batches (a
//!   memory table that scans only the batches whose time span meets the query's),
//! - for `stream_ticks`, `viewer_minutes` and `qoe_minutes`, one over the provisional batches,
//!   keeping only rows of windows that are still open (`t ≥ closed_through`, minute end
//!   `> closed_through`): a closed window lives in the closed tables only, so a row can
//!   never count twice even if a writer published them out of step.
//!
//! A [`EmbeddedSnapshot`] (one `SessionContext` with those tables registered) is built
//! once per published `TablesView::version` and shared by every request that sees that
//! version: dashboards poll the series route, and registering tables per request would
//! be wasted work. The snapshots share one DataFusion `RuntimeEnv`, whose metadata cache
//! keeps each Parquet file's footer and page index after its first read: a poll reads only
//! the row groups and pages its target and time range can be in (parts are sorted by
//! `Table::sort_key`), without reopening every footer. Request values (ids, times) are bound as query parameters (`$1`...),
//! never spliced into SQL text.

use crate::error::QueryError;
use crate::store::file_spans::FileSpans;
use crate::store::memory_reads::MemoryTicks;
use crate::store::time_sliced::TimeSliced;
use crate::store::{
    AnalyticsStore, Bucketing, LiveRange, Scope, ScopeKind, SliceRead, StartupHistogram,
    TickTotals, TimeRange, ViewerCounts, bucket_start, empty_startup_histogram,
};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::{SessionConfig, SessionContext};
use pulse_schemas::{EmbeddedTables, MINUTE_SLICE_MS, Table, TablesView};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The reader half of the embedded store: hands out one snapshot per request.
pub struct EmbeddedStore {
    tables: Arc<EmbeddedTables>,
    target_partitions: usize,
    /// Shared by every snapshot, so the Parquet footers and page indexes it caches
    /// (`datafusion.runtime.metadata_cache_limit`) outlive a generation: files never
    /// change once published.
    runtime: Arc<RuntimeEnv>,
    /// The time span of each Parquet part, read once from its footer.
    spans: FileSpans,
    cached: Mutex<Option<Arc<EmbeddedSnapshot>>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("target_partitions", &self.target_partitions)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    pub fn new(tables: Arc<EmbeddedTables>, target_partitions: usize) -> Self {
        EmbeddedStore {
            tables,
            target_partitions: target_partitions.max(1),
            runtime: Arc::new(RuntimeEnv::default()),
            spans: FileSpans::default(),
            cached: Mutex::new(None),
        }
    }

    /// The snapshot of the current generation (built once per `TablesView::version`).
    pub fn snapshot(&self) -> Result<Arc<EmbeddedSnapshot>, QueryError> {
        let view = self.tables.view();
        let mut cached = match self.cached.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(snap) = cached.as_ref()
            && snap.version == view.version
        {
            return Ok(snap.clone());
        }
        let snap = Arc::new(EmbeddedSnapshot::build(
            &view,
            self.target_partitions,
            self.runtime.clone(),
            &self.spans,
        )?);
        crate::metrics::SNAPSHOTS_BUILT.inc();
        *cached = Some(snap.clone());
        Ok(snap)
    }
}

/// One consistent generation of the tables, registered in a DataFusion context.
pub struct EmbeddedSnapshot {
    ctx: SessionContext,
    version: u64,
    closed_through: i64,
    /// Per table, the SQL relation (a parenthesised `UNION ALL`) that reads all of it.
    relations: BTreeMap<Table, String>,
    /// `stream_ticks` in memory, for reads that need no Parquet part (`memory_reads.rs`).
    memory: MemoryTicks,
    /// `stream_ticks` parts (`None`: none yet).
    tick_files: Option<Arc<TimeSliced>>,
    /// The paths of those parts, in the same order.
    tick_paths: Vec<PathBuf>,
    /// Part → the `from` of the hot-tail entry mirroring it (every row with `t >= from`
    /// of that part is in `memory.hot`).
    hot_cover: HashMap<PathBuf, i64>,
}

impl std::fmt::Debug for EmbeddedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSnapshot")
            .field("version", &self.version)
            .field("closed_through", &self.closed_through)
            .finish_non_exhaustive()
    }
}

impl EmbeddedSnapshot {
    /// Registers the view's files and batches; no I/O beyond resolving file paths.
    pub fn build(
        view: &TablesView,
        target_partitions: usize,
        runtime: Arc<RuntimeEnv>,
        spans: &FileSpans,
    ) -> Result<Self, QueryError> {
        // No statistics collection at planning: the reads are single-table aggregates
        // with nothing to reorder, and collecting them costs a footer walk per part and
        // query. Row groups and pages are still pruned by their statistics at open.
        let config = SessionConfig::new()
            .with_target_partitions(target_partitions)
            .with_information_schema(false)
            .with_collect_statistics(false);
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let ct = view.closed_through;
        let mut relations = BTreeMap::new();
        // The hot tail counts only where every file it mirrors is published (a reader uses
        // it in place of those files, never beside them).
        let tick_paths = view
            .files
            .get(&Table::StreamTicks)
            .cloned()
            .unwrap_or_default();
        let published: HashSet<&PathBuf> = tick_paths.iter().collect();
        let mut hot_cover = HashMap::new();
        let mut hot_batches = Vec::new();
        for h in &view.hot_ticks {
            if h.files.iter().all(|f| published.contains(f)) {
                hot_cover.extend(h.files.iter().map(|f| (f.clone(), h.from)));
                hot_batches.extend(h.batches.iter().cloned());
            }
        }
        let mut memory = MemoryTicks {
            recent: sliced(Table::StreamTicks, Vec::new()),
            hot: sliced(Table::StreamTicks, hot_batches),
            provisional: sliced(Table::StreamTicks, Vec::new()),
            closed_through: ct,
        };
        let mut tick_files = None;
        for &table in Table::ALL {
            let name = table.name();
            let schema = table.schema();
            let mut parts = Vec::new();

            let files = view
                .files
                .get(&table)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if !files.is_empty() {
                let sliced = Arc::new(TimeSliced::parquet(
                    schema.clone(),
                    table.time_column(),
                    files,
                    spans,
                )?);
                if table == Table::StreamTicks {
                    tick_files = Some(sliced.clone());
                }
                ctx.register_table(format!("{name}_files"), sliced)?;
                parts.push(format!("SELECT * FROM {name}_files"));
            }

            let recent = view.recent.get(&table).cloned().unwrap_or_default();
            let recent = sliced(table, recent);
            if table == Table::StreamTicks {
                memory.recent = recent.clone();
            }
            ctx.register_table(format!("{name}_recent"), recent)?;
            parts.push(format!("SELECT * FROM {name}_recent"));

            let provisional = match table {
                Table::StreamTicks => Some((&view.provisional_ticks, format!("t >= {ct}"))),
                Table::ViewerMinutes => Some((
                    &view.provisional_viewer_minutes,
                    format!("minute + 60000 > {ct}"),
                )),
                Table::QoeMinutes => Some((
                    &view.provisional_qoe_minutes,
                    format!("minute + 60000 > {ct}"),
                )),
                Table::ViewSessions | Table::HealthTicks | Table::Alerts => None,
            };
            if let Some((batches, open_only)) = provisional {
                let provisional = sliced(table, batches.clone());
                if table == Table::StreamTicks {
                    memory.provisional = provisional.clone();
                }
                ctx.register_table(format!("{name}_provisional"), provisional)?;
                parts.push(format!(
                    "SELECT * FROM {name}_provisional WHERE {open_only}"
                ));
            }
            relations.insert(table, format!("({})", parts.join(" UNION ALL ")));
        }
        spans.retain_only(&view.files.values().flatten().collect::<Vec<_>>());
        Ok(EmbeddedSnapshot {
            ctx,
            version: view.version,
            closed_through: ct,
            relations,
            memory,
            tick_files,
            tick_paths,
            hot_cover,
        })
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// The context the relations are registered in (ad-hoc SQL builds its views here).
    pub(crate) fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Whether every `stream_ticks` row of `range` is in memory: each Parquet part whose
    /// span meets it is mirrored by the hot tail from `range.from` on (or none meets it).
    pub(crate) fn in_memory_only(&self, range: Option<TimeRange>) -> Option<TimeRange> {
        let covered = range.filter(|r| {
            self.tick_files.as_ref().is_none_or(|files| {
                files.meeting(r.from, r.to.saturating_sub(1)).all(|i| {
                    self.tick_paths
                        .get(i)
                        .and_then(|p| self.hot_cover.get(p))
                        .is_some_and(|&from| from <= r.from)
                })
            })
        });
        let path = if covered.is_some() { "memory" } else { "sql" };
        crate::metrics::TICK_READS.with_label_values(&[path]).inc();
        covered
    }

    pub(crate) fn relation(&self, table: Table) -> &str {
        self.relations
            .get(&table)
            .map(String::as_str)
            .unwrap_or("(SELECT 1 WHERE false)")
    }

    /// Runs `sql` with `$1..` bound to `params`.
    pub(crate) async fn run(
        &self,
        sql: &str,
        params: Vec<ScalarValue>,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        let df = self.ctx.sql(sql).await?;
        let df = if params.is_empty() {
            df
        } else {
            df.with_param_values(params)?
        };
        Ok(df.collect().await?)
    }
}

fn sliced(table: Table, batches: Vec<RecordBatch>) -> Arc<TimeSliced> {
    Arc::new(TimeSliced::memory(
        table.schema(),
        table.time_column(),
        batches,
    ))
}

/// `WHERE` condition selecting a scope's rows; `$1` is the id. `streams_only` narrows a
/// channel to its streams (live ranges).
pub(super) fn scope_filter(scope: &Scope, streams_only: bool) -> &'static str {
    match (scope.kind, streams_only) {
        (ScopeKind::Stream, _) => "kind = 'stream' AND target = $1",
        (ScopeKind::Vod, _) => "kind = 'vod' AND target = $1",
        (ScopeKind::Clip, _) => "kind = 'clip' AND target = $1",
        (ScopeKind::Channel, false) => "channel = $1",
        (ScopeKind::Channel, true) => "kind = 'stream' AND channel = $1",
    }
}

/// Parameters `$1` (id) and, with a range, `$2`/`$3` (from/to), plus the range condition.
pub(super) fn params(
    scope: &Scope,
    range: Option<TimeRange>,
    column: &str,
) -> (Vec<ScalarValue>, String) {
    let mut p = vec![ScalarValue::Utf8(Some(scope.id.as_str().to_owned()))];
    let cond = match range {
        Some(r) => {
            p.push(ScalarValue::Int64(Some(r.from)));
            p.push(ScalarValue::Int64(Some(r.to)));
            format!(" AND {column} >= $2 AND {column} < $3")
        }
        None => String::new(),
    };
    (p, cond)
}

fn bucket_expr(column: &str, bucketing: Bucketing) -> String {
    match bucketing {
        // Times are ≥ 0 (PROTOCOL.md), so truncating division aligns to the epoch.
        Some(step) => format!("({column} / {step}) * {step}"),
        None => "CAST(0 AS BIGINT)".to_owned(),
    }
}

pub(crate) fn i64_col(batch: &RecordBatch, i: usize) -> Result<Vec<i64>, QueryError> {
    let col = arrow::compute::cast(batch.column(i), &DataType::Int64)?;
    let a = col.as_primitive::<Int64Type>();
    Ok((0..a.len())
        .map(|r| if a.is_null(r) { 0 } else { a.value(r) })
        .collect())
}

pub(crate) fn str_col(batch: &RecordBatch, i: usize) -> Result<Vec<String>, QueryError> {
    let col = arrow::compute::cast(batch.column(i), &DataType::Utf8)?;
    let a = col.as_string::<i32>();
    Ok((0..a.len())
        .map(|r| {
            if a.is_null(r) {
                String::new()
            } else {
                a.value(r).to_owned()
            }
        })
        .collect())
}

impl EmbeddedSnapshot {
    /// `tick_totals` through DataFusion (any range).
    pub(crate) async fn sql_tick_totals(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
    ) -> Result<Vec<TickTotals>, QueryError> {
        let viewers = match scope.kind {
            ScopeKind::Channel => "SUM(CASE WHEN kind = 'stream' THEN viewers ELSE 0 END)",
            _ => "SUM(viewers)",
        };
        let (p, cond) = params(scope, range, "t");
        let sql = format!(
            "SELECT t, {viewers}, SUM(events), SUM(views), SUM(watch_ms), SUM(rebuffer_ms), \
             SUM(rebuffer_count), SUM(startups), SUM(failures), SUM(chat_messages), SUM(follows), \
             SUM(likes), SUM(shares), SUM(embed_views), SUM(clickthroughs) \
             FROM {rel} WHERE {filter}{cond} GROUP BY t ORDER BY t",
            rel = self.relation(Table::StreamTicks),
            filter = scope_filter(scope, false),
        );
        let mut out = Vec::new();
        for b in self.run(&sql, p).await? {
            let cols = (0..15)
                .map(|i| i64_col(&b, i))
                .collect::<Result<Vec<_>, _>>()?;
            for r in 0..b.num_rows() {
                let v = |c: usize| cols.get(c).and_then(|col| col.get(r)).copied().unwrap_or(0);
                out.push(TickTotals {
                    t: v(0),
                    viewers: v(1),
                    events: v(2),
                    views: v(3),
                    watch_ms: v(4),
                    rebuffer_ms: v(5),
                    rebuffer_count: v(6),
                    startups: v(7),
                    failures: v(8),
                    chat_messages: v(9),
                    follows: v(10),
                    likes: v(11),
                    shares: v(12),
                    embed_views: v(13),
                    clickthroughs: v(14),
                });
            }
        }
        out.sort_unstable_by_key(|x| x.t);
        Ok(out)
    }

    /// `live_ranges_in` through DataFusion (any range).
    pub(crate) async fn sql_live_ranges_in(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
    ) -> Result<Vec<LiveRange>, QueryError> {
        let (p, cond) = params(scope, range, "t");
        let sql = format!(
            "SELECT target, MAX(channel), MIN(t), MAX(t) FROM {rel} \
             WHERE {filter}{cond} AND events > 0 GROUP BY target ORDER BY target",
            rel = self.relation(Table::StreamTicks),
            filter = scope_filter(scope, true),
        );
        let mut out = Vec::new();
        for b in self.run(&sql, p).await? {
            let (targets, channels) = (str_col(&b, 0)?, str_col(&b, 1)?);
            let (first, last) = (i64_col(&b, 2)?, i64_col(&b, 3)?);
            for (i, (target, channel)) in targets.into_iter().zip(channels).enumerate() {
                out.push(LiveRange {
                    target,
                    channel,
                    first_t: first[i],
                    last_t: last[i],
                });
            }
        }
        out.sort_by(|a, b| a.target.cmp(&b.target));
        Ok(out)
    }
}

impl AnalyticsStore for EmbeddedSnapshot {
    fn closed_through(&self) -> i64 {
        self.closed_through
    }

    async fn tick_totals(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
    ) -> Result<Vec<TickTotals>, QueryError> {
        match self.in_memory_only(range) {
            Some(r) => self.memory.tick_totals(scope, r),
            None => self.sql_tick_totals(scope, range).await,
        }
    }

    async fn live_ranges_in(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
    ) -> Result<Vec<LiveRange>, QueryError> {
        match self.in_memory_only(range) {
            Some(r) => self.memory.live_ranges_in(scope, r),
            None => self.sql_live_ranges_in(scope, range).await,
        }
    }

    async fn viewer_counts(
        &self,
        scope: &Scope,
        range: Option<TimeRange>,
        bucketing: Bucketing,
    ) -> Result<Vec<ViewerCounts>, QueryError> {
        let slices = SliceRead::of(range, bucketing);
        let rel = self.relation(Table::ViewerMinutes);
        let filter = scope_filter(scope, false);
        let (p, cond) = params(scope, slices.map_or(range, |s| s.minutes), "minute");
        let sql = match slices {
            // Each minute row once per 5-second slice its mask marks (rows of parts
            // written before the masks existed have none, so count in no slice).
            Some(s) => format!(
                "SELECT {b} AS b, COUNT(DISTINCT viewer), \
                 COUNT(DISTINCT CASE WHEN (COALESCE(follow_mask, 0) & (CAST(1 AS BIGINT) << k)) <> 0 \
                 THEN viewer END) \
                 FROM {rel} AS vm CROSS JOIN (VALUES {ks}) AS slices(k) \
                 WHERE {filter}{cond} AND (COALESCE(seen_mask, 0) & (CAST(1 AS BIGINT) << k)) <> 0 \
                 GROUP BY 1 ORDER BY 1",
                b = bucket_expr(&format!("(minute + k * {MINUTE_SLICE_MS})"), Some(s.step)),
                ks = (0..60_000 / MINUTE_SLICE_MS)
                    .map(|k| format!("(CAST({k} AS BIGINT))"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            None => format!(
                "SELECT {b} AS b, COUNT(DISTINCT viewer), \
                 COUNT(DISTINCT CASE WHEN followed THEN viewer END) \
                 FROM {rel} WHERE {filter}{cond} GROUP BY 1 ORDER BY 1",
                b = bucket_expr("minute", bucketing),
            ),
        };
        let mut out = Vec::new();
        for b in self.run(&sql, p).await? {
            let (bucket, uniq, fol) = (i64_col(&b, 0)?, i64_col(&b, 1)?, i64_col(&b, 2)?);
            for r in 0..b.num_rows() {
                out.push(ViewerCounts {
                    bucket: bucket[r],
                    unique_viewers: uniq[r],
                    followers: fol[r],
                });
            }
        }
        out.sort_unstable_by_key(|x| x.bucket);
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
        let (p, cond) = params(scope, range, "t");
        let sql = format!(
            "SELECT t, startup_hist FROM {rel} WHERE {filter}{cond} AND startups > 0",
            rel = self.relation(Table::StreamTicks),
            filter = scope_filter(scope, false),
        );
        let mut merged: BTreeMap<i64, StartupHistogram> = BTreeMap::new();
        for b in self.run(&sql, p).await? {
            let ts = i64_col(&b, 0)?;
            let blobs = arrow::compute::cast(b.column(1), &DataType::Binary)?;
            let blobs = blobs.as_binary::<i32>();
            for (r, &t) in ts.iter().enumerate() {
                if blobs.is_null(r) || blobs.value(r).is_empty() {
                    continue;
                }
                let bucket = bucketing.map_or(0, |step| bucket_start(t, step));
                let entry = merged.entry(bucket).or_insert_with(|| StartupHistogram {
                    bucket,
                    hist: empty_startup_histogram(),
                });
                merge_serialized(&mut entry.hist, blobs.value(r));
            }
        }
        Ok(merged.into_values().collect())
    }
}

/// Adds one V2-serialized histogram into `into`; an unreadable blob is skipped and
/// counted (`pulse_query_bad_histograms_total`) rather than failing the whole answer.
pub fn merge_serialized(into: &mut hdrhistogram::Histogram<u64>, blob: &[u8]) {
    let mut reader = blob;
    let parsed = hdrhistogram::serialization::Deserializer::new()
        .deserialize::<u64, _>(&mut reader)
        .map_err(|e| e.to_string())
        .and_then(|h| into.add(&h).map_err(|e| format!("{e:?}")));
    if let Err(e) = parsed {
        crate::metrics::BAD_HISTOGRAMS.inc();
        tracing::warn!(error = %e, "skipping an unreadable startup histogram");
    }
}
