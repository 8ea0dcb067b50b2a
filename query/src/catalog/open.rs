//! Connecting to the catalog and running its migrations.
//!
//! One migration directory (`query/migrations`) serves both backends: its DDL uses only
//! types that SQLite and Postgres both accept and that sqlx's `Any` driver decodes the
//! same way (TEXT, BIGINT, DOUBLE PRECISION).

use super::{Backend, Catalog, CatalogConfig, Secrets};
use crate::QueryError;
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use std::path::Path;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The catalog URL for `catalog_url` (empty: `catalog.sqlite` in `data_dir`).
pub fn catalog_url(setting: &str, data_dir: &Path) -> String {
    if setting.is_empty() {
        format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("catalog.sqlite").display()
        )
    } else {
        setting.to_owned()
    }
}

/// Connects to `url` (`sqlite://…` or `postgres://…`), sets SQLite to WAL with foreign
/// keys on, and applies pending migrations.
pub async fn open(
    url: &str,
    config: CatalogConfig,
    secrets: Secrets,
) -> Result<Catalog, QueryError> {
    sqlx::any::install_default_drivers();
    let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Backend::Postgres
    } else if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        return Err(QueryError::invalid(
            "catalog_url",
            format!("expected sqlite://PATH or postgres://…, got {url:?}"),
        ));
    };
    let mut options = AnyPoolOptions::new().max_connections(config.max_connections.max(1));
    if backend == Backend::Sqlite {
        options = options.after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;")
                    .await?;
                Ok(())
            })
        });
    }
    let pool = options.connect(url).await?;
    if backend == Backend::Sqlite {
        pool.execute("PRAGMA journal_mode = WAL;").await?;
    }
    MIGRATOR.run(&pool).await?;
    super::search::ensure_index(&pool, backend).await?;
    Ok(Catalog::from_pool(pool, backend, config, secrets))
}
