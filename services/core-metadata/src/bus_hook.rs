//! Publishing system events on the message bus, in the order they happened.

use std::sync::Arc;

use oxedge_bus::{Bus, MessageEnvelope};
use oxedge_contracts::SystemEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metadata::SystemEventHook;

/// How many system events may wait for the bus before new ones are dropped (and logged).
const QUEUE: usize = 4096;

/// A [`SystemEventHook`] that publishes each event on
/// `edgex/system-events/core-metadata/{type}/{action}/{owner}/{profile}`.
///
/// A change never waits for the bus: events queue (bounded) for one publishing task, which
/// publishes them in order, retrying while the broker is away. System events tell other
/// services to refresh caches; when the queue overflows during a long bus outage, the
/// oldest are kept, the newest dropped and counted in the log.
pub struct BusHook {
    tx: mpsc::Sender<(String, SystemEvent)>,
}

impl BusHook {
    /// A hook publishing on `bus` until `shutdown`.
    pub fn new(bus: Arc<dyn Bus>, shutdown: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(publish(bus, rx, shutdown));
        Self { tx }
    }
}

impl SystemEventHook for BusHook {
    fn announce(&self, event: SystemEvent, profile: &str) {
        let topic = event.topic(&oxedge_bus::topic::encode(profile));
        if let Err(e) = self.tx.try_send((topic, event)) {
            tracing::warn!(error = %e, "System event dropped: the bus is not keeping up.");
        }
    }
}

async fn publish(bus: Arc<dyn Bus>, mut rx: mpsc::Receiver<(String, SystemEvent)>, shutdown: CancellationToken) {
    while let Some((topic, event)) = tokio::select! { _ = shutdown.cancelled() => None, m = rx.recv() => m } {
        let envelope = match MessageEnvelope::json(&event, None).and_then(|e| e.to_bytes()) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, %topic, "System event could not be encoded.");
                continue;
            }
        };
        let publishing = oxedge_runtime::retry_until_ok("the bus, for a system event,", &shutdown, || {
            bus.publish(&topic, envelope.clone())
        });
        if publishing.await.is_none() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxedge_bus::{InProcessBus, SubscribeOptions};

    #[tokio::test]
    async fn system_events_are_published_in_order_on_edgex_topics() {
        let bus = Arc::new(InProcessBus::new());
        let mut sub = bus.subscribe(&["edgex/system-events/#".into()], SubscribeOptions::default()).await.unwrap();
        let hook = BusHook::new(bus, CancellationToken::new());
        for action in ["add", "update", "delete"] {
            let ev = SystemEvent::new(
                "core-metadata",
                "device",
                action,
                "device-virtual",
                serde_json::json!({"name": "d"}),
                1,
            );
            hook.announce(ev, "Random Profile");
        }
        for action in ["add", "update", "delete"] {
            let d = sub.next().await.unwrap();
            assert_eq!(
                d.topic,
                format!("edgex/system-events/core-metadata/device/{action}/device-virtual/Random%20Profile")
            );
            let ev: SystemEvent = MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap().payload_as().unwrap();
            assert_eq!(ev.action, action);
        }
    }
}
