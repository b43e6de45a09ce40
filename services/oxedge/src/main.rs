//! The `oxedge` binary: `oxedge run` starts the all-in-one gateway; `oxedge bench` measures it.

mod bench;
mod run;

use clap::{Parser, Subcommand};

/// Oxedge: IoT edge middleware speaking EdgeX's REST API v3.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs every service in one process, with embedded storage.
    Run(run::RunArgs),
    /// Measures throughput and latency.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> anyhow::Result<()> {
    oxedge_runtime::tune_allocator();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run::run(args).await,
        Command::Bench(cmd) => bench::run(cmd).await,
    }
}
