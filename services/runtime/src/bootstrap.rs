//! What every service binary does before its own work: read its arguments and
//! configuration, log, bind its HTTP port, stop on signals, join the message bus while
//! answering as not ready, then run the service under a [`Supervisor`] until it stops.
//!
//! A binary's `main.rs` is one call of [`main`]; the all-in-one `oxedge run` builds the
//! same [`ServiceContext`]s itself, one per service, on one supervisor.

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use oxedge_bus::{Bus, BusConfig, BusError, BusType, InProcessBus};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{Backend, DatabaseSection, LogSection, ServiceSection};
use crate::context::ServiceContext;
use crate::supervisor::Supervisor;

/// The sections every service's configuration has, and its own checks.
pub trait ServiceConfig: Serialize + DeserializeOwned + Default + Send + 'static {
    /// Logging.
    fn log(&self) -> &LogSection;
    /// The HTTP listener and limits.
    fn service(&self) -> &ServiceSection;
    /// The same, to fill in a default port.
    fn service_mut(&mut self) -> &mut ServiceSection;
    /// The message bus.
    fn bus(&self) -> &BusConfig;
    /// Checks what serde cannot, naming every bad key.
    fn validate(&self) -> anyhow::Result<()> {
        Ok(())
    }
    /// Whether the service uses the message bus; one that does not (an app service with
    /// the HTTP trigger) starts without a broker and is given an in-process bus.
    fn joins_bus(&self) -> bool {
        true
    }
}

/// What a binary says of itself: its name, version and default port.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// The service's name (`core-data`), also the binary's.
    pub name: &'static str,
    /// Its version, for `--version` and `/api/v3/version`.
    pub version: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// The port used when the configuration's `service.port` is 0.
    pub default_port: u16,
}

/// Runs a service binary until SIGTERM or Ctrl-C, or until one of its tasks fails: reads
/// `-c/--config FILE` (or `OXEDGE_CONFIG_FILE`), then `OXEDGE_<SECTION>_<KEY>` variables,
/// then hands the configuration to [`run_service`]. The process exits non-zero, naming
/// the task, when a task fails.
pub fn main<C, F, Fut>(binary: Binary, run: F) -> anyhow::Result<()>
where
    C: ServiceConfig,
    F: FnOnce(ServiceContext, C, TcpListener) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let args = clap::Command::new(binary.name)
        .version(binary.version)
        .about(binary.about)
        .arg(
            clap::Arg::new("config")
                .short('c')
                .long("config")
                .env("OXEDGE_CONFIG_FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("YAML configuration file; every key can also be set as OXEDGE_<SECTION>_<KEY>"),
        )
        .get_matches();
    let mut cfg: C = crate::config::load(args.get_one::<PathBuf>("config").map(PathBuf::as_path), "OXEDGE")?;
    if cfg.service().port == 0 {
        cfg.service_mut().port = binary.default_port;
    }
    run_service(binary, cfg, run)
}

/// What [`main`] does once it has the configuration (for a binary that reads its own, such
/// as app-service-configurable's `--profile`): checks it, starts a runtime, logs, binds,
/// joins the bus (starting the embedded broker when `bus.type` is `embedded`), and runs
/// `run` under a supervisor with the configured `service.shutdown_grace`.
pub fn run_service<C, F, Fut>(binary: Binary, cfg: C, run: F) -> anyhow::Result<()>
where
    C: ServiceConfig,
    F: FnOnce(ServiceContext, C, TcpListener) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    crate::tune_allocator();
    cfg.validate()?;
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async move {
        crate::init_tracing(cfg.log());
        let listener = cfg.service().bind()?;
        let supervisor = Supervisor::new(crate::shutdown_on_signals());
        let broker = if cfg.joins_bus() { start_embedded_broker(cfg.bus())? } else { None };
        let bus: Arc<dyn Bus> = if cfg.joins_bus() {
            let joining =
                join_bus(binary.name, cfg.service(), &listener, cfg.bus(), broker.as_ref(), supervisor.shutdown());
            let Some(bus) = joining.await? else {
                return Ok(());
            };
            bus
        } else {
            Arc::new(InProcessBus::new())
        };
        let ctx = ServiceContext::new(binary.name, bus, &supervisor).with_version(binary.version);
        let grace = Duration::from_secs(cfg.service().shutdown_grace);
        supervisor.spawn(binary.name, run(ctx, cfg, listener));
        // The broker (if any) lives until here, after every service has stopped.
        supervisor.wait(grace).await.into_result()
    })
}

/// The MQTT broker embedded in this process (the runtime's `embedded` feature).
#[cfg(feature = "embedded")]
pub use oxedge_bus::EmbeddedBroker;

/// Stands for the embedded broker in a build without it: no value of it can exist.
#[cfg(not(feature = "embedded"))]
#[derive(Debug)]
pub enum EmbeddedBroker {}

/// Starts the broker embedded in this process when `bus.type` is `embedded`; the caller
/// owns it and hands its links to the services ([`join_bus`]). A build without the
/// `embedded` feature refuses that type, naming the key.
pub fn start_embedded_broker(bus: &BusConfig) -> anyhow::Result<Option<EmbeddedBroker>> {
    if bus.kind != BusType::Embedded {
        return Ok(None);
    }
    #[cfg(feature = "embedded")]
    return Ok(Some(EmbeddedBroker::start(bus.embedded.clone())?));
    #[cfg(not(feature = "embedded"))]
    anyhow::bail!(
        "Invalid configuration at key `bus.type`: this binary has no embedded broker (oxedge run has); \
         use `mqtt` or `nats` to join a broker"
    )
}

/// A local link of `broker` for `client_id`.
fn link(broker: &EmbeddedBroker, client_id: &str) -> Result<Arc<dyn Bus>, BusError> {
    #[cfg(feature = "embedded")]
    return broker.bus(client_id);
    #[cfg(not(feature = "embedded"))]
    {
        let _ = client_id;
        match *broker {}
    }
}

/// Joins `service_name` to the bus: a local link of `embedded` when given, else the broker
/// `bus` names, waiting for one that is not up yet (services start in any order) while
/// `listener` answers as not ready. `Ok(None)` when `shutdown` came first; an error for a
/// bad bus setting.
pub async fn join_bus(
    service_name: &'static str,
    service: &ServiceSection,
    listener: &TcpListener,
    bus: &BusConfig,
    embedded: Option<&EmbeddedBroker>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Arc<dyn Bus>>> {
    if let Some(broker) = embedded {
        return Ok(Some(link(broker, bus.client_id_or(service_name))?));
    }
    let connecting = oxedge_bus::config::connect_with_retry(bus, service_name);
    let joined = crate::serve_while_starting(service_name, service, listener, "the message bus", shutdown, connecting);
    joined.await.transpose().map_err(|error: BusError| anyhow::anyhow!("Failed to join the message bus: {error}"))
}

/// Opens a store with `open`: an SQLite file at once, a Redis server waiting for it
/// (containers start in any order) with backoff while `listener` answers as not ready.
/// `Ok(None)` when `shutdown` came first; an error for a bad `database` setting or a file
/// that cannot be opened.
pub async fn open_store_waiting<S, F, Fut>(
    service_name: &'static str,
    service: &ServiceSection,
    listener: &TcpListener,
    db: &DatabaseSection,
    shutdown: &CancellationToken,
    open: F,
) -> anyhow::Result<Option<S>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<S>>,
{
    if db.backend == Backend::Sqlite {
        return open().await.map(Some);
    }
    db.check_redis_url()?;
    let waiting = crate::retry_until_ok("Redis", shutdown, open);
    Ok(crate::serve_while_starting(service_name, service, listener, "Redis", shutdown, waiting).await.flatten())
}

/// Implements [`ServiceConfig`] for a configuration struct with the fields `log`,
/// `service` and `bus`, checked by the given function (a `fn(&Self) -> anyhow::Result<()>`).
///
/// ```ignore
/// oxedge_runtime::service_config!(DataConfig, DataConfig::validate);
/// ```
#[macro_export]
macro_rules! service_config {
    ($config:ty) => {
        $crate::service_config!($config, |_: &$config| Ok(()));
    };
    ($config:ty, $validate:expr) => {
        impl $crate::ServiceConfig for $config {
            fn log(&self) -> &$crate::config::LogSection {
                &self.log
            }
            fn service(&self) -> &$crate::config::ServiceSection {
                &self.service
            }
            fn service_mut(&mut self) -> &mut $crate::config::ServiceSection {
                &mut self.service
            }
            fn bus(&self) -> &$crate::BusConfig {
                &self.bus
            }
            fn validate(&self) -> anyhow::Result<()> {
                let check: fn(&$config) -> anyhow::Result<()> = $validate;
                check(self)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_embedded_type_starts_a_broker() {
        let mqtt = BusConfig { kind: BusType::Mqtt, ..BusConfig::default() };
        assert!(start_embedded_broker(&mqtt).unwrap().is_none());
    }

    /// Services on their own are built without the broker (scripts/test.sh runs this
    /// crate's unit tests alone, without the feature the all-in-one turns on).
    #[cfg(not(feature = "embedded"))]
    #[test]
    fn a_build_without_the_broker_refuses_the_embedded_type_naming_the_key() {
        let embedded = BusConfig { kind: BusType::Embedded, ..BusConfig::default() };
        let error = start_embedded_broker(&embedded).unwrap_err().to_string();
        assert!(error.contains("`bus.type`") && error.contains("no embedded broker"), "{error}");
    }
}
