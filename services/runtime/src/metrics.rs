//! HTTP metrics in Prometheus form, labelled by route pattern so their number stays bounded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The registry a service's metrics live in, shared by its workers.
pub type SharedRegistry = Arc<Mutex<Registry>>;

/// Prometheus' default latency buckets, in seconds.
const BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    method: String,
    route: String,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// `http_requests_total{method,route,status}` and `http_request_duration_seconds{method,route}`.
#[derive(Debug, Clone)]
pub(crate) struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
}

impl HttpMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(histogram as fn() -> Histogram),
        };
        registry.register("http_requests", "HTTP requests answered", metrics.requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, in seconds",
            metrics.duration.clone(),
        );
        metrics
    }

    /// Counts one answered request.
    pub(crate) fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let (method, route) = (method.to_owned(), route.to_owned());
        self.duration
            .get_or_create(&DurationLabels { method: method.clone(), route: route.clone() })
            .observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&RequestLabels { method, route, status }).inc();
    }
}

/// Encodes `registry` in the Prometheus text format.
pub(crate) fn encode(registry: &SharedRegistry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    // A panic while holding the lock leaves the registry usable: it only holds metric handles.
    let registry = registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}
