//! device-ble: served as an EdgeX device service on port 59990.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "{} is not built yet (default port {})",
        oxedge_device_ble::SERVICE_NAME,
        oxedge_device_ble::DEFAULT_PORT
    )
}
