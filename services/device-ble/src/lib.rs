//! device-ble: an EdgeX device service on [`oxedge_device_sdk`].

/// The service's name, as EdgeX's.
pub const SERVICE_NAME: &str = "device-ble";
/// The service's default HTTP port.
pub const DEFAULT_PORT: u16 = 59990;
