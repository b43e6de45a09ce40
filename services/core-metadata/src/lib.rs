//! core-metadata: the registry of device services, device profiles, devices and provision
//! watchers, serving EdgeX's core-metadata REST API v3.
//!
//! [`run`] serves it on a listener until shutdown, the same way whether started alone
//! (`core-metadata`) or inside the all-in-one `oxedge run`.

mod bus_hook;
pub mod config;
mod entity;
pub mod metadata;
mod openapi;
pub mod routes;
pub mod store;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::web;
use anyhow::Context as _;
use oxedge_contracts::UnitsOfMeasure;
use oxedge_runtime::{Common, ServiceContext};
use tokio_util::sync::CancellationToken;

pub use bus_hook::BusHook;
pub use config::MetadataConfig;
pub use metadata::{BroadcastHook, Metadata, SystemEventHook};

use crate::config::Backend;
use crate::store::{redis::RedisStore, sqlite::SqliteStore, MetadataStore};

/// The built-in units of measure.
const DEFAULT_UOM: &str = include_str!("../res/uom.yaml");

/// Opens the store the configuration names.
pub async fn open_store(cfg: &config::DatabaseSection) -> anyhow::Result<Arc<dyn MetadataStore>> {
    Ok(match cfg.backend {
        Backend::Sqlite => {
            Arc::new(SqliteStore::open(&cfg.path).with_context(|| format!("Failed to open {}.", cfg.path.display()))?)
        }
        Backend::Redis => Arc::new(RedisStore::connect(&cfg.redis_url).await.context("Failed to connect to Redis.")?),
    })
}

/// Reads the units of measure: the configured file, or the built-in list.
pub fn load_uom(cfg: &config::UomSection) -> anyhow::Result<UnitsOfMeasure> {
    let text = match &cfg.file {
        Some(path) => std::fs::read(path).with_context(|| format!("Failed to read {}.", path.display()))?,
        None => DEFAULT_UOM.as_bytes().to_vec(),
    };
    oxedge_contracts::from_yaml(&text).map_err(|e| anyhow::anyhow!("Bad units of measure: {e}"))
}

pub use openapi::document as openapi;

/// The `core-metadata` binary.
pub const BINARY: oxedge_runtime::Binary = oxedge_runtime::Binary {
    name: "core-metadata",
    version: env!("CARGO_PKG_VERSION"),
    about: "core-metadata: devices, profiles, device services and provision watchers (EdgeX API v3).",
    default_port: config::DEFAULT_PORT,
};

oxedge_runtime::service_config!(MetadataConfig);

/// Serves core-metadata with `md` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    cfg: &MetadataConfig,
    md: Metadata,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut common = Common::new(metadata::SERVICE_NAME, serde_json::to_value(cfg)?);
    let store = md.store().clone();
    common.add_health_check("store", move || {
        let store = store.clone();
        Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
    });
    common.set_openapi(openapi());
    let md = web::Data::new(md);
    let limits = web::Data::new(routes::Limits {
        max_result_count: cfg.service.max_result_count,
        max_request_size: cfg.service.max_request_size,
    });
    oxedge_runtime::serve(common, &cfg.service, listener, shutdown, move |c| {
        c.app_data(md.clone()).app_data(limits.clone());
        routes::configure(c);
    })
    .await
}

/// Opens the configured store (waiting for Redis while answering as not ready) and serves
/// core-metadata until shutdown, announcing changes as system events on the context's bus:
/// the entry point of `core-metadata` and of `oxedge run`.
pub async fn run(ctx: ServiceContext, cfg: MetadataConfig, listener: TcpListener) -> anyhow::Result<()> {
    let shutdown = ctx.shutdown().clone();
    let hook = Arc::new(BusHook::new(ctx.bus().clone(), shutdown.clone()));
    let (service, db) = (&cfg.service, &cfg.database);
    let opened = oxedge_runtime::open_store_waiting(ctx.name(), service, &listener, db, &shutdown, || open_store(db));
    let Some(store) = opened.await? else {
        return Ok(());
    };
    let uom = load_uom(&cfg.uom)?;
    let md = Metadata::new(store, hook, uom).with_unit_validation(cfg.uom.validation);
    serve(&cfg, md, listener, shutdown).await
}
