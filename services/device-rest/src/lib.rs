//! device-rest: an EdgeX device service for devices that speak plain HTTP, on
//! [`oxedge_device_sdk`].
//!
//! As EdgeX's device-rest (v3/v4), both ways:
//! - devices push readings: `POST /api/v3/resource/{deviceName}/{resourceName}` with the value
//!   as text, JSON or raw bytes ([`ingest`], [`convert`]); each becomes an event on the bus;
//! - commands reach devices that serve HTTP themselves: a GET of resource `r` reads
//!   `http://{Host}:{Port}/{Path}/r`, a PUT writes it ([`endpoint`], protocol `REST`).
//!
//! [`RestDriver`] is the protocol driver; `device-rest` (src/main.rs) runs it on port 59986 and
//! `oxedge run` embeds it. Profiles, devices and a configuration are in `profiles/device-rest/`
//! and `services/device-rest/res/`.

pub mod convert;
pub mod driver;
pub mod endpoint;
pub mod ingest;

pub use driver::{RestDriver, Settings};

/// The service's name, as EdgeX's.
pub const SERVICE_NAME: &str = "device-rest";
/// The service's default HTTP port, EdgeX's.
pub const DEFAULT_PORT: u16 = 59986;
