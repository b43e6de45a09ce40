//! device-modbus: Modbus TCP and RTU devices, served as an EdgeX device service on port 59901.

use oxedge_device_modbus::{ModbusDriver, DEFAULT_PORT, SERVICE_NAME};

fn main() -> anyhow::Result<()> {
    oxedge_device_sdk::main(SERVICE_NAME, env!("CARGO_PKG_VERSION"), DEFAULT_PORT, ModbusDriver::default())
}
