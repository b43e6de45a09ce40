//! device-ble: Bluetooth Low Energy peripherals, served as an EdgeX device service on port 59990.

use oxedge_device_ble::{BleDriver, DEFAULT_PORT, SERVICE_NAME};

fn main() -> anyhow::Result<()> {
    oxedge_device_sdk::main(SERVICE_NAME, env!("CARGO_PKG_VERSION"), DEFAULT_PORT, BleDriver::default())
}
