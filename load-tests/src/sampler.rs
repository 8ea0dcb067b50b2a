//! What is measured from outside the sockets: the server's RSS (`VmRSS` of
//! `/proc/<pid>/status`, sampled every 250 ms, peak kept) and the server's own
//! `pulse_ingest_events_accepted_total` from `/metrics`.

use anyhow::Context;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `VmRSS` of a process in bytes (`None` for "self" read failures or a gone process).
pub fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Checks `--server-pid` before the run starts.
pub fn check_pid(pid: u32) -> anyhow::Result<()> {
    rss_bytes(Some(pid)).map(|_| ()).with_context(|| {
        format!(
            "--server-pid {pid}: cannot read VmRSS from /proc/{pid}/status (is the server running?)"
        )
    })
}

/// Samples peak RSS of the server (if a pid is given) and of this process until stopped.
pub struct RssSampler {
    server: Arc<AtomicU64>,
    client: Arc<AtomicU64>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    has_server: bool,
}

impl RssSampler {
    pub fn start(server_pid: Option<u32>) -> RssSampler {
        let (server, client) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let stop = CancellationToken::new();
        let (s, c, st) = (server.clone(), client.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    () = st.cancelled() => break,
                    _ = tick.tick() => {}
                }
                if let Some(b) = server_pid.and_then(|p| rss_bytes(Some(p))) {
                    s.fetch_max(b, Relaxed);
                }
                if let Some(b) = rss_bytes(None) {
                    c.fetch_max(b, Relaxed);
                }
            }
        });
        RssSampler {
            server,
            client,
            stop,
            task,
            has_server: server_pid.is_some(),
        }
    }

    /// Stops sampling; returns (server peak, client peak).
    pub async fn finish(self) -> (Option<u64>, Option<u64>) {
        self.stop.cancel();
        let _ = self.task.await;
        let nz = |v: u64| (v > 0).then_some(v);
        let server = if self.has_server {
            nz(self.server.load(Relaxed))
        } else {
            None
        };
        (server, nz(self.client.load(Relaxed)))
    }
}

/// Sum of every sample of `metric` (any labels) in a Prometheus text page.
pub fn prometheus_sum(page: &str, metric: &str) -> Option<f64> {
    let mut found = None;
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// What the server's counters say, read from `/metrics` (0 for a counter not on the
/// page yet: metrics register on first use).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCounts {
    /// `pulse_ingest_events_accepted_total`: handed to the aggregator.
    pub accepted: u64,
    /// `pulse_aggregator_events_total`: taken by the aggregator.
    pub aggregated: u64,
    /// `pulse_aggregator_dropped_events_total` (every reason: `pending_full` loses the
    /// event; `max_viewer_minutes` only its viewer minute) plus
    /// `pulse_aggregator_late_events_total`. Bounds met at commit time (sessions, targets,
    /// viewer minutes) count when the event is committed, after its lateness.
    pub lost: u64,
    /// `pulse_aggregator_intake_held_total`: batches the aggregator held back for want
    /// of room in pending while ingest waited (`max_pending_events` paced the run).
    pub held: u64,
}

impl ServerCounts {
    /// Counter growth from `before` to `self`.
    pub fn since(self, before: ServerCounts) -> ServerCounts {
        ServerCounts {
            accepted: self.accepted.saturating_sub(before.accepted),
            aggregated: self.aggregated.saturating_sub(before.aggregated),
            lost: self.lost.saturating_sub(before.lost),
            held: self.held.saturating_sub(before.held),
        }
    }
}

/// The server's counters, if `/metrics` answers.
pub async fn server_counts(http: &reqwest::Client, base: &str) -> Option<ServerCounts> {
    let page = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .text()
        .await
        .ok()?;
    let n = |name: &str| prometheus_sum(&page, name).map_or(0, |v| v as u64);
    Some(ServerCounts {
        accepted: n("pulse_ingest_events_accepted_total"),
        aggregated: n("pulse_aggregator_events_total"),
        lost: n("pulse_aggregator_dropped_events_total") + n("pulse_aggregator_late_events_total"),
        held: n("pulse_aggregator_intake_held_total"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_rss_and_prometheus_text() {
        assert!(rss_bytes(None).unwrap() > 1024 * 1024);
        assert!(check_pid(u32::MAX).is_err());
        let page = "# HELP x\npulse_ingest_events_accepted_total 12\npulse_ingest_events_accepted_total_x 5\nother 1\n";
        assert_eq!(
            prometheus_sum(page, "pulse_ingest_events_accepted_total"),
            Some(12.0)
        );
        let page = "m{node=\"a\"} 1.5\nm{node=\"b\"} 2\n";
        assert_eq!(prometheus_sum(page, "m"), Some(3.5));
        assert_eq!(prometheus_sum(page, "n"), None);
    }
}
