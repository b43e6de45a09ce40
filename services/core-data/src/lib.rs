//! core-data: takes events from the message bus, persists them and their readings in
//! batches, serves them over EdgeX's core-data REST API v3, and deletes them by age, count
//! or device without stalling ingestion.
//!
//! [`run`] serves it on a listener until shutdown, the same way whether started alone
//! (`core-data`) or inside the all-in-one `oxedge run`.

pub mod config;
pub mod data;
pub mod ingest;
mod openapi;
pub mod retention;
pub mod routes;
pub mod store;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::web;
use anyhow::Context as _;
use oxedge_bus::{Bus, MessageEnvelope, SubscribeOptions};
use oxedge_contracts::SystemEvent;
use oxedge_runtime::config::{Backend, DatabaseSection};
use oxedge_runtime::ServiceContext;
use tokio_util::sync::CancellationToken;

pub use config::DataConfig;
pub use data::CoreData;
pub use openapi::document as openapi;

/// The `core-data` binary.
pub const BINARY: oxedge_runtime::Binary = oxedge_runtime::Binary {
    name: "core-data",
    version: env!("CARGO_PKG_VERSION"),
    about: "core-data: events and readings from the message bus, persisted and queryable (EdgeX API v3).",
    default_port: config::DEFAULT_PORT,
};

oxedge_runtime::service_config!(DataConfig, DataConfig::validate);

use crate::config::OnDeviceDelete;
use crate::ingest::IngestMetrics;
use crate::store::{redis::RedisStore, sqlite::SqliteStore, EventFilter, EventStore};

/// Opens the store the configuration names.
pub async fn open_store(cfg: &DatabaseSection) -> anyhow::Result<Arc<dyn EventStore>> {
    Ok(match cfg.backend {
        Backend::Sqlite => {
            Arc::new(SqliteStore::open(&cfg.path).with_context(|| format!("Failed to open {}.", cfg.path.display()))?)
        }
        Backend::Redis => Arc::new(RedisStore::connect(&cfg.redis_url).await.context("Failed to connect to Redis.")?),
    })
}

/// Serves core-data with `store` on `listener`, taking events from the context's bus (when
/// `persist_data` is on), until shutdown; then stops ingestion, lets background deletes
/// finish and returns.
pub async fn serve(
    ctx: ServiceContext,
    cfg: DataConfig,
    store: Arc<dyn EventStore>,
    listener: TcpListener,
) -> anyhow::Result<()> {
    cfg.validate()?;
    let shutdown = ctx.shutdown().clone();
    let bus = ctx.bus().clone();
    let mut common = ctx.common(&cfg)?;
    let health_store = store.clone();
    common.add_health_check("store", move || {
        let store = health_store.clone();
        Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
    });
    common.add_bus_health_check(bus.clone());
    common.set_openapi(openapi());
    let metrics = IngestMetrics::register(&mut common.registry().lock().expect("metrics registry poisoned"));

    let data = CoreData::new(store.clone(), Some(bus.clone()), cfg.ingest.persist_data, cfg.retention.batch);
    let tasks = tokio_util::task::TaskTracker::new();
    if cfg.ingest.persist_data {
        tasks.spawn(ingest::run(bus.clone(), store.clone(), cfg.ingest.clone(), metrics, shutdown.clone()));
    }
    if cfg.ingest.on_device_delete == OnDeviceDelete::Delete {
        tasks.spawn(follow_device_deletions(bus.clone(), data.clone(), shutdown.clone()));
    }
    tasks.spawn(retention::run(store.clone(), cfg.retention.clone(), shutdown.clone()));
    tasks.close();

    let limits = web::Data::new(routes::Limits { max_result_count: cfg.service.max_result_count });
    let app_data = web::Data::new(data.clone());
    let served = oxedge_runtime::serve(common, &cfg.service, listener, shutdown.clone(), move |c| {
        c.app_data(app_data.clone()).app_data(limits.clone());
        routes::configure(c);
    })
    .await;
    shutdown.cancel();
    tasks.wait().await;
    data.background().close();
    data.background().wait().await;
    served
}

/// Opens the configured store (waiting for Redis while answering as not ready) and serves
/// core-data until shutdown: the entry point of `core-data` and of `oxedge run`.
pub async fn run(ctx: ServiceContext, cfg: DataConfig, listener: TcpListener) -> anyhow::Result<()> {
    cfg.validate()?;
    let (service, db) = (&cfg.service, &cfg.database);
    let opened =
        oxedge_runtime::open_store_waiting(ctx.name(), service, &listener, db, ctx.shutdown(), || open_store(db));
    let Some(store) = opened.await? else {
        return Ok(());
    };
    serve(ctx, cfg, store, listener).await
}

/// Deletes the stored events of each device core-metadata announces as deleted.
async fn follow_device_deletions(bus: Arc<dyn Bus>, data: CoreData, shutdown: CancellationToken) {
    let filters = ["edgex/system-events/core-metadata/device/delete/#".to_owned()];
    let options = SubscribeOptions::default();
    let subscribed = oxedge_runtime::subscribe_retrying(&*bus, &filters, options, "device deletions", &shutdown);
    let Some(mut sub) = subscribed.await else { return };
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => return,
            d = sub.next() => match d { Some(d) => d, None => return },
        };
        let device = MessageEnvelope::from_bytes(&delivery.payload, &delivery.topic)
            .and_then(|env| env.payload_as::<SystemEvent>())
            .map(|ev| ev.details.get("name").and_then(|n| n.as_str()).unwrap_or_default().to_owned());
        match device {
            Ok(name) if !name.is_empty() => {
                tracing::info!(device = %name, "Device deleted from core-metadata; deleting its events.");
                data.purge_in_background(EventFilter { device: Some(name), ..Default::default() });
            }
            Ok(_) => tracing::warn!(topic = %delivery.topic, "Device deletion without a device name ignored."),
            Err(error) => tracing::warn!(%error, topic = %delivery.topic, "Malformed system event skipped."),
        }
        let _ = delivery.ack().await;
    }
}
