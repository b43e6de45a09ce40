//! [`BleDriver`]: GATT peripherals as EdgeX devices, through a [`Radio`].
//!
//! Each device (protocol `ble`, property `Address`) gets a link task that connects, discovers
//! its characteristics, subscribes to the resources marked `notify: true` and pushes every
//! notification as an event. When the connection is lost it reconnects with backoff and
//! subscribes again. Reads and writes go over the link's connection; while it is down they
//! fail (500), so the SDK sets the device DOWN, and UP again once a call succeeds.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use oxedge_contracts::validate::parse_duration;
use oxedge_contracts::{Device, ValueType};
use oxedge_device_sdk::WriteCommand;
use oxedge_device_sdk::{
    async_trait, CommandRequest, CommandValue, Discovered, DriverError, DriverResult, ProtocolDriver, Protocols, Sdk,
};
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::attributes::{short_uuid, Mapping};
use crate::radio::{Advertisement, NoRadio, Notification, Radio, RadioError};

/// The protocol of a device's properties: `protocols: { ble: { Address: "…" } }`.
pub const PROTOCOL: &str = "ble";

/// The driver's settings: the `driver` section of the service's configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How long discovery listens to advertisements (Go duration).
    pub scan_duration: String,
    /// How long connecting, discovering the characteristics and subscribing may take.
    pub connect_timeout: String,
    /// The first wait before reconnecting a lost peripheral; doubles up to `reconnect_max`.
    pub reconnect_min: String,
    /// The longest wait between reconnection attempts.
    pub reconnect_max: String,
}

/// [`Settings::default`] as durations.
const DEFAULT_TIMING: Timing = Timing {
    scan: Duration::from_secs(5),
    connect: Duration::from_secs(15),
    reconnect_min: Duration::from_secs(1),
    reconnect_max: Duration::from_secs(30),
};

impl Default for Settings {
    /// As [`DEFAULT_TIMING`].
    fn default() -> Self {
        Self {
            scan_duration: "5s".to_owned(),
            connect_timeout: "15s".to_owned(),
            reconnect_min: "1s".to_owned(),
            reconnect_max: "30s".to_owned(),
        }
    }
}

/// [`Settings`] as durations.
#[derive(Debug, Clone, Copy)]
struct Timing {
    scan: Duration,
    connect: Duration,
    reconnect_min: Duration,
    reconnect_max: Duration,
}

impl Settings {
    /// The settings as durations; the error names every bad key.
    fn timing(&self) -> Result<Timing, String> {
        let mut problems = Vec::new();
        let mut duration = |key: &str, text: &str| match parse_duration(text).filter(|d| !d.is_zero()) {
            Some(d) => d,
            None => {
                problems.push(format!("driver.{key}: '{text}' is not a positive duration such as 500ms or 5s"));
                Duration::ZERO
            }
        };
        let timing = Timing {
            scan: duration("scan_duration", &self.scan_duration),
            connect: duration("connect_timeout", &self.connect_timeout),
            reconnect_min: duration("reconnect_min", &self.reconnect_min),
            reconnect_max: duration("reconnect_max", &self.reconnect_max),
        };
        if problems.is_empty() {
            Ok(timing)
        } else {
            Err(problems.join("; "))
        }
    }
}

/// The device-ble protocol driver. Cheap to clone; clones share their links.
#[derive(Clone)]
pub struct BleDriver {
    inner: Arc<Inner>,
}

struct Inner {
    radio: Arc<dyn Radio>,
    timing: RwLock<Timing>,
    sdk: OnceLock<Sdk>,
    links: Mutex<HashMap<String, Arc<Link>>>,
}

/// One device's connection, kept up by its task.
struct Link {
    address: String,
    /// The device's profile when the link started (its notified resources come from it).
    profile: String,
    /// `Ok` while connected; otherwise why not.
    state: Mutex<Result<(), String>>,
    /// Held across a read-modify-write, so that two writes into one characteristic do not mix.
    writing: tokio::sync::Mutex<()>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Link {
    fn set(&self, state: Result<(), String>) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    fn connected(&self, device: &str) -> DriverResult<()> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            Ok(()) => Ok(()),
            Err(why) => Err(DriverError::Failed(format!("device {device} ({}) is not connected: {why}", self.address))),
        }
    }
}

/// A resource delivered by notifications.
#[derive(Clone)]
struct Notified {
    resource: String,
    value_type: ValueType,
    mapping: Mapping,
}

/// The radio a service built as it is uses: BlueZ with the `bluez` feature.
fn default_radio() -> Arc<dyn Radio> {
    #[cfg(feature = "bluez")]
    {
        Arc::new(crate::bluez::BluezRadio::new())
    }
    #[cfg(not(feature = "bluez"))]
    {
        Arc::new(NoRadio(
            "device-ble was built without BLE support (the `bluez` feature of oxedge-device-ble)".to_owned(),
        ))
    }
}

impl Default for BleDriver {
    /// The driver on the service's radio: BlueZ when built with the `bluez` feature (the
    /// default), else a radio that reports "built without BLE support".
    fn default() -> Self {
        Self::new(default_radio())
    }
}

impl BleDriver {
    /// A driver on `radio`.
    pub fn new(radio: Arc<dyn Radio>) -> Self {
        Self {
            inner: Arc::new(Inner {
                radio,
                timing: RwLock::new(DEFAULT_TIMING),
                sdk: OnceLock::new(),
                links: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A driver on a radio that does not exist, failing with `reason`.
    pub fn without_radio(reason: impl Into<String>) -> Self {
        Self::new(Arc::new(NoRadio(reason.into())))
    }

    fn timing(&self) -> Timing {
        *self.inner.timing.read().unwrap_or_else(|e| e.into_inner())
    }

    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Link>>> {
        self.inner.links.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The link of `device`, connected.
    fn link(&self, device: &str) -> DriverResult<Arc<Link>> {
        let link = self.links().get(device).cloned().ok_or_else(|| {
            DriverError::Failed(format!("device {device} is not connected: the service has not added it (yet)"))
        })?;
        link.connected(device)?;
        Ok(link)
    }

    /// The resources of `device`'s profile that are delivered by notifications; a resource
    /// with bad attributes is logged and left out.
    fn notified(&self, device: &Device) -> Vec<Notified> {
        let Some(profile) = self.inner.sdk.get().and_then(|sdk| sdk.profile(&device.profile_name)) else {
            return Vec::new();
        };
        let mut notified = Vec::new();
        for r in &profile.device_resources {
            let wanted = matches!(r.attributes.get("notify"), Some(Json::Bool(true)))
                || matches!(r.attributes.get("notify"), Some(Json::String(s)) if s.eq_ignore_ascii_case("true"));
            if !wanted {
                continue;
            }
            match Mapping::parse(&r.attributes, r.properties.value_type) {
                Ok(mapping) => {
                    notified.push(Notified { resource: r.name.clone(), value_type: r.properties.value_type, mapping })
                }
                Err(error) => tracing::error!(device = %device.name, resource = %r.name, %error,
                    "The resource's attributes are invalid; it is not subscribed."),
            }
        }
        notified
    }

    /// Starts (or restarts) the link of `device`.
    async fn start_link(&self, device: &Device) -> DriverResult<()> {
        let address = address_of(&device.name, &device.protocols)?;
        if let Some(old) = self.stop_link(&device.name) {
            let _ = tokio::time::timeout(Duration::from_secs(2), old).await;
        }
        let link = Arc::new(Link {
            address: address.clone(),
            profile: device.profile_name.clone(),
            state: Mutex::new(Err("connecting".to_owned())),
            writing: tokio::sync::Mutex::new(()),
            stop: CancellationToken::new(),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(run_link(self.clone(), device.name.clone(), link.clone(), self.notified(device)));
        *link.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        self.links().insert(device.name.clone(), link);
        Ok(())
    }

    /// Stops the link of `device`, if any; its task disconnects.
    fn stop_link(&self, device: &str) -> Option<JoinHandle<()>> {
        let link = self.links().remove(device)?;
        link.stop.cancel();
        let task = link.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        task
    }

    /// A radio error of `resource` of `device`, as the SDK answers it.
    fn error(device: &str, address: &str, resource: &str, error: RadioError) -> DriverError {
        match error {
            RadioError::NoSuchCharacteristic { .. } => DriverError::Invalid(format!(
                "device {device} resource {resource}: attribute characteristicUuid: {error}"
            )),
            RadioError::NotPermitted(_) => {
                DriverError::Invalid(format!("device {device} resource {resource}: {error}"))
            }
            other => DriverError::Failed(format!("device {device} ({address}) resource {resource}: {other}")),
        }
    }
}

/// The `ble` `Address` of a device, upper case; the error names the device and the property.
fn address_of(device: &str, protocols: &Protocols) -> DriverResult<String> {
    let address = protocols
        .get(PROTOCOL)
        .and_then(|p| p.get("Address"))
        .and_then(Json::as_str)
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| DriverError::Invalid(format!("device {device}: protocol property ble.Address is missing")))?;
    let valid = address.len() == 17
        && address.split(':').count() == 6
        && address.split(':').all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
    if !valid {
        return Err(DriverError::Invalid(format!(
            "device {device}: protocol property ble.Address: '{address}' is not a Bluetooth address such as AA:BB:CC:DD:EE:FF"
        )));
    }
    Ok(address.to_ascii_uppercase())
}

/// The mapping of each request; the error names the device, the resource and the attribute.
fn mappings(device: &str, requests: &[CommandRequest]) -> DriverResult<Vec<Mapping>> {
    requests
        .iter()
        .map(|r| {
            Mapping::parse(&r.attributes, r.value_type)
                .map_err(|e| DriverError::Invalid(format!("device {device} resource {}: {e}", r.resource_name)))
        })
        .collect()
}

/// Keeps `link` connected until it is stopped: connects, subscribes, pushes notifications,
/// and reconnects with backoff when the connection is lost.
async fn run_link(driver: BleDriver, device: String, link: Arc<Link>, notified: Vec<Notified>) {
    let radio = driver.inner.radio.clone();
    let address = link.address.clone();
    let mut wait = driver.timing().reconnect_min;
    loop {
        let timing = driver.timing();
        let attempt = tokio::select! {
            _ = link.stop.cancelled() => break,
            attempt = tokio::time::timeout(timing.connect, connect(&*radio, &device, &address, &notified)) => attempt,
        };
        match attempt {
            Ok(Ok((mut notifications, mut lost))) => {
                link.set(Ok(()));
                wait = timing.reconnect_min;
                tracing::info!(device, address, subscribed = notified.len(), "Connected to the peripheral.");
                let why = loop {
                    tokio::select! {
                        _ = link.stop.cancelled() => break None,
                        n = notifications.next() => match n {
                            Some(n) => deliver(&driver, &device, &notified, n).await,
                            None => break Some("its notifications ended"),
                        },
                        gone = lost.next() => match gone {
                            Some(a) if a.eq_ignore_ascii_case(&address) => break Some("the link was lost"),
                            Some(_) => {}
                            None => break Some("the radio stopped reporting disconnections"),
                        },
                    }
                };
                let Some(why) = why else { break };
                tracing::warn!(device, address, reason = why, "Connection to the peripheral lost; reconnecting.");
                link.set(Err(format!("connection lost ({why}); reconnecting")));
                continue;
            }
            Ok(Err(error)) => {
                tracing::warn!(device, address, %error, retry_in = ?wait, "Cannot connect to the peripheral.");
                link.set(Err(error.to_string()));
            }
            Err(_) => {
                tracing::warn!(device, address, retry_in = ?wait, "Connecting to the peripheral timed out.");
                link.set(Err(format!("connecting took longer than {:?}", timing.connect)));
            }
        }
        tokio::select! {
            _ = link.stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(timing.reconnect_max);
    }
    link.set(Err("the device was removed".to_owned()));
    if let Err(error) = radio.disconnect(&address).await {
        tracing::debug!(device, address, %error, "Disconnecting the peripheral failed.");
    }
}

type Streams =
    (futures_util::stream::BoxStream<'static, Notification>, futures_util::stream::BoxStream<'static, String>);

/// Connects, discovers the characteristics and subscribes to the notified resources; returns
/// the notifications and the disconnections, both listened to before connecting.
async fn connect(radio: &dyn Radio, device: &str, address: &str, notified: &[Notified]) -> Result<Streams, RadioError> {
    let lost = radio.disconnections().await?;
    radio.connect(address).await?;
    let characteristics = radio.characteristics(address).await?;
    let notifications = radio.notifications(address).await?;
    let mut done: Vec<(Uuid, Uuid)> = Vec::new();
    for n in notified {
        let key = (n.mapping.service, n.mapping.characteristic);
        if done.contains(&key) {
            continue;
        }
        let found = characteristics.iter().find(|c| c.service == key.0 && c.uuid == key.1);
        match found {
            None => tracing::error!(device, resource = %n.resource,
                service = %short_uuid(key.0), characteristic = %short_uuid(key.1),
                "attribute characteristicUuid: the peripheral has no such characteristic; not subscribed."),
            Some(c) if !(c.properties.notify || c.properties.indicate) => {
                tracing::error!(device, resource = %n.resource,
                characteristic = %short_uuid(key.1),
                "attribute notify: the characteristic does not notify; not subscribed.")
            }
            Some(_) => {
                radio.subscribe(address, key.0, key.1).await?;
                done.push(key);
            }
        }
    }
    Ok((notifications, lost))
}

/// Pushes notification `n` as an event of each resource it carries.
async fn deliver(driver: &BleDriver, device: &str, notified: &[Notified], n: Notification) {
    let Some(sdk) = driver.inner.sdk.get() else { return };
    for r in notified.iter().filter(|r| r.mapping.service == n.service && r.mapping.characteristic == n.characteristic)
    {
        let value = match r.mapping.decode(&n.value, r.value_type) {
            Ok(value) => value,
            Err(error) => {
                tracing::warn!(device, resource = %r.resource, %error, "A notification does not match the resource's attributes; dropped.");
                continue;
            }
        };
        if let Err(error) = sdk.push(device, &r.resource, vec![CommandValue::new(&r.resource, value)]).await {
            tracing::warn!(device, resource = %r.resource, %error, "A notification could not be published.");
        }
    }
}

/// A discovered peripheral as the SDK's provision watchers see it.
fn discovered(ad: Advertisement) -> Discovered {
    let label: String = ad
        .name
        .as_deref()
        .unwrap_or("BLE")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    let services = ad.services.iter().map(|u| short_uuid(*u)).collect::<Vec<_>>().join(",");
    let mut ble = oxedge_contracts::ProtocolProperties::new();
    ble.insert("Address".to_owned(), ad.address.clone().into());
    let mut properties = Map::new();
    properties.insert("Address".to_owned(), ad.address.clone().into());
    properties.insert("ServiceUuids".to_owned(), services.into());
    if let Some(name) = &ad.name {
        ble.insert("Name".to_owned(), name.clone().into());
        properties.insert("Name".to_owned(), name.clone().into());
    }
    if let Some(rssi) = ad.rssi {
        properties.insert("Rssi".to_owned(), rssi.into());
    }
    Discovered {
        name: format!("{label}-{}", ad.address.replace(':', "")),
        protocols: [(PROTOCOL.to_owned(), ble)].into(),
        description: format!("BLE peripheral {} discovered by device-ble", ad.address),
        labels: vec!["ble".to_owned()],
        properties,
    }
}

#[async_trait]
impl ProtocolDriver for BleDriver {
    async fn initialize(&self, sdk: Sdk) -> DriverResult<()> {
        let settings: Settings = sdk.driver_config().map_err(|e| DriverError::Invalid(e.to_string()))?;
        let timing = settings.timing().map_err(|e| DriverError::Invalid(format!("Invalid configuration: {e}")))?;
        *self.inner.timing.write().unwrap_or_else(|e| e.into_inner()) = timing;
        let _ = self.inner.sdk.set(sdk);
        match self.inner.radio.check().await {
            Ok(()) => tracing::info!("Bluetooth adapter ready."),
            Err(error) => tracing::error!(%error,
                "Bluetooth is not usable; the service runs, reports it in /api/v3/health and retries on each use."),
        }
        Ok(())
    }

    async fn handle_read_commands(
        &self,
        device: &str,
        protocols: &Protocols,
        requests: &[CommandRequest],
    ) -> DriverResult<Vec<CommandValue>> {
        address_of(device, protocols)?;
        let mappings = mappings(device, requests)?;
        let link = self.link(device)?;
        // One GATT read per characteristic, however many resources it holds.
        let mut read: HashMap<(Uuid, Uuid), Vec<u8>> = HashMap::new();
        let mut values = Vec::with_capacity(requests.len());
        for (r, m) in requests.iter().zip(&mappings) {
            let key = (m.service, m.characteristic);
            let bytes = match read.entry(key) {
                Entry::Occupied(bytes) => bytes.into_mut(),
                Entry::Vacant(slot) => slot.insert(
                    self.inner
                        .radio
                        .read(&link.address, m.service, m.characteristic)
                        .await
                        .map_err(|e| Self::error(device, &link.address, &r.resource_name, e))?,
                ),
            };
            let value = m.decode(bytes, r.value_type).map_err(|e| {
                DriverError::Invalid(format!(
                    "device {device} resource {}: attributes rawType/offset/length: {e}",
                    r.resource_name
                ))
            })?;
            values.push(CommandValue::new(&r.resource_name, value));
        }
        Ok(values)
    }

    async fn handle_write_commands(
        &self,
        device: &str,
        protocols: &Protocols,
        writes: &[WriteCommand],
    ) -> DriverResult<()> {
        address_of(device, protocols)?;
        let requests: Vec<CommandRequest> = writes.iter().map(|w| w.request.clone()).collect();
        let mappings = mappings(device, &requests)?;
        let link = self.link(device)?;
        let _one_writer = link.writing.lock().await;
        for (WriteCommand { request: r, value: v }, m) in writes.iter().zip(&mappings) {
            let fail = |e| Self::error(device, &link.address, &r.resource_name, e);
            let current = match m.offset {
                0 => None,
                _ => Some(self.inner.radio.read(&link.address, m.service, m.characteristic).await.map_err(fail)?),
            };
            let bytes = m.encode(&v.value, current.as_deref()).map_err(|e| {
                DriverError::Invalid(format!(
                    "device {device} resource {}: attributes rawType/offset/length: {e}",
                    r.resource_name
                ))
            })?;
            self.inner
                .radio
                .write(&link.address, m.service, m.characteristic, &bytes, m.write_kind)
                .await
                .map_err(fail)?;
        }
        Ok(())
    }

    async fn add_device(&self, device: &Device) -> DriverResult<()> {
        self.start_link(device).await
    }

    /// Restarts the device's link when its address or profile changed; other changes (its
    /// operating or admin state, labels) leave the connection as it is.
    async fn update_device(&self, device: &Device) -> DriverResult<()> {
        let unchanged = self.links().get(&device.name).is_some_and(|link| {
            address_of(&device.name, &device.protocols).is_ok_and(|a| a == link.address)
                && link.profile == device.profile_name
        });
        if unchanged {
            return Ok(());
        }
        self.start_link(device).await
    }

    async fn remove_device(&self, device: &Device) -> DriverResult<()> {
        if let Some(task) = self.stop_link(&device.name) {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
        Ok(())
    }

    async fn discover(&self) -> DriverResult<Vec<Discovered>> {
        let found = self.inner.radio.scan(self.timing().scan).await.map_err(|e| DriverError::Failed(e.to_string()))?;
        tracing::info!(peripherals = found.len(), "BLE scan finished.");
        Ok(found.into_iter().map(discovered).collect())
    }

    async fn validate_device(&self, device: &Device) -> DriverResult<()> {
        address_of(&device.name, &device.protocols).map(|_| ())
    }

    async fn health(&self) -> Result<(), String> {
        self.inner.radio.check().await.map_err(|e| e.to_string())
    }

    async fn stop(&self, _force: bool) {
        let names: Vec<String> = self.links().keys().cloned().collect();
        let tasks: Vec<JoinHandle<()>> = names.iter().filter_map(|n| self.stop_link(n)).collect();
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_upper_cased() {
        let protocols = |a: &str| -> Protocols {
            let mut p = oxedge_contracts::ProtocolProperties::new();
            p.insert("Address".into(), a.into());
            [(PROTOCOL.to_owned(), p)].into()
        };
        assert_eq!(address_of("d", &protocols("aa:bb:cc:dd:ee:0f")), Ok("AA:BB:CC:DD:EE:0F".to_owned()));
        let err = address_of("d", &protocols("aa:bb:cc")).unwrap_err().to_string();
        assert!(err.contains("device d") && err.contains("ble.Address"), "{err}");
        let err = address_of("d", &Protocols::new()).unwrap_err().to_string();
        assert!(err.contains("ble.Address is missing"), "{err}");
    }

    #[test]
    fn settings_default_and_bad_keys_are_named() {
        assert!(Settings::default().timing().is_ok());
        let bad = Settings { scan_duration: "soon".into(), reconnect_max: "0s".into(), ..Default::default() };
        let err = bad.timing().unwrap_err();
        assert!(err.contains("driver.scan_duration") && err.contains("driver.reconnect_max"), "{err}");
    }

    #[test]
    fn advertisements_become_discovered_devices_with_matchable_properties() {
        let d = discovered(Advertisement {
            address: "C0:FF:EE:00:00:01".into(),
            name: Some("Polar H10 1234".into()),
            services: vec![
                crate::attributes::parse_uuid("180D").unwrap(),
                crate::attributes::parse_uuid("180F").unwrap(),
            ],
            rssi: Some(-61),
        });
        assert_eq!(d.name, "Polar-H10-1234-C0FFEE000001");
        assert_eq!(d.protocols["ble"]["Address"], "C0:FF:EE:00:00:01");
        assert_eq!(d.properties["ServiceUuids"], "180D,180F");
        assert_eq!(d.properties["Rssi"], -61);
    }
}
