//! `oxedge run`: the all-in-one gateway — every service in one process, one runtime, one
//! shutdown, embedded SQLite storage in a data directory and an embedded MQTT broker that
//! separately started device and app services can join over TCP.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use oxedge_bus::config::{BusConfig, BusType};
use oxedge_core_data::DataConfig;
use oxedge_core_metadata::{config::Backend, BusHook, MetadataConfig};
use oxedge_runtime::config::{DatabaseSection, LogSection};
use serde::{Deserialize, Serialize};

/// Options of `oxedge run`.
#[derive(Args)]
pub struct RunArgs {
    /// Where embedded storage lives.
    #[arg(long, env = "OXEDGE_DATA_DIR", default_value = "./oxedge-data")]
    data_dir: PathBuf,
    /// A YAML file with the gateway's configuration (sections `log`, `bus`, `core_metadata`,
    /// `core_data`); every key can also be set as OXEDGE_<SECTION>_<KEY>, e.g.
    /// OXEDGE_CORE_DATA_SERVICE_PORT.
    #[arg(short, long, env = "OXEDGE_CONFIG_FILE")]
    config: Option<PathBuf>,
    /// The message bus: `embedded` (an MQTT broker inside this process, on 127.0.0.1:1883),
    /// or an external broker such as `mqtt://broker:1883` or `nats://nats:4222`.
    #[arg(long, env = "OXEDGE_BUS")]
    bus: Option<String>,
}

/// The all-in-one's configuration: one log and one bus for every service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Logging of every service.
    pub log: LogSection,
    /// The message bus every service joins.
    pub bus: BusConfig,
    /// core-metadata (its `log` and `bus` are those above).
    pub core_metadata: MetadataConfig,
    /// core-data (its `log` and `bus` are those above).
    pub core_data: DataConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            // The embedded broker logs every client connect and disconnect at info, some as errors.
            log: LogSection {
                level: "info,rumqttd=warn,rumqttd::router::routing=off".to_owned(),
                ..LogSection::default()
            },
            bus: BusConfig { kind: BusType::Embedded, ..BusConfig::default() },
            core_metadata: MetadataConfig::default(),
            core_data: DataConfig::default(),
        }
    }
}

/// Puts a relative SQLite file of `db` into the data directory.
fn in_data_dir(db: &mut DatabaseSection, data_dir: &std::path::Path, file: &str) {
    if db.backend == Backend::Sqlite && db.path.is_relative() {
        db.path = data_dir.join(file);
    }
}

/// Applies `--bus`: `embedded`, or the URL of an external MQTT or NATS broker.
fn choose_bus(bus: &mut BusConfig, choice: &str) -> anyhow::Result<()> {
    if choice == "embedded" {
        bus.kind = BusType::Embedded;
        return Ok(());
    }
    bus.kind = match choice.split_once("://").map(|(scheme, _)| scheme) {
        Some("mqtt" | "mqtts" | "tcp" | "ssl") => BusType::Mqtt,
        Some("nats" | "tls") => BusType::Nats,
        _ => anyhow::bail!("--bus: '{choice}' is neither `embedded` nor an mqtt:// or nats:// URL"),
    };
    bus.url = choice.to_owned();
    Ok(())
}

/// Starts the services and serves until SIGINT or SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut cfg: GatewayConfig = oxedge_runtime::config::load(args.config.as_deref(), "OXEDGE")?;
    oxedge_runtime::init_tracing(&cfg.log);
    if let Some(choice) = &args.bus {
        choose_bus(&mut cfg.bus, choice)?;
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("Failed to create the data directory {}.", args.data_dir.display()))?;
    in_data_dir(&mut cfg.core_metadata.database, &args.data_dir, "core-metadata.db");
    in_data_dir(&mut cfg.core_data.database, &args.data_dir, "core-data.db");
    cfg.core_metadata.bus = cfg.bus.clone();
    cfg.core_data.bus = cfg.bus.clone();
    cfg.core_data.validate()?;

    let shutdown = oxedge_runtime::shutdown_on_signals();
    let md_listener = cfg.core_metadata.service.bind()?;
    let data_listener = cfg.core_data.service.bind()?;
    let connect = async {
        let md = oxedge_bus::config::connect_with_retry(&cfg.bus, "core-metadata").await?;
        let data = oxedge_bus::config::connect_with_retry(&cfg.bus, "core-data").await?;
        anyhow::Ok((md, data))
    };
    let (md_bus, data_bus) = tokio::select! {
        buses = connect => buses.context("Failed to join the message bus.")?,
        _ = shutdown.cancelled() => return Ok(()),
    };
    tracing::info!(
        data_dir = %args.data_dir.display(),
        bus = %data_bus.describe(),
        core_metadata = %cfg.core_metadata.service.address(),
        core_data = %cfg.core_data.service.address(),
        "Oxedge all-in-one starting."
    );
    let hook = std::sync::Arc::new(BusHook::new(md_bus, shutdown.clone()));
    let (md, data) = tokio::join!(
        oxedge_core_metadata::run(cfg.core_metadata, md_listener, hook, shutdown.clone()),
        oxedge_core_data::run(cfg.core_data, Some(data_bus), data_listener, shutdown.clone()),
    );
    shutdown.cancel();
    md.context("core-metadata failed")?;
    data.context("core-data failed")?;
    tracing::info!("Oxedge stopped.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_the_bus_flag_is_checked() {
        let cfg = GatewayConfig::default();
        let back: GatewayConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        let mut bus = BusConfig::default();
        choose_bus(&mut bus, "nats://10.0.0.2:4222").unwrap();
        assert_eq!((bus.kind, bus.url.as_str()), (BusType::Nats, "nats://10.0.0.2:4222"));
        assert!(choose_bus(&mut bus, "amqp://x").unwrap_err().to_string().contains("--bus"));
    }

    #[test]
    fn service_keys_are_reachable_from_the_environment() {
        let env = [("OXEDGE_CORE_DATA_SERVICE_PORT".to_owned(), "12345".to_owned())];
        let cfg: GatewayConfig = oxedge_runtime::config::load_from(None, env, "OXEDGE").unwrap();
        assert_eq!(cfg.core_data.service.port, 12345);
    }
}
