//! pulse-query: the analytics HTTP API over the embedded store or ClickHouse.
//!
//! Modules:
//! - [`config`]: `QueryConfig` (bounds: points per series, export rows, timeout, body size).
//! - [`store`]: the `AnalyticsStore` trait — the few reads every metric needs (per-tick
//!   totals summed across nodes, live ranges, distinct viewer counts, merged startup
//!   histograms) — so a ClickHouse reader can later give the same answers;
//!   [`store::embedded`] answers them with DataFusion over one `TablesView`, handing it
//!   only the Parquet parts and in-memory batches whose time span meets the query's
//!   (`store/time_sliced.rs`; spans of parts in `store/file_spans.rs`), and answers
//!   per-tick totals and live ranges that in-memory rows can answer without
//!   DataFusion (`store/memory_reads.rs`, proptested against the SQL): ranges no Parquet
//!   part meets, and ranges whose parts the writer's hot tail mirrors
//!   (`TablesView::hot_ticks`: the newest compacted `stream_ticks` rows, kept in memory
//!   beside their parts, so a dashboard's open buckets never wait on Parquet);
//!   [`store::clickhouse`] with SQL over ClickHouse (closed windows only, read `FINAL`),
//!   except that `closed_through` is read at most every 250 ms per query node and the
//!   newest closed `stream_ticks` rows (2 h, ≤ 500 000) are mirrored in memory, fetched
//!   once per advance for all targets, so a dashboard's open-bucket poll sends ClickHouse
//!   no query (`store/clickhouse_recent.rs`; the conformance suite holds it equal);
//!   [`store::Store`] is the configured one.
//! - [`summary`]: the metric formulas (pure) and the stream summary.
//! - [`series`]: epoch-aligned buckets and the points of one metric (pure), plus the
//!   gathering of their inputs from a store.
//! - [`series_cache`] (pure: final points per metric, scope and step; live ranges of the
//!   closed ticks per scope) and [`cached_series`] (a series answer read through it).
//! - [`export`]: RFC 4180 CSV, streamed chunk by chunk.
//! - [`breakdown`]: QoE metrics per `device`, `country` or `player` (`&by=` on the series
//!   route and `by` in the export; issue 4 point 5) from `qoe_minutes`, read by
//!   [`store::qoe_reads`] on both stores. The answer is
//!   `{"metric","step_ms","by","groups":[{"key","points":[…]}]}`: the values with the
//!   most watch time (at most `max_breakdown_groups`), then `other`; step ≥ 1 minute;
//!   engagement metrics refused (their rule is in the module's `//!`).
//! - [`sql`]: the data team's ad-hoc SQL (`POST /api/sql`, admin only, `routes::sql`):
//!   a `sqlparser` check of the syntax tree, DataFusion or ClickHouse under limits, and
//!   the answer as JSON, CSV, Arrow IPC or Parquet.
//! - [`live`]: the creator live feed `GET /v1/live?channel=` (PROTOCOL.md §3): health once a
//!   second per live stream of the channel (viewers from the newest stream tick in
//!   memory), alert changes the moment the health component broadcasts them.
//!   `routes::health`: `GET /api/streams/:id/health|alerts`, `GET|PUT
//!   /api/channels/:id/alert-rules` (creator of the channel or admin, bearer token).
//! - [`routes::auth`]: the one reader of a request's API token — `Authorization: Bearer`,
//!   `?token=` where a route takes it, or the dashboard's HttpOnly/SameSite=Strict session
//!   cookie `pulse_session` (set by `/dashboard/login` in `pulse-dashboards`); the health,
//!   live-feed and catalog routes all go through it.
//! - Issue 4: [`lifecycle`] (pure: status and live intervals from LIVE/ENDED records),
//!   [`channel`] (`GET /api/analytics/channels/:id`), [`content`] (VOD/clip analytics and
//!   top lists), [`trending`] (pure decayed scores and the board cache),
//!   [`store::content_reads`] (their reads on both stores),
//!   [`catalog::analytics_records`] (streams with category and lifecycle, clips, VODs),
//!   `routes::guard` (tokens on the analytics routes), `routes::content` (the handlers).
//! - [`routes`]: axum handlers and parameter checks; [`error`]: the one error enum and
//!   its `{"error":{"code","message"}}` answer; [`metrics`]: `pulse_query_*` and `/metrics`.
//!
//! - [`content_counts`]: VOD/clip view, like and share counters copied from the
//!   analytics store into the catalog once a minute (issue 6 point 2).
//! - [`catalog`]: the VOD/clip catalog (issue 6) over sqlx `Any` — SQLite (WAL, default
//!   `catalog.sqlite` in `data_dir`) or Postgres (`catalog_url = postgres://…`) — with its
//!   migrations, the [`AccessControl`](pulse_schemas::access::AccessControl) impl,
//!   streams/keys/lifecycle, VODs, watch progress, clips, the media job queue, webhooks.
//! - [`media`]: ffmpeg cuts and thumbnails, the `object_store` media store, the bounded
//!   worker pool and the retention job. [`routes::catalog`] mounts the catalog routes
//!   ([`catalog_router`]) over a [`CatalogState`].
//!
//! Catalog design choices (where PROTOCOL.md is silent):
//! - **One code path, one migration directory.** Queries use `$N` placeholders (both
//!   drivers take them) and the DDL only types that both backends accept and the `Any`
//!   driver decodes alike: TEXT, BIGINT (flags as 0/1), DOUBLE PRECISION.
//! - **Secrets hashed.** Tokens and stream keys are 32 random bytes (hex), stored as
//!   SHA-256 and compared in constant time; the `admin_token` setting is compared
//!   directly. A stream key is answered once, by the PUT that creates the stream.
//! - **Search** is full-text: SQLite FTS5 / a Postgres `tsvector` GIN index over a
//!   lower-cased `search_text` (title + description); every query word (at most 8,
//!   runs of letters and digits) must match a word prefix. Backend-specific DDL is
//!   created after the shared migrations (`catalog::search`).
//! - **Visibility.** A private, unfinished (not READY) or soft-deleted VOD is a 404 to
//!   everyone but its channel's creator and admins (deleted: to all); an unpublished clip
//!   is a 404 to all but its creator, its channel's creator and admins.
//! - **Clip times** count from the stream's LIVE, so a clip cut from the live playlist
//!   (which must be an EVENT playlist starting at LIVE) keeps its `start_s`/`end_s` when
//!   it is re-pointed at the VOD that the recording webhook makes READY.
//! - **Media jobs** are rows of `media_jobs`, claimed by compare-and-set with a lease
//!   (`media_lease_s`): a crashed worker's job is claimed again after its lease; a failure
//!   is retried up to `media_max_attempts`, then the clip is FAILED with the reason.
//!   Stream copy when both cut points are keyframes (ffprobe), re-encode (x264) otherwise.
//! - **Smart cut** (`media_smart_cut`, default on): a clip off keyframes from a local
//!   HLS VOD of TS segments copies the whole segments inside the range (each starts with
//!   a keyframe), re-encodes only the partial GOPs at the two edges (≤ one segment each,
//!   x264 veryfast crf 21, run concurrently), joins the three video parts with the concat
//!   demuxer and muxes the audio of the whole range re-encoded in one piece (AAC, cheap),
//!   so there is no audio gap or overlap at the joins and the duration is exact (the
//!   audio spans exactly the range). Cut points are ffmpeg input times, so keyframes sit
//!   at segment start + the video's lead over the earliest stream (ffprobe). An edge under
//!   34 ms (at most one frame) is not re-encoded: the keyframe stands in for it. Sources
//!   without a plan (remote or live playlists, fMP4/byte-range/encrypted segments, no
//!   whole segment inside) and a failed smart cut fall back to the full re-encode. The MP4
//!   keeps the edges' x264 parameter sets in its `avc1` header and the copied segments'
//!   own ones in band; ffmpeg decodes every frame (tested), and `media_smart_cut = false`
//!   is the way back to a uniform re-encode should a player object.
//! - **Media store** (issue 6 point 6): `object_store`, a local directory (`media_dir`)
//!   by default or an S3-compatible bucket (`[media_s3]`, R2/S3/MinIO, path-style by
//!   default, `allow_http` only for local endpoints). ffmpeg always writes to a per-job
//!   temp directory, removed after the job; results are uploaded with one PUT up to
//!   `part_bytes`, as a multipart upload beyond (2 parts in flight; a failed part aborts
//!   the upload). Links are `<public_url>/<key>` (an R2 public domain or CDN), or the
//!   server's `/media/*` route, which reads the bucket, when `public_url` is empty;
//!   retention and clip deletion delete the objects by the key of their link. A store
//!   error (refused key, unreachable endpoint) is an ordinary job failure: the request is
//!   retried by `object_store` (5xx/connection only, `max_retries` within
//!   `retry_timeout_s`, each request bounded by `request_timeout_s`), the job up to
//!   `media_max_attempts`, then the clip is FAILED with the store's message as reason.
//!   The secret is best passed as `PULSE_MEDIA_S3__SECRET_ACCESS_KEY` and is redacted
//!   from `Debug`. Tested against moto_server (a real S3 protocol server with signature
//!   checks), never an in-process fake.
//! - **Webhooks**: signature first (401), then `ts` freshness (400), then redelivery —
//!   the SHA-256 of an applied body is kept for twice the tolerance: a redelivery is 200
//!   `{"applied":false}` and changes nothing.
//! - **Analytics hand-off**: a new clip like is sent as a `like` event to the aggregator's
//!   bounded channel (the same `EventSender` ingest uses), dropped and counted
//!   (`pulse_query_content_events_dropped_total`) when full.
//!
//! Design choices:
//! - **Alerts across nodes** (issue 5 point 5, with ClickHouse): every node writes its
//!   alert transitions to the shared `alerts` table within one flush (~1 s). A node's live
//!   feeds learn of the alerts of streams whose encoder is on another node from
//!   [`remote_alerts`]: one poller per node (not per feed) reads the rows with
//!   `node ≠ self` every 500 ms and re-broadcasts the new ones; worst case is one
//!   flush (1 s) plus one poll (0.5 s) plus the query, with no infrastructure beyond ClickHouse. The per-second health
//!   messages stay node-local (the history of remote streams is in `health_ticks`). The
//!   embedded store is single-node, so only the local broadcast path exists there.
//! - **Closed windows are cached** (issue 4, `series_cache`, on by default). A series
//!   point whose bucket ends by `closed_through` is final, so the series routes keep one
//!   run of final points per (metric, scope, step) — a key struct, so a breakdown adds a
//!   field — and each poll reads from the store only the buckets after the run (for a
//!   rolling dashboard window: the open ones). Viewers also need the scope's live ranges;
//!   those of the closed ticks are cached per scope and extended by what closed since.
//!   What can still change a final point is handled, not ignored: a viewers run is
//!   dropped when the live intervals inside it change (a stream without lifecycle records
//!   that resumes after a pause); `closed_through` moving back (on ClickHouse only when a
//!   node appears in `node_progress` behind the others: the snapshot's node count grows)
//!   cuts every run, while a lower `closed_through` of a concurrent request's older view
//!   only limits what that request takes from the cache; retention deleting days and a new
//!   ClickHouse node writing rows below `closed_through` before its first progress row
//!   are invisible to the cache, so a run is read again `series_cache_ttl_ms` (10 min)
//!   after its first point was cached. Bounded by runs and bytes, least recently used out
//!   first, counted in `pulse_query_series_cache_*`. The export is not cached (one-off).
//! - **One consistent view per request.** A handler takes one snapshot of the embedded
//!   tables (Parquet files ∪ recent batches ∪ provisional batches of open windows) and
//!   runs all its reads on it. A DataFusion `SessionContext` is built once per published
//!   `TablesView::version` and shared by the requests that see that version, because
//!   dashboards poll the series route and re-registering tables per poll is wasted work.
//! - **Sum across nodes first, then average/max.** Every store read groups by tick (or
//!   bucket), never by node; formulas are applied to those totals in Rust, so the same
//!   code serves the summary, the series and the export, and is unit-tested without I/O.
//! - **Live range from lifecycle records** (issue 4). The catalog's LIVE/ENDED records
//!   (`PUT /api/streams/:id` creates the stream, the stream webhook and encoder sockets
//!   record the changes) give `status` LIVE/ENDED, `duration_s` = Σ (ENDED − LIVE) (an
//!   open stream: now − LIVE, "now" from the server clock) and the live ticks: those
//!   overlapping a LIVE..ENDED interval. A LIVE while live (encoder reconnect) and an
//!   ENDED while not live change nothing ([`lifecycle`]).
//! - **Live range without lifecycle records.** A stream the catalog has no LIVE/ENDED
//!   record of has `status` `UNKNOWN` and a live range from the tick holding its first
//!   event to the tick holding its last (`duration_s` = end of that last tick − start of
//!   the first). Average concurrent divides by the number of live ticks in the
//!   window, ticks without a row counting as 0 viewers; peak is the max over the same
//!   ticks. A channel's viewers are the per-tick sum over its streams, averaged over the
//!   ticks in which any of them is live; its other metrics cover all its targets.
//! - **Access** (issue 4): every analytics route needs a bearer token (`Authorization:
//!   Bearer` or `?token=`, as `/v1/live`): 401 without or with an unknown one; a creator
//!   reads only the channels it owns (403), an admin everything; a creator asking about a
//!   target whose channel neither the catalog nor the store knows gets 404. Public counts
//!   need none: `/api/clips/:id/stats` (views, likes, shares; an unpublished clip is a
//!   404 to all but its channel's readers) and `/api/clips/trending` (published clips).
//!   `pulse query` nodes check tokens against the static records (`admin_token`,
//!   `[[stream_keys]]` owners): they have no catalog.
//! - **Channel, VOD/clip and trending numbers**: each definition the contract leaves
//!   open is written in the `//!` of [`channel`], [`content`] and [`trending`].
//! - **Counts as integers, rates as unrounded floats**; ratios with a zero denominator
//!   are 0; startup percentiles are 0 when nothing started (never null).
//! - **Final flags.** A bucket is `final` once its end ≤ `closed_through`. Provisional rows
//!   count in open buckets; a provisional row of an already closed window is ignored so
//!   nothing is counted twice.
//! - **Distinct viewers: one row per viewer and minute, with 5-second slice masks**
//!   (`viewer_minutes.seen_mask`, `follow_mask`). Unique viewers, new followers and
//!   conversion answer at every step, 5 s included, exactly: a step below the minute reads
//!   the range's whole minutes and counts each row once per slice its mask marks
//!   (`store::SliceRead`; DataFusion cross-joins the twelve slice numbers, ClickHouse
//!   `ARRAY JOIN range(12)`), then keeps the buckets inside the range. Per-tick viewer
//!   rows would have multiplied the table by up to twelve; a mask adds two integers.
//!   Parts written before the masks read null there and count in no 5-second slice
//!   (their minutes still count at steps of a minute and more). QoE breakdowns stay at
//!   ≥ 1 min (`qoe_minutes`).
//! - **Ad-hoc SQL** (issue 4 point 7). Checked on the parsed tree, never the text: one
//!   statement, a query, only the analytics tables (`Table::ALL`) and WITH names in
//!   scope, no table functions at all (even harmless ones: `generate_series`,
//!   `numbers`), no file/URL/remote/dictionary functions, no SETTINGS/FORMAT clause. The
//!   checked tree is what runs (DataFusion plans it directly; ClickHouse gets its
//!   rendering), and each store refuses writes again by itself (`SQLOptions`; ClickHouse
//!   `readonly=1`, which also forbids table functions and setting changes). Rule breaks
//!   are 400, limits past (`sql_max_rows`, `sql_timeout_ms`, `sql_max_memory_bytes`)
//!   422, each with the rule as `code`; an error of the query itself (unknown column)
//!   is 400 `invalid_parameter`. On the embedded store a query sees the same union of
//!   files, recent and open provisional rows as the routes; on ClickHouse it reads the
//!   tables as stored (no `FINAL` added: a retried insert may show twice unless the
//!   query says `FINAL`). DataFusion plans get a cooperative wrapper on every operator
//!   so the time limit stops CPU-bound work, and spilling is off so the memory pool is
//!   a hard limit. The answer is bounded by the row and memory limits, so it is
//!   encoded whole (off the async workers) rather than streamed.
//! - **Everything bounded**: points per series, rows and metrics per export, body size,
//!   time per request (503 `timeout`); the series is dense so its size is known before
//!   the store is read. Request ids are validated (`Id::parse`) and bound as SQL
//!   parameters, never spliced into SQL text.

#![forbid(unsafe_code)]
pub mod breakdown;
pub mod cached_series;
pub mod catalog;
pub mod channel;
pub mod config;
pub mod content;
pub mod content_counts;
pub mod error;
pub mod export;
pub mod lifecycle;
pub mod live;
pub mod media;
pub mod metrics;
pub mod remote_alerts;
pub mod routes;
pub mod series;
pub mod series_cache;
pub mod sql;
pub mod store;
pub mod summary;
pub mod trending;

pub use config::QueryConfig;
pub use error::QueryError;
pub use routes::catalog::{CatalogState, catalog_router};
pub use routes::router;

use pulse_schemas::EmbeddedTables;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use store::embedded::EmbeddedStore;
use store::{Store, StoreSnapshot};

/// Shared state of the query routes (cheap to clone).
#[derive(Clone)]
pub struct QueryState {
    inner: Arc<Inner>,
    /// Stream health, alerts and access records (issue 5); `None`: those routes answer 503.
    live: Option<LiveDeps>,
    /// Tokens and channel ownership for the analytics routes; `None`: they answer 503.
    access: Option<Arc<dyn pulse_schemas::AccessControl>>,
    /// Streams (category, lifecycle), clips and VODs; `None`: the store's rows only.
    catalog: Option<catalog::Catalog>,
    /// The clock (epoch ms); `None`: the system clock.
    clock: Option<Clock>,
}

impl std::fmt::Debug for QueryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryState")
            .field("inner", &self.inner)
            .field("live", &self.live)
            .field("access", &self.access.is_some())
            .field("catalog", &self.catalog)
            .field("clock", &self.clock.is_some())
            .finish()
    }
}

/// A clock in epoch ms (tests inject one).
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// What the live feed and the health routes need besides the store.
#[derive(Clone)]
pub struct LiveDeps {
    pub access: Arc<dyn pulse_schemas::AccessControl>,
    pub health: Arc<dyn pulse_schemas::LiveHealth>,
    /// Alert transitions of other nodes (ClickHouse only; see [`remote_alerts`]).
    pub remote_alerts: Option<remote_alerts::RemoteAlerts>,
}

impl std::fmt::Debug for LiveDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveDeps")
    }
}

#[derive(Debug)]
struct Inner {
    tables: Arc<EmbeddedTables>,
    store: Store,
    config: QueryConfig,
    ready: Arc<AtomicBool>,
    tick_ms: i64,
    /// Ad-hoc SQL queries running now (at most `sql_max_concurrent`).
    sql_slots: Arc<tokio::sync::Semaphore>,
    trending: trending::TrendingCache,
    channels: routes::guard::ChannelCache,
    /// Final series points (`series_cache`); `None` when switched off.
    series: Option<series_cache::SeriesCache>,
    live_ranges: series_cache::LiveRangeCache,
}

impl QueryState {
    /// State over the embedded tables; `tick_ms` is the aggregator's tick (default 5000).
    /// Not ready until [`QueryState::set_ready`] is called.
    pub fn new(tables: Arc<EmbeddedTables>, config: QueryConfig, tick_ms: i64) -> QueryState {
        let store = Store::Embedded(EmbeddedStore::new(tables.clone(), config.target_partitions));
        Self::with_store(tables, store, config, tick_ms)
    }

    /// State over the ClickHouse server at `url` (closed windows only: there are no
    /// provisional rows in ClickHouse). Not ready until [`QueryState::set_ready`].
    pub fn clickhouse(url: &str, config: QueryConfig, tick_ms: i64) -> QueryState {
        let store = Store::ClickHouse(Box::new(store::clickhouse::ClickHouseStore::new(url)));
        Self::with_store(EmbeddedTables::new(), store, config, tick_ms)
    }

    fn with_store(
        tables: Arc<EmbeddedTables>,
        store: Store,
        config: QueryConfig,
        tick_ms: i64,
    ) -> QueryState {
        let sql_slots = Arc::new(tokio::sync::Semaphore::new(
            config.sql_max_concurrent.max(1),
        ));
        let bounds = series_cache::CacheBounds {
            max_entries: config.series_cache_max_entries,
            max_bytes: config.series_cache_max_bytes,
            ttl_ms: i64::try_from(config.series_cache_ttl_ms).unwrap_or(i64::MAX),
            max_points: config.max_points,
        };
        QueryState {
            inner: Arc::new(Inner {
                tables,
                store,
                ready: Arc::new(AtomicBool::new(false)),
                tick_ms: tick_ms.max(1),
                sql_slots,
                trending: trending::TrendingCache::default(),
                channels: routes::guard::ChannelCache::new(config.channel_cache_entries),
                series: config
                    .series_cache
                    .then(|| series_cache::SeriesCache::new(bounds)),
                live_ranges: series_cache::LiveRangeCache::new(bounds),
                config,
            }),
            live: None,
            access: None,
            catalog: None,
            clock: None,
        }
    }

    /// Serves the live feed and the health/alert routes with these parts.
    pub fn with_live(
        mut self,
        access: Arc<dyn pulse_schemas::AccessControl>,
        health: Arc<dyn pulse_schemas::LiveHealth>,
    ) -> QueryState {
        self.access = Some(access.clone());
        self.live = Some(LiveDeps {
            access,
            health,
            remote_alerts: None,
        });
        self
    }

    /// Also forwards other nodes' alert transitions (from [`remote_alerts::run`]) to the
    /// live feeds; only after [`QueryState::with_live`].
    pub fn with_remote_alerts(mut self, tx: remote_alerts::RemoteAlerts) -> QueryState {
        if let Some(live) = self.live.as_mut() {
            live.remote_alerts = Some(tx);
        }
        self
    }

    /// Checks analytics tokens against these records (a node without the live parts).
    pub fn with_access(mut self, access: Arc<dyn pulse_schemas::AccessControl>) -> QueryState {
        self.access = Some(access);
        self
    }

    /// Reads stream lifecycle and category, clips and VODs from this catalog.
    pub fn with_catalog(mut self, catalog: catalog::Catalog) -> QueryState {
        self.catalog = Some(catalog);
        self
    }

    /// Uses this clock for "now" (open streams' durations, trending decay).
    pub fn with_clock(mut self, clock: Clock) -> QueryState {
        self.clock = Some(clock);
        self
    }

    /// Now, in epoch ms.
    pub fn now_ms(&self) -> i64 {
        match &self.clock {
            Some(c) => c(),
            None => chrono::Utc::now().timestamp_millis(),
        }
    }

    /// The access records, or 503 when this node has none.
    pub fn access(&self) -> Result<&Arc<dyn pulse_schemas::AccessControl>, QueryError> {
        self.access.as_ref().ok_or_else(|| {
            QueryError::Unavailable("access records are not configured on this node".into())
        })
    }

    pub fn catalog(&self) -> Option<&catalog::Catalog> {
        self.catalog.as_ref()
    }

    pub(crate) fn trending_cache(&self) -> &trending::TrendingCache {
        &self.inner.trending
    }

    pub(crate) fn channel_cache(&self) -> &routes::guard::ChannelCache {
        &self.inner.channels
    }

    /// The closed-window cache of the series routes, when `series_cache` is on.
    pub fn series_cache(&self) -> Option<&series_cache::SeriesCache> {
        self.inner.series.as_ref()
    }

    pub(crate) fn live_range_cache(&self) -> &series_cache::LiveRangeCache {
        &self.inner.live_ranges
    }

    /// The live parts, or 503 when this node runs without them.
    pub fn live(&self) -> Result<&LiveDeps, QueryError> {
        self.live.as_ref().ok_or_else(|| {
            QueryError::Unavailable("stream health is not enabled on this node".into())
        })
    }

    /// Marks the service ready (store open, aggregator running) or not; `/readyz` follows.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    /// The readiness flag itself, for a task that flips it.
    pub fn ready_flag(&self) -> Arc<AtomicBool> {
        self.inner.ready.clone()
    }

    pub fn config(&self) -> &QueryConfig {
        &self.inner.config
    }

    pub fn tick_ms(&self) -> i64 {
        self.inner.tick_ms
    }

    pub fn tables(&self) -> &Arc<EmbeddedTables> {
        &self.inner.tables
    }

    /// One consistent view of the store for one request.
    pub async fn snapshot(&self) -> Result<Arc<StoreSnapshot>, QueryError> {
        self.with_timeout(self.inner.store.snapshot()).await
    }

    /// Checks and runs one ad-hoc SQL query on the configured store, within the
    /// `sql_*` limits (every refusal names its rule).
    /// The answer comes with its concurrency slot: hold it until the answer is encoded,
    /// so `sql_max_concurrent` bounds the answers in memory too.
    pub async fn run_sql(
        &self,
        text: &str,
    ) -> Result<(sql::SqlResult, tokio::sync::OwnedSemaphorePermit), QueryError> {
        let cfg = &self.inner.config;
        let limits = sql::SqlLimits {
            max_rows: cfg.sql_max_rows,
            timeout_ms: cfg.sql_timeout_ms,
            max_memory_bytes: cfg.sql_max_memory_bytes,
            target_partitions: cfg.target_partitions,
        };
        if text.len() > cfg.sql_max_text_bytes {
            return Err(sql::SqlRefusal::new(
                sql::SqlRule::TextLength,
                format!(
                    "the SQL text has {} bytes, at most {} are accepted (sql_max_text_bytes)",
                    text.len(),
                    cfg.sql_max_text_bytes
                ),
            )
            .into());
        }
        let dialect = match &self.inner.store {
            Store::Embedded(_) => sql::policy::SqlDialect::DataFusion,
            Store::ClickHouse(_) => sql::policy::SqlDialect::ClickHouse,
        };
        let statement = sql::policy::check(text, dialect)?;
        let slot = self
            .inner
            .sql_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                crate::metrics::SQL_REFUSED
                    .with_label_values(&["busy"])
                    .inc();
                QueryError::Busy(format!(
                    "{} ad-hoc SQL queries are running (sql_max_concurrent); try again shortly",
                    cfg.sql_max_concurrent
                ))
            })?;
        let run = async {
            match &self.inner.store {
                Store::Embedded(s) => {
                    let snap = s.snapshot()?;
                    sql::embedded::run(&snap, statement, &limits).await
                }
                Store::ClickHouse(s) => sql::clickhouse::run(s, &statement, &limits).await,
            }
        };
        let result = tokio::time::timeout(Duration::from_millis(limits.timeout_ms), run)
            .await
            .map_err(|_| limits.time_refusal())??;
        Ok((result, slot))
    }

    /// Runs a store read under the configured timeout.
    pub async fn with_timeout<T>(
        &self,
        fut: impl Future<Output = Result<T, QueryError>>,
    ) -> Result<T, QueryError> {
        let ms = self.inner.config.query_timeout_ms;
        tokio::time::timeout(Duration::from_millis(ms), fut)
            .await
            .map_err(|_| QueryError::Timeout(ms))?
    }
}
