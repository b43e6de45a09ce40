//! From the bus to the store: events arrive on `edgex/events/device/#`, are decoded and
//! checked, written in batches, and acknowledged to the broker only once written.
//!
//! Two tasks joined by a channel of one batch: the collector fills a batch (up to
//! `batch_size` events; once none is waiting, it waits for more until `batch_wait` after the
//! first, by default not at all) while the writer writes the previous one. When the store falls behind, the writer stops taking batches,
//! the collector stops reading the subscription, the subscription's bounded queue fills and
//! the bus backend stops taking messages from the broker: unacknowledged messages stay with
//! the broker, memory stays bounded, nothing is dropped. A write that fails is retried with
//! backoff until it succeeds or core-data stops; messages of a batch that was never written
//! are not acknowledged, so the broker delivers them again.
//!
//! A malformed message (not an envelope, not an event, invalid event, too large) is counted,
//! logged and acknowledged, so it can neither crash the subscriber nor block the topic.

use oxedge_runtime::{subscribe_retrying, Backoff};
use std::sync::Arc;

use oxedge_bus::{topic, Bus, Delivery, MessageEnvelope, SubscribeOptions};
use oxedge_contracts::{AddEventRequest, Event, Validator};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::IngestSection;
use crate::store::EventStore;

/// The durable subscription name core-data uses, so the broker keeps its events while it is down.
pub const DURABLE_NAME: &str = "core-data";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Counters of what ingestion did, served at `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct IngestMetrics {
    events: Counter,
    readings: Counter,
    duplicates: Counter,
    rejected: Family<ReasonLabel, Counter>,
    store_errors: Counter,
}

impl IngestMetrics {
    /// Counters registered in `registry` under `core_data_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register("core_data_events_persisted", "Events written to the store", m.events.clone());
        registry.register("core_data_readings_persisted", "Readings written to the store", m.readings.clone());
        registry.register(
            "core_data_events_duplicate",
            "Events received again and not stored twice",
            m.duplicates.clone(),
        );
        registry.register(
            "core_data_messages_rejected",
            "Bus messages skipped as malformed, by reason",
            m.rejected.clone(),
        );
        registry.register("core_data_store_errors", "Failed batch writes (retried)", m.store_errors.clone());
        m
    }

    /// Events persisted so far.
    pub fn events_persisted(&self) -> u64 {
        self.events.get()
    }

    /// Messages skipped as malformed so far, all reasons together.
    pub fn rejected(&self) -> u64 {
        ["too_large", "envelope", "payload", "invalid"]
            .iter()
            .map(|&reason| self.rejected.get_or_create(&ReasonLabel { reason }).get())
            .sum()
    }

    fn reject(&self, reason: &'static str) {
        self.rejected.get_or_create(&ReasonLabel { reason }).inc();
    }
}

/// Why a message was skipped.
#[derive(Debug)]
struct Rejected {
    reason: &'static str,
    message: String,
}

/// Decodes one message into a valid event.
fn decode(delivery: &Delivery, max_size: usize) -> Result<Event, Rejected> {
    let fail = |reason, message: String| Rejected { reason, message };
    if delivery.payload.len() > max_size {
        return Err(fail("too_large", format!("{} bytes exceed the {max_size}-byte limit", delivery.payload.len())));
    }
    let env =
        MessageEnvelope::from_bytes(&delivery.payload, &delivery.topic).map_err(|e| fail("envelope", e.to_string()))?;
    let req: AddEventRequest = env.payload_as().map_err(|e| fail("payload", e.to_string()))?;
    let mut v = Validator::new();
    req.event.validate(&mut v, "event");
    v.finish().map_err(|e| fail("invalid", e.message))?;
    Ok(req.event)
}

struct Batch {
    deliveries: Vec<Delivery>,
    events: Vec<Event>,
}

/// Takes events from `bus` into `store` until `shutdown`; subscribes durably (retrying until
/// the broker answers), so events published while core-data was down are delivered when it
/// comes back.
pub async fn run(
    bus: Arc<dyn Bus>,
    store: Arc<dyn EventStore>,
    cfg: IngestSection,
    metrics: IngestMetrics,
    shutdown: CancellationToken,
) {
    let options = SubscribeOptions { durable: Some(DURABLE_NAME.to_owned()), capacity: cfg.queue_capacity };
    let filters = [topic::EVENTS_FILTER.to_owned()];
    let Some(mut sub) = subscribe_retrying(&*bus, &filters, options, "events", &shutdown).await else { return };

    let (tx, rx) = mpsc::channel::<Batch>(1);
    let writer = tokio::spawn(write_batches(rx, store, metrics.clone(), shutdown.clone()));
    let wait = cfg.batch_wait();
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            d = sub.next() => d,
        };
        let Some(first) = first else { break };
        let mut deliveries = vec![first];
        let deadline = tokio::time::Instant::now() + wait;
        while deliveries.len() < cfg.batch_size {
            match sub.try_next() {
                Some(d) => deliveries.push(d),
                None => match tokio::time::timeout_at(deadline, sub.next()).await {
                    Ok(Some(d)) => deliveries.push(d),
                    _ => break,
                },
            }
        }
        let mut events = Vec::with_capacity(deliveries.len());
        for d in &deliveries {
            match decode(d, cfg.max_message_size) {
                Ok(event) => events.push(event),
                Err(r) => {
                    metrics.reject(r.reason);
                    tracing::warn!(topic = %d.topic, reason = r.reason, error = %r.message, "Malformed event message skipped.");
                }
            }
        }
        if tx.send(Batch { deliveries, events }).await.is_err() {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

async fn write_batches(
    mut rx: mpsc::Receiver<Batch>,
    store: Arc<dyn EventStore>,
    metrics: IngestMetrics,
    shutdown: CancellationToken,
) {
    while let Some(batch) = rx.recv().await {
        if !batch.events.is_empty() && !write(&*store, &batch.events, &metrics, &shutdown).await {
            // Stopping before the batch was written: leave it unacknowledged for redelivery.
            return;
        }
        for d in batch.deliveries {
            if let Err(error) = d.ack().await {
                tracing::warn!(%error, "Acknowledging a message failed; the broker may deliver it again.");
            }
        }
    }
}

/// Writes one batch, retrying with backoff; `false` if shutdown came first.
async fn write(
    store: &dyn EventStore,
    events: &[Event],
    metrics: &IngestMetrics,
    shutdown: &CancellationToken,
) -> bool {
    let mut backoff = Backoff::default();
    loop {
        match store.add_events(events).await {
            Ok(outcome) => {
                let readings: usize =
                    events.iter().filter(|e| !outcome.duplicates.contains(&e.id)).map(|e| e.readings.len()).sum();
                metrics.events.inc_by(outcome.added as u64);
                metrics.readings.inc_by(readings as u64);
                metrics.duplicates.inc_by(outcome.duplicates.len() as u64);
                return true;
            }
            Err(error) => {
                metrics.store_errors.inc();
                tracing::warn!(%error, events = events.len(), "Writing events failed; retrying.");
                if !backoff.wait(shutdown).await {
                    return false;
                }
            }
        }
    }
}
