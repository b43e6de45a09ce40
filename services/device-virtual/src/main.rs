//! device-virtual: simulated devices, served as an EdgeX device service on port 59900.

use oxedge_device_virtual::{VirtualDriver, DEFAULT_PORT, SERVICE_NAME};

fn main() -> anyhow::Result<()> {
    oxedge_device_sdk::main(SERVICE_NAME, env!("CARGO_PKG_VERSION"), DEFAULT_PORT, VirtualDriver::default())
}
