//! The Oxedge device SDK: write an EdgeX-compatible device service by implementing
//! [`ProtocolDriver`] and calling [`main`] (or [`run`] inside another program).
//!
//! The SDK registers the service and its profiles and devices with core-metadata, keeps
//! them cached and current from core-metadata's system events, runs auto events, serves
//! the EdgeX v3 device service API and the command requests arriving on the message bus,
//! converts raw values to readings per profile, and publishes events on the bus.
//! `docs/device-sdk.md` is the guide.

mod autoevent;
mod bus_commands;
mod cache;
mod command;
pub mod config;
mod discovery;
pub mod driver;
mod events;
mod health;
mod metrics;
mod openapi;
mod provision;
mod routes;
mod sdk;
mod service;
pub mod value;

use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web;
use anyhow::{anyhow, Context as _};
use oxedge_contracts::client::MetadataClient;
use oxedge_runtime::Binary;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use async_trait::async_trait;
pub use config::DeviceServiceConfig;
pub use driver::{
    CommandRequest, CommandValue, Discovered, DriverError, DriverResult, ProtocolDriver, Protocols, Value, WriteCommand,
};
pub use oxedge_runtime::ServiceContext;
pub use sdk::Sdk;

oxedge_runtime::service_config!(DeviceServiceConfig, DeviceServiceConfig::validate);

use crate::cache::Cache;
use crate::service::Service;

/// Runs a device service binary named `name` with `driver` until SIGTERM or Ctrl-C, or
/// until one of its tasks fails.
///
/// Reads the configuration file given by `-c/--config` (or `OXEDGE_CONFIG_FILE`), then
/// `OXEDGE_<SECTION>_<KEY>` variables; `service.port` 0 (the default) means
/// `default_port`. Joins the configured bus, waiting until it answers, and then does what
/// [`run`] does (see `oxedge_runtime::main`).
pub fn main(
    name: &'static str,
    version: &'static str,
    default_port: u16,
    driver: impl ProtocolDriver,
) -> anyhow::Result<()> {
    let driver: Arc<dyn ProtocolDriver> = Arc::new(driver);
    let binary = Binary { name, version, about: "An EdgeX-compatible device service.", default_port };
    oxedge_runtime::main(binary, move |ctx, cfg: DeviceServiceConfig, listener| run(ctx, cfg, driver, listener))
}

/// Serves the device service `ctx` names with `driver` on `listener` and the context's bus
/// until shutdown.
///
/// Initializes the driver, then serves HTTP at once while, in the background, it registers
/// the service in core-metadata (retrying with backoff while core-metadata is unreachable;
/// `/api/v3/health` answers 503 meanwhile), loads the configured files on the service's
/// first start, fills the device cache and follows core-metadata's system events. Command
/// requests on the bus, auto events and periodic discovery run beside. On shutdown, HTTP
/// stops, then the tasks, then the driver (`stop(false)`).
pub async fn run(
    ctx: ServiceContext,
    cfg: DeviceServiceConfig,
    driver: Arc<dyn ProtocolDriver>,
    listener: TcpListener,
) -> anyhow::Result<()> {
    cfg.validate()?;
    let name = ctx.name();
    let port = listener.local_addr().context("Failed to read the listener's address.")?.port();
    let base_address = format!("http://{}:{port}", cfg.advertised_host());
    let core_metadata = &cfg.clients.core_metadata;
    let metadata = MetadataClient::new(&core_metadata.url, core_metadata.timeout())
        .map_err(|e| anyhow!("Invalid configuration at key `clients.core_metadata.url`: {e}"))?;

    let mut common = ctx.common(&cfg)?;
    common.set_openapi(openapi::document());
    let metrics = metrics::Metrics::register(&mut common.registry().lock().unwrap_or_else(|e| e.into_inner()));
    let readiness = Readiness::new("not yet registered in core-metadata");
    let check = readiness.clone();
    common.add_health_check("core-metadata", move || {
        let state = check.get();
        Box::pin(async move { state })
    });

    let svc = Arc::new(Service {
        name: name.to_owned(),
        config: cfg,
        driver,
        cache: Cache::new(),
        bus: ctx.bus().clone(),
        metadata,
        locked: AtomicBool::new(false),
        discovery: Default::default(),
        health: health::Health::new(),
        metrics,
        registry: common.registry(),
    });
    let driver = svc.driver.clone();
    common.add_health_check("driver", move || {
        let driver = driver.clone();
        Box::pin(async move { driver.health().await })
    });
    tracing::info!(service = name, %base_address, "Starting the device service.");
    svc.driver.initialize(Sdk::new(&svc)).await.map_err(|e| anyhow!("The driver failed to initialize: {e}"))?;

    let stop = ctx.shutdown().child_token();
    let mut tasks = JoinSet::new();
    tasks.spawn(bootstrap(svc.clone(), base_address, readiness, stop.clone()));
    tasks.spawn(bus_commands::run(svc.clone(), stop.clone()));
    tasks.spawn(autoevent::run(svc.clone(), stop.clone()));
    tasks.spawn(health::run_returns(svc.clone(), stop.clone()));
    tasks.spawn(discovery::periodic(svc.clone(), stop.clone()));

    let data = web::Data::new(svc.clone());
    let served = oxedge_runtime::serve(common, &svc.config.service, listener, stop.clone(), move |c| {
        c.app_data(data.clone());
        routes::configure(c);
        discovery::configure(c);
        data.driver.routes(c);
    })
    .await;
    stop.cancel();
    let grace = Duration::from_secs(svc.config.service.shutdown_grace.max(1));
    if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
        tracing::warn!(grace_secs = grace.as_secs(), "Background tasks did not stop in time; aborting them.");
        tasks.shutdown().await;
    }
    svc.driver.stop(false).await;
    tracing::info!(service = name, "Device service stopped.");
    served
}

/// Registers the service, loads the configured files on its first start and fills the
/// cache, retrying with backoff until core-metadata answers; then follows its system
/// events. Subscribes first, so that no change made meanwhile is missed.
async fn bootstrap(svc: Arc<Service>, base_address: String, readiness: Readiness, shutdown: CancellationToken) {
    let Some(sub) = events::subscribe(&*svc.bus, &svc.name, &shutdown).await else { return };
    let mut backoff = oxedge_runtime::Backoff::default();
    // Whether the files still have to be loaded; known once registration answered.
    let mut files_pending: Option<bool> = None;
    loop {
        let attempt = async {
            let first_start = provision::register(&svc, &base_address).await?;
            if *files_pending.get_or_insert(first_start) {
                provision::load_files(&svc).await?;
                files_pending = Some(false);
            }
            events::load(&svc).await
        };
        match attempt.await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, url = %svc.config.clients.core_metadata.url, "core-metadata is not ready; retrying.");
                readiness.set(Err(format!("not yet registered in core-metadata: {error}")));
            }
        }
        if !backoff.wait(&shutdown).await {
            return;
        }
    }
    readiness.set(Ok(()));
    tracing::info!(service = %svc.name, "Registered in core-metadata; following its changes.");
    events::follow(&svc, sub, &shutdown).await;
}

/// Whether the service is registered and its cache loaded, for `/api/v3/health`.
#[derive(Clone)]
struct Readiness(Arc<Mutex<Result<(), String>>>);

impl Readiness {
    fn new(reason: &str) -> Self {
        Self(Arc::new(Mutex::new(Err(reason.to_owned()))))
    }

    fn get(&self) -> Result<(), String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, state: Result<(), String>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}
