//! device-virtual: simulated devices, served as an EdgeX device service on port 59900.

use oxedge_device_virtual::VirtualDriver;

fn main() -> anyhow::Result<()> {
    oxedge_device_sdk::main("device-virtual", env!("CARGO_PKG_VERSION"), 59900, VirtualDriver::default())
}
