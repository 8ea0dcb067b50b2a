//! `pulse replay FILE`: an NDJSON trace (one wire event per line, as `Event::to_json`
//! writes it) through the same aggregator code as live, into the configured store.
//! No clock-skew correction: a trace's times are the truth. Lines that are not valid
//! events are counted and reported, and the rest of the trace is kept.

use crate::config::Config;
use anyhow::Context;
use pulse_schemas::parse_event;
use std::io::BufRead;
use std::path::Path;

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub lines: u64,
    pub events: u64,
    pub rejected: u64,
    /// The first few refusals, with their line numbers.
    pub reasons: Vec<String>,
    pub late: u64,
}

/// Replays `file` into the store configured by `cfg`.
pub fn replay_file(cfg: &Config, file: &Path) -> anyhow::Result<ReplayReport> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let (_tables, mut sink) = crate::store::open_sink(cfg)?;
    let agg_cfg = crate::serve::aggregator_config(cfg)?;
    let mut report = ReplayReport::default();
    let mut read_error = None;
    let events = reader.lines().enumerate().filter_map(|(i, line)| {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                read_error.get_or_insert(e);
                return None;
            }
        };
        report.lines += 1;
        if line.trim().is_empty() {
            return None;
        }
        match parse_event(line.trim()) {
            Ok(e) => {
                report.events += 1;
                Some(e)
            }
            Err(r) => {
                report.rejected += 1;
                if report.reasons.len() < 16 {
                    report.reasons.push(format!("line {}: {r}", i + 1));
                }
                None
            }
        }
    });
    let stats = pulse_aggregator::runtime::replay(&agg_cfg, events, &mut sink)
        .context("replaying into the store")?;
    if let Some(e) = read_error {
        return Err(e).with_context(|| format!("reading {}", file.display()));
    }
    report.late = stats.late;
    Ok(report)
}
