//! The `core-metadata` binary: core-metadata on its own.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use oxedge_core_metadata::{BusHook, MetadataConfig};

/// core-metadata: devices, profiles, device services and provision watchers (EdgeX API v3).
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
    let cfg: MetadataConfig = oxedge_runtime::config::load(args.config.as_deref(), "OXEDGE")?;
    let Some(oxedge_bus::Started { listener, shutdown, bus }) =
        oxedge_bus::start("core-metadata", &cfg.log, &cfg.service, &cfg.bus).await?
    else {
        return Ok(());
    };
    let hook = Arc::new(BusHook::new(bus, shutdown.clone()));
    oxedge_core_metadata::run(cfg, listener, hook, shutdown).await
}
