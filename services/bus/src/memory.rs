//! The in-process backend: subscribers in this process only, for unit tests and for a
//! single process that needs no broker.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::topic;
use crate::{Bus, BusError, Bytes, Delivery, SubscribeOptions, Subscription};

struct Subscriber {
    filters: Vec<String>,
    tx: mpsc::Sender<Delivery>,
}

/// A bus inside one process. `publish` waits while a matching subscriber's queue is full,
/// so a slow subscriber slows publishers down; nothing is dropped. Durable names are
/// accepted and mean nothing: nothing outlives the process.
#[derive(Clone, Default)]
pub struct InProcessBus {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
}

impl InProcessBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        if !topic::is_valid_topic(topic) {
            return Err(BusError::Refused(format!("'{topic}' is not a topic one can publish on")));
        }
        let targets: Vec<mpsc::Sender<Delivery>> = {
            let mut subs = self.subscribers.lock().unwrap_or_else(PoisonError::into_inner);
            subs.retain(|s| !s.tx.is_closed());
            subs.iter().filter(|s| s.filters.iter().any(|f| topic::matches(f, topic))).map(|s| s.tx.clone()).collect()
        };
        for tx in targets {
            // A subscriber gone meanwhile is not an error of the publisher.
            let _ = tx.send(Delivery::new(topic.to_owned(), payload.clone())).await;
        }
        Ok(())
    }

    async fn subscribe(&self, filters: &[String], options: SubscribeOptions) -> Result<Subscription, BusError> {
        if let Some(bad) = filters.iter().find(|f| !topic::is_valid_filter(f)) {
            return Err(BusError::Refused(format!("'{bad}' is not a valid topic filter")));
        }
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Subscriber { filters: filters.to_vec(), tx });
        Ok(Subscription::new(rx))
    }

    fn is_connected(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        "in-process".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn subscribers_get_what_matches_their_filters() {
        let bus = InProcessBus::new();
        let mut all = bus.subscribe(&["a/#".into()], SubscribeOptions::default()).await.unwrap();
        let mut one = bus.subscribe(&["a/+/c".into()], SubscribeOptions::default()).await.unwrap();
        bus.publish("a/b/c", Bytes::from_static(b"1")).await.unwrap();
        bus.publish("a/b/d", Bytes::from_static(b"2")).await.unwrap();
        assert_eq!(all.next().await.unwrap().payload, "1");
        assert_eq!(all.next().await.unwrap().payload, "2");
        let d = one.next().await.unwrap();
        assert_eq!((d.topic.as_str(), &d.payload[..]), ("a/b/c", &b"1"[..]));
        assert!(one.try_next().is_none());
    }

    #[tokio::test]
    async fn a_full_subscriber_holds_the_publisher_back() {
        let bus = InProcessBus::new();
        let mut sub = bus.subscribe(&["t".into()], SubscribeOptions { durable: None, capacity: 1 }).await.unwrap();
        bus.publish("t", Bytes::from_static(b"1")).await.unwrap();
        let blocked = tokio::time::timeout(Duration::from_millis(50), bus.publish("t", Bytes::from_static(b"2"))).await;
        assert!(blocked.is_err(), "publish must wait while the subscriber is full");
        assert_eq!(sub.next().await.unwrap().payload, "1");
    }

    #[tokio::test]
    async fn wildcards_are_refused_where_they_do_not_belong() {
        let bus = InProcessBus::new();
        assert!(matches!(bus.publish("a/#", Bytes::new()).await, Err(BusError::Refused(_))));
        assert!(matches!(
            bus.subscribe(&["a/#/b".into()], SubscribeOptions::default()).await,
            Err(BusError::Refused(_))
        ));
    }
}
