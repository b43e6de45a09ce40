//! device-mqtt: devices on an MQTT broker, served as an EdgeX device service on port 59982.

use oxedge_device_mqtt::{MqttDriver, DEFAULT_PORT, SERVICE_NAME};

fn main() -> anyhow::Result<()> {
    oxedge_device_sdk::main(SERVICE_NAME, env!("CARGO_PKG_VERSION"), DEFAULT_PORT, MqttDriver::default())
}
