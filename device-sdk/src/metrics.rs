//! The device service's metrics: readings, command latency, driver errors.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Latency buckets for device commands, in seconds: finer than Prometheus' defaults at the
/// low end, where a local driver answers.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// `device_readings_total`, `device_events_published_total`,
/// `device_command_duration_seconds{method}` and `device_driver_errors_total`.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    readings: Counter,
    events_published: Counter,
    command_duration: Family<MethodLabel, Histogram, fn() -> Histogram>,
    driver_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            readings: Counter::default(),
            events_published: Counter::default(),
            command_duration: Family::new_with_constructor(histogram as fn() -> Histogram),
            driver_errors: Counter::default(),
        }
    }
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register("device_readings", "Readings produced from driver values", m.readings.clone());
        registry.register("device_events_published", "Events published on the message bus", m.events_published.clone());
        registry.register(
            "device_command_duration_seconds",
            "Time to execute a device command (GET or SET), driver included, in seconds",
            m.command_duration.clone(),
        );
        registry.register("device_driver_errors", "Driver calls that failed or timed out", m.driver_errors.clone());
        m
    }

    /// Counts `n` readings produced.
    pub fn readings(&self, n: usize) {
        self.readings.inc_by(n as u64);
    }

    /// Counts one event published.
    pub fn event_published(&self) {
        self.events_published.inc();
    }

    /// Records how long a command took; `method` is `GET` or `SET`.
    pub fn command(&self, method: &'static str, elapsed: Duration) {
        self.command_duration.get_or_create(&MethodLabel { method }).observe(elapsed.as_secs_f64());
    }

    /// Counts one failed driver call.
    pub fn driver_error(&self) {
        self.driver_errors.inc();
    }

    /// Readings produced so far.
    #[cfg(test)]
    pub fn readings_total(&self) -> u64 {
        self.readings.get()
    }

    /// Events published so far.
    #[cfg(test)]
    pub fn events_published_total(&self) -> u64 {
        self.events_published.get()
    }

    /// Failed driver calls so far.
    #[cfg(test)]
    pub fn driver_errors_total(&self) -> u64 {
        self.driver_errors.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_under_their_edgex_style_names() {
        let mut registry = Registry::default();
        let m = Metrics::register(&mut registry);
        m.readings(5);
        m.event_published();
        m.command("GET", Duration::from_millis(2));
        m.driver_error();
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        assert!(out.contains("device_readings_total 5"), "{out}");
        assert!(out.contains("device_events_published_total 1"), "{out}");
        assert!(out.contains("device_command_duration_seconds_count{method=\"GET\"} 1"), "{out}");
        assert!(out.contains("device_driver_errors_total 1"), "{out}");
        assert_eq!((m.readings_total(), m.events_published_total(), m.driver_errors_total()), (5, 1, 1));
    }
}
