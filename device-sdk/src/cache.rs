//! The service's devices and their profiles, kept current from core-metadata.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use oxedge_contracts::{Device, DeviceProfile};
use tokio::sync::watch;

/// Devices of this service and the profiles they use. Every change bumps the version
/// that [`Cache::changes`] watches.
pub(crate) struct Cache {
    inner: RwLock<Inner>,
    version: watch::Sender<u64>,
}

#[derive(Default)]
struct Inner {
    devices: HashMap<String, Arc<Device>>,
    profiles: HashMap<String, Arc<DeviceProfile>>,
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Self {
        Self { inner: RwLock::new(Inner::default()), version: watch::channel(0).0 }
    }

    /// The device named `name`.
    pub fn device(&self, name: &str) -> Option<Arc<Device>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).devices.get(name).cloned()
    }

    /// The profile named `name`.
    pub fn profile(&self, name: &str) -> Option<Arc<DeviceProfile>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).profiles.get(name).cloned()
    }

    /// Every device, in no particular order.
    pub fn devices(&self) -> Vec<Arc<Device>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).devices.values().cloned().collect()
    }

    /// Watches the version, bumped on every change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}
