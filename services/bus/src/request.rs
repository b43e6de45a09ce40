//! Request/reply over any [`Bus`]: publish a request, wait for the envelope with the same
//! `requestID` on `edgex/response/{service}/{requestId}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{topic, Bus, BusError, MessageEnvelope, SubscribeOptions};

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<MessageEnvelope>>>>;

/// Sends requests on behalf of one service and matches the responses to them.
pub struct Requester {
    bus: Arc<dyn Bus>,
    service: String,
    pending: Pending,
    dispatcher: JoinHandle<()>,
}

impl Drop for Requester {
    fn drop(&mut self) {
        self.dispatcher.abort();
    }
}

impl Requester {
    /// Subscribes to `edgex/response/{service}/#` and starts matching responses.
    pub async fn new(bus: Arc<dyn Bus>, service: &str) -> Result<Self, BusError> {
        let filter = topic::response(service, "#");
        let mut sub = bus.subscribe(&[filter], SubscribeOptions::default()).await?;
        let pending: Pending = Arc::default();
        let waiting = pending.clone();
        let dispatcher = tokio::spawn(async move {
            while let Some(delivery) = sub.next().await {
                match MessageEnvelope::from_bytes(&delivery.payload, &delivery.topic) {
                    Ok(env) => {
                        let waiter = waiting.lock().unwrap_or_else(PoisonError::into_inner).remove(&env.request_id);
                        match waiter {
                            Some(tx) => {
                                let _ = tx.send(env);
                            }
                            None => {
                                tracing::debug!(request_id = %env.request_id, "Response to no pending request ignored.")
                            }
                        }
                    }
                    Err(e) => tracing::warn!(topic = %delivery.topic, error = %e, "Malformed response skipped."),
                }
                let _ = delivery.ack().await;
            }
        });
        Ok(Self { bus, service: service.to_owned(), pending, dispatcher })
    }

    /// Publishes `request` on `topic` and waits up to `timeout` for its response. A request
    /// without a `requestID` gets a fresh one. A response with `errorCode` 1 is returned as
    /// is: the caller decides what the error means.
    pub async fn request(
        &self,
        topic: &str,
        mut request: MessageEnvelope,
        timeout: Duration,
    ) -> Result<MessageEnvelope, BusError> {
        if request.request_id.is_empty() {
            request.request_id = uuid::Uuid::new_v4().to_string();
        }
        let id = request.request_id.clone();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).insert(id.clone(), tx);
        let outcome = async {
            self.bus.publish(topic, request.to_bytes()?).await?;
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(env)) => Ok(env),
                Ok(Err(_)) => Err(BusError::Closed),
                Err(_) => Err(BusError::Timeout(timeout)),
            }
        }
        .await;
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        outcome
    }

    /// The topic a responder answers `request_id` on.
    pub fn response_topic(&self, request_id: &str) -> String {
        topic::response(&self.service, request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InProcessBus;

    #[tokio::test]
    async fn responses_find_their_request_and_silence_times_out() {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let mut requests = bus.subscribe(&["svc/req".into()], SubscribeOptions::default()).await.unwrap();
        let responder = bus.clone();
        tokio::spawn(async move {
            while let Some(d) = requests.next().await {
                let req = MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap();
                let answer = req.payload_as::<String>().unwrap().to_uppercase();
                let resp = MessageEnvelope::json(&answer, Some(&req.correlation_id))
                    .unwrap()
                    .with_request_id(req.request_id.clone());
                responder.publish(&topic::response("caller", &req.request_id), resp.to_bytes().unwrap()).await.unwrap();
            }
        });
        let requester = Requester::new(bus.clone(), "caller").await.unwrap();
        let req = MessageEnvelope::json("hello", None).unwrap();
        let resp = requester.request("svc/req", req, Duration::from_secs(2)).await.unwrap();
        assert_eq!(resp.payload_as::<String>().unwrap(), "HELLO");

        let lost = MessageEnvelope::json("x", None).unwrap();
        let err = requester.request("nobody/listens", lost, Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(err, BusError::Timeout(_)));
        assert!(requester.pending.lock().unwrap().is_empty());
    }
}
