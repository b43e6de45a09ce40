//! device-modbus: an EdgeX device service for Modbus TCP and RTU devices, on
//! [`oxedge_device_sdk`].
//!
//! [`ModbusDriver`] is the protocol driver; `device-modbus` (src/main.rs) runs it as a device
//! service on port 59901, and `oxedge run` embeds it. Devices carry EdgeX's `modbus-tcp` or
//! `modbus-rtu` protocol properties ([`connection`]) and their profiles EdgeX's Modbus
//! resource attributes ([`resource`]); EdgeX's own Modbus profiles work unchanged. The reads of
//! one command are coalesced into as few requests as the register map allows ([`plan`]).
//! Profiles, devices and a configuration are in `profiles/device-modbus/`.

pub mod connection;
pub mod driver;
pub mod plan;
pub mod resource;

pub use driver::{ModbusDriver, Settings};

/// The service's name, as EdgeX's.
pub const SERVICE_NAME: &str = "device-modbus";
/// The service's default HTTP port.
pub const DEFAULT_PORT: u16 = 59901;
