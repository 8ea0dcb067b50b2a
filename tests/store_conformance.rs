//! One trace replayed into the embedded store and into a real ClickHouse server
//! (Debian's 18.16, started by the harness); every case of
//! `tests/cases/store_conformance.txt` must give the same answer from both.

mod common;

use common::clickhouse::ClickHouse;
use common::conformance::{answer_diff, cases, nonzero_numbers, run};
use common::{config, start, wait_for};
use pulse::config::StoreKind;

const START: i64 = 1_764_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_answers_every_case_like_the_embedded_store() {
    let ch = tokio::task::spawn_blocking(ClickHouse::start)
        .await
        .expect("start ClickHouse");
    let trace = common::trace::generate(7, START, 200, 6 * 60_000);
    // Issue 4: VOD and clip views, likes, shares, clickthroughs, an older stream.
    let mut events = trace.events.clone();
    events.extend(common::content::events(START));
    events.sort_by_key(|e| e["ts"].as_i64().unwrap_or(0));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("trace.ndjson");
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&file, text).expect("write trace");
    let to = trace.end.max(START + 18 * 60_000) + 120_000;
    let clock = to + 3_600_000;

    let embedded = config(&dir.path().join("embedded"));
    let mut clickhouse = config(&dir.path().join("clickhouse"));
    clickhouse.store = StoreKind::Clickhouse;
    clickhouse.clickhouse_url = ch.url();
    for cfg in [embedded.clone(), clickhouse.clone()] {
        let f = file.clone();
        let report = tokio::task::spawn_blocking(move || pulse::replay::replay_file(&cfg, &f))
            .await
            .expect("join")
            .expect("replay");
        assert_eq!(report.events as usize, events.len());
    }
    // The same catalog records (lifecycle, categories, VOD, clips) beside each store.
    for cfg in [&embedded, &clickhouse] {
        common::content::seed(cfg, START).await;
    }
    // Nothing left in the spool: the replay drained it at shutdown.
    let spool = dir.path().join("clickhouse/clickhouse-spool");
    assert_eq!(std::fs::read_dir(&spool).expect("spool dir").count(), 0);

    let a = start(embedded, clock).await;
    let b = start(clickhouse, clock).await;
    // Both serve every bucket as final once their live aggregator has flushed once.
    let probe = format!(
        "/api/analytics/series?metric=views&stream=stream-a1&from={START}&to={to}&step=3600000"
    );
    for s in [&a, &b] {
        wait_for(s, &probe, 30, |v| {
            v["points"]
                .as_array()
                .is_some_and(|p| p.iter().all(|x| x["final"] == true))
        })
        .await;
    }
    let cases = cases(common::trace::STREAMS, START, to);
    assert!(cases.len() > 100, "{} cases", cases.len());
    let (base_a, base_b) = (a.url(""), b.url(""));
    let mut nonzero = 0;
    let mut ok_answers = 0;
    let mut server_errors = Vec::new();
    for case in &cases {
        let (sa, ba) = run(&base_a, case).await;
        let (sb, bb) = run(&base_b, case).await;
        assert_eq!(sa, sb, "{case:?}: status\nembedded: {ba}\nclickhouse: {bb}");
        if let Some(d) = answer_diff(&ba, &bb) {
            panic!("{case:?} differs at {d}\nembedded: {ba}\nclickhouse: {bb}");
        }
        if sa >= 500 {
            server_errors.push(format!("{case:?}: {sa} {ba}"));
        }
        if sa == 200 {
            ok_answers += 1;
            nonzero += nonzero_numbers(&ba);
        }
    }
    // Refusals (a range too long for its step, say) are the same 4xx from both stores;
    // neither store may fail a case, and most cases must answer with numbers.
    assert!(
        server_errors.is_empty(),
        "server errors: {server_errors:#?}"
    );
    assert!(
        ok_answers * 3 >= cases.len() * 2,
        "{ok_answers} of {}",
        cases.len()
    );
    assert!(nonzero > 1000, "only {nonzero} nonzero numbers");
    a.stop().await;
    b.stop().await;
}
