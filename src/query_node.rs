//! `pulse query`: the API node of a multi-node deployment. It reads the shared
//! ClickHouse store and, when `catalog_url` names one, the shared catalog (Postgres),
//! and serves what needs no local aggregator: the analytics routes, ad-hoc SQL, the
//! VOD/clip catalog and the dashboard. Tokens are checked against the configured ones
//! and the catalog's (the same [`LayeredAccess`](crate::access::LayeredAccess) as
//! `pulse serve`).
//!
//! What stays on the nodes that hold encoders and player sockets: the live feed and
//! the per-second stream health (`/v1/live`, `/api/streams/:id/health`), which answer
//! 503 here. Likes posted here are stored in the catalog but not sent to the analytics
//! events (there is no aggregator in this process); media jobs are queued here and run
//! by the ingest nodes' worker pools, so a multi-node deployment needs a media store all
//! nodes share.

use crate::config::{Config, StoreKind};
use crate::serve::open_catalog;
use anyhow::Context;
use pulse_aggregator::runtime::Clock;
use pulse_query::CatalogState;
use pulse_schemas::{AccessControl, EmbeddedTables};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves the query node on `listener` until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    cfg: Config,
    shutdown: CancellationToken,
    clock: Clock,
    access: Arc<dyn AccessControl>,
) -> anyhow::Result<()> {
    if cfg.store != StoreKind::Clickhouse {
        anyhow::bail!(
            "pulse query reads a shared store: set store = \"clickhouse\" (the embedded store is read by `pulse serve`)"
        );
    }
    // Migrate at start-up so the tables exist for the first read; ClickHouse may come up
    // later (the sink's sender migrates again before it writes).
    if let Err(e) = crate::store::migrate(&cfg).await {
        tracing::warn!(error = %format!("{e:#}"), "ClickHouse migration at start-up failed; reads fail until it is reachable");
    }
    // A shared catalog (`catalog_url` set, e.g. Postgres in docker-compose) gives the
    // API its tokens, owners, lifecycle and categories, and the catalog routes; without
    // one, this node has only the configured tokens and no catalog routes (a local
    // SQLite file would be a catalog no other node sees).
    let catalog = if cfg.catalog_url.is_empty() {
        None
    } else {
        Some(open_catalog(&cfg).await?)
    };
    let mut query = crate::store::query_state(&cfg, EmbeddedTables::new()).with_clock(clock);
    let mut app = axum::Router::new();
    let access: Arc<dyn AccessControl> = match &catalog {
        Some(c) => {
            let access: Arc<dyn AccessControl> = Arc::new(crate::access::LayeredAccess::new(
                access,
                Arc::new(c.clone()),
            ));
            let media = pulse_query::media::MediaStore::from_config(
                &cfg.media_dir,
                &cfg.catalog.media_base_url,
                &cfg.media_s3,
            )
            .context("opening the media store")?;
            let mut catalog_state = CatalogState::new(c.clone(), media, None);
            catalog_state.access = access.clone();
            app = app.merge(pulse_query::catalog_router(catalog_state));
            query = query.with_catalog(c.clone());
            access
        }
        None => access,
    };
    let dashboard = pulse_dashboards::DashboardState {
        access: access.clone(),
        config: cfg.dashboard.clone(),
    };
    let query = query.with_access(access);
    let counts_stop = CancellationToken::new();
    let counts = catalog.as_ref().map(|c| {
        tokio::spawn(pulse_query::content_counts::run(
            query.clone(),
            c.clone(),
            std::time::Duration::from_millis(cfg.catalog.count_sync_interval_ms.max(100)),
            counts_stop.clone(),
        ))
    });
    query.set_ready(true);
    let app = app
        .merge(pulse_query::router(query.clone()))
        .merge(pulse_dashboards::router(dashboard));
    let http_stop = shutdown.child_token();
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { http_stop.cancelled().await })
    .await
    .context("HTTP server");
    query.set_ready(false);
    counts_stop.cancel();
    if let Some(t) = counts {
        let _ = t.await;
    }
    if let Some(c) = catalog {
        c.close().await;
    }
    served
}
