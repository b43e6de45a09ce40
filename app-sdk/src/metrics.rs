//! The pipelines' and the trigger's metrics.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Processing latency buckets, in seconds: a pipeline of local functions takes microseconds.
const BUCKETS: [f64; 14] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipelineLabel {
    pipeline: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    pipeline: String,
    function: String,
}

type Counters = Family<PipelineLabel, Counter>;

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// `app_pipeline_messages_{received,processed,filtered,failed,given_up}_total{pipeline}`,
/// `app_pipeline_function_errors_total{pipeline,function}`,
/// `app_pipeline_processing_seconds{pipeline}`, `app_trigger_messages_malformed_total`,
/// `app_trigger_messages_unmatched_total` and `app_trigger_in_flight`.
#[derive(Debug, Clone)]
pub struct PipelineMetrics {
    received: Counters,
    processed: Counters,
    filtered: Counters,
    failed: Counters,
    given_up: Counters,
    function_errors: Family<FunctionLabels, Counter>,
    processing: Family<PipelineLabel, Histogram, fn() -> Histogram>,
    malformed: Counter,
    unmatched: Counter,
    in_flight: Gauge,
}

impl Default for PipelineMetrics {
    fn default() -> Self {
        Self {
            received: Counters::default(),
            processed: Counters::default(),
            filtered: Counters::default(),
            failed: Counters::default(),
            given_up: Counters::default(),
            function_errors: Family::default(),
            processing: Family::new_with_constructor(histogram as fn() -> Histogram),
            malformed: Counter::default(),
            unmatched: Counter::default(),
            in_flight: Gauge::default(),
        }
    }
}

fn label(pipeline: &str) -> PipelineLabel {
    PipelineLabel { pipeline: pipeline.to_owned() }
}

impl PipelineMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let counters = [
            ("app_pipeline_messages_received", "Messages a pipeline was given", &m.received),
            (
                "app_pipeline_messages_processed",
                "Messages that went through every function of a pipeline",
                &m.processed,
            ),
            (
                "app_pipeline_messages_filtered",
                "Messages a function ended early (filtered out, or held by a batch)",
                &m.filtered,
            ),
            ("app_pipeline_messages_failed", "Messages stopped by a function error", &m.failed),
            ("app_pipeline_messages_given_up", "Messages an export gave up on (drop policy, rejected)", &m.given_up),
        ];
        for (name, help, family) in counters {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "app_pipeline_function_errors",
            "Errors returned by a pipeline function",
            m.function_errors.clone(),
        );
        registry.register(
            "app_pipeline_processing_seconds",
            "Time a message spends in a pipeline's functions, in seconds",
            m.processing.clone(),
        );
        registry.register(
            "app_trigger_messages_malformed",
            "Trigger messages that could not be decoded",
            m.malformed.clone(),
        );
        registry.register(
            "app_trigger_messages_unmatched",
            "Trigger messages no pipeline's topics match",
            m.unmatched.clone(),
        );
        registry.register(
            "app_trigger_in_flight",
            "Messages taken from the trigger and not yet finished",
            m.in_flight.clone(),
        );
        m
    }

    pub(crate) fn received(&self, pipeline: &str) {
        self.received.get_or_create(&label(pipeline)).inc();
    }

    pub(crate) fn processed(&self, pipeline: &str, elapsed: Duration) {
        self.processed.get_or_create(&label(pipeline)).inc();
        self.processing.get_or_create(&label(pipeline)).observe(elapsed.as_secs_f64());
    }

    pub(crate) fn filtered(&self, pipeline: &str, elapsed: Duration) {
        self.filtered.get_or_create(&label(pipeline)).inc();
        self.processing.get_or_create(&label(pipeline)).observe(elapsed.as_secs_f64());
    }

    pub(crate) fn failed(&self, pipeline: &str, function: &str) {
        self.failed.get_or_create(&label(pipeline)).inc();
        let labels = FunctionLabels { pipeline: pipeline.to_owned(), function: function.to_owned() };
        self.function_errors.get_or_create(&labels).inc();
    }

    pub(crate) fn given_up(&self, pipeline: &str) {
        self.given_up.get_or_create(&label(pipeline)).inc();
    }

    pub(crate) fn malformed(&self) {
        self.malformed.inc();
    }

    pub(crate) fn unmatched(&self) {
        self.unmatched.inc();
    }

    pub(crate) fn set_in_flight(&self, n: usize) {
        self.in_flight.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_with_their_labels() {
        let mut registry = Registry::default();
        let m = PipelineMetrics::register(&mut registry);
        m.received("p1");
        m.processed("p1", Duration::from_micros(30));
        m.failed("p1", "FilterByDeviceName");
        m.malformed();
        m.set_in_flight(3);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        for line in [
            "app_pipeline_messages_received_total{pipeline=\"p1\"} 1",
            "app_pipeline_function_errors_total{pipeline=\"p1\",function=\"FilterByDeviceName\"} 1",
            "app_pipeline_processing_seconds_count{pipeline=\"p1\"} 1",
            "app_trigger_messages_malformed_total 1",
            "app_trigger_in_flight 3",
        ] {
            assert!(out.contains(line), "{line} not in {out}");
        }
    }
}
