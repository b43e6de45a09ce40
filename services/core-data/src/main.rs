//! The `core-data` binary: core-data on its own.

use std::path::PathBuf;

use clap::Parser;
use oxedge_core_data::DataConfig;

/// core-data: events and readings from the message bus, persisted and queryable (EdgeX API v3).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// YAML configuration file; every key can also be set as OXEDGE_<SECTION>_<KEY>.
    #[arg(short, long, env = "OXEDGE_CONFIG_FILE")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    oxedge_runtime::tune_allocator();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let args = Args::parse();
    let cfg: DataConfig = oxedge_runtime::config::load(args.config.as_deref(), "OXEDGE")?;
    let Some(oxedge_bus::Started { listener, shutdown, bus }) =
        oxedge_bus::start("core-data", &cfg.log, &cfg.service, &cfg.bus).await?
    else {
        return Ok(());
    };
    oxedge_core_data::run(cfg, Some(bus), listener, shutdown).await
}
