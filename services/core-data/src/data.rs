//! The core-data domain: events received over REST, queries, deletes; what the routes call.

use std::sync::Arc;

use oxedge_bus::{topic, Bus, MessageEnvelope};
use oxedge_contracts::{AddEventRequest, EdgeXError, ErrorKind, Event};
use tokio_util::task::TaskTracker;

use crate::retention;
use crate::store::{EventFilter, EventStore, StoreError};

/// The service name core-data announces itself with.
pub const SERVICE_NAME: &str = "core-data";

/// A store failure as the 500 EdgeX answers.
pub fn store_error(e: StoreError) -> EdgeXError {
    EdgeXError::new(ErrorKind::ServerError, e.to_string())
}

/// core-data's state, shared by its routes.
#[derive(Clone)]
pub struct CoreData {
    store: Arc<dyn EventStore>,
    bus: Option<Arc<dyn Bus>>,
    persist: bool,
    purge_batch: usize,
    background: TaskTracker,
}

impl CoreData {
    /// core-data over `store`, forwarding REST events on `bus` when there is one; stores
    /// them only when `persist`.
    pub fn new(store: Arc<dyn EventStore>, bus: Option<Arc<dyn Bus>>, persist: bool, purge_batch: usize) -> Self {
        Self { store, bus, persist, purge_batch: purge_batch.max(1), background: TaskTracker::new() }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// Background deletes started by requests; wait on it before closing the store.
    pub fn background(&self) -> &TaskTracker {
        &self.background
    }

    /// Adds an event received over REST from `service`: stores it (409 if its id is taken)
    /// unless persistence is off, then forwards it on `edgex/events/core/…`.
    pub async fn add_event(&self, service: &str, request: AddEventRequest) -> Result<(), EdgeXError> {
        let event = &request.event;
        if self.persist {
            let outcome = self.store.add_events(std::slice::from_ref(event)).await.map_err(store_error)?;
            if outcome.added == 0 {
                return Err(EdgeXError::new(
                    ErrorKind::DuplicateName,
                    format!("event id {} exists already; event ids must be unique", event.id),
                ));
            }
        }
        if let Some(bus) = &self.bus {
            let topic = topic::core_event(service, &event.profile_name, &event.device_name, &event.source_name);
            let envelope = MessageEnvelope::json(&request, None).map_err(|e| EdgeXError::server(e.to_string()))?;
            if let Err(e) = oxedge_bus::publish_envelope(&**bus, &topic, &envelope).await {
                // Stored already: the event is not lost, only not forwarded.
                tracing::warn!(error = %e, %topic, "Forwarding an event on the bus failed.");
                if !self.persist {
                    return Err(EdgeXError::new(
                        ErrorKind::ServiceUnavailable,
                        format!("event not stored (persistData is false) and not forwarded: {e}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The event with this id.
    pub async fn event(&self, id: &str) -> Result<Event, EdgeXError> {
        self.store.event(id).await.map_err(store_error)?.ok_or_else(|| EdgeXError::not_found("event", id))
    }

    /// Deletes the event with this id.
    pub async fn delete_event(&self, id: &str) -> Result<(), EdgeXError> {
        if self.store.delete_event(id).await.map_err(store_error)? {
            Ok(())
        } else {
            Err(EdgeXError::not_found("event", id))
        }
    }

    /// Starts deleting, in the background and in batches, every event matching `filter`.
    pub fn purge_in_background(&self, filter: EventFilter) {
        let store = self.store.clone();
        let batch = self.purge_batch;
        self.background.spawn(async move {
            match retention::purge(&*store, &filter, batch).await {
                Ok(deleted) => tracing::info!(deleted, ?filter, "Events deleted."),
                Err(error) => tracing::warn!(%error, ?filter, "Deleting events failed."),
            }
        });
    }
}
