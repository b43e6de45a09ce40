//! device-rest: served as an EdgeX device service on port 59986.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "{} is not built yet (default port {})",
        oxedge_device_rest::SERVICE_NAME,
        oxedge_device_rest::DEFAULT_PORT
    )
}
