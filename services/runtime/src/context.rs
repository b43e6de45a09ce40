//! [`ServiceContext`]: what a service is handed when it starts, however it was started.

use std::future::Future;
use std::sync::Arc;

use oxedge_bus::Bus;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::server::Common;
use crate::supervisor::Supervisor;

/// A service's name and version, its message bus, and the supervisor its tasks run on
/// (whose token is the shutdown every task watches). Cheap to clone.
#[derive(Clone)]
pub struct ServiceContext {
    name: &'static str,
    version: &'static str,
    bus: Arc<dyn Bus>,
    supervisor: Supervisor,
}

impl std::fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceContext")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("bus", &self.bus.describe())
            .finish_non_exhaustive()
    }
}

impl ServiceContext {
    /// The context of service `name` on `bus`, its tasks on `supervisor`; its version is
    /// the runtime's (see [`with_version`](Self::with_version)).
    pub fn new(name: &'static str, bus: Arc<dyn Bus>, supervisor: &Supervisor) -> Self {
        Self { name, version: env!("CARGO_PKG_VERSION"), bus, supervisor: supervisor.clone() }
    }

    /// A context for a service that runs alone under its own supervisor, stopped by
    /// `shutdown` (tests, benchmarks, programs embedding one service).
    pub fn standalone(name: &'static str, bus: Arc<dyn Bus>, shutdown: CancellationToken) -> Self {
        Self::new(name, bus, &Supervisor::new(shutdown))
    }

    /// The same context, reporting `version` at `/api/v3/version`.
    pub fn with_version(mut self, version: &'static str) -> Self {
        self.version = version;
        self
    }

    /// The service's name, as EdgeX names it (`core-data`, `device-modbus`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The version `/api/v3/version` reports.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// The message bus, connected.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// Cancelled on a stop signal, or when any supervised task fails.
    pub fn shutdown(&self) -> &CancellationToken {
        self.supervisor.shutdown()
    }

    /// The supervisor the service's tasks run on.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// Runs `task` on the supervisor as `{service}/{what}`: its failure stops the process,
    /// naming it.
    pub fn spawn<F>(&self, what: &str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.supervisor.spawn(format!("{}/{what}", self.name), task);
    }

    /// The common endpoints' state for this service, serving `config` (redacted) at
    /// `/api/v3/config`.
    pub fn common(&self, config: &impl Serialize) -> anyhow::Result<Common> {
        Ok(Common::new(self.name, serde_json::to_value(config)?).with_version(self.version))
    }
}
