//! Hot path of the aggregator on one core: `push` + `advance` (+ the final `finish`)
//! for a realistic mix — many sessions on many streams, 10 s heartbeats, startups,
//! some rebuffers, pauses, chat, follows, viewends and silent tab closes — arriving
//! slightly out of order.
//!
//! Run: `cargo bench -p pulse-aggregator --bench aggregator`. The figure is criterion's
//! `thrpt` in elements (events) per second.

mod common;

use common::{run, shifted, trace};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use pulse_aggregator::{Aggregator, AggregatorConfig};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let events = trace();
    let config = AggregatorConfig::default();
    let lateness = config.allowed_lateness_ms;
    let mut g = c.benchmark_group("aggregator");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(10);
    // A fresh aggregator for each run: includes growing every buffer and map, and
    // `finish()` closing everything.
    g.bench_function(format!("cold_{}_events", events.len()), |b| {
        b.iter_batched(
            || events.clone(),
            |evs| {
                let mut agg = Aggregator::new(config.clone());
                let (rows, spent) = run(&mut agg, lateness, evs);
                (black_box(rows + agg.finish().ticks.len()), spent)
            },
            BatchSize::LargeInput,
        )
    });
    // The live steady state: one long-lived aggregator; each run replays the trace
    // two hours later than the previous one (sessions ended, tombstones expired, buffers
    // and maps already grown).
    let mut agg = Aggregator::new(config.clone());
    let mut round = 0i64;
    g.bench_function(format!("steady_{}_events", events.len()), |b| {
        b.iter_batched(
            || {
                round += 1;
                shifted(&events, round * 7_200_000)
            },
            |evs| black_box(run(&mut agg, lateness, evs)),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
