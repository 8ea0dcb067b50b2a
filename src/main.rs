//! The `pulse` command line: serve, ingest, query, replay, loadgen.

#![forbid(unsafe_code)]
use anyhow::Context;
use clap::{Parser, Subcommand};
use pulse::Config;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "pulse",
    version,
    about = "Real-time analytics for live-streaming creators"
)]
struct Cli {
    /// TOML configuration file (see pulse.example.toml); PULSE_* variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every role in one process (ingest, aggregator, query) on the configured store.
    Serve {
        /// Also run a simulated audience over real WebSockets, and print where to look.
        #[arg(long)]
        demo: bool,
        /// Audience size of --demo.
        #[arg(long, default_value_t = 400)]
        demo_viewers: usize,
    },
    /// Run ingest + aggregator only, writing to the configured store (a scale-out node).
    Ingest,
    /// Run the query API only, over the configured store (store = "clickhouse").
    Query,
    /// Apply the ClickHouse DDL (idempotent; `pulse ingest`/`query` also do it at start-up).
    Migrate,
    /// Replay an NDJSON trace through the aggregator into the configured store.
    Replay { file: PathBuf },
    /// Drive load against a running server on 127.0.0.1 and report rates, latency and RSS.
    Loadgen(Box<pulse_load_tests::LoadgenArgs>),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PULSE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let cfg = Config::load(cli.config.as_deref(), std::env::vars())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    match cli.command {
        Command::Serve { demo, demo_viewers } => {
            rt.block_on(serve(cfg, pulse::serve::Role::All, demo, demo_viewers))
        }
        Command::Ingest => rt.block_on(serve(cfg, pulse::serve::Role::Ingest, false, 0)),
        Command::Query => rt.block_on(serve(cfg, pulse::serve::Role::Query, false, 0)),
        Command::Migrate => {
            let n = rt.block_on(pulse::store::migrate(&cfg))?;
            println!("applied {n} DDL statements to {}", cfg.clickhouse_url);
            Ok(())
        }
        Command::Replay { file } => {
            let report = rt.block_on(async {
                tokio::task::spawn_blocking(move || pulse::replay::replay_file(&cfg, &file)).await
            })??;
            println!(
                "replayed {} events from {} lines ({} rejected, {} late)",
                report.events, report.lines, report.rejected, report.late
            );
            for r in &report.reasons {
                println!("  {r}");
            }
            Ok(())
        }
        Command::Loadgen(args) => {
            let json = args.json;
            let report = rt.block_on(pulse_load_tests::run(*args))?;
            if json {
                println!("{}", report.to_json());
            } else {
                println!("{report}");
            }
            Ok(())
        }
    }
}

async fn serve(
    mut cfg: Config,
    role: pulse::serve::Role,
    demo: bool,
    demo_viewers: usize,
) -> anyhow::Result<()> {
    if demo && cfg.ingest.trusted_token.is_none() {
        cfg.ingest.trusted_token = Some(format!("demo-{:016x}", fastrand::u64(..)));
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let signal_token = shutdown.clone();
    tokio::spawn(async move {
        pulse::serve::termination_signal().await;
        tracing::info!("shutting down: flushing every window");
        signal_token.cancel();
    });
    if demo {
        // Before the server and the encoders start: their first LIVE finds the streams.
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
        pulse::demo_encoders::register_in_catalog(&cfg)
            .await
            .context("registering the demo channels in the catalog")?;
    }
    let demo_task = if demo {
        let dcfg = pulse::demo::DemoConfig {
            server: addr,
            target_viewers: demo_viewers,
            trusted_token: cfg.ingest.trusted_token.clone().unwrap_or_default(),
            seed: fastrand::u64(..),
        };
        print_demo_banner(addr, &cfg);
        let encoders = tokio::spawn(pulse::demo_encoders::run(
            addr,
            fastrand::u64(..),
            shutdown.clone(),
        ));
        let audience = tokio::spawn(pulse::demo::run(dcfg, shutdown.clone()));
        Some(tokio::spawn(async move {
            let _ = encoders.await;
            let _ = audience.await;
        }))
    } else {
        eprintln!(
            "pulse ({role:?}) listening on http://{addr} (data in {})",
            cfg.data_dir.display()
        );
        None
    };
    let mut access = pulse::serve::static_access(&cfg)?;
    if demo {
        access = pulse::demo_encoders::demo_access(access);
    }
    let result = pulse::serve::run_role_with_access(
        role,
        listener,
        cfg,
        shutdown.clone(),
        pulse_aggregator::runtime::system_clock(),
        std::sync::Arc::new(access),
    )
    .await;
    shutdown.cancel();
    if let Some(t) = demo_task {
        let _ = t.await;
    }
    result
}

fn print_demo_banner(addr: std::net::SocketAddr, cfg: &Config) {
    let now = chrono::Utc::now().timestamp_millis();
    let from = now - 15 * 60_000;
    let (_, stream) = pulse::demo::DEMO_STREAMS[0];
    println!(
        "\nPulse is running with a simulated audience (embedded store in {data}).\n\
         Open the creator dashboard (signs you in as the demo creator):\n\n  \
         dashboard        http://{addr}/dashboard/login?token={creator}&next=%2Fdashboard%2Fanalytics%3Fchannel%3Daurora%26stream%3D{stream}%26range%3D1h%26refresh%3D5\n  \
         live health      http://{addr}/dashboard/login?token={creator}&next=%2Fdashboard%2Flive%3Fchannel%3Daurora\n\n\
         Watch the numbers move (they refresh every second; `final` turns true ~45 s later):\n\n  \
         stream summary   http://{addr}/api/analytics/streams/{stream}?token={creator}\n  \
         viewers (5 s)    http://{addr}/api/analytics/charts/viewers?stream={stream}&step=5000&from={from}&token={creator}\n  \
         channel viewers  http://{addr}/api/analytics/series?metric=viewers&channel=aurora&step=60000&from={from}&token={creator}\n  \
         channel summary  http://{addr}/api/analytics/channels/aurora?token={creator}\n  \
         rebuffering      http://{addr}/api/analytics/series?metric=rebuffer_ratio&stream={stream}&step=60000&from={from}&token={creator}\n  \
         startup p95      http://{addr}/api/analytics/series?metric=startup_p95_ms&stream={stream}&step=60000&from={from}&token={creator}\n  \
         ingest metrics   http://{addr}/metrics\n  \
         stream health    http://{addr}/api/streams/{stream}/health   (Authorization: Bearer {creator})\n  \
         live feed        ws://{addr}/v1/live?channel=aurora&token={creator}\n\n\
         Other demo streams: {others}. Ctrl-C stops (every window is flushed).\n",
        data = cfg.data_dir.display(),
        creator = pulse::demo_encoders::DEMO_CREATOR_TOKEN,
        others = pulse::demo::DEMO_STREAMS
            .iter()
            .map(|(_, s)| *s)
            .collect::<Vec<_>>()
            .join(", "),
    );
}
