//! What a stand-alone service does first: log, bind its HTTP port, stop on signals and join
//! the message bus, answering HTTP as not ready until the bus is reached.

use std::net::TcpListener;
use std::sync::Arc;

use oxedge_runtime::config::{LogSection, ServiceSection};
use tokio_util::sync::CancellationToken;

use crate::config::{connect_with_retry, BusConfig};
use crate::Bus;

/// A started service: its bound HTTP listener, the token SIGINT/SIGTERM cancel, its bus.
pub struct Started {
    /// The service's HTTP port, bound.
    pub listener: TcpListener,
    /// Cancelled by SIGINT or SIGTERM.
    pub shutdown: CancellationToken,
    /// The message bus, connected.
    pub bus: Arc<dyn Bus>,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Started").field("listener", &self.listener).finish_non_exhaustive()
    }
}

/// Starts logging per `log`, binds `service`'s port, listens for stop signals, then connects
/// to `bus` (waiting for a broker that is not up yet, see [`connect_with_retry`]) while the
/// port answers as not ready (`oxedge_runtime::serve_while_starting`). `Ok(None)` when a
/// stop signal came first; an error for a port that cannot be bound or a bad bus setting.
pub async fn start(
    name: &'static str,
    log: &LogSection,
    service: &ServiceSection,
    bus: &BusConfig,
) -> anyhow::Result<Option<Started>> {
    oxedge_runtime::init_tracing(log);
    let listener = service.bind()?;
    let shutdown = oxedge_runtime::shutdown_on_signals();
    let connecting = connect_with_retry(bus, name);
    let starting =
        oxedge_runtime::serve_while_starting(name, service, &listener, "the message bus", &shutdown, connecting);
    let Some(connected) = starting.await else {
        return Ok(None);
    };
    Ok(Some(Started { listener, shutdown, bus: connected? }))
}
