//! The message bus trigger (`edgex-messagebus`: EdgeX message envelopes) and the external
//! MQTT trigger (`external-mqtt`: raw payloads from a broker other than the bus). Both
//! subscribe durably with a bounded capacity, so what arrives while the service is away or
//! busy waits at the broker.

use std::sync::Arc;

use oxedge_bus::{Bus, Delivery, SubscribeOptions, Subscription, CONTENT_TYPE_JSON};
use tokio_util::sync::CancellationToken;

use crate::config::TargetType;
use crate::metrics::PipelineMetrics;
use crate::pipeline::{Message, Runner};
use crate::Readiness;

/// What the trigger's messages are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// EdgeX message envelopes (the message bus).
    Envelope,
    /// Payloads as they are, taken to be JSON (an external MQTT broker).
    Raw,
}

/// Takes messages from `bus` on `filters` and hands them to `runner` until `stop`.
pub(crate) struct BusTrigger {
    pub bus: Arc<dyn Bus>,
    pub filters: Vec<String>,
    pub options: SubscribeOptions,
    pub format: Format,
    pub target: TargetType,
    pub runner: Runner,
    pub metrics: PipelineMetrics,
    pub readiness: Readiness,
}

impl BusTrigger {
    /// Subscribes (retrying while the broker refuses or is away), then feeds the runner
    /// until `stop`. Returns the subscription, to be dropped once the messages in flight are
    /// acknowledged (their acks go out on its connection).
    pub(crate) async fn run(self, stop: CancellationToken) -> Option<Subscription> {
        let mut subscription = self.subscribe(&stop).await?;
        self.readiness.set(Ok(()));
        tracing::info!(bus = %self.bus.describe(), filters = ?self.filters, "Trigger subscribed; pipelines running.");
        loop {
            let delivery = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                delivery = subscription.next() => match delivery {
                    Some(delivery) => delivery,
                    None => {
                        tracing::warn!(bus = %self.bus.describe(), "The trigger's subscription ended.");
                        self.readiness.set(Err("the trigger's subscription ended".to_owned()));
                        break;
                    }
                },
            };
            let Some(message) = self.decode(delivery).await else { continue };
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                _ = self.runner.submit(message, None) => {}
            }
        }
        Some(subscription)
    }

    async fn subscribe(&self, stop: &CancellationToken) -> Option<Subscription> {
        oxedge_runtime::retry_until_ok("the trigger's subscription", stop, || async {
            let subscribed = self.bus.subscribe(&self.filters, self.options.clone()).await;
            if let Err(error) = &subscribed {
                self.readiness.set(Err(format!("the trigger could not subscribe: {error}")));
            }
            subscribed
        })
        .await
    }

    /// The delivery as a message; a malformed one is counted, logged and acknowledged.
    async fn decode(&self, delivery: Delivery) -> Option<Message> {
        let decoded = match self.format {
            Format::Envelope => super::from_envelope(&delivery.payload, &delivery.topic, self.target),
            Format::Raw => super::from_raw(delivery.payload.clone(), CONTENT_TYPE_JSON, self.target)
                .map(|data| (uuid::Uuid::new_v4().to_string(), data)),
        };
        match decoded {
            Ok((correlation_id, data)) => {
                Some(Message { topic: delivery.topic.clone(), correlation_id, data, delivery: Some(delivery) })
            }
            Err(error) => {
                self.metrics.malformed();
                tracing::warn!(topic = %delivery.topic, %error, "Malformed message on the trigger's topic; skipped.");
                let topic = delivery.topic.clone();
                if let Err(error) = delivery.ack().await {
                    tracing::warn!(%topic, %error, "Acknowledging a malformed message failed.");
                }
                None
            }
        }
    }
}
