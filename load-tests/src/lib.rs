//! pulse-load-tests: `pulse loadgen`, the load generator and benchmark scenarios of
//! issue 2. [`LoadgenArgs`] (clap) selects a scenario; [`run`] drives it against a
//! Pulse server on loopback and returns a [`Report`] (JSON or a short table).
//!
//! Modules:
//! - [`target`]: `--target http://127.0.0.1:PORT`; every non-loopback target is refused.
//! - [`client`]: client WebSockets with small buffers, the trusted-token header, and
//!   clear errors for the open-files limit (EMFILE).
//! - [`generate`]: valid events, built as `pulse_schemas::Event` and written with
//!   `Event::to_json`: pre-rendered session pools for the senders, a real-time player
//!   model for viewers, the latency probe's sessions.
//! - [`senders`]: `frames` (pipelined single-event frames) and `batched` (`seq`
//!   envelopes with a bounded window of unacknowledged ones).
//! - [`viewers`]: N player connections opened at a bounded rate.
//! - [`latency`]: beacon send → visible in the series API, in HDR histograms.
//! - [`baseline`]: the in-process bare WebSocket server that only counts frames.
//! - [`sampler`]: server RSS from `/proc/<pid>/status`, `/metrics` counters.
//! - [`counters`]: shared atomic counters, the event budget and deadline, reply parsing.
//! - [`report`]: [`Report`] and its table.
//!
//! Design choices:
//! - **Bounded everything**: each scenario stops by itself at `--duration-s` (viewers
//!   and latency: `--viewers-duration-s`) or `--max-events`, whichever comes first;
//!   drains (acks, close handshakes) are bounded by 10 s; in-flight envelopes by
//!   `--window`; probes awaiting their tick by `latency::MAX_OUTSTANDING`; report notes
//!   by `report::MAX_NOTES`. No unbounded channel exists: tasks share atomics.
//! - **Cheap client sockets**: 1 KiB read buffer and eager writes for viewers, 4 KiB /
//!   16 KiB for senders (tungstenite's 128 KiB default would not let 10 000 viewers fit).
//! - **Attributable latency**: one stream per probe, a fresh session per tick, ended
//!   right after the tick — see [`latency`].
//! - **Accepted** is what the client can prove: frames sent minus events refused in
//!   `rejected` replies, measured until the server answered our Close (it reads in
//!   order); for `batched`, acknowledged events only. The server's own
//!   `pulse_ingest_events_accepted_total` delta is reported beside it when `/metrics`
//!   answers, and so are the events the aggregator then dropped or found late (after
//!   waiting, at most 60 s, for it to take everything ingest handed on): accepted by
//!   ingest is not yet counted in a window.
//! - Viewers present no token (real players, rate-limited like any); `frames` and
//!   `batched` present `--token` (`PULSE_INGEST_TOKEN`), the server's `trusted_token`.

#![forbid(unsafe_code)]
pub mod baseline;
pub mod client;
pub mod counters;
pub mod generate;
pub mod latency;
pub mod report;
pub mod sampler;
pub mod senders;
pub mod target;
pub mod viewers;

pub use report::{LatencyReport, Percentiles, Report, ScenarioReport};

use anyhow::Context;
use counters::{Budget, Counters};
use senders::{SendMode, SenderConfig};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use target::Target;
use tokio::time::Instant;

/// What `pulse loadgen` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// baseline, frames, batched, then viewers with the latency probe.
    All,
    /// The in-process bare WebSocket server driven by the `frames` client.
    Baseline,
    /// Single-event frames, pipelined, on `--connections` trusted sockets.
    Frames,
    /// `{"seq":N,"events":[…]}` envelopes with a window of unacknowledged ones.
    Batched,
    /// `--viewers` player connections with 10 s heartbeats.
    Viewers,
    /// The latency probe while `--viewers` players run.
    Latency,
}

/// `pulse loadgen` options.
#[derive(Clone, Debug, clap::Args)]
pub struct LoadgenArgs {
    /// Scenario to run.
    #[arg(long, value_enum, default_value = "all")]
    pub scenario: Scenario,
    /// The Pulse server: http://127.0.0.1:PORT (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Trusted ingest token, sent as `Authorization: Bearer` by frames/batched senders
    /// (the server's `ingest.trusted_token`); without it they are rate-limited to 50 events/s.
    #[arg(long, env = "PULSE_INGEST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Bearer token for the query API (latency probe), if the server wants one.
    #[arg(long, env = "PULSE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Pid of the server, to sample its RSS (VmRSS) during each scenario.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Time limit of each of baseline, frames and batched, seconds.
    #[arg(long, default_value_t = 15)]
    pub duration_s: u64,
    /// Time limit of viewers / latency (ramp included), seconds.
    #[arg(long, default_value_t = 60)]
    pub viewers_duration_s: u64,
    /// Most events one scenario sends.
    #[arg(long, default_value_t = 20_000_000)]
    pub max_events: u64,
    /// frames/baseline: sender connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// frames/baseline: frames written before each flush.
    #[arg(long, default_value_t = 64)]
    pub pipeline: usize,
    /// batched: sender connections.
    #[arg(long, default_value_t = 2)]
    pub batched_connections: usize,
    /// batched: events per envelope (capped to what fits in --max-frame-bytes).
    #[arg(long, default_value_t = 1000)]
    pub batch_events: usize,
    /// batched: unacknowledged envelopes per connection.
    #[arg(long, default_value_t = 4)]
    pub window: usize,
    /// Largest frame the server takes (its ingest.max_frame_bytes).
    #[arg(long, default_value_t = 65_536)]
    pub max_frame_bytes: usize,
    /// frames/batched: sessions per connection (bounds the server state created).
    #[arg(long, default_value_t = 500)]
    pub sessions_per_connection: usize,
    /// viewers/latency: concurrent player connections.
    #[arg(long, default_value_t = 1000)]
    pub viewers: usize,
    /// viewers/latency: new connections per second.
    #[arg(long, default_value_t = 250)]
    pub ramp_per_s: u32,
    /// viewers/latency: streams the viewers are spread over (two per channel).
    #[arg(long, default_value_t = 8)]
    pub streams: usize,
    /// latency: probe streams (one probe per stream per tick).
    #[arg(long, default_value_t = 4)]
    pub probes: usize,
    /// latency: the server's tick_ms (the series step).
    #[arg(long, default_value_t = 5000)]
    pub tick_ms: i64,
    /// latency: series poll period, ms.
    #[arg(long, default_value_t = 100)]
    pub poll_ms: u64,
    /// latency: probes are sent within this many ms before their tick ends.
    #[arg(long, default_value_t = 1000)]
    pub probe_lead_ms: i64,
    /// Pause before each scenario against Pulse, seconds, so the server drains the
    /// previous one's backlog before the next measurement starts.
    #[arg(long, default_value_t = 5)]
    pub settle_s: u64,
    /// Seed of the viewers' behaviour.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the report as JSON instead of a table (for the caller; `run` prints nothing).
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

impl LoadgenArgs {
    /// The defaults, against `target` (tests and programmatic callers).
    pub fn new(scenario: Scenario, target: &str) -> LoadgenArgs {
        use clap::{Args, FromArgMatches};
        let cmd = LoadgenArgs::augment_args(clap::Command::new("loadgen"));
        let m = cmd.get_matches_from(["loadgen", "--target", target]);
        let mut a =
            LoadgenArgs::from_arg_matches(&m).unwrap_or_else(|e| panic!("default arguments: {e}"));
        a.scenario = scenario;
        a
    }
}

fn now_ms() -> i64 {
    viewers::now_ms()
}

/// Runs the chosen scenario(s) and returns the report (also written to `--json-out`).
/// Progress lines go to stderr.
pub async fn run(args: LoadgenArgs) -> anyhow::Result<Report> {
    let target = Target::parse(&args.target)?;
    if let Some(pid) = args.server_pid {
        sampler::check_pid(pid)?;
    }
    let run_id = format!(
        "{:x}",
        (now_ms() as u64 ^ u64::from(std::process::id())) & 0xff_ffff_ffff
    );
    let mut report = Report {
        target: target.http_base(),
        started_at_ms: now_ms(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..Report::default()
    };
    let all = args.scenario == Scenario::All;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let base = target.http_base();
    let senders = |url: String, token: Option<String>, connections| SenderConfig {
        url,
        token,
        run: run_id.clone(),
        connections,
        sessions_per_connection: args.sessions_per_connection.max(1),
        pipeline: args.pipeline.max(1),
        batch_events: args.batch_events.max(1),
        max_frame_bytes: args.max_frame_bytes,
        window: args.window.max(1),
    };
    let budget =
        |secs: u64| Budget::new(args.max_events, Instant::now() + Duration::from_secs(secs));
    let mut baseline_fps = None;
    let mut pulse_fps = None;

    if all || args.scenario == Scenario::Baseline {
        eprintln!(
            "loadgen: baseline (bare WebSocket server, {} connections, {} s)",
            args.connections, args.duration_s
        );
        let server = baseline::BareServer::start().await?;
        let cfg = senders(server.url(), None, args.connections);
        let mut r = measure(
            None,
            None,
            &http,
            senders::run(SendMode::Frames, "baseline", cfg, budget(args.duration_s)),
        )
        .await?;
        if server.frames() < r.frames_sent {
            r.note(format!(
                "bare server counted {} of {} frames",
                server.frames(),
                r.frames_sent
            ));
        }
        server.stop();
        baseline_fps = Some(r.frames_per_s);
        report.scenarios.push(r);
    }
    let token = args.token.clone();
    let no_token_note =
        "no --token: the server's per-connection rate limit (50 events/s) applies to these senders";
    if all || args.scenario == Scenario::Frames {
        client::check_fd_budget(args.connections)?;
        eprintln!(
            "loadgen: frames ({} connections, {} s)",
            args.connections, args.duration_s
        );
        let cfg = senders(target.beacons_url(), token.clone(), args.connections);
        let fut = senders::run(SendMode::Frames, "frames", cfg, budget(args.duration_s));
        let mut r = measure(args.server_pid, Some(&base), &http, fut).await?;
        if token.is_none() {
            r.note(no_token_note);
        }
        pulse_fps = Some(r.frames_per_s);
        report.scenarios.push(r);
    }
    if all || args.scenario == Scenario::Batched {
        client::check_fd_budget(args.batched_connections)?;
        settle(&args, all).await;
        eprintln!(
            "loadgen: batched ({} connections, window {}, {} s)",
            args.batched_connections, args.window, args.duration_s
        );
        let cfg = senders(
            target.beacons_url(),
            token.clone(),
            args.batched_connections,
        );
        let fut = senders::run(SendMode::Batched, "batched", cfg, budget(args.duration_s));
        let mut r = measure(args.server_pid, Some(&base), &http, fut).await?;
        if token.is_none() {
            r.note(no_token_note);
        }
        report.scenarios.push(r);
    }
    if all || matches!(args.scenario, Scenario::Viewers | Scenario::Latency) {
        let probes = all || args.scenario == Scenario::Latency;
        client::check_fd_budget(args.viewers + if probes { args.probes } else { 0 })?;
        let name = if probes { "latency" } else { "viewers" };
        settle(&args, all).await;
        eprintln!(
            "loadgen: {name} ({} viewers at {}/s over {} streams{}, {} s)",
            args.viewers,
            args.ramp_per_s,
            args.streams,
            if probes {
                format!(", {} probes", args.probes)
            } else {
                String::new()
            },
            args.viewers_duration_s
        );
        let r = viewers_and_probe(&args, &target, &run_id, probes, &http).await?;
        report.scenarios.push(r);
    }
    if let (Some(b), Some(p)) = (baseline_fps, pulse_fps)
        && b > 0.0
    {
        report.frames_ratio_to_baseline = Some(p / b);
    }
    if let Some(path) = &args.json_out {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// In `all`, waits `--settle-s` so one scenario's backlog does not bleed into the next.
async fn settle(args: &LoadgenArgs, all: bool) {
    if all && args.settle_s > 0 {
        tokio::time::sleep(Duration::from_secs(args.settle_s)).await;
    }
}

async fn viewers_and_probe(
    args: &LoadgenArgs,
    target: &Target,
    run_id: &str,
    probes: bool,
    http: &reqwest::Client,
) -> anyhow::Result<ScenarioReport> {
    let deadline = Instant::now() + Duration::from_secs(args.viewers_duration_s);
    let counters = Arc::new(Counters::default());
    let budget = Arc::new(Budget::new(args.max_events, deadline));
    let vcfg = viewers::ViewerConfig {
        url: target.beacons_url(),
        run: run_id.to_string(),
        viewers: args.viewers,
        ramp_per_s: args.ramp_per_s,
        streams: args.streams.max(1),
        seed: args.seed,
    };
    let pcfg = latency::ProbeConfig {
        url: target.beacons_url(),
        http_base: target.http_base(),
        api_token: args.api_token.clone(),
        run: run_id.to_string(),
        probes: args.probes,
        tick_ms: args.tick_ms,
        poll_ms: args.poll_ms,
        lead_ms: args.probe_lead_ms,
    };
    let c = counters.clone();
    let fut = async move {
        let viewers = viewers::run(vcfg, budget, c.clone());
        let probe = async {
            if probes {
                latency::run(pcfg, deadline).await.map(Some)
            } else {
                Ok(None)
            }
        };
        let (elapsed, probe) = tokio::join!(viewers, probe);
        let elapsed = elapsed?;
        let mut r = ScenarioReport::new(if probes { "latency" } else { "viewers" });
        c.fill(&mut r, elapsed);
        if let Some((lat, err)) = probe? {
            r.latency = Some(lat);
            if let Some(e) = err {
                r.note(e);
            }
        }
        Ok(r)
    };
    measure(args.server_pid, Some(&target.http_base()), http, fut).await
}

/// Runs one scenario with the RSS sampler and the server's accepted counter around it.
async fn measure(
    server_pid: Option<u32>,
    base: Option<&str>,
    http: &reqwest::Client,
    scenario: impl Future<Output = anyhow::Result<ScenarioReport>>,
) -> anyhow::Result<ScenarioReport> {
    let before = match base {
        Some(b) => sampler::server_counts(http, b).await,
        None => None,
    };
    let rss = sampler::RssSampler::start(server_pid);
    let result = scenario.await;
    let (server_rss, client_rss) = rss.finish().await;
    let mut r = result?;
    r.server_rss_peak_bytes = server_rss;
    r.client_rss_peak_bytes = client_rss;
    if let (Some(b), Some(before)) = (base, before) {
        // The server hands events on asynchronously: give its counter a moment, then
        // let the aggregator work through its queue (at most 60 s), so its drops count.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut after = sampler::server_counts(http, b).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while let Some(a) = after.map(|a| a.since(before))
            && a.aggregated < a.accepted
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
            after = sampler::server_counts(http, b).await;
        }
        let d = after.map(|a| a.since(before));
        r.server_events_accepted = d.map(|d| d.accepted);
        r.server_events_lost = d.map(|d| d.lost);
        r.server_batches_held = d.map(|d| d.held);
    }
    Ok(r)
}
