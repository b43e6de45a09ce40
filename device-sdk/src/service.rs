//! The running service: everything the SDK's parts share.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use oxedge_bus::Bus;
use oxedge_contracts::client::MetadataClient;

use crate::cache::Cache;
use crate::config::DeviceServiceConfig;
use crate::discovery::Discovery;
use crate::driver::ProtocolDriver;

/// What every part of a running device service shares, behind one `Arc`.
pub(crate) struct Service {
    /// The device service's name, as registered in core-metadata.
    pub name: String,
    /// Its configuration.
    pub config: DeviceServiceConfig,
    /// The protocol driver.
    pub driver: Arc<dyn ProtocolDriver>,
    /// Devices and profiles.
    pub cache: Cache,
    /// The message bus.
    pub bus: Arc<dyn Bus>,
    /// core-metadata.
    pub metadata: MetadataClient,
    /// Whether the service's adminState in core-metadata is LOCKED (EdgeX then refuses
    /// commands and discovery with 423); kept current from system events.
    pub locked: AtomicBool,
    /// The discovery run in progress.
    pub discovery: Discovery,
    /// Consecutive driver failures per device (the command part's state).
    pub health: crate::health::Health,
    /// Readings, events, command latency and driver errors.
    pub metrics: crate::metrics::Metrics,
    /// The registry `/metrics` serves, where drivers add metrics of their own.
    pub registry: oxedge_runtime::SharedRegistry,
}

impl Service {
    /// Whether the service is administratively locked.
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }

    /// Records the service's admin state.
    pub fn set_locked(&self, locked: bool) {
        self.locked.store(locked, Ordering::Relaxed);
    }
}
