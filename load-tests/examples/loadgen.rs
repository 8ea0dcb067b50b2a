//! `cargo run --release -p pulse-load-tests --example loadgen -- --scenario baseline`:
//! the same options as `pulse loadgen`, without building the whole server.

use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: pulse_load_tests::LoadgenArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let json = cli.args.json;
    let report = pulse_load_tests::run(cli.args).await?;
    if json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    Ok(())
}
