//! `oxedge run`: the all-in-one gateway — every service in one process, one runtime, one
//! shutdown, embedded SQLite storage in a data directory.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Args;
use oxedge_core_metadata::{config::Backend, BroadcastHook, MetadataConfig};

/// Options of `oxedge run`.
#[derive(Args)]
pub struct RunArgs {
    /// Where embedded storage lives.
    #[arg(long, env = "OXEDGE_DATA_DIR", default_value = "./oxedge-data")]
    data_dir: PathBuf,
    /// A YAML file with core-metadata's configuration (service, log, database, uom sections);
    /// every key can also be set as OXEDGE_<SECTION>_<KEY>.
    #[arg(short, long, env = "OXEDGE_CONFIG_FILE")]
    config: Option<PathBuf>,
}

/// Starts the services and serves until SIGINT or SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut md_cfg: MetadataConfig = oxedge_runtime::config::load(args.config.as_deref(), "OXEDGE")?;
    oxedge_runtime::init_tracing(&md_cfg.log);
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("Failed to create the data directory {}.", args.data_dir.display()))?;
    if md_cfg.database.backend == Backend::Sqlite && md_cfg.database.path.is_relative() {
        md_cfg.database.path = args.data_dir.join("core-metadata.db");
    }
    let shutdown = oxedge_runtime::shutdown_on_signals();
    let listener = md_cfg.service.bind()?;
    tracing::info!(
        data_dir = %args.data_dir.display(),
        core_metadata = %md_cfg.service.address(),
        "Oxedge all-in-one starting."
    );
    let (events, _) = tokio::sync::broadcast::channel(1024);
    oxedge_core_metadata::run(md_cfg, listener, Arc::new(BroadcastHook(events)), shutdown).await?;
    tracing::info!("Oxedge stopped.");
    Ok(())
}
