//! app-service-configurable: pipelines from a profile (`--profile mqtt-export`) or a
//! configuration file (`-c FILE`), with no code.

use std::path::PathBuf;

use clap::Parser;
use oxedge_app_service_configurable::{build_pipelines, load_config};

/// An EdgeX-compatible application service whose pipelines come from configuration.
#[derive(Parser)]
#[command(name = "app-service-configurable", version)]
struct Args {
    /// A profile shipped with the service: mqtt-export, http-export, rules-forwarder.
    #[arg(short, long, env = "OXEDGE_PROFILE")]
    profile: Option<String>,
    /// A YAML configuration file (it wins over the profile); every key can also be set as
    /// OXEDGE_{SECTION}_{KEY}.
    #[arg(short, long, env = "OXEDGE_CONFIG_FILE")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (name, cfg) = load_config(args.profile.as_deref(), args.config.as_deref())?;
    let about = "An EdgeX-compatible application service whose pipelines come from configuration.";
    let binary = oxedge_runtime::Binary { name, version: env!("CARGO_PKG_VERSION"), about, default_port: 59700 };
    oxedge_runtime::run_service(binary, cfg, |ctx, cfg, listener| {
        oxedge_app_sdk::run(ctx, cfg, build_pipelines, listener)
    })
}
