//! `oxedge run`: the all-in-one gateway — every service in one process, one runtime, one
//! shutdown, embedded SQLite storage in a data directory and an embedded MQTT broker that
//! separately started device and app services can join over TCP.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use oxedge_app_sdk::forward::ForwardConfig;
use oxedge_app_sdk::{AppContext, AppServiceConfig};
use oxedge_app_service_configurable::mqtt_export_pipeline;
use oxedge_bus::config::{BusConfig, BusType};
use oxedge_core_command::CommandConfig;
use oxedge_core_data::DataConfig;
use oxedge_core_metadata::{config::Backend, MetadataConfig};
use oxedge_device_sdk::config::DeviceServiceConfig;
use oxedge_device_sdk::ProtocolDriver;
use oxedge_device_virtual::VirtualDriver;
use oxedge_runtime::config::{DatabaseSection, LogSection, ServiceSection};
use oxedge_runtime::{ServiceContext, Supervisor};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Options of `oxedge run`.
#[derive(Args)]
pub struct RunArgs {
    /// Where embedded storage lives.
    #[arg(long, env = "OXEDGE_DATA_DIR", default_value = "./oxedge-data")]
    data_dir: PathBuf,
    /// A YAML file with the gateway's configuration (sections `log`, `bus`, `services`,
    /// `core_metadata`, `core_data`, `core_command`, `device_virtual`, `device_modbus`, `device_mqtt`,
    /// `device_rest`, `device_ble`, `export`, `app_mqtt_export`); every key can also be set as OXEDGE_<SECTION>_<KEY>, e.g.
    /// OXEDGE_CORE_DATA_SERVICE_PORT.
    #[arg(short, long, env = "OXEDGE_CONFIG_FILE")]
    config: Option<PathBuf>,
    /// The message bus: `embedded` (an MQTT broker inside this process, on 127.0.0.1:1883),
    /// or an external broker such as `mqtt://broker:1883` or `nats://nats:4222`.
    #[arg(long, env = "OXEDGE_BUS")]
    bus: Option<String>,
    /// Exports every event to this MQTT broker (the cloud): `mqtt://HOST:1883`, or
    /// `mqtts://HOST:8883` for TLS; events that cannot be sent are kept on disk and sent in
    /// order when the broker is back. Same as `export.mqtt` in the configuration.
    #[arg(long, value_name = "URL")]
    export_mqtt: Option<String>,
    /// The export's topic, a template filled from each event:
    /// `factory/{deviceName}/{sourceName}`. Same as `export.topic`.
    #[arg(long, value_name = "TEMPLATE")]
    export_topic: Option<String>,
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
    /// Which of the optional services run.
    pub services: ServicesSection,
    /// core-command (its `log` and `bus` are those above; it calls the core-metadata above).
    pub core_command: CommandConfig,
    /// device-virtual (its `log` and `bus` are those above; it registers with the
    /// core-metadata above). With no `device.profiles_dir`, it loads the virtual devices
    /// built into the binary, written to `<data-dir>/device-virtual/` on start.
    pub device_virtual: DeviceServiceConfig,
    /// device-modbus (port 59901), like `device_virtual`; its profiles and devices come from
    /// its `device.profiles_dir` and `device.devices_dir`.
    pub device_modbus: DeviceServiceConfig,
    /// device-mqtt (port 59982), like `device_modbus`; the devices' broker is in its `driver`.
    pub device_mqtt: DeviceServiceConfig,
    /// device-rest (port 59986), like `device_modbus`.
    pub device_rest: DeviceServiceConfig,
    /// device-ble (port 59990), like `device_modbus`; needs the binary built with the `ble`
    /// feature and BlueZ on the gateway.
    pub device_ble: DeviceServiceConfig,
    /// The export of every event to a cloud MQTT broker (`--export-mqtt`); off while
    /// `export.mqtt` is empty.
    pub export: ExportSection,
    /// The app service that runs the export (port 59703; its `log` and `bus` are those
    /// above; its store-and-forward file is in `<data-dir>/app-mqtt-export/`).
    pub app_mqtt_export: AppServiceConfig,
    /// Seconds every service has to stop after SIGTERM (or after a service failed); the
    /// tasks still running then are named in the log and aborted.
    pub shutdown_grace: u64,
}

/// The all-in-one's MQTT export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportSection {
    /// The broker events go to (`mqtt://HOST:1883`, `mqtts://HOST:8883`); empty: no export.
    pub mqtt: String,
    /// The topic template (`{deviceName}`, `{profileName}`, `{sourceName}`).
    pub topic: String,
}

impl Default for ExportSection {
    fn default() -> Self {
        Self { mqtt: String::new(), topic: "oxedge/events/{deviceName}/{sourceName}".to_owned() }
    }
}

/// The name of the all-in-one's export app service.
const APP_MQTT_EXPORT: &str = "app-mqtt-export";

/// The optional services of the all-in-one; core-metadata and core-data always run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServicesSection {
    /// Run core-command (port 59882).
    pub core_command: bool,
    /// Run device-virtual (port 59900) and its simulated devices.
    pub device_virtual: bool,
    /// Run device-modbus (port 59901).
    pub device_modbus: bool,
    /// Run device-mqtt (port 59982).
    pub device_mqtt: bool,
    /// Run device-rest (port 59986).
    pub device_rest: bool,
    /// Run device-ble (port 59990).
    pub device_ble: bool,
}

impl Default for ServicesSection {
    fn default() -> Self {
        Self {
            core_command: true,
            device_virtual: true,
            device_modbus: false,
            device_mqtt: false,
            device_rest: false,
            device_ble: false,
        }
    }
}

/// A device service's configuration with its default port.
fn device_config(port: u16) -> DeviceServiceConfig {
    DeviceServiceConfig {
        service: ServiceSection { port, ..ServiceSection::default() },
        ..DeviceServiceConfig::default()
    }
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
            services: ServicesSection::default(),
            core_command: CommandConfig::default(),
            device_virtual: device_config(oxedge_device_virtual::DEFAULT_PORT),
            device_modbus: device_config(oxedge_device_modbus::DEFAULT_PORT),
            device_mqtt: device_config(oxedge_device_mqtt::DEFAULT_PORT),
            device_rest: device_config(oxedge_device_rest::DEFAULT_PORT),
            device_ble: device_config(oxedge_device_ble::DEFAULT_PORT),
            export: ExportSection::default(),
            app_mqtt_export: AppServiceConfig {
                service: ServiceSection { port: 59703, ..ServiceSection::default() },
                store_and_forward: ForwardConfig { enabled: true, ..ForwardConfig::default() },
                ..AppServiceConfig::default()
            },
            shutdown_grace: ServiceSection::default().shutdown_grace,
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

/// The URL at which a service bound per `section` is reached from this machine.
fn local_url(section: &ServiceSection) -> String {
    let host = match section.host.as_str() {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" => "[::1]",
        host => host,
    };
    format!("http://{host}:{}", section.port)
}

/// Makes the configuration one gateway: every service on the one bus and log, files in
/// the data directory, clients pointed at the in-process core-metadata.
fn assemble(cfg: &mut GatewayConfig, data_dir: &std::path::Path) -> anyhow::Result<()> {
    in_data_dir(&mut cfg.core_metadata.database, data_dir, "core-metadata.db");
    in_data_dir(&mut cfg.core_data.database, data_dir, "core-data.db");
    cfg.core_metadata.bus = cfg.bus.clone();
    cfg.core_data.bus = cfg.bus.clone();
    cfg.core_command.bus = cfg.bus.clone();
    let metadata_url = local_url(&cfg.core_metadata.service);
    cfg.core_command.clients.core_metadata.url = metadata_url.clone();
    for device in [
        &mut cfg.device_virtual,
        &mut cfg.device_modbus,
        &mut cfg.device_mqtt,
        &mut cfg.device_rest,
        &mut cfg.device_ble,
    ] {
        device.bus = cfg.bus.clone();
        device.clients.core_metadata.url = metadata_url.clone();
    }
    let device = &mut cfg.device_virtual.device;
    if cfg.services.device_virtual && device.profiles_dir.as_os_str().is_empty() {
        let dir = data_dir.join("device-virtual");
        oxedge_device_virtual::files::install(&dir)
            .with_context(|| format!("Failed to write device-virtual's files into {}.", dir.display()))?;
        device.profiles_dir = dir.join("profiles");
        if device.devices_dir.as_os_str().is_empty() {
            device.devices_dir = dir.join("devices");
        }
        if device.provision_watchers_dir.as_os_str().is_empty() {
            device.provision_watchers_dir = dir.join("provisionwatchers");
        }
    }
    cfg.app_mqtt_export.bus = cfg.bus.clone();
    if cfg.app_mqtt_export.data_dir.is_relative() {
        cfg.app_mqtt_export.data_dir = data_dir.join(APP_MQTT_EXPORT);
    }
    cfg.core_data.validate()?;
    cfg.core_command.validate()?;
    if !cfg.export.mqtt.is_empty() {
        cfg.app_mqtt_export.validate().context("section app_mqtt_export")?;
    }
    for device in device_services(cfg) {
        device.config.validate().with_context(|| format!("section {}", device.name.replace('-', "_")))?;
    }
    Ok(())
}

/// Starts the services and serves until SIGINT or SIGTERM.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut cfg: GatewayConfig = oxedge_runtime::config::load(args.config.as_deref(), "OXEDGE")?;
    oxedge_runtime::init_tracing(&cfg.log);
    if let Some(choice) = &args.bus {
        choose_bus(&mut cfg.bus, choice)?;
    }
    if let Some(url) = args.export_mqtt {
        cfg.export.mqtt = url;
    }
    if let Some(topic) = args.export_topic {
        cfg.export.topic = topic;
    }
    serve(cfg, args.data_dir, oxedge_runtime::shutdown_on_signals()).await
}

/// Serves the gateway configured by `cfg`, with its files in `data_dir`, until `shutdown`
/// is cancelled.
pub async fn serve(mut cfg: GatewayConfig, data_dir: PathBuf, shutdown: CancellationToken) -> anyhow::Result<()> {
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("Failed to create the data directory {}.", data_dir.display()))?;
    assemble(&mut cfg, &data_dir)?;

    let devices = device_services(&cfg);
    let md_listener = cfg.core_metadata.service.bind()?;
    let data_listener = cfg.core_data.service.bind()?;
    let command_listener = cfg.services.core_command.then(|| cfg.core_command.service.bind()).transpose()?;
    let device_listeners = devices.iter().map(|d| d.config.service.bind()).collect::<anyhow::Result<Vec<_>>>()?;
    let export_listener = (!cfg.export.mqtt.is_empty()).then(|| cfg.app_mqtt_export.service.bind()).transpose()?;
    let supervisor = Supervisor::new(shutdown);
    let broker = oxedge_runtime::start_embedded_broker(&cfg.bus)?;
    // Each service joins the bus while its port answers as not ready; only enabled services
    // join: a separately started one may use the same client id.
    let join = async |name: &'static str, section: &ServiceSection, listener: &TcpListener| {
        let joined =
            oxedge_runtime::join_bus(name, section, listener, &cfg.bus, broker.as_ref(), supervisor.shutdown()).await?;
        anyhow::Ok(joined.map(|bus| ServiceContext::new(name, bus, &supervisor)))
    };
    let Some(md) = join("core-metadata", &cfg.core_metadata.service, &md_listener).await? else { return Ok(()) };
    let Some(data) = join("core-data", &cfg.core_data.service, &data_listener).await? else { return Ok(()) };
    let mut command = None;
    if let Some(listener) = command_listener {
        let Some(ctx) = join("core-command", &cfg.core_command.service, &listener).await? else { return Ok(()) };
        command = Some((ctx, listener));
    }
    let mut device_runs = Vec::with_capacity(devices.len());
    for (device, listener) in devices.into_iter().zip(device_listeners) {
        let Some(ctx) = join(device.name, &device.config.service, &listener).await? else { return Ok(()) };
        device_runs.push((ctx, device, listener));
    }
    let mut export = None;
    if let Some(listener) = export_listener {
        let Some(ctx) = join(APP_MQTT_EXPORT, &cfg.app_mqtt_export.service, &listener).await? else { return Ok(()) };
        export = Some((ctx, listener));
    }
    let device_ports: Vec<String> =
        device_runs.iter().map(|(_, d, _)| format!("{}={}", d.name, d.config.service.address())).collect();
    tracing::info!(
        data_dir = %data_dir.display(),
        bus = %data.bus().describe(),
        core_metadata = %cfg.core_metadata.service.address(),
        core_data = %cfg.core_data.service.address(),
        core_command = %command.as_ref().map_or("off".to_owned(), |_| cfg.core_command.service.address()),
        device_services = %device_ports.join(" "),
        export = %if cfg.export.mqtt.is_empty() { "off" } else { cfg.export.mqtt.as_str() },
        "Oxedge all-in-one starting."
    );
    supervisor.spawn("core-metadata", oxedge_core_metadata::run(md, cfg.core_metadata, md_listener));
    supervisor.spawn("core-data", oxedge_core_data::run(data, cfg.core_data, data_listener));
    if let Some((ctx, listener)) = command {
        supervisor.spawn("core-command", oxedge_core_command::run(ctx, cfg.core_command, listener));
    }
    for (ctx, device, listener) in device_runs {
        supervisor.spawn(device.name, oxedge_device_sdk::run(ctx, device.config, device.driver, listener));
    }
    if let Some((ctx, listener)) = export {
        let (url, topic) = (cfg.export.mqtt.clone(), cfg.export.topic.clone());
        let build = move |app: &AppContext| Ok(vec![mqtt_export_pipeline(app, &url, &topic)?]);
        supervisor.spawn(APP_MQTT_EXPORT, oxedge_app_sdk::run(ctx, cfg.app_mqtt_export, build, listener));
    }
    let stopped = supervisor.wait(Duration::from_secs(cfg.shutdown_grace)).await;
    drop(broker);
    stopped.into_result()?;
    tracing::info!("Oxedge stopped.");
    Ok(())
}

/// A device service the all-in-one runs: its name, configuration and driver.
struct DeviceService {
    name: &'static str,
    config: DeviceServiceConfig,
    driver: Arc<dyn ProtocolDriver>,
}

/// The device services switched on in `cfg.services`.
fn device_services(cfg: &GatewayConfig) -> Vec<DeviceService> {
    let mut out = Vec::new();
    let mut add =
        |on: bool, name: &'static str, config: &DeviceServiceConfig, driver: fn() -> Arc<dyn ProtocolDriver>| {
            if on {
                out.push(DeviceService { name, config: config.clone(), driver: driver() });
            }
        };
    let on = &cfg.services;
    add(on.device_virtual, oxedge_device_virtual::SERVICE_NAME, &cfg.device_virtual, || {
        Arc::new(VirtualDriver::default())
    });
    add(on.device_modbus, oxedge_device_modbus::SERVICE_NAME, &cfg.device_modbus, || {
        Arc::new(oxedge_device_modbus::ModbusDriver::default())
    });
    add(on.device_mqtt, oxedge_device_mqtt::SERVICE_NAME, &cfg.device_mqtt, || {
        Arc::new(oxedge_device_mqtt::MqttDriver::default())
    });
    add(on.device_rest, oxedge_device_rest::SERVICE_NAME, &cfg.device_rest, || {
        Arc::new(oxedge_device_rest::RestDriver::default())
    });
    add(on.device_ble, oxedge_device_ble::SERVICE_NAME, &cfg.device_ble, || {
        Arc::new(oxedge_device_ble::BleDriver::default())
    });
    out
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
