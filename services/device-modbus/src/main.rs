//! device-modbus: served as an EdgeX device service on port 59901.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "{} is not built yet (default port {})",
        oxedge_device_modbus::SERVICE_NAME,
        oxedge_device_modbus::DEFAULT_PORT
    )
}
