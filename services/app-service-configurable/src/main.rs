//! app-service-configurable: pipelines from a YAML profile.

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "app-service-configurable is not built yet (default port {})",
        oxedge_app_service_configurable::DEFAULT_PORT
    )
}
