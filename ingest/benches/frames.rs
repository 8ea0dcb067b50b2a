//! The per-frame work of the ingest node before the hand-off to the aggregator: parse and
//! validate a frame (`parse_frame`), then correct its clock skew (`SkewCorrector`), for
//! the mix the loadgen's `frames` scenario sends (mostly `heartbeat`s with state,
//! bitrate and position, a `viewstart` with device/country/player and a `playing` per
//! session, a `chat` every 50th) over 10 000 sessions, one event per frame; and for
//! 299-event `seq` envelopes (the `batched` scenario).
//!
//! Run: `cargo bench --workspace --bench frames -- --noplot`. The figure is `thrpt` in
//! events per second; callgrind's instruction counts of one iteration do not depend on
//! machine load.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pulse_ingest::{IngestConfig, SkewCorrector};
use pulse_schemas::frame::{ParsedFrame, parse_frame, parse_frame_into};
use std::hint::black_box;

const SESSIONS: usize = 10_000;
const NOW: i64 = 1_764_000_000_000;

fn event(i: usize, round: usize) -> String {
    let (v, s, c) = (i, i % 4, i % 2);
    let ts = NOW + (round as i64) * 10_000;
    let ids = format!(
        r#""ts":{ts},"viewer":"ldrun-v{v}","channel":"ldrun-c{c}","stream":"ldrun-s{s}","session":"ldrun-x{v}""#
    );
    match round {
        0 => format!(
            r#"{{"type":"viewstart",{ids},"device":"desktop","country":"US","player":"pulse-loadgen/1"}}"#
        ),
        1 => format!(r#"{{"type":"playing",{ids}}}"#),
        n if n % 50 == 0 => format!(
            r#"{{"type":"chat","ts":{ts},"viewer":"ldrun-v{v}","channel":"ldrun-c{c}","stream":"ldrun-s{s}","count":1}}"#
        ),
        _ => format!(
            r#"{{"type":"heartbeat",{ids},"state":"playing","bitrate_kbps":4500,"pos":12.5}}"#
        ),
    }
}

fn frames() -> Vec<String> {
    let mut out = Vec::with_capacity(SESSIONS * 6);
    for round in 0..6 {
        for i in 0..SESSIONS {
            out.push(event(i, round));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let single = frames();
    let envelopes: Vec<String> = single
        .chunks(299)
        .enumerate()
        .map(|(n, chunk)| format!(r#"{{"seq":{n},"events":[{}]}}"#, chunk.join(",")))
        .collect();
    for f in single.iter().chain(&envelopes) {
        let parsed = parse_frame(f);
        assert!(parsed.by_reason.is_empty(), "{f}: {:?}", parsed.by_reason);
    }
    let config = IngestConfig::default();
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(single.len() as u64));
    g.sample_size(10);
    g.bench_function("single-event frames", |b| {
        // As a connection does: one frame reused, its events moved to a pending batch.
        let skew = SkewCorrector::new(&config, NOW);
        let mut frame = ParsedFrame::default();
        let mut pending = Vec::with_capacity(1000);
        b.iter(|| {
            for f in &single {
                parse_frame_into(f, &mut frame);
                black_box(skew.correct(&mut frame.events, NOW));
                pending.append(&mut frame.events);
                if pending.len() == 1000 {
                    black_box(std::mem::take(&mut pending));
                    pending.reserve(1000);
                }
            }
        })
    });
    g.bench_function("299-event envelopes", |b| {
        let skew = SkewCorrector::new(&config, NOW);
        b.iter(|| {
            for f in &envelopes {
                let mut parsed = parse_frame(f);
                black_box(skew.correct(&mut parsed.events, NOW));
                black_box(parsed);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
