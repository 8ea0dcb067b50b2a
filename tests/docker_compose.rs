//! docker-compose.yml against the binary: every pulse service runs a subcommand the
//! binary has, every PULSE_* variable names a configuration key and the whole
//! environment loads; the layout is the one DESIGN.md names (current ClickHouse, two
//! ingest nodes behind one published port, one query node, Postgres, health checks,
//! volumes). The YAML is read with PyYAML (python3 is already needed for chDB).

mod common;

use common::compose::{compose, environment, strings};
use std::path::Path;
use std::process::Command;

#[test]
fn every_service_matches_what_the_binary_accepts() {
    let c = compose();
    let services = c["services"].as_object().expect("services");
    let ch = &services["clickhouse"];
    assert!(
        ch["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("clickhouse/clickhouse-server")),
        "official ClickHouse image"
    );
    assert!(
        services["postgres"]["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("postgres"))
    );
    let mut by_command: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut node_ids = Vec::new();
    for (name, svc) in services {
        let command = strings(&svc["command"]);
        if command.first().map(String::as_str) != Some("pulse") {
            // Not ours: it must still be health-checked.
            assert!(svc["healthcheck"].is_object(), "{name}: healthcheck");
            continue;
        }
        let sub = command.get(1).expect("a subcommand").clone();
        let help = Command::new(env!("CARGO_BIN_EXE_pulse"))
            .args(&command[1..])
            .arg("--help")
            .output()
            .expect("run pulse");
        assert!(
            help.status.success(),
            "{name}: `pulse {}` is not a command of the binary: {}",
            command[1..].join(" "),
            String::from_utf8_lossy(&help.stderr)
        );
        let env = environment(svc);
        for (k, _) in &env {
            assert!(
                pulse::config::env_key_is_known(k),
                "{name}: {k} names no configuration key"
            );
        }
        let cfg = pulse::Config::load(None, env.clone())
            .unwrap_or_else(|e| panic!("{name}: environment does not load: {e:#}"));
        if sub == "ingest" || sub == "query" {
            assert_eq!(cfg.store, pulse::config::StoreKind::Clickhouse, "{name}");
            assert_eq!(cfg.clickhouse_url, "http://clickhouse:8123", "{name}");
            assert!(svc["healthcheck"].is_object(), "{name}: healthcheck");
            assert!(
                !strings(&svc["volumes"]).is_empty() || sub == "query",
                "{name}: volume"
            );
        }
        if sub == "ingest" {
            node_ids.push(cfg.node_id.clone());
        }
        by_command.entry(sub).or_default().push(name.clone());
    }
    assert_eq!(
        by_command.get("ingest").map(Vec::len),
        Some(2),
        "{by_command:?}"
    );
    assert_eq!(
        by_command.get("query").map(Vec::len),
        Some(1),
        "{by_command:?}"
    );
    node_ids.sort();
    node_ids.dedup();
    assert_eq!(node_ids.len(), 2, "each ingest node has its own node_id");
    // The published ingest port balances over both ingest nodes.
    let lb = services
        .values()
        .find(|s| s["image"].as_str().is_some_and(|i| i.starts_with("nginx")))
        .expect("a load balancer in front of the ingest nodes");
    assert!(!strings(&lb["ports"]).is_empty());
    let conf_mount = strings(&lb["volumes"])
        .into_iter()
        .find(|v| v.contains("nginx"))
        .expect("nginx config mounted");
    let conf_path = conf_mount.split(':').next().expect("host path");
    let conf = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(conf_path))
        .expect("nginx config");
    for ingest in &by_command["ingest"] {
        assert!(
            conf.contains(&format!("server {ingest}:8080")),
            "{ingest} behind the balancer"
        );
    }
    for v in ["clickhouse-data", "postgres-data"] {
        assert!(c["volumes"].get(v).is_some(), "volume {v}");
    }
}
