//! The service's devices and their profiles, kept current from core-metadata.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use oxedge_contracts::{Device, DeviceProfile, OperatingState};
use tokio::sync::watch;

/// Devices of this service and the profiles they use. Every change bumps the version
/// that [`Cache::changes`] watches.
pub(crate) struct Cache {
    inner: RwLock<Inner>,
    version: watch::Sender<u64>,
    /// Set by the initial load ([`Cache::replace_all`]).
    loaded: AtomicBool,
}

#[derive(Default)]
struct Inner {
    devices: HashMap<String, Arc<Device>>,
    profiles: HashMap<String, Arc<DeviceProfile>>,
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Self {
        Self { inner: RwLock::new(Inner::default()), version: watch::channel(0).0, loaded: AtomicBool::new(false) }
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

    /// Whether the devices and profiles have been loaded from core-metadata once.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Watches the version, bumped on every change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Adds or replaces `device`; returns the device it replaced.
    pub fn upsert_device(&self, device: Device) -> Option<Arc<Device>> {
        let old = self.write().devices.insert(device.name.clone(), Arc::new(device));
        self.bump();
        old
    }

    /// Removes the device named `name`, and its profile when no other device uses it;
    /// returns the device removed.
    pub fn remove_device(&self, name: &str) -> Option<Arc<Device>> {
        let mut inner = self.write();
        let old = inner.devices.remove(name)?;
        if !inner.devices.values().any(|d| d.profile_name == old.profile_name) {
            inner.profiles.remove(&old.profile_name);
        }
        drop(inner);
        self.bump();
        Some(old)
    }

    /// Adds or replaces `profile`.
    pub fn upsert_profile(&self, profile: DeviceProfile) {
        self.write().profiles.insert(profile.info.name.clone(), Arc::new(profile));
        self.bump();
    }

    /// Sets the operating state of the device named `name`; false when there is no such device.
    pub fn set_operating_state(&self, name: &str, state: OperatingState) -> bool {
        let mut inner = self.write();
        let Some(device) = inner.devices.get_mut(name) else { return false };
        if device.operating_state == state {
            return true;
        }
        Arc::make_mut(device).operating_state = state;
        drop(inner);
        self.bump();
        true
    }

    /// Replaces everything with `devices` and `profiles` (the initial load).
    pub fn replace_all(&self, devices: Vec<Device>, profiles: Vec<DeviceProfile>) {
        let mut inner = self.write();
        inner.devices = devices.into_iter().map(|d| (d.name.clone(), Arc::new(d))).collect();
        inner.profiles = profiles.into_iter().map(|p| (p.info.name.clone(), Arc::new(p))).collect();
        drop(inner);
        self.loaded.store(true, Ordering::Release);
        self.bump();
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(name: &str, profile: &str) -> Device {
        serde_json::from_value(serde_json::json!({
            "name": name, "adminState": "UNLOCKED", "operatingState": "UP", "serviceName": "s",
            "profileName": profile, "protocols": {"p": {}}
        }))
        .unwrap()
    }

    fn profile(name: &str) -> DeviceProfile {
        serde_json::from_value(serde_json::json!({"name": name})).unwrap()
    }

    #[test]
    fn every_change_bumps_the_version() {
        let cache = Cache::new();
        let changes = cache.changes();
        assert!(!cache.is_loaded());
        cache.replace_all(vec![device("a", "p")], vec![profile("p")]);
        assert_eq!(*changes.borrow(), 1);
        assert!(cache.is_loaded());
        assert!(cache.upsert_device(device("b", "p")).is_none());
        assert!(cache.set_operating_state("a", OperatingState::Down));
        assert_eq!(cache.device("a").unwrap().operating_state, OperatingState::Down);
        assert!(!cache.set_operating_state("zz", OperatingState::Down));
        assert_eq!(*changes.borrow(), 3);
        cache.remove_device("a");
        assert!(cache.profile("p").is_some(), "b still uses p");
        cache.remove_device("b");
        assert!(cache.profile("p").is_none());
        assert!(cache.devices().is_empty());
        assert_eq!(*changes.borrow(), 5);
    }
}
