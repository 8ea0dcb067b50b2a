//! The VOD and clip catalog (DESIGN.md decision 5): users, channels, follows, API tokens,
//! streams and their keys, lifecycle, VODs, watch progress, clips and media jobs, in
//! SQLite (default, WAL) or Postgres through one sqlx `Any` code path.
//!
//! Components: [`open`] (connect + migrate), [`tokens`] (hashed bearer tokens and the
//! [`AccessControl`](pulse_schemas::access::AccessControl) impl), [`streams`] (channels,
//! users, follows, streams, stream keys, lifecycle → archival), [`vods`], [`progress`],
//! [`search`] (full-text search: FTS5 / tsvector), [`clips`], [`jobs`] (the durable media job queue), [`webhooks`] (signature checks).

pub mod analytics_records;
pub mod clips;
pub mod config;
pub mod counters;
pub mod jobs;
pub mod open;
pub mod progress;
pub mod search;
pub mod streams;
pub mod tokens;
pub mod vods;
pub mod webhooks;

pub use config::CatalogConfig;

use crate::QueryError;
use pulse_schemas::Id;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use std::sync::Arc;

/// Which database the catalog runs on (only DDL-free differences depend on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The catalog: a connection pool and its settings (cheap to clone).
#[derive(Clone, Debug)]
pub struct Catalog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: AnyPool,
    backend: Backend,
    config: CatalogConfig,
    secrets: Secrets,
}

/// The secrets of the `admin_token` and `webhook_secret` settings (empty: disabled).
#[derive(Clone, Default)]
pub struct Secrets {
    pub admin_token: String,
    pub webhook_secret: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("admin_token", &(!self.admin_token.is_empty()))
            .field("webhook_secret", &(!self.webhook_secret.is_empty()))
            .finish()
    }
}

impl Catalog {
    pub(crate) fn from_pool(
        pool: AnyPool,
        backend: Backend,
        config: CatalogConfig,
        secrets: Secrets,
    ) -> Self {
        Catalog {
            inner: Arc::new(Inner {
                pool,
                backend,
                config,
                secrets,
            }),
        }
    }

    pub(crate) fn secrets(&self) -> &Secrets {
        &self.inner.secrets
    }

    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// A transaction that writes. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later
    /// cannot wait for a concurrent writer (WAL answers "database is locked" at once,
    /// whatever the busy timeout), so simultaneous lifecycle changes failed. Postgres:
    /// a plain `BEGIN`.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.inner.backend {
            Backend::Sqlite => self.inner.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.inner.pool.begin().await,
        }
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    pub fn config(&self) -> &CatalogConfig {
        &self.inner.config
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

/// Hex SHA-256 of a secret: how tokens and stream keys are stored.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random secret: 32 random bytes as 64 hex characters.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// A new random object id (`v_…`, `k_…`, `j_…`): 16 random bytes in hex after `prefix`.
pub fn new_id(prefix: &str) -> Id {
    let bytes: [u8; 16] = rand::random();
    // prefix + 33 characters from [a-z0-9_]: always a valid id.
    Id::new_unchecked(&format!("{prefix}_{}", hex::encode(bytes)))
}

/// Current wall-clock time in epoch ms.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Parses an id from a path or body, naming the field in the error.
pub fn parse_id(name: &'static str, raw: &str) -> Result<Id, QueryError> {
    Id::parse(raw).map_err(|e| QueryError::invalid(name, format!("{e} (got {raw:?})")))
}
