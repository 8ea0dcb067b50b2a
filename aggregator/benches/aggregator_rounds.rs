//! The steady state of the aggregator bench round by round, without criterion: one
//! long-lived aggregator replays the trace two hours later each round (as criterion's
//! `steady` does), and each round's `push` + `advance` is timed alone, its input built
//! before the clock starts. Prints the best, median and worst round in events/s: on a
//! shared VM the best round is the most repeatable wall figure. Under callgrind it gives
//! exact instruction counts and simulated cache misses of the same work:
//!
//! ```text
//! cargo bench -p pulse-aggregator --bench aggregator_rounds
//! ROUNDS=3 valgrind --tool=callgrind --cache-sim=yes \
//!   --toggle-collect='*Aggregator::advance_into*' --toggle-collect='*Aggregator::push*' \
//!   target/release/deps/aggregator_rounds-<hash>
//! ```
//!
//! `ROUNDS` (default 12) sets the number of rounds; with more than two, the first two
//! warm up and are not counted. Run without `--bench` (as `cargo test --all-targets`
//! runs every bench target, in a debug build), it plays one round: a smoke test.

mod common;

use common::{run, shifted, trace};
use pulse_aggregator::{Aggregator, AggregatorConfig};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let rounds: i64 = match std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()) {
        Some(n) => n,
        None if benching => 12,
        None => 1,
    }
    .max(1);
    let events = trace();
    let config = AggregatorConfig::default();
    let lateness = config.allowed_lateness_ms;
    let mut agg = Aggregator::new(config);
    let mut secs = Vec::new();
    for round in 1..=rounds {
        let input = shifted(&events, round * 7_200_000);
        let start = Instant::now();
        let out = black_box(run(&mut agg, lateness, input));
        let took = start.elapsed().as_secs_f64();
        drop(out);
        if rounds <= 2 || round > 2 {
            secs.push(took);
        }
    }
    secs.sort_by(f64::total_cmp);
    let rate = |s: f64| events.len() as f64 / s / 1e6;
    println!(
        "aggregator_rounds: {} events a round, {} rounds counted: best {:.3} M events/s, median {:.3}, worst {:.3}",
        events.len(),
        secs.len(),
        rate(secs[0]),
        rate(secs[secs.len() / 2]),
        rate(secs[secs.len() - 1]),
    );
}
