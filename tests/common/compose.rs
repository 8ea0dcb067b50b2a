//! docker-compose.yml as JSON (read with PyYAML) and the environment of its services.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The whole compose file.
pub fn compose() -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(root.join("docker-compose.yml"))
        .output()
        .expect("python3 with PyYAML (scripts/need-clickhouse.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("compose as JSON")
}

/// A string array of the compose file (`command`, `volumes`, `ports`).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The `environment` map of a service, values as strings.
pub fn environment(svc: &Value) -> Vec<(String, String)> {
    svc["environment"]
        .as_object()
        .expect("environment as a map")
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), v)
        })
        .collect()
}
