//! The message bus every Oxedge service talks on.
//!
//! One object-safe trait, [`Bus`], with three backends: MQTT (rumqttc; the all-in-one
//! embeds rumqttd, behind the `embedded` feature), NATS (async-nats, JetStream for durable subscriptions) and
//! [`InProcessBus`] for unit tests. Topics are written in MQTT syntax (`a/+/c`, `a/#`)
//! whatever the backend; NATS backends map them to subjects ([`topic::to_nats_subject`]).
//!
//! Messages are bytes: most carry an EdgeX [`MessageEnvelope`] as JSON, and consumers
//! decode them themselves so that a malformed message can be counted and skipped.
//!
//! Delivery guarantees: [`Bus::publish`] returns once the broker has the message (MQTT
//! QoS 1 `PUBACK`, JetStream ack). A subscriber [`Delivery::ack`]s a message once it has
//! dealt with it; until then the broker may redeliver it (MQTT persistent session,
//! JetStream durable consumer), and a subscriber that does not ack slows the broker down
//! rather than growing its own memory.

mod ack;
pub mod config;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod envelope;
mod memory;
pub mod mqtt;
pub mod nats;
mod request;
pub mod tls;
pub mod topic;

use std::time::Duration;

use async_trait::async_trait;
pub use bytes::Bytes;
use futures_core_shim::BoxFuture;
use tokio::sync::mpsc;

pub use config::{connect, BusConfig, BusType, EmbeddedConfig};
#[cfg(feature = "embedded")]
pub use embedded::EmbeddedBroker;
pub use envelope::{MessageEnvelope, CONTENT_TYPE_CBOR, CONTENT_TYPE_JSON};
pub use memory::InProcessBus;
pub use mqtt::{MqttBus, MqttLastWill, MqttSettings};
pub use nats::{NatsBus, NatsSettings};
pub use request::Requester;

/// What went wrong on the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker could not be reached or the connection dropped.
    #[error("message bus connection failed: {0}")]
    Connection(String),
    /// The broker refused the request (bad topic, no permission, stream missing…).
    #[error("message bus refused the request: {0}")]
    Refused(String),
    /// No answer within the time allowed.
    #[error("no answer on the message bus within {0:?}")]
    Timeout(Duration),
    /// A message could not be encoded or decoded.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The bus client has been shut down.
    #[error("message bus client is closed")]
    Closed,
}

/// A boxed future resolving to `Result<(), BusError>`, as returned by acknowledgers.
pub type AckFuture = BoxFuture<'static, Result<(), BusError>>;

/// How a subscription behaves.
#[derive(Debug, Clone)]
pub struct SubscribeOptions {
    /// A durable name: the broker keeps the messages published while this subscriber is
    /// away and hands them over when a subscriber with the same name comes back (MQTT
    /// persistent session with this client id, JetStream durable consumer). `None`: only
    /// messages published while subscribed are delivered.
    pub durable: Option<String>,
    /// How many deliveries the subscription may hold in memory at once, from their arrival
    /// until the consumer acks or drops them; at that many, the backend stops taking
    /// messages from the broker (MQTT: stops reading the connection, while acks still go
    /// out; JetStream: `max_ack_pending`), so unacknowledged messages wait at the broker.
    pub capacity: usize,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self { durable: None, capacity: 1024 }
    }
}

/// One message received on a subscription.
pub struct Delivery {
    /// The topic it was published on, in MQTT syntax (`edgex/events/device/…`).
    pub topic: String,
    /// The bytes published.
    pub payload: Bytes,
    acker: Option<Box<dyn FnOnce() -> AckFuture + Send>>,
    /// Dropped with the delivery: a backend's count of what its subscription holds in memory.
    _hold: Option<Box<dyn Send>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").field("topic", &self.topic).field("len", &self.payload.len()).finish()
    }
}

impl Delivery {
    /// A delivery that needs no acknowledgement.
    pub fn new(topic: String, payload: Bytes) -> Self {
        Self { topic, payload, acker: None, _hold: None }
    }

    /// A delivery whose [`ack`](Self::ack) runs `acker`.
    pub fn with_acker(topic: String, payload: Bytes, acker: Box<dyn FnOnce() -> AckFuture + Send>) -> Self {
        Self { topic, payload, acker: Some(acker), _hold: None }
    }

    /// The same delivery, keeping `hold` alive until it is acked or dropped.
    pub(crate) fn holding(mut self, hold: impl Send + 'static) -> Self {
        self._hold = Some(Box::new(hold));
        self
    }

    /// Tells the broker this message has been dealt with (persisted, forwarded, or
    /// rejected for good); it will not be delivered again. Call it also for malformed
    /// messages, or they come back forever.
    pub async fn ack(self) -> Result<(), BusError> {
        match self.acker {
            Some(acker) => acker().await,
            None => Ok(()),
        }
    }
}

/// The deliveries of one subscription, in the order the broker sent them.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::Receiver<Delivery>,
}

impl Subscription {
    /// A subscription fed by `rx`; backends keep the sending side.
    pub fn new(rx: mpsc::Receiver<Delivery>) -> Self {
        Self { rx }
    }

    /// The next delivery; `None` once the bus client is closed.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    /// The next delivery if one is waiting, without waiting.
    pub fn try_next(&mut self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }
}

/// A message bus client. Cheap to share (`Arc<dyn Bus>`); every method may be called
/// from many tasks at once.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes `payload` on `topic` (no wildcards), returning once the broker has it.
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError>;

    /// Subscribes to every topic matching one of `filters` (MQTT syntax: `+` one level,
    /// `#` the rest).
    async fn subscribe(&self, filters: &[String], options: SubscribeOptions) -> Result<Subscription, BusError>;

    /// Whether the client is connected to its broker right now.
    fn is_connected(&self) -> bool;

    /// A short name of the backend and broker, for logs and `/config`
    /// (`mqtt://127.0.0.1:1883`, `nats://…`, `in-process`).
    fn describe(&self) -> String;
}

/// Publishes `envelope` as JSON on `topic`.
pub async fn publish_envelope(bus: &dyn Bus, topic: &str, envelope: &MessageEnvelope) -> Result<(), BusError> {
    bus.publish(topic, envelope.to_bytes()?).await
}

mod futures_core_shim {
    /// `Pin<Box<dyn Future + Send>>`, without pulling a futures crate for one alias.
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}
