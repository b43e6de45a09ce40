//! Exports: MQTT and HTTP sinks, and the pipeline function that hands data to them through
//! store-and-forward.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;

/// One message for a sink, fully prepared by the pipeline: payload, media type, and the
/// context values its templates (topic, URL) are filled from.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The bytes to send.
    pub payload: Bytes,
    /// Their media type.
    pub content_type: String,
    /// Where it goes, templates already applied: the MQTT topic, or the HTTP URL.
    pub destination: String,
    /// What order is kept by: messages with the same key are delivered in the order they
    /// were submitted (the device name, or empty for one order overall).
    pub key: String,
    /// Extra values the sink may use (e.g. HTTP headers), by name.
    pub attributes: BTreeMap<String, String>,
}

/// Why a sink did not deliver a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The destination is unreachable or refused for now (connection lost, 5xx, timeout):
    /// store-and-forward keeps the message and retries.
    #[error("{0}")]
    Unavailable(String),
    /// The destination rejected this message for good (4xx, payload too large): retrying
    /// would not help; it is logged and counted as dropped.
    #[error("{0}")]
    Rejected(String),
}

/// Somewhere messages are delivered north: an MQTT broker, an HTTP endpoint.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// The sink's name in logs and metrics (`MQTTExport tcp://cloud:1883`).
    fn describe(&self) -> String;

    /// Delivers one message, returning once the destination has it (MQTT QoS 1: PUBACK;
    /// HTTP: a 2xx).
    async fn send(&self, message: &Outgoing) -> Result<(), SinkError>;

    /// Whether the sink believes its destination is reachable now.
    fn is_connected(&self) -> bool;
}
