//! `pulse serve`: every role in one process.

use crate::config::{Config, StoreKind};
use anyhow::Context;
use pulse_aggregator::runtime::{self, Clock, RunOptions};
use pulse_aggregator::sinks::embedded::EmbeddedSink;
use pulse_aggregator::sinks::with_health::WithHealthRows;
use pulse_aggregator::{FileRuleOverrides, HealthService};
use pulse_ingest::IngestState;
use pulse_query::CatalogState;
use pulse_schemas::{AccessControl, EmbeddedTables, Id, Role as AccessRole, StaticAccess};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Where the aggregator keeps its state across a graceful restart.
pub fn snapshot_path(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("aggregator.snapshot.json")
}

/// The aggregator settings with the top-level keys (node, tick, lateness) applied.
pub fn aggregator_config(cfg: &Config) -> anyhow::Result<pulse_aggregator::AggregatorConfig> {
    let mut a = cfg.aggregator.clone();
    a.node_id = Id::parse(&cfg.node_id).map_err(|e| anyhow::anyhow!("node_id: {e}"))?;
    a.tick_ms = cfg.tick_ms;
    a.allowed_lateness_ms = cfg.allowed_lateness_ms;
    Ok(a)
}

/// Opens the embedded store under `cfg.data_dir`.
pub fn open_store(cfg: &Config) -> anyhow::Result<(std::sync::Arc<EmbeddedTables>, EmbeddedSink)> {
    let tables = EmbeddedTables::new();
    let mut store_cfg = cfg.embedded.clone();
    store_cfg.data_dir = cfg.data_dir.clone();
    let node = Id::parse(&cfg.node_id).map_err(|e| anyhow::anyhow!("node_id: {e}"))?;
    let sink = EmbeddedSink::open(store_cfg, node, tables.clone())
        .with_context(|| format!("opening the embedded store in {}", cfg.data_dir.display()))?;
    Ok((tables, sink))
}

/// Which roles one process runs (DESIGN.md: `pulse serve`, `pulse ingest`, `pulse query`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Ingest, aggregator and query.
    All,
    /// Ingest and aggregator, writing to the configured store (`/metrics` included).
    Ingest,
    /// The query API over the configured store (ClickHouse: no aggregator here).
    Query,
}

/// The access records until the catalog (issue 6) provides them: the `admin_token`
/// (when set) and the `[[stream_keys]]` of the configuration.
pub fn static_access(cfg: &Config) -> anyhow::Result<StaticAccess> {
    let mut acl = StaticAccess::new();
    if !cfg.admin_token.is_empty() {
        acl = acl.with_token(
            &cfg.admin_token,
            Id::new_unchecked("admin"),
            AccessRole::Admin,
        );
    }
    for k in &cfg.stream_keys {
        let stream =
            Id::parse(&k.stream).map_err(|e| anyhow::anyhow!("stream_keys.stream: {e}"))?;
        let channel =
            Id::parse(&k.channel).map_err(|e| anyhow::anyhow!("stream_keys.channel: {e}"))?;
        acl = acl.with_stream_key(stream, channel.clone(), &k.key);
        if let (Some(owner), Some(token)) = (&k.owner, &k.owner_token) {
            let owner = Id::parse(owner).map_err(|e| anyhow::anyhow!("stream_keys.owner: {e}"))?;
            acl = acl.with_channel(channel, owner.clone()).with_token(
                token,
                owner,
                AccessRole::Creator,
            );
        }
    }
    Ok(acl)
}

/// Serves ingest + aggregator + query on `listener` until `shutdown` is cancelled,
/// then shuts down in order and returns once every task and thread has stopped.
/// Access records come from the configuration ([`static_access`]).
pub async fn run(
    listener: TcpListener,
    cfg: Config,
    shutdown: CancellationToken,
    clock: Clock,
) -> anyhow::Result<()> {
    let access: Arc<dyn AccessControl> = Arc::new(static_access(&cfg)?);
    run_role_with_access(Role::All, listener, cfg, shutdown, clock, access).await
}

/// [`run`] with the given static access records (tokens, channel owners, stream keys),
/// asked before the catalog's.
pub async fn run_with_access(
    listener: TcpListener,
    cfg: Config,
    shutdown: CancellationToken,
    clock: Clock,
    access: Arc<dyn AccessControl>,
) -> anyhow::Result<()> {
    run_role_with_access(Role::All, listener, cfg, shutdown, clock, access).await
}

/// Serves the roles of `role` on `listener` until `shutdown` is cancelled, then shuts
/// down in order (HTTP, sockets, aggregator flush) and returns once everything stopped.
pub async fn run_role(
    role: Role,
    listener: TcpListener,
    cfg: Config,
    shutdown: CancellationToken,
    clock: Clock,
) -> anyhow::Result<()> {
    let access: Arc<dyn AccessControl> = Arc::new(static_access(&cfg)?);
    run_role_with_access(role, listener, cfg, shutdown, clock, access).await
}

/// [`run_role`] with the given static access records.
pub async fn run_role_with_access(
    role: Role,
    listener: TcpListener,
    cfg: Config,
    shutdown: CancellationToken,
    clock: Clock,
    access: Arc<dyn AccessControl>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    if role == Role::Query {
        return crate::query_node::run(listener, cfg, shutdown, clock, access).await;
    }
    let catalog = open_catalog(&cfg).await?;
    let access: Arc<dyn AccessControl> = Arc::new(crate::access::LayeredAccess::new(
        access,
        Arc::new(catalog.clone()),
    ));
    let (tables, sink) = crate::store::open_sink(&cfg)?;
    let agg_cfg = aggregator_config(&cfg)?;
    let overrides = Arc::new(
        FileRuleOverrides::open(&cfg.data_dir, cfg.health.max_rule_channels)
            .context("alert rule overrides")?,
    );
    let health = HealthService::new(
        cfg.health.clone(),
        agg_cfg.node_id.clone(),
        cfg.tick_ms,
        access.clone(),
        overrides,
        clock.clone(),
    )
    .context("health configuration")?;
    let sink = WithHealthRows::new(sink, health.clone());
    let sweeper_stop = CancellationToken::new();
    let sweeper = tokio::spawn(health.clone().run_sweeper(sweeper_stop.clone()));
    let (tx, rx) = runtime::channel(&agg_cfg);
    let agg_stop = CancellationToken::new();
    let aggregator = runtime::spawn(
        agg_cfg,
        rx,
        sink,
        RunOptions {
            clock: clock.clone(),
            shutdown: agg_stop.clone(),
            snapshot_path: Some(snapshot_path(&cfg)),
        },
    )
    .context("starting the aggregator")?;

    let http_stop = shutdown.child_token();
    let media = pulse_query::media::MediaStore::from_config(
        &cfg.media_dir,
        &cfg.catalog.media_base_url,
        &cfg.media_s3,
    )
    .context("opening the media store")?;
    let mut catalog_state = CatalogState::new(catalog.clone(), media.clone(), Some(tx.clone()));
    // The same layered access as the analytics side, so one token (e.g. the demo creator's,
    // signed in on the dashboard) opens the channel's VOD and clip lists too.
    catalog_state.access = access.clone();
    let media_stop = CancellationToken::new();
    let media_pool =
        pulse_query::media::spawn_pool(catalog.clone(), media.clone(), media_stop.clone());
    let retention = tokio::spawn(pulse_query::media::retention::run(
        catalog.clone(),
        media.clone(),
        media_stop.clone(),
    ));
    let ingest = IngestState::with_clock(cfg.ingest.clone(), tx, clock.clone())
        .context("ingest configuration")?
        .with_shutdown(http_stop.clone())
        .with_health(health.clone());
    let dashboard = pulse_dashboards::DashboardState {
        access: access.clone(),
        config: cfg.dashboard.clone(),
    };
    let mut query = crate::store::query_state(&cfg, tables)
        .with_live(access.clone(), health.clone())
        .with_catalog(catalog.clone())
        .with_clock(clock.clone());
    // With ClickHouse, other nodes' alert transitions reach this node's live feeds.
    let alerts_stop = CancellationToken::new();
    let mut alerts_poller = None;
    if cfg.store == StoreKind::Clickhouse && role == Role::All {
        let tx = Arc::new(pulse_query::remote_alerts::channel());
        query = query.with_remote_alerts(tx.clone());
        alerts_poller = Some(tokio::spawn(pulse_query::remote_alerts::run(
            cfg.clickhouse_url.clone(),
            cfg.node_id.clone(),
            clock.clone(),
            Duration::from_millis(cfg.clickhouse.alert_poll_ms.max(50)),
            pulse_aggregator::live_health::guide,
            tx.as_ref().clone(),
            alerts_stop.clone(),
        )));
    }
    // VOD and clip counters in the catalog follow analytics (only where the API runs).
    let counts_stop = CancellationToken::new();
    let counts = (role == Role::All).then(|| {
        tokio::spawn(pulse_query::content_counts::run(
            query.clone(),
            catalog.clone(),
            Duration::from_millis(cfg.catalog.count_sync_interval_ms.max(100)),
            counts_stop.clone(),
        ))
    });
    query.set_ready(true);
    let mut app = pulse_ingest::router(ingest.clone());
    app = match role {
        Role::All => app
            .merge(pulse_query::router(query.clone()))
            .merge(pulse_query::catalog_router(catalog_state))
            .merge(pulse_dashboards::router(dashboard)),
        // An ingest node still serves /metrics (the query router's), not the API.
        _ => app.route("/metrics", axum::routing::get(pulse_query::metrics::render)),
    };
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { http_stop.cancelled().await });
    let served = server.await.context("HTTP server");
    query.set_ready(false);
    counts_stop.cancel();
    if let Some(c) = counts {
        let _ = c.await;
    }
    alerts_stop.cancel();
    if let Some(p) = alerts_poller {
        let _ = p.await;
    }
    media_stop.cancel();
    media_pool.shutdown().await;
    let _ = retention.await;
    catalog.close().await;

    // Upgraded sockets outlive the HTTP server's graceful shutdown: wait until each
    // has handed its last batch on, then let the aggregator drain and flush.
    ingest.sockets_closed().await;
    drop(ingest);
    sweeper_stop.cancel();
    let _ = sweeper.await;
    agg_stop.cancel();
    let report = tokio::task::spawn_blocking(move || aggregator.join())
        .await
        .context("joining the aggregator")?
        .map_err(|_| anyhow::anyhow!("the aggregator thread panicked"))?
        .context("aggregator")?;
    tracing::info!(flushes = report.flushes, stats = ?report.stats, "aggregator stopped; everything flushed");
    served
}

/// The catalog at `catalog_url` (default: SQLite in the data directory), migrated.
pub async fn open_catalog(cfg: &Config) -> anyhow::Result<pulse_query::catalog::Catalog> {
    let catalog_url = pulse_query::catalog::open::catalog_url(&cfg.catalog_url, &cfg.data_dir);
    let catalog = pulse_query::catalog::open::open(
        &catalog_url,
        cfg.catalog.clone(),
        pulse_query::catalog::Secrets {
            admin_token: cfg.admin_token.clone(),
            webhook_secret: cfg.webhook_secret.clone(),
        },
    )
    .await
    .context("opening the catalog")?;
    Ok(catalog)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn termination_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
