//! [`VirtualDriver`]: simulated devices, resource by resource as their profile's attributes
//! say (see [`crate::simulation`]), with EdgeX device-virtual's randomization switches.
//!
//! As in EdgeX's device-virtual, every resource of every device keeps a current value and a
//! randomization switch (on at first). Reads simulate while the switch is on, and return the
//! current value while it is off. Writing `EnableRandomization_<Resource>` (the hidden Bool
//! resources of EdgeX's virtual profiles) sets the switch of `<Resource>`; writing a value
//! makes it the current value, and, for a resource that has no such switch in its profile,
//! turns its simulation off so that the value is read back.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use oxedge_contracts::validate::parse_duration;
use oxedge_contracts::{Device, DeviceProfile, ProtocolProperties};
use oxedge_device_sdk::WriteCommand;
use oxedge_device_sdk::{
    async_trait, CommandRequest, CommandValue, Discovered, DriverError, DriverResult, ProtocolDriver, Protocols, Sdk,
    Value,
};
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::simulation::{Kind, Spec};

/// The prefix of EdgeX's randomization switches.
const SWITCH_PREFIX: &str = "EnableRandomization_";

/// The devices of the load generator are named `{LOAD_PREFIX}{n:04}` (`load-0001`) and carry
/// their name as protocol property `other.Address`, which the provision watcher
/// `Virtual-Load-Watcher` matches.
pub const LOAD_PREFIX: &str = "load-";

/// The driver's settings: the `driver` section of the service's configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Every read first waits this long (Go duration, e.g. `2s`), to exercise timeouts.
    pub read_delay: String,
    /// Load generator: how many devices `load-0001`… to provision through discovery (the
    /// provision watcher `Virtual-Load-Watcher` gives them profile `Virtual-Load` and its
    /// auto events); 0 turns it off.
    pub load_devices: usize,
}

impl Settings {
    /// `read_delay` as a duration; the error names the key.
    pub fn read_delay(&self) -> Result<Duration, String> {
        match self.read_delay.as_str() {
            "" => Ok(Duration::ZERO),
            text => parse_duration(text)
                .ok_or_else(|| format!("driver.read_delay: '{text}' is not a duration such as 500ms or 2s")),
        }
    }
}

/// One resource of one device.
struct Slot {
    /// Reads simulate (EdgeX's `EnableRandomization`).
    simulate: bool,
    /// The value last read or written.
    current: Option<Value>,
}

/// What the driver keeps per device.
struct DeviceState {
    /// Shifts the device's sine waves so that devices do not move in step.
    phase: f64,
    slots: HashMap<String, Slot>,
}

/// The device-virtual protocol driver. Cheap to clone; clones share their devices.
#[derive(Clone)]
pub struct VirtualDriver {
    inner: Arc<Inner>,
}

struct Inner {
    settings: RwLock<Settings>,
    sdk: OnceLock<Sdk>,
    /// Profiles of devices served without the SDK's cache, by device name.
    own_profiles: RwLock<HashMap<String, Arc<DeviceProfile>>>,
    devices: Mutex<HashMap<String, DeviceState>>,
    started: Instant,
    loader: Mutex<Option<JoinHandle<()>>>,
}

impl Default for VirtualDriver {
    fn default() -> Self {
        Self::new(Settings::default())
    }
}

impl VirtualDriver {
    /// A driver with `settings`; when the SDK runs it, [`ProtocolDriver::initialize`] replaces
    /// them with the configuration's `driver` section.
    pub fn new(settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings: RwLock::new(settings),
                sdk: OnceLock::new(),
                own_profiles: RwLock::new(HashMap::new()),
                devices: Mutex::new(HashMap::new()),
                started: Instant::now(),
                loader: Mutex::new(None),
            }),
        }
    }

    /// Serves `device` with `profile` without asking the SDK for it: for a driver used on its
    /// own (embedded in a test or a benchmark).
    pub fn serve_profile(&self, device: &str, profile: DeviceProfile) {
        write(&self.inner.own_profiles).insert(device.to_owned(), Arc::new(profile));
    }

    fn settings(&self) -> Settings {
        self.inner.settings.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn profile_of(&self, device: &str) -> DriverResult<Arc<DeviceProfile>> {
        if let Some(p) = self.inner.own_profiles.read().unwrap_or_else(|e| e.into_inner()).get(device) {
            return Ok(p.clone());
        }
        let sdk = self.inner.sdk.get().ok_or_else(|| DriverError::Invalid(format!("unknown device {device}")))?;
        let d = sdk.device(device).ok_or_else(|| DriverError::Invalid(format!("unknown device {device}")))?;
        sdk.profile(&d.profile_name)
            .ok_or_else(|| DriverError::Invalid(format!("profile {} of device {device} is not known", d.profile_name)))
    }

    fn devices(&self) -> std::sync::MutexGuard<'_, HashMap<String, DeviceState>> {
        self.inner.devices.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The devices the load generator provisions.
    fn load_devices(count: usize) -> Vec<Discovered> {
        (1..=count)
            .map(|n| {
                let name = format!("{LOAD_PREFIX}{n:04}");
                let mut other = ProtocolProperties::new();
                other.insert("Address".to_owned(), name.clone().into());
                Discovered {
                    name,
                    protocols: [("other".to_owned(), other)].into(),
                    description: "device-virtual load generator".to_owned(),
                    labels: vec!["load".to_owned()],
                    ..Default::default()
                }
            })
            .collect()
    }
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// Where in its period a device's sine waves start, from its name (0..1).
fn phase_of(device: &str) -> f64 {
    let mut h = DefaultHasher::new();
    device.hash(&mut h);
    (h.finish() % 10_000) as f64 / 10_000.0
}

/// Provisions the load generator's devices until all of them are in the SDK's cache: the
/// first attempts run before the service is registered and its provision watchers loaded.
async fn provision_load(sdk: Sdk, count: usize) {
    let found = VirtualDriver::load_devices(count);
    loop {
        let present = found.iter().filter(|d| sdk.device(&d.name).is_some()).count();
        if present == count {
            tracing::info!(devices = count, "The load generator's devices are provisioned.");
            return;
        }
        let missing: Vec<Discovered> = found.iter().filter(|d| sdk.device(&d.name).is_none()).cloned().collect();
        match sdk.add_discovered(missing).await {
            Ok(added) => tracing::info!(added, present, wanted = count, "Load generator devices added."),
            Err(error) => tracing::debug!(%error, "Load generator devices not added yet; retrying."),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[async_trait]
impl ProtocolDriver for VirtualDriver {
    async fn initialize(&self, sdk: Sdk) -> DriverResult<()> {
        let settings: Settings = sdk.driver_config().map_err(|e| DriverError::Invalid(e.to_string()))?;
        settings.read_delay().map_err(DriverError::Invalid)?;
        let load = settings.load_devices;
        *write(&self.inner.settings) = settings;
        if self.inner.sdk.set(sdk.clone()).is_err() {
            return Err(DriverError::Invalid("the driver is already initialized".to_owned()));
        }
        if load > 0 {
            *self.inner.loader.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(tokio::spawn(provision_load(sdk, load)));
        }
        Ok(())
    }

    async fn handle_read_commands(
        &self,
        device: &str,
        _protocols: &Protocols,
        requests: &[CommandRequest],
    ) -> DriverResult<Vec<CommandValue>> {
        let profile = self.profile_of(device)?;
        let mut specs = Vec::with_capacity(requests.len());
        let mut delay = self.settings().read_delay().unwrap_or_default();
        for req in requests {
            let resource = profile.resource(&req.resource_name).ok_or_else(|| {
                DriverError::Invalid(format!("{} is not a resource of profile {}", req.resource_name, profile.name()))
            })?;
            let spec = Spec::of(resource).map_err(DriverError::Invalid)?;
            delay += spec.delay;
            specs.push(spec);
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some((req, _)) = requests.iter().zip(&specs).find(|(_, s)| s.fail) {
            return Err(DriverError::Failed(format!("{device} does not answer for {} (simulated)", req.resource_name)));
        }
        let elapsed = self.inner.started.elapsed();
        let mut devices = self.devices();
        let state = devices
            .entry(device.to_owned())
            .or_insert_with(|| DeviceState { phase: phase_of(device), slots: HashMap::new() });
        let mut values = Vec::with_capacity(requests.len());
        for (req, mut spec) in requests.iter().zip(specs) {
            let slot = state.slots.entry(req.resource_name.clone()).or_insert(Slot { simulate: true, current: None });
            if !slot.simulate {
                spec.kind = Kind::Constant;
            }
            let value = spec.next(slot.current.as_ref(), elapsed, state.phase);
            slot.current = Some(value.clone());
            values.push(CommandValue::new(req.resource_name.clone(), value));
        }
        Ok(values)
    }

    async fn handle_write_commands(
        &self,
        device: &str,
        _protocols: &Protocols,
        writes: &[WriteCommand],
    ) -> DriverResult<()> {
        let profile = self.profile_of(device)?;
        for WriteCommand { request: req, value: cv } in writes {
            if profile.resource(&req.resource_name).is_none() {
                return Err(DriverError::Invalid(format!(
                    "{} is not a resource of profile {}",
                    req.resource_name,
                    profile.name()
                )));
            }
            if cv.value.value_type() != req.value_type {
                return Err(DriverError::Invalid(format!(
                    "{}: a {} value cannot be written to a {} resource",
                    req.resource_name,
                    cv.value.value_type(),
                    req.value_type
                )));
            }
        }
        let mut devices = self.devices();
        let state = devices
            .entry(device.to_owned())
            .or_insert_with(|| DeviceState { phase: phase_of(device), slots: HashMap::new() });
        for WriteCommand { request: req, value: cv } in writes {
            let name = &req.resource_name;
            if let (Some(target), Value::Bool(on)) = (name.strip_prefix(SWITCH_PREFIX), &cv.value) {
                state.slots.entry(target.to_owned()).or_insert(Slot { simulate: true, current: None }).simulate = *on;
                continue;
            }
            let has_switch = profile.resource(&format!("{SWITCH_PREFIX}{name}")).is_some();
            let slot = state.slots.entry(name.clone()).or_insert(Slot { simulate: true, current: None });
            slot.current = Some(cv.value.clone());
            if !has_switch {
                slot.simulate = false;
            }
        }
        Ok(())
    }

    async fn update_device(&self, device: &Device) -> DriverResult<()> {
        self.devices().remove(&device.name);
        Ok(())
    }

    async fn remove_device(&self, device: &Device) -> DriverResult<()> {
        self.devices().remove(&device.name);
        write(&self.inner.own_profiles).remove(&device.name);
        Ok(())
    }

    async fn discover(&self) -> DriverResult<Vec<Discovered>> {
        Ok(Self::load_devices(self.settings().load_devices))
    }

    async fn stop(&self, _force: bool) {
        if let Some(loader) = self.inner.loader.lock().unwrap_or_else(|e| e.into_inner()).take() {
            loader.abort();
        }
    }
}
