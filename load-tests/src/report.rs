//! What a run found: one [`ScenarioReport`] per scenario, JSON-serializable and
//! printable as a short table. Sizes are bounded: a fixed set of fields per scenario
//! and at most [`MAX_NOTES`] notes.

use serde::Serialize;
use std::fmt;

/// Most notes one scenario keeps (the first errors, caps applied, …).
pub const MAX_NOTES: usize = 8;

/// The whole run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// `http://…` of the server under test.
    pub target: String,
    /// Start of the run, epoch ms.
    pub started_at_ms: i64,
    /// `nproc` of this machine (client and server share it).
    pub cpus: usize,
    pub scenarios: Vec<ScenarioReport>,
    /// Pulse's `frames` frames/s divided by the bare server's (`baseline`), when both ran.
    pub frames_ratio_to_baseline: Option<f64>,
}

/// One scenario's figures. Counts are from the client's side unless named `server_*`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    /// Wall time from the first connect to the last reply drained, seconds.
    pub elapsed_s: f64,
    /// Connections that completed the WebSocket upgrade.
    pub connections_opened: u64,
    /// Most connections open at once.
    pub connections_peak: u64,
    pub connect_failures: u64,
    /// Connections the server closed (any close frame or EOF before ours).
    pub closed_by_server: u64,
    /// Close codes the server sent, `(code, count)`, at most 8 distinct.
    pub close_codes: Vec<(u16, u64)>,
    pub frames_sent: u64,
    pub events_sent: u64,
    /// Events the server refused (`rejected` replies, including `rate_limited`).
    pub events_rejected: u64,
    /// `events_sent − events_rejected` (for `batched`: acknowledged events only).
    pub events_accepted: u64,
    /// Δ of `pulse_ingest_events_accepted_total` over the scenario, when `/metrics`
    /// answered (`latency`: includes the probes' own events).
    pub server_events_accepted: Option<u64>,
    /// Of those, dropped by an aggregator bound (`pending_full`: in no window) or late.
    /// The aggregator's queue is waited for first; drops at commit time (after the
    /// lateness) may come later.
    pub server_events_lost: Option<u64>,
    /// Batches the aggregator held back for want of room in pending, ingest waiting
    /// meanwhile: a rate paced by `max_pending_events`, not by the CPU.
    pub server_batches_held: Option<u64>,
    pub frames_per_s: f64,
    pub events_per_s: f64,
    /// `batched`: envelopes sent and acknowledged, events per envelope.
    pub envelopes_acked: Option<u64>,
    pub events_per_envelope: Option<f64>,
    /// `batched`: send → ack latency.
    pub ack_latency: Option<Percentiles>,
    /// Peak VmRSS of `--server-pid` during the scenario, bytes.
    pub server_rss_peak_bytes: Option<u64>,
    /// Peak VmRSS of the load generator itself, bytes.
    pub client_rss_peak_bytes: Option<u64>,
    /// `latency`: beacon send → first series response showing it.
    pub latency: Option<LatencyReport>,
    pub notes: Vec<String>,
}

impl ScenarioReport {
    pub fn new(name: &str) -> ScenarioReport {
        ScenarioReport {
            name: name.to_string(),
            ..ScenarioReport::default()
        }
    }

    /// Adds a note unless [`MAX_NOTES`] are kept already.
    pub fn note(&mut self, note: impl Into<String>) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(note.into());
        }
    }
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// From a histogram recorded in microseconds.
    pub fn from_us(h: &hdrhistogram::Histogram<u64>) -> Percentiles {
        let ms = |v: u64| v as f64 / 1000.0;
        Percentiles {
            samples: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// The latency probe's findings.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencyReport {
    /// Beacon send → first `series` response whose point for the beacon's tick has
    /// `value > 0` (or `peak > 0`). Includes waiting for the tick's end: `viewers` is
    /// sampled at tick end.
    pub beacon_to_visible: Percentiles,
    /// max(send, tick end) → visible: the pipeline's own delay (flush + store + query).
    pub tick_end_to_visible: Percentiles,
    /// Probes never seen within the timeout.
    pub timed_out: u64,
    pub polls: u64,
    pub poll_errors: u64,
}

fn mb(b: Option<u64>) -> String {
    b.map_or("-".into(), |b| {
        format!("{:.1}", b as f64 / (1024.0 * 1024.0))
    })
}

fn rate(r: f64) -> String {
    if r >= 10_000.0 {
        format!("{:.0}k", r / 1000.0)
    } else {
        format!("{r:.0}")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pulse loadgen against {} ({} cpus)",
            self.target, self.cpus
        )?;
        writeln!(
            f,
            "{:<9} {:>6} {:>7} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}",
            "scenario",
            "secs",
            "conns",
            "accepted",
            "rejected",
            "frames/s",
            "events/s",
            "srv MB",
            "p50 ms",
            "p99 ms",
            "p99.9"
        )?;
        for s in &self.scenarios {
            let lat = s
                .latency
                .as_ref()
                .map(|l| &l.beacon_to_visible)
                .or(s.ack_latency.as_ref());
            let p = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
            writeln!(
                f,
                "{:<9} {:>6.1} {:>7} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8}",
                s.name,
                s.elapsed_s,
                s.connections_peak,
                s.events_accepted,
                s.events_rejected,
                rate(s.frames_per_s),
                rate(s.events_per_s),
                mb(s.server_rss_peak_bytes),
                p(lat.map(|l| l.p50_ms)),
                p(lat.map(|l| l.p99_ms)),
                p(lat.map(|l| l.p999_ms)),
            )?;
        }
        if let Some(r) = self.frames_ratio_to_baseline {
            writeln!(f, "frames/s ratio pulse/baseline: {r:.2}")?;
        }
        for s in &self.scenarios {
            if let Some(l) = &s.latency {
                let t = &l.tick_end_to_visible;
                writeln!(
                    f,
                    "{}: tick end → visible p50 {:.0} ms, p99 {:.0} ms, p99.9 {:.0} ms ({} probes, {} timed out)",
                    s.name, t.p50_ms, t.p99_ms, t.p999_ms, t.samples, l.timed_out
                )?;
            }
            if let Some(e) = s.events_per_envelope {
                writeln!(
                    f,
                    "{}: {:.0} events per envelope (ack p50/p99 in the table)",
                    s.name, e
                )?;
            }
            if s.name == "viewers" || s.name == "latency" {
                writeln!(
                    f,
                    "{}: {} connections opened, {} failed, {} closed by the server; loadgen peak RSS {} MB",
                    s.name,
                    s.connections_opened,
                    s.connect_failures,
                    s.closed_by_server,
                    mb(s.client_rss_peak_bytes)
                )?;
            }
            if let Some(n) = s.server_events_accepted {
                writeln!(f, "{}: server counted {n} events accepted", s.name)?;
            }
            if let Some(n) = s.server_events_lost {
                writeln!(
                    f,
                    "{}: of which the aggregator dropped or found late {n} (pulse_aggregator_dropped_events_total + late_events_total)",
                    s.name
                )?;
            }
            if let Some(n) = s.server_batches_held.filter(|&n| n > 0) {
                writeln!(
                    f,
                    "{}: the aggregator held {n} batches for room in pending, ingest waiting (pulse_aggregator_intake_held_total): max_pending_events paced this run",
                    s.name
                )?;
            }
            for n in &s.notes {
                writeln!(f, "{}: {n}", s.name)?;
            }
        }
        Ok(())
    }
}

impl Report {
    /// Pretty JSON of the whole report.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
