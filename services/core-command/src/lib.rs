//! core-command: the EdgeX v3 command API. It lists each device's commands from its profile
//! in core-metadata, and relays reads (`GET`) and writes (`PUT`) of a command to the device
//! service that owns the device — over REST to the service's `baseAddress`, or over the
//! message bus as EdgeX 4 does, as configured — after checking, before anything reaches the
//! device, that the device and command exist, that nothing is locked or down, and that the
//! command may be read or written with the resources given. It also answers the bus
//! requests EdgeX 4's core-command answers (`edgex/core/command/request/#`,
//! `edgex/core/commandquery/request/#`).
//!
//! [`run`] runs it on a listener until shutdown, the same way whether started alone
//! (`core-command`) or inside the all-in-one `oxedge run`.

pub mod bus_api;
pub mod cache;
pub mod command;
pub mod config;
mod openapi;
pub mod reply;
pub mod routes;

use std::net::TcpListener;

use actix_web::web;
use anyhow::Context as _;
use oxedge_runtime::ServiceContext;

pub use command::Commands;
pub use config::{CommandConfig, Transport};
pub use openapi::document as openapi;

/// The `core-command` binary.
pub const BINARY: oxedge_runtime::Binary = oxedge_runtime::Binary {
    name: "core-command",
    version: env!("CARGO_PKG_VERSION"),
    about: "core-command: devices' commands, read and written through their device services (EdgeX API v3).",
    default_port: config::DEFAULT_PORT,
};

oxedge_runtime::service_config!(CommandConfig, CommandConfig::validate);

/// Serves core-command on `listener` until shutdown: the entry point of `core-command` and
/// of `oxedge run`. It also answers command requests on the context's bus, and routes
/// commands over it with `command.transport: bus`.
pub async fn run(ctx: ServiceContext, cfg: CommandConfig, listener: TcpListener) -> anyhow::Result<()> {
    cfg.validate()?;
    let (bus, shutdown) = (ctx.bus().clone(), ctx.shutdown().clone());
    let public_url = match cfg.command.public_url.as_str() {
        "" => format!("http://{}", listener.local_addr().context("Failed to read the listener's address.")?),
        url => url.to_owned(),
    };
    let commands = Commands::new(&cfg, Some(bus.clone()), public_url)?;
    let mut common = ctx.common(&cfg)?;
    let health = commands.clone();
    common.add_health_check("core-metadata", move || {
        let health = health.clone();
        Box::pin(async move { health.metadata().ping().await.map_err(|e| e.message) })
    });
    common.add_bus_health_check(bus.clone());
    common.set_openapi(openapi());

    let tasks = tokio_util::task::TaskTracker::new();
    if let Some(cache) = commands.cache() {
        tasks.spawn(cache.clone().follow(shutdown.clone()));
    }
    tasks.spawn(bus_api::run(commands.clone(), bus, cfg.service.max_result_count, shutdown.clone()));
    tasks.close();
    let limits = web::Data::new(routes::Limits { max_result_count: cfg.service.max_result_count });
    let data = web::Data::new(commands);
    let served = oxedge_runtime::serve(common, &cfg.service, listener, shutdown.clone(), move |c| {
        c.app_data(data.clone()).app_data(limits.clone());
        routes::configure(c);
    })
    .await;
    shutdown.cancel();
    tasks.wait().await;
    served
}
