//! Export metrics, labelled by export name.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExportLabels {
    export: String,
}

/// Where queued messages wait.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum Place {
    memory,
    store,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueuedLabels {
    export: String,
    place: Place,
}

/// Why a message was dropped unsent.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum DropReason {
    /// The store was full (drop policy).
    policy,
    /// Older than `max_age`.
    age,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DroppedLabels {
    export: String,
    reason: DropReason,
}

/// `app_export_sent_total`, `app_export_failed_total`, `app_export_retried_total`,
/// `app_export_dropped_total{reason}` and `app_export_queued{place}`, each by `export`.
#[derive(Debug, Clone, Default)]
pub struct ExportMetrics {
    sent: Family<ExportLabels, Counter>,
    failed: Family<ExportLabels, Counter>,
    retried: Family<ExportLabels, Counter>,
    dropped: Family<DroppedLabels, Counter>,
    queued: Family<QueuedLabels, Gauge>,
}

impl ExportMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register("app_export_sent", "Messages an export delivered", metrics.sent.clone());
        registry.register(
            "app_export_failed",
            "Messages an export's destination rejected for good (not retried)",
            metrics.failed.clone(),
        );
        registry.register("app_export_retried", "Sends an export tried again", metrics.retried.clone());
        registry.register(
            "app_export_dropped",
            "Messages dropped unsent: store full (reason policy) or too old (reason age)",
            metrics.dropped.clone(),
        );
        registry.register(
            "app_export_queued",
            "Messages waiting to be sent, in memory or in the store",
            metrics.queued.clone(),
        );
        metrics
    }

    fn labels(export: &str) -> ExportLabels {
        ExportLabels { export: export.to_owned() }
    }

    /// Messages `export` delivered.
    pub fn sent(&self, export: &str) -> u64 {
        self.sent.get_or_create(&Self::labels(export)).get()
    }

    /// Messages `export`'s destination rejected.
    pub fn failed(&self, export: &str) -> u64 {
        self.failed.get_or_create(&Self::labels(export)).get()
    }

    /// Sends `export` tried again.
    pub fn retried(&self, export: &str) -> u64 {
        self.retried.get_or_create(&Self::labels(export)).get()
    }

    /// Messages `export` dropped because its store was full.
    pub fn dropped_by_policy(&self, export: &str) -> u64 {
        self.dropped.get_or_create(&DroppedLabels { export: export.to_owned(), reason: DropReason::policy }).get()
    }

    /// Messages `export` dropped because they were older than `max_age`.
    pub fn dropped_by_age(&self, export: &str) -> u64 {
        self.dropped.get_or_create(&DroppedLabels { export: export.to_owned(), reason: DropReason::age }).get()
    }

    /// Messages `export` holds in memory now.
    pub fn queued_in_memory(&self, export: &str) -> i64 {
        self.queued.get_or_create(&QueuedLabels { export: export.to_owned(), place: Place::memory }).get()
    }

    /// Messages `export` holds in its store now.
    pub fn queued_in_store(&self, export: &str) -> i64 {
        self.queued.get_or_create(&QueuedLabels { export: export.to_owned(), place: Place::store }).get()
    }

    pub(crate) fn add_sent(&self, export: &str) {
        self.sent.get_or_create(&Self::labels(export)).inc();
    }

    pub(crate) fn add_failed(&self, export: &str) {
        self.failed.get_or_create(&Self::labels(export)).inc();
    }

    pub(crate) fn add_retried(&self, export: &str) {
        self.retried.get_or_create(&Self::labels(export)).inc();
    }

    pub(crate) fn add_dropped(&self, export: &str, reason: DropReason, n: u64) {
        self.dropped.get_or_create(&DroppedLabels { export: export.to_owned(), reason }).inc_by(n);
    }

    pub(crate) fn set_queued(&self, export: &str, place: Place, n: u64) {
        self.queued.get_or_create(&QueuedLabels { export: export.to_owned(), place }).set(n as i64);
    }
}
