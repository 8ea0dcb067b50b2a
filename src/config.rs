//! Configuration: one TOML file plus `PULSE_*` environment overrides of the same keys
//! (DESIGN.md decision 9), layered defaults → file → environment.
//!
//! Top-level keys are `PULSE_<KEY>` (`PULSE_LISTEN=127.0.0.1:9000`); keys of a section
//! use a double underscore (`PULSE_INGEST__RATE_PER_S=100`). Values are read as TOML
//! scalars when they parse as one (numbers, booleans), else as strings. Only variables
//! that name a known key are applied: other `PULSE_*` variables (PulseAudio's
//! `PULSE_SERVER`, say) are left alone and listed at debug level.

use anyhow::{Context, bail};
use pulse_aggregator::sinks::clickhouse::ClickHouseConfig;
use pulse_aggregator::sinks::embedded::EmbeddedStoreConfig;
use pulse_aggregator::{AggregatorConfig, HealthConfig};
use pulse_dashboards::DashboardConfig;
use pulse_ingest::IngestConfig;
use pulse_query::QueryConfig;
use pulse_query::catalog::CatalogConfig;
use pulse_query::media::S3Config;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Which store the analytics tables live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Parquet + DataFusion under `data_dir`, no other process.
    Embedded,
    /// ClickHouse at `clickhouse_url` (the scale path).
    Clickhouse,
}

/// The whole configuration. Every field has the default shown in its comment.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP/WebSocket server listens on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Directory of the embedded store, WAL and snapshots. Default `./data`.
    pub data_dir: PathBuf,
    /// `embedded` (default) or `clickhouse`.
    pub store: StoreKind,
    /// ClickHouse HTTP URL, used when `store = "clickhouse"`. Default `http://127.0.0.1:8123`.
    pub clickhouse_url: String,
    /// Catalog database: empty (default) means a SQLite file in `data_dir`.
    pub catalog_url: String,
    /// This node's id, written on every row. Default `node-1`.
    pub node_id: String,
    /// The first admin token (API access); empty (default) disables admin access.
    pub admin_token: String,
    /// HMAC secret of platform webhooks; empty (default) refuses every webhook.
    pub webhook_secret: String,
    /// Where generated media is kept. Default `./data/media`.
    pub media_dir: PathBuf,
    /// An S3-compatible bucket (R2) for generated media instead of `media_dir`; off
    /// while its `bucket` is empty (the default).
    pub media_s3: S3Config,
    /// Tick length in ms. Default 5000.
    pub tick_ms: i64,
    /// Allowed lateness of events in ms. Default 10000.
    pub allowed_lateness_ms: i64,
    /// Beacon ingest limits.
    pub ingest: IngestConfig,
    /// Aggregator bounds (its node id, tick and lateness come from the keys above).
    pub aggregator: AggregatorConfig,
    /// Embedded store bounds.
    pub embedded: EmbeddedStoreConfig,
    /// ClickHouse sink bounds (batch rows, insert interval, spool size, retries).
    pub clickhouse: ClickHouseConfig,
    /// Query service bounds.
    pub query: QueryConfig,
    /// VOD/clip catalog and media job settings.
    pub catalog: CatalogConfig,
    /// Encoder sockets, stream health and alerts.
    pub health: HealthConfig,
    /// The creator dashboard's session cookie.
    pub dashboard: DashboardConfig,
    /// Stream keys (and optionally the channel's creator token) until the catalog holds
    /// them: `[[stream_keys]]` tables. Default none.
    pub stream_keys: Vec<StreamKeyConfig>,
}

/// One `[[stream_keys]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamKeyConfig {
    pub stream: String,
    pub channel: String,
    pub key: String,
    /// The channel's owner (user id) ...
    pub owner: Option<String>,
    /// ... and their creator token, for the live feed and the health routes.
    pub owner_token: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            store: StoreKind::Embedded,
            clickhouse_url: "http://127.0.0.1:8123".into(),
            catalog_url: String::new(),
            node_id: "node-1".into(),
            admin_token: String::new(),
            webhook_secret: String::new(),
            media_dir: PathBuf::from("./data/media"),
            media_s3: S3Config::default(),
            tick_ms: 5000,
            allowed_lateness_ms: 10_000,
            ingest: IngestConfig::default(),
            aggregator: AggregatorConfig::default(),
            embedded: EmbeddedStoreConfig::default(),
            clickhouse: ClickHouseConfig::default(),
            query: QueryConfig::default(),
            catalog: CatalogConfig::default(),
            health: HealthConfig::default(),
            dashboard: DashboardConfig::default(),
            stream_keys: Vec::new(),
        }
    }
}

impl Config {
    /// The ClickHouse sink settings with the top-level keys applied (URL, and the spool
    /// under `data_dir`).
    pub fn clickhouse_sink(&self) -> ClickHouseConfig {
        let mut c = self.clickhouse.clone();
        c.url = self.clickhouse_url.clone();
        c.spool_dir = self.data_dir.join("clickhouse-spool");
        c
    }

    /// Defaults, then `file` (if any), then the `PULSE_*` variables of `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let mut tree =
            toml::Value::try_from(Config::default()).context("serializing the defaults")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            let from_file: toml::Value = toml::from_str(&text)
                .with_context(|| format!("parsing config file {}", path.display()))?;
            // Deserializing the file alone first gives errors that name the file's own keys.
            Config::deserialize(from_file.clone())
                .with_context(|| format!("config file {}", path.display()))?;
            merge(&mut tree, from_file);
        }
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("PULSE_") else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
            if !set_known(&mut tree, &path, &value) {
                tracing::debug!(variable = %key, "ignoring an environment variable that names no config key");
            }
        }
        let cfg = Config::deserialize(tree)
            .context("configuration (defaults + file + PULSE_* variables)")?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.tick_ms <= 0 || 60_000 % self.tick_ms != 0 {
            bail!(
                "tick_ms must divide a minute (e.g. 1000, 5000), got {}",
                self.tick_ms
            );
        }
        if self.allowed_lateness_ms < 0 {
            bail!(
                "allowed_lateness_ms must be ≥ 0, got {}",
                self.allowed_lateness_ms
            );
        }
        if pulse_schemas::Id::parse(&self.node_id).is_err() {
            bail!(
                "node_id must be an id (1–64 of [A-Za-z0-9_.:-]), got {:?}",
                self.node_id
            );
        }
        if let Err(e) = self.media_s3.check() {
            bail!("{e}");
        }
        if self.store == StoreKind::Clickhouse
            && !(self.clickhouse_url.starts_with("http://")
                || self.clickhouse_url.starts_with("https://"))
        {
            bail!(
                "clickhouse_url must be an http:// or https:// URL, got {:?}",
                self.clickhouse_url
            );
        }
        Ok(())
    }
}

/// Whether the environment variable `name` sets a configuration key (`PULSE_NODE_ID`,
/// `PULSE_INGEST__RATE_PER_S`, …); other `PULSE_*` variables are ignored by [`Config::load`].
pub fn env_key_is_known(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("PULSE_") else {
        return false;
    };
    let Ok(mut tree) = toml::Value::try_from(Config::default()) else {
        return false;
    };
    let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
    set_known(&mut tree, &path, "0")
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Sets `path` in `tree` if the key exists there (the defaults name every key).
fn set_known(tree: &mut toml::Value, path: &[String], raw: &str) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = tree;
    for part in parents {
        match node {
            toml::Value::Table(t) => match t.get_mut(part) {
                Some(child) => node = child,
                None => return false,
            },
            _ => return false,
        }
    }
    let toml::Value::Table(t) = node else {
        return false;
    };
    // Optional keys (absent from the defaults) may be set inside a known section.
    if t.contains_key(last) || !parents.is_empty() {
        t.insert(last.clone(), scalar(raw));
        return true;
    }
    false
}

fn scalar(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_defaults_file_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\nnode_id = \"n7\"\n").expect("write");
        let env = vec![
            ("PULSE_NODE_ID".to_string(), "n8".to_string()),
            ("PULSE_TICK_MS".to_string(), "1000".to_string()),
            (
                "PULSE_SERVER".to_string(),
                "unix:/run/pulse/native".to_string(),
            ),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let c = Config::load(Some(&file), env).expect("config");
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.node_id, "n8");
        assert_eq!(c.tick_ms, 1000);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn unknown_file_keys_are_errors_that_name_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "lisen = \"x\"\n").expect("write");
        let err = format!(
            "{:#}",
            Config::load(Some(&file), vec![]).expect_err("must fail")
        );
        assert!(err.contains("lisen"), "{err}");
        std::fs::write(&file, "tick_ms = 7000\n").expect("write");
        let err = format!(
            "{:#}",
            Config::load(Some(&file), vec![]).expect_err("must fail")
        );
        assert!(err.contains("tick_ms"), "{err}");
    }

    #[test]
    fn the_example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pulse.example.toml");
        let c = Config::load(Some(&path), vec![]).expect("pulse.example.toml loads");
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.tick_ms, d.tick_ms);
        assert_eq!(c.media_s3, d.media_s3);
        // The example states the aggregator's defaults (the file says so).
        assert_eq!(c.aggregator, d.aggregator);
    }

    #[test]
    fn media_s3_from_the_environment() {
        let env = vec![
            ("PULSE_MEDIA_S3__BUCKET".to_string(), "media".to_string()),
            (
                "PULSE_MEDIA_S3__ENDPOINT".to_string(),
                "https://acc.r2.cloudflarestorage.com".to_string(),
            ),
            (
                "PULSE_MEDIA_S3__ACCESS_KEY_ID".to_string(),
                "id".to_string(),
            ),
            (
                "PULSE_MEDIA_S3__SECRET_ACCESS_KEY".to_string(),
                "s3cr3t".to_string(),
            ),
            (
                "PULSE_MEDIA_S3__PART_BYTES".to_string(),
                "6291456".to_string(),
            ),
        ];
        let c = Config::load(None, env).expect("config");
        assert!(c.media_s3.enabled());
        assert_eq!(c.media_s3.secret_access_key, "s3cr3t");
        assert_eq!(c.media_s3.part_bytes, 6_291_456);
        assert_eq!(c.media_s3.region, "us-east-1");
        // A bucket without its secret is refused, naming the key.
        let env = vec![("PULSE_MEDIA_S3__BUCKET".to_string(), "media".to_string())];
        let err = format!("{:#}", Config::load(None, env).expect_err("no secret"));
        assert!(err.contains("secret_access_key"), "{err}");
    }
}
