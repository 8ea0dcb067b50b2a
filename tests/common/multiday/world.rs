//! What the multi-day checks share: the trace with its facts ([`World`]), the scopes
//! series are asked for, the mismatches collected over a run ([`Report`]), and a GET
//! of many paths.

use super::super::Server;
use super::ledger::{self, Bucket, Facts, TICK, Want};
use super::{CHANNELS, DAY, TargetKind, Trace};
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The trace, its facts and what the checks share.
pub struct World {
    pub trace: Trace,
    pub facts: Vec<Facts>,
    /// Live ticks of every target (streams: lifecycle or events; VODs, clips: events).
    pub live: Vec<BTreeSet<i64>>,
}

/// What a series or total is computed over.
#[derive(Clone, Copy, Debug)]
pub enum Scope {
    Target(usize),
    Channel(usize),
}

impl World {
    pub fn new(trace: Trace) -> World {
        let facts = ledger::facts(&trace);
        let live = (0..trace.targets.len())
            .map(|t| match trace.targets[t].kind {
                TargetKind::Stream => ledger::live_ticks(&trace, &facts, t),
                _ => {
                    let ts = facts[t].activity.iter().map(|a| a.0 - a.0.rem_euclid(TICK));
                    let (a, b) = (ts.clone().min().expect("events"), ts.max().expect("events"));
                    (0..=(b - a) / TICK).map(|k| a + k * TICK).collect()
                }
            })
            .collect();
        World { trace, facts, live }
    }

    pub fn targets_of(&self, channel: usize) -> Vec<usize> {
        (0..self.trace.targets.len())
            .filter(|&t| self.trace.targets[t].channel == channel)
            .collect()
    }

    pub fn streams_of(&self, channel: usize) -> Vec<usize> {
        self.targets_of(channel)
            .into_iter()
            .filter(|&t| self.trace.targets[t].kind == TargetKind::Stream)
            .collect()
    }

    /// A channel's concurrency: per tick, the sum over its streams.
    pub fn channel_viewers(&self, channel: usize) -> HashMap<i64, i64> {
        let mut sum = HashMap::new();
        for s in self.streams_of(channel) {
            for (&t, &n) in &self.facts[s].viewers {
                *sum.entry(t).or_default() += n;
            }
        }
        sum
    }

    /// A channel's live ticks: those in which any of its streams is live.
    pub fn channel_live(&self, channel: usize) -> BTreeSet<i64> {
        let streams = self.streams_of(channel);
        streams.iter().flat_map(|&s| self.live[s].clone()).collect()
    }

    pub fn buckets(&self, scope: Scope, from: i64, to: i64, step: i64) -> BTreeMap<i64, Bucket> {
        match scope {
            Scope::Target(t) => {
                let f = &self.facts[t];
                ledger::aggregate(&[f], &f.viewers, &self.live[t], from, to, step)
            }
            Scope::Channel(c) => {
                let parts: Vec<&Facts> =
                    self.targets_of(c).iter().map(|&t| &self.facts[t]).collect();
                let (v, live) = (self.channel_viewers(c), self.channel_live(c));
                ledger::aggregate(&parts, &v, &live, from, to, step)
            }
        }
    }

    /// One bucket over all time (up to the day after the clock).
    pub fn all_time(&self, scope: Scope) -> Bucket {
        let span = (self.trace.now.div_euclid(DAY) + 1) * DAY;
        self.buckets(scope, 0, span, span)
            .remove(&0)
            .expect("one bucket")
    }

    pub fn param(&self, scope: Scope) -> String {
        match scope {
            Scope::Target(t) => {
                let t = &self.trace.targets[t];
                format!("{}={}", t.kind.key(), t.id)
            }
            Scope::Channel(c) => format!("channel={}", CHANNELS[c].0),
        }
    }
}

/// Mismatches, collected so one run reports all of them.
#[derive(Default)]
pub struct Report {
    pub checked: usize,
    /// Checks of a nonzero expectation.
    pub nonzero: usize,
    pub failures: Vec<String>,
}

impl Report {
    pub fn want(&mut self, what: impl FnOnce() -> String, want: Want, got: &Value) {
        self.checked += 1;
        self.nonzero += usize::from(!want.is_zero());
        if !want.matches(got) {
            self.failures
                .push(format!("{}: got {got}, want {want:?}", what()));
        }
    }

    pub fn same<T: PartialEq + std::fmt::Debug>(
        &mut self,
        what: impl FnOnce() -> String,
        want: T,
        got: T,
    ) {
        self.checked += 1;
        if want != got {
            self.failures
                .push(format!("{}: got {got:?}, want {want:?}", what()));
        }
    }
}

/// GETs every path (a few at a time), answers in order.
pub async fn fetch_all(s: &Server, paths: &[String]) -> Vec<Value> {
    futures_util::stream::iter(paths.iter().map(|p| s.json(p)))
        .buffered(4)
        .collect()
        .await
}
