//! Issue 7 point 6: the Grafana provisioning in `dashboards/grafana/` is well formed and
//! every panel query of its dashboard runs on the test ClickHouse (Debian's 18.16, the
//! oldest dialect the store supports) and gives the numbers worked out by hand from the
//! rows inserted here — viewers summed across nodes before averaging, as METRICS.md
//! demands. Grafana macros are expanded the way the grafana-clickhouse-datasource
//! plugin expands them (`$__fromTime` → `toDateTime(<s>)`, `$__interval_s` → seconds).

mod common;

use common::clickhouse::ClickHouse;
use serde_json::Value;
use std::path::PathBuf;

const T: i64 = 1_764_000_000_000; // a minute boundary

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards/grafana")
}

fn expand(sql: &str) -> String {
    let out = sql
        .replace("$__fromTime", &format!("toDateTime({})", T / 1000 - 3600))
        .replace("$__toTime", &format!("toDateTime({})", T / 1000 + 3600))
        .replace("$__interval_s", "60")
        .replace("${channel:singlequote}", "'chan-a'");
    assert!(
        !out.contains('$'),
        "an unexpanded macro or variable in {out}"
    );
    out
}

fn rows(ch: &ClickHouse, sql: &str) -> Vec<Value> {
    let body = ch
        .sql(&format!("{} FORMAT JSONEachRow", expand(sql)))
        .unwrap_or_else(|e| panic!("query failed on ClickHouse:\n{sql}\n{e}"));
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSONEachRow line"))
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

fn insert(ch: &ClickHouse) {
    let tick = |node: &str,
                channel: &str,
                t: i64,
                viewers: i64,
                events: i64,
                watch: i64,
                rebuf: i64| {
        format!(
            "('{node}','stream','{channel}-s1','{channel}',{t},{viewers},{events},1,{watch},{rebuf},1,1,'',0,2,1,0,0,0,0)"
        )
    };
    let values = [
        tick("n1", "chan-a", T, 3, 10, 10_000, 1000),
        tick("n2", "chan-a", T, 4, 20, 30_000, 1000),
        tick("n1", "chan-a", T + 5000, 5, 30, 0, 0),
        tick("n2", "chan-a", T + 5000, 1, 0, 0, 0),
        tick("n1", "chan-b", T, 100, 1000, 1, 1),
    ];
    ch.sql(&format!(
        "INSERT INTO stream_ticks (node, kind, target, channel, t, viewers, events, views, watch_ms, \
         rebuffer_ms, rebuffer_count, startups, startup_hist, failures, chat_messages, follows, likes, \
         shares, embed_views, clickthroughs) VALUES {}",
        values.join(",")
    ))
    .expect("insert stream_ticks");
    ch.sql(&format!(
        "INSERT INTO health_ticks (node, stream, channel, t, reports, seconds_reported, bitrate_mean_kbps, \
         bitrate_min_kbps, target_bitrate_kbps, fps_mean, resolution, latency_mean_ms, packet_loss_mean_pct, \
         dropped_frames, status) VALUES ('n1','chan-a-s1','chan-a',{T},5,5,3000,2800,5000,60,'1920x1080',1200,0.5,0,'good')"
    ))
    .expect("insert health_ticks");
    ch.sql(&format!(
        "INSERT INTO alerts (node, stream, channel, ts, alert, severity, state, value, threshold, message) \
         VALUES ('n1','chan-a-s1','chan-a',{},'bitrate_drop','warning','firing',3000,3500,'bitrate low')",
        T + 1000
    ))
    .expect("insert alerts");
}

#[test]
fn provisioning_is_well_formed_and_every_panel_query_runs_on_clickhouse() {
    let ds = std::fs::read_to_string(root().join("provisioning/datasources/clickhouse.yaml"))
        .expect("datasource provisioning");
    assert!(
        ds.contains("type: grafana-clickhouse-datasource") && ds.contains("uid: pulse-clickhouse")
    );
    let provider = std::fs::read_to_string(root().join("provisioning/dashboards/pulse.yaml"))
        .expect("dashboard provisioning");
    assert!(provider.contains("type: file"));
    let dash: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("dashboards/pulse-ops.json")).expect("dashboard"),
    )
    .expect("dashboard JSON");

    let ch = ClickHouse::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = pulse_aggregator::sinks::clickhouse::client(&ch.url());
    rt.block_on(pulse_aggregator::sinks::clickhouse::migrate(&client))
        .expect("migrate");
    insert(&ch);

    // The channel variable's query.
    let var = &dash["templating"]["list"][0];
    assert_eq!(var["name"], "channel");
    let channels = rows(&ch, var["query"].as_str().expect("variable query"));
    assert_eq!(channels.len(), 2);

    let mut by_title = std::collections::BTreeMap::new();
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 6);
    for p in panels {
        assert_eq!(p["datasource"]["uid"], "pulse-clickhouse");
        let title = p["title"].as_str().expect("title").to_owned();
        let sql = p["targets"][0]["rawSql"].as_str().expect("rawSql");
        by_title.insert(title, rows(&ch, sql));
    }
    let find = |prefix: &str| -> &Vec<Value> {
        by_title
            .iter()
            .find(|(t, _)| t.starts_with(prefix))
            .map(|(_, r)| r)
            .unwrap_or_else(|| panic!("no panel titled {prefix}…"))
    };

    // Ticks T (3 + 4 = 7) and T+5 s (5 + 1 = 6) fall in one 60 s bucket: mean 6.5;
    // chan-b's 100 viewers are filtered out.
    let v = find("Concurrent viewers");
    assert_eq!(v.len(), 1, "{v:?}");
    assert!((num(&v[0]["viewers"]) - 6.5).abs() < 1e-9, "{v:?}");
    let e = find("Views and chat");
    assert_eq!(num(&e[0]["views"]), 4.0);
    assert_eq!(num(&e[0]["chat_messages"]), 8.0);
    let q = find("Rebuffer ratio");
    assert!(
        (num(&q[0]["rebuffer_ratio"]) - 2000.0 / 40_000.0).abs() < 1e-9,
        "{q:?}"
    );
    let i = find("Ingest rate");
    assert!((num(&i[0]["events_per_s"]) - 1.0).abs() < 1e-9, "{i:?}");
    let b = find("Encoder bitrate");
    assert_eq!(num(&b[0]["bitrate_kbps"]), 3000.0);
    assert_eq!(num(&b[0]["target_kbps"]), 5000.0);
    let a = find("Alert transitions");
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["alert"], "bitrate_drop");
}
