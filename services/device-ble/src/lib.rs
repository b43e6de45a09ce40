//! device-ble: Bluetooth Low Energy peripherals as EdgeX devices, on [`oxedge_device_sdk`].
//!
//! [`BleDriver`] maps device resources to GATT characteristics by their attributes
//! ([`attributes`]): reads and writes are GATT reads and writes, resources marked
//! `notify: true` are subscribed and each notification becomes an event, and discovery
//! scans for advertising peripherals that provision watchers turn into devices. The driver
//! reaches the radio through one trait, [`Radio`]; [`bluez::BluezRadio`] (feature `bluez`, on
//! by default) is BlueZ over D-Bus. Built without it, the service runs and reports "built
//! without BLE support". Profiles, devices, a provision watcher and a configuration are in
//! `profiles/device-ble/` and `services/device-ble/res/`.

pub mod attributes;
#[cfg(feature = "bluez")]
pub mod bluez;
pub mod driver;
pub mod radio;

pub use driver::{BleDriver, Settings, PROTOCOL};
pub use radio::{Advertisement, Characteristic, NoRadio, Notification, Properties, Radio, RadioError, WriteKind};

/// The service's name, as EdgeX's.
pub const SERVICE_NAME: &str = "device-ble";
/// The service's default HTTP port.
pub const DEFAULT_PORT: u16 = 59990;
