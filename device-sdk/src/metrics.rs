//! The device service's metrics: readings, command latency, driver errors.

/// The command part's metrics.
pub(crate) struct Metrics {}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut prometheus_client::registry::Registry) -> Self {
        let _ = registry;
        todo!("metrics")
    }
}
