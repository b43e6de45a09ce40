//! device-mqtt: an EdgeX device service for devices that speak MQTT, on [`oxedge_device_sdk`].
//!
//! [`MqttDriver`] is the protocol driver, as EdgeX 3/4's device-mqtt: devices publish
//! readings on `incoming/data/{device-name}/{source-name}`, and take commands on
//! `{CommandTopic}/{resource}/{get|set}/{uuid}`, answering on `command/response/{uuid}`.
//! `device-mqtt` (src/main.rs) runs it on port 59982, and `oxedge run` can embed it.
//! Profiles, devices and a configuration are in `profiles/device-mqtt/`;
//! `docs/device-services.md` is the guide.

pub mod config;
pub mod driver;
pub mod incoming;
pub mod metrics;

pub use config::Settings;
pub use driver::MqttDriver;

/// The service's name, as EdgeX's.
pub const SERVICE_NAME: &str = "device-mqtt";
/// The service's default HTTP port.
pub const DEFAULT_PORT: u16 = 59982;
