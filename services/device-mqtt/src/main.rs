//! device-mqtt: served as an EdgeX device service on port 59982.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "{} is not built yet (default port {})",
        oxedge_device_mqtt::SERVICE_NAME,
        oxedge_device_mqtt::DEFAULT_PORT
    )
}
