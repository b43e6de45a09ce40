//! The `core-command` binary: core-command on its own.

use std::path::PathBuf;

use clap::Parser;
use oxedge_core_command::CommandConfig;

/// core-command: devices' commands, read and written through their device services (EdgeX API v3).
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
    let cfg: CommandConfig = oxedge_runtime::config::load(args.config.as_deref(), "OXEDGE")?;
    cfg.validate()?;
    let Some(oxedge_bus::Started { listener, shutdown, bus }) =
        oxedge_bus::start("core-command", &cfg.log, &cfg.service, &cfg.bus).await?
    else {
        return Ok(());
    };
    oxedge_core_command::serve(cfg, Some(bus), listener, shutdown).await
}
