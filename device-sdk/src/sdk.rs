//! [`Sdk`]: the handle a driver gets in [`ProtocolDriver::initialize`](crate::ProtocolDriver::initialize).

use std::sync::{Arc, Weak};

use oxedge_contracts::{Device, DeviceProfile, EdgeXError, ErrorKind};
use serde::de::DeserializeOwned;

use crate::driver::{CommandValue, Discovered};
use crate::service::Service;

/// What a driver can ask of the SDK: its configuration, the service's devices and
/// profiles, pushing readings it receives on its own, and adding devices it discovers.
///
/// Cheap to clone. It does not keep the service alive: once the service has stopped, the
/// calls that need it answer 503.
#[derive(Clone)]
pub struct Sdk {
    name: Arc<str>,
    svc: Weak<Service>,
}

impl std::fmt::Debug for Sdk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sdk").field("service", &self.name).finish_non_exhaustive()
    }
}

impl Sdk {
    pub(crate) fn new(svc: &Arc<Service>) -> Self {
        Self { name: Arc::from(svc.name.as_str()), svc: Arc::downgrade(svc) }
    }

    fn service(&self) -> Result<Arc<Service>, EdgeXError> {
        self.svc.upgrade().ok_or_else(|| {
            EdgeXError::new(ErrorKind::ServiceUnavailable, format!("device service '{}' has stopped", self.name))
        })
    }

    /// The device service's name.
    pub fn service_name(&self) -> &str {
        &self.name
    }

    /// The configuration's `driver` section as the driver's settings type `T`; the error
    /// names the key (`driver.port: invalid type…`).
    pub fn driver_config<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        self.service()?.config.driver_config()
    }

    /// Publishes `values`, read from `device` on the driver's own initiative, as an event of
    /// `source` (a device resource or command name), converted as a command's readings are.
    pub async fn push(&self, device: &str, source: &str, values: Vec<CommandValue>) -> Result<(), EdgeXError> {
        let svc = self.service()?;
        crate::command::push_values(&svc, device, source, values).await
    }

    /// Adds the devices of `found` that one of the service's provision watchers takes (as
    /// discovery does); returns how many were added.
    pub async fn add_discovered(&self, found: Vec<Discovered>) -> Result<usize, EdgeXError> {
        let svc = self.service()?;
        crate::discovery::provision(&svc, found).await
    }

    /// Adds the driver's own `metric` to the service's Prometheus `/metrics`, beside the SDK's,
    /// as `name` (a counter gets the suffix `_total`); name it after the driver
    /// (`device_mqtt_…`). Does nothing once the service has stopped.
    pub fn register_metric(&self, name: &str, help: &str, metric: impl prometheus_client::registry::Metric) {
        if let Some(svc) = self.svc.upgrade() {
            svc.registry.lock().unwrap_or_else(|e| e.into_inner()).register(name, help, metric);
        }
    }

    /// Resolves once the service has loaded its devices and profiles from core-metadata
    /// (after registering, on every start), at once if it has, and when the service stops.
    /// A driver taking readings on its own waits for it before it listens, as EdgeX drivers
    /// subscribe in `Start`: until then every device is unknown.
    pub async fn devices_loaded(&self) {
        let Some(svc) = self.svc.upgrade() else { return };
        // Watched before the check, so that a load in between is not missed; the watch
        // does not keep the service alive.
        let mut changes = svc.cache.changes();
        drop(svc);
        loop {
            match self.svc.upgrade() {
                Some(svc) if !svc.cache.is_loaded() => {}
                _ => return,
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// The device named `name`, if it belongs to this service.
    pub fn device(&self, name: &str) -> Option<Arc<Device>> {
        self.svc.upgrade()?.cache.device(name)
    }

    /// Every device of this service.
    pub fn devices(&self) -> Vec<Arc<Device>> {
        self.svc.upgrade().map(|svc| svc.cache.devices()).unwrap_or_default()
    }

    /// The profile named `name`, if a device of this service uses it.
    pub fn profile(&self, name: &str) -> Option<Arc<DeviceProfile>> {
        self.svc.upgrade()?.cache.profile(name)
    }
}
