//! Exports: MQTT and HTTP sinks, and the pipeline functions that hand data to them through
//! store-and-forward ([`crate::forward`]).
//!
//! An export function ([`mqtt::MqttExport`], [`http::HttpExport`]) turns its input into an
//! [`Outgoing`] (payload from [`Data::to_payload`](crate::Data::to_payload), destination from
//! its templates, key from the `devicename` context value), submits it to its forwarder and
//! adds the returned confirmation to the context: the trigger acknowledges the message once
//! the sink has it or the store holds it, without the pipeline waiting for the round trip.
//!
//! Export constructors check their settings at once (a bad one fails the service's start,
//! naming the parameter) and connect in the background: reading secrets and opening the
//! store happen there, retried with backoff and logged while they fail; messages wait
//! meanwhile (nothing is acknowledged before the export has taken it).

pub mod http;
pub mod mqtt;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::app::AppContext;
use crate::forward::Forwarder;

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

    /// Whether the sink believes its destination is reachable now. Store-and-forward retries
    /// at once when this turns true after having been false.
    fn is_connected(&self) -> bool;

    /// Whether messages sent one after another, without waiting for each answer, arrive in
    /// the order sent even when one of them fails. Store-and-forward then keeps many in
    /// flight; otherwise one per [`Outgoing::key`]. MQTT does not qualify: a publish that
    /// fails around a reconnect may be followed by later ones that succeed, so its sends
    /// wait for the previous one of the same device.
    fn keeps_order(&self) -> bool {
        false
    }
}

/// The `Outgoing` for `data` in `ctx`: its payload, `destination` filled from the context,
/// the `devicename` context value as the key of its order.
pub(crate) fn outgoing(
    ctx: &crate::Context,
    data: &crate::Data,
    destination: &str,
    attributes: BTreeMap<String, String>,
) -> Result<Outgoing, crate::FunctionError> {
    let (payload, content_type) = data.to_payload()?;
    let destination = ctx.apply_template(destination)?;
    let key = ctx.value("devicename").unwrap_or_default();
    Ok(Outgoing { payload, content_type, destination, key, attributes })
}

/// Makes an export's sink (reading its secrets, connecting).
type MakeSink = Box<dyn Fn() -> Pin<Box<dyn Future<Output = anyhow::Result<Arc<dyn Sink>>> + Send>> + Send + Sync>;

/// An export's forwarder, started in the background on first need and retried until it is.
pub(crate) struct LazyForwarder {
    inner: Arc<LazyInner>,
}

struct LazyInner {
    name: String,
    persist: bool,
    app: AppContext,
    make_sink: MakeSink,
    cell: OnceCell<Forwarder>,
}

impl LazyForwarder {
    /// The forwarder of the export `name` in `app`, over the sink `make_sink` makes; starts
    /// at once in the background when called inside a runtime.
    pub(crate) fn new(name: String, persist: bool, app: &AppContext, make_sink: MakeSink) -> Self {
        let inner = Arc::new(LazyInner { name, persist, app: app.clone(), make_sink, cell: OnceCell::new() });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let early = inner.clone();
            runtime.spawn(async move {
                tokio::select! {
                    _ = early.get() => {}
                    () = early.app.shutdown().cancelled() => {}
                }
            });
        }
        Self { inner }
    }

    /// The forwarder once started (`None` before).
    pub(crate) fn started(&self) -> Option<&Forwarder> {
        self.inner.cell.get()
    }

    /// The forwarder, waiting (and retrying with backoff) until it has started.
    pub(crate) async fn get(&self) -> &Forwarder {
        self.inner.get().await
    }
}

impl LazyInner {
    async fn get(&self) -> &Forwarder {
        let mut backoff = Duration::from_millis(200);
        loop {
            let started = self
                .cell
                .get_or_try_init(|| async {
                    let sink = (self.make_sink)().await?;
                    let forwarding = self.app.forwarding().await?;
                    forwarding.forwarder(&self.name, sink, self.persist).await
                })
                .await;
            match started {
                Ok(forwarder) => return forwarder,
                Err(error) => {
                    tracing::error!(export = %self.name, error = %format!("{error:#}"), retry_in = ?backoff, "Export cannot start; messages wait.");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}
