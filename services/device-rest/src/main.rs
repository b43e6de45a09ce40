//! device-rest: devices that push readings over HTTP or serve an HTTP endpoint, served as an
//! EdgeX device service on port 59986.

use oxedge_device_rest::{RestDriver, DEFAULT_PORT, SERVICE_NAME};

fn main() -> anyhow::Result<()> {
    oxedge_device_sdk::main(SERVICE_NAME, env!("CARGO_PKG_VERSION"), DEFAULT_PORT, RestDriver::default())
}
