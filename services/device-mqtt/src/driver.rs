//! [`MqttDriver`]: commands to devices over request/response topics, and the readings they
//! publish on their own ([`crate::incoming`]), as EdgeX 3/4's device-mqtt does.
//!
//! A command on resource `R` of a device whose protocol property `mqtt.CommandTopic` is `T`
//! is published on `T/R/get/{uuid}` (empty payload) or `T/R/set/{uuid}` (payload
//! `{"R": value}`); the device answers on `{response topic}/{uuid}` (`command/response/{uuid}`
//! by default) with `{"R": value}` for a get and anything for a set. A command on several
//! resources (a device command) sends one request per resource, all at once.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine as _;
use oxedge_bus::{topic, Bus, Bytes, SubscribeOptions, Subscription};
use oxedge_contracts::Device;
use oxedge_device_sdk::value::parse_value;
use oxedge_device_sdk::WriteCommand;
use oxedge_device_sdk::{
    async_trait, CommandRequest, CommandValue, DriverError, DriverResult, ProtocolDriver, Protocols, Sdk, Value,
};
use serde_json::{Map, Number, Value as Json};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::incoming;
use crate::metrics::DriverMetrics;

/// The protocol of a device's properties (EdgeX's).
pub const PROTOCOL: &str = "mqtt";
/// The protocol property naming the device's command topic (EdgeX's).
pub const COMMAND_TOPIC: &str = "CommandTopic";

/// Deliveries a subscription holds before the broker is left to keep the rest.
const SUBSCRIPTION_CAPACITY: usize = 1024;

/// The device-mqtt protocol driver. Cheap to clone; clones share the connection.
#[derive(Clone, Default)]
pub struct MqttDriver {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Set by `initialize`, cleared by `stop`.
    running: RwLock<Option<Running>>,
    /// Commands waiting for their device's answer, by request id.
    pending: Mutex<HashMap<String, oneshot::Sender<Bytes>>>,
    metrics: DriverMetrics,
    /// Subscriptions made (incoming and responses): 2 once the driver listens.
    subscribed: AtomicUsize,
    stop: CancellationToken,
}

/// What a command needs of the running driver.
#[derive(Clone)]
struct Running {
    broker: Arc<dyn Bus>,
    url: String,
    response_timeout: Duration,
}

impl MqttDriver {
    /// A driver; its settings come from the configuration's `driver` section when the SDK
    /// initializes it.
    pub fn new() -> Self {
        Self::default()
    }

    fn running(&self) -> DriverResult<Running> {
        let running = self.inner.running.read().unwrap_or_else(|e| e.into_inner());
        running.clone().ok_or_else(|| DriverError::Failed("the MQTT driver is not running".to_owned()))
    }

    /// Publishes one request per `(resource, payload)` of `device` and waits for every answer
    /// (all within one `response_timeout`); the answers come back in order.
    async fn exchange(
        &self,
        device: &str,
        protocols: &Protocols,
        method: &str,
        requests: Vec<(&str, Bytes)>,
    ) -> DriverResult<Vec<Bytes>> {
        let running = self.running()?;
        let base = command_topic(device, protocols)?;
        if !running.broker.is_connected() {
            return Err(DriverError::Failed(format!(
                "device {device}: the MQTT broker {} is not connected",
                running.url
            )));
        }
        let deadline = Instant::now() + running.response_timeout;
        let mut waiting = Vec::with_capacity(requests.len());
        for (resource, payload) in requests {
            let id = uuid::Uuid::new_v4().to_string();
            let topic = format!("{base}/{resource}/{method}/{id}");
            if !topic::is_valid_topic(&topic) {
                return Err(DriverError::Invalid(format!(
                    "device {device}, resource {resource}: '{topic}' is not a topic one can publish on"
                )));
            }
            let (tx, rx) = oneshot::channel();
            let guard = Pending::insert(&self.inner, id, tx);
            let published = tokio::time::timeout_at(deadline, running.broker.publish(&topic, payload)).await;
            match published {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(DriverError::Failed(format!("device {device}: {method} {resource}: {e}"))),
                Err(_) => return Err(timeout(device, method, resource, &topic, running.response_timeout)),
            }
            waiting.push((resource, topic, rx, guard));
        }
        let mut answers = Vec::with_capacity(waiting.len());
        for (resource, topic, rx, _guard) in waiting {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(payload)) => answers.push(payload),
                Ok(Err(_)) => return Err(DriverError::Failed("the MQTT driver stopped".to_owned())),
                Err(_) => return Err(timeout(device, method, resource, &topic, running.response_timeout)),
            }
        }
        Ok(answers)
    }

    /// Hands a device's answer on `topic` to the command waiting for it.
    fn answer(&self, topic: &str, payload: Bytes) {
        let id = topic.rsplit('/').next().unwrap_or_default();
        let waiter = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        match waiter {
            Some(tx) => {
                let _ = tx.send(payload);
            }
            None => tracing::debug!(%topic, "Command response dropped: no command waits for it (answered too late?)."),
        }
    }

    async fn listen_responses(self, mut subscription: Subscription, stop: CancellationToken) {
        loop {
            let delivery = tokio::select! {
                () = stop.cancelled() => return,
                delivery = subscription.next() => match delivery {
                    Some(delivery) => delivery,
                    None => return,
                },
            };
            self.answer(&delivery.topic, delivery.payload.clone());
            if let Err(error) = delivery.ack().await {
                tracing::debug!(%error, "Command response not acknowledged.");
            }
        }
    }
}

/// A command's place among the pending ones, given up when the command ends however it ends.
struct Pending<'a> {
    inner: &'a Inner,
    id: String,
}

impl<'a> Pending<'a> {
    fn insert(inner: &'a Inner, id: String, tx: oneshot::Sender<Bytes>) -> Self {
        inner.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), tx);
        Self { inner, id }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.id);
    }
}

/// Subscribes to `filter`, with a persistent session when `durable` names one, waiting for
/// the broker until `stop`; a refusal is logged.
async fn subscribe(
    bus: &dyn Bus,
    filter: &str,
    durable: Option<String>,
    stop: &CancellationToken,
) -> Option<Subscription> {
    let options = SubscribeOptions { durable, capacity: SUBSCRIPTION_CAPACITY };
    let filters = [filter.to_owned()];
    tokio::select! {
        () = stop.cancelled() => None,
        sub = bus.subscribe(&filters, options) => match sub {
            Ok(sub) => {
                tracing::info!(%filter, "Subscribed on the devices' MQTT broker.");
                Some(sub)
            }
            Err(error) => {
                tracing::error!(%filter, %error, "Cannot subscribe on the devices' MQTT broker.");
                None
            }
        },
    }
}

fn timeout(device: &str, method: &str, resource: &str, topic: &str, limit: Duration) -> DriverError {
    DriverError::Timeout(format!(
        "device {device} did not answer {method} {resource} (published on {topic}) within {limit:?}"
    ))
}

/// The device's `mqtt.CommandTopic`; the error names the device and the property.
fn command_topic<'a>(device: &str, protocols: &'a Protocols) -> DriverResult<&'a str> {
    let missing =
        || DriverError::Invalid(format!("device {device}: protocol property {PROTOCOL}.{COMMAND_TOPIC} is missing"));
    let topic = protocols.get(PROTOCOL).ok_or_else(missing)?.get(COMMAND_TOPIC).ok_or_else(missing)?;
    match topic.as_str() {
        Some(t) if topic::is_valid_topic(t) => Ok(t),
        _ => Err(DriverError::Invalid(format!(
            "device {device}: protocol property {PROTOCOL}.{COMMAND_TOPIC} {topic} is not a topic one can publish on"
        ))),
    }
}

/// The value of `request` in a device's answer `payload` to a get.
fn read_answer(device: &str, request: &CommandRequest, payload: &[u8]) -> DriverResult<CommandValue> {
    let resource = &request.resource_name;
    let failed = |why: String| DriverError::Failed(format!("device {device} answered get {resource}: {why}"));
    let object: Map<String, Json> =
        serde_json::from_slice(payload).map_err(|e| failed(format!("the answer is not a JSON object: {e}")))?;
    let raw = object.get(resource).ok_or_else(|| failed(format!("the answer has no field '{resource}'")))?;
    let value = parse_value(request.value_type, raw)
        .map_err(|why| failed(format!("{raw} is not a {} value: {why}", request.value_type)))?;
    Ok(CommandValue::new(resource.clone(), value))
}

/// A value as the JSON a device gets in a set: numbers as numbers, binary as base64.
pub fn to_json(value: &Value) -> Json {
    fn float(text: String) -> Json {
        Number::from_str(&text).map(Json::Number).unwrap_or(Json::Null)
    }
    fn list<T>(items: &[T], f: impl Fn(&T) -> Json) -> Json {
        Json::Array(items.iter().map(f).collect())
    }
    match value {
        Value::Bool(v) => Json::Bool(*v),
        Value::String(v) => Json::String(v.clone()),
        Value::Uint8(v) => Json::from(*v),
        Value::Uint16(v) => Json::from(*v),
        Value::Uint32(v) => Json::from(*v),
        Value::Uint64(v) => Json::from(*v),
        Value::Int8(v) => Json::from(*v),
        Value::Int16(v) => Json::from(*v),
        Value::Int32(v) => Json::from(*v),
        Value::Int64(v) => Json::from(*v),
        // The shortest text that reads back as the same f32, as Go writes a float32.
        Value::Float32(v) => float(v.to_string()),
        Value::Float64(v) => float(v.to_string()),
        Value::Binary(bytes) => Json::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        Value::Object(v) => v.clone(),
        Value::ObjectArray(items) => Json::Array(items.clone()),
        Value::BoolArray(a) => list(a, |v| Json::Bool(*v)),
        Value::StringArray(a) => list(a, |v| Json::String(v.clone())),
        Value::Uint8Array(a) => list(a, |v| Json::from(*v)),
        Value::Uint16Array(a) => list(a, |v| Json::from(*v)),
        Value::Uint32Array(a) => list(a, |v| Json::from(*v)),
        Value::Uint64Array(a) => list(a, |v| Json::from(*v)),
        Value::Int8Array(a) => list(a, |v| Json::from(*v)),
        Value::Int16Array(a) => list(a, |v| Json::from(*v)),
        Value::Int32Array(a) => list(a, |v| Json::from(*v)),
        Value::Int64Array(a) => list(a, |v| Json::from(*v)),
        Value::Float32Array(a) => list(a, |v| float(v.to_string())),
        Value::Float64Array(a) => list(a, |v| float(v.to_string())),
    }
}

#[async_trait]
impl ProtocolDriver for MqttDriver {
    async fn initialize(&self, sdk: Sdk) -> DriverResult<()> {
        let settings: Settings = sdk.driver_config().map_err(|e| DriverError::Invalid(format!("{e:#}")))?;
        settings.validate().map_err(DriverError::Invalid)?;
        let response_timeout = settings
            .response_timeout()
            .ok_or_else(|| DriverError::Invalid("driver.response_timeout: not a duration".to_owned()))?;
        let refused_retry = settings
            .refused_retry()
            .ok_or_else(|| DriverError::Invalid("driver.refused_retry: not a duration".to_owned()))?;
        let broker_cfg = settings.broker().map_err(DriverError::Invalid)?;
        let broker = oxedge_bus::connect(&broker_cfg, &settings.client_id)
            .await
            .map_err(|e| DriverError::Invalid(format!("driver.broker_url: {e}")))?;
        self.inner.metrics.register(&sdk);
        let durable = settings.incoming_durable_name();
        tracing::info!(broker = %settings.broker_url, incoming = %settings.incoming_topic, responses = %settings.response_topic, persistent_session = durable.is_some(), "Connecting to the devices' MQTT broker.");

        // Subscribing waits for the broker, which may come later: the service serves meanwhile.
        // Answers to the requests of a previous run are of no use: that session is clean.
        let stop = self.inner.stop.clone();
        let (bus, driver, filter, token) =
            (broker.clone(), self.clone(), settings.response_topic.clone(), stop.clone());
        tokio::spawn(async move {
            if let Some(sub) = subscribe(&*bus, &filter, None, &token).await {
                driver.inner.subscribed.fetch_add(1, Ordering::Relaxed);
                driver.listen_responses(sub, token).await;
            }
        });
        let handling =
            incoming::Handling { sdk, metrics: self.inner.metrics.clone(), refused_retry, stop: stop.clone() };
        let (bus, filter, workers) = (broker.clone(), settings.incoming_topic.clone(), settings.workers);
        let driver = self.clone();
        tokio::spawn(async move {
            // Until the SDK has loaded the devices, every reading would be of an unknown device.
            tokio::select! {
                () = stop.cancelled() => return,
                () = handling.sdk.devices_loaded() => {}
            }
            if let Some(sub) = subscribe(&*bus, &filter, durable, &stop).await {
                driver.inner.subscribed.fetch_add(1, Ordering::Relaxed);
                incoming::listen(sub, filter, workers, handling).await;
            }
        });
        *self.inner.running.write().unwrap_or_else(|e| e.into_inner()) =
            Some(Running { broker, url: settings.broker_url, response_timeout });
        Ok(())
    }

    async fn handle_read_commands(
        &self,
        device: &str,
        protocols: &Protocols,
        requests: &[CommandRequest],
    ) -> DriverResult<Vec<CommandValue>> {
        let asks = requests.iter().map(|r| (r.resource_name.as_str(), Bytes::new())).collect();
        let answers = self.exchange(device, protocols, "get", asks).await?;
        requests.iter().zip(answers).map(|(request, payload)| read_answer(device, request, &payload)).collect()
    }

    async fn handle_write_commands(
        &self,
        device: &str,
        protocols: &Protocols,
        writes: &[WriteCommand],
    ) -> DriverResult<()> {
        let mut sets = Vec::with_capacity(writes.len());
        for WriteCommand { request, value } in writes {
            let mut body = Map::new();
            body.insert(request.resource_name.clone(), to_json(&value.value));
            let payload = serde_json::to_vec(&body)
                .map_err(|e| DriverError::Invalid(format!("resource {}: {e}", request.resource_name)))?;
            sets.push((request.resource_name.as_str(), Bytes::from(payload)));
        }
        // As EdgeX, the answer's content is not checked: that it came is the acknowledgement.
        self.exchange(device, protocols, "set", sets).await.map(|_| ())
    }

    async fn validate_device(&self, device: &Device) -> DriverResult<()> {
        command_topic(&device.name, &device.protocols).map(|_| ())
    }

    /// Unhealthy while the broker is not connected or the subscriptions are not made yet.
    async fn health(&self) -> Result<(), String> {
        let running = self.running().map_err(|e| e.to_string())?;
        if !running.broker.is_connected() {
            return Err(format!("the MQTT broker {} is not connected", running.url));
        }
        if self.inner.subscribed.load(Ordering::Relaxed) < 2 {
            return Err(format!("not yet subscribed on the MQTT broker {}", running.url));
        }
        Ok(())
    }

    async fn stop(&self, _force: bool) {
        self.inner.stop.cancel();
        self.inner.running.write().unwrap_or_else(|e| e.into_inner()).take();
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxedge_contracts::ValueType;

    #[test]
    fn values_are_written_as_json_a_device_reads() {
        assert_eq!(to_json(&Value::Float32(12.3)).to_string(), "12.3");
        assert_eq!(to_json(&Value::Float64(-0.5)).to_string(), "-0.5");
        assert_eq!(to_json(&Value::Int16Array(vec![1, -2])).to_string(), "[1,-2]");
        assert_eq!(to_json(&Value::Binary(vec![1, 2, 3])).to_string(), "\"AQID\"");
        assert_eq!(to_json(&Value::Bool(true)).to_string(), "true");
    }

    #[test]
    fn command_topics_are_checked() {
        let mut protocols = Protocols::new();
        let err = command_topic("d1", &protocols).unwrap_err().to_string();
        assert!(err.contains("d1") && err.contains("mqtt.CommandTopic"), "{err}");
        protocols.insert(PROTOCOL.into(), [(COMMAND_TOPIC.to_owned(), Json::from("command/#"))].into());
        assert!(matches!(command_topic("d1", &protocols), Err(DriverError::Invalid(_))));
        protocols.insert(PROTOCOL.into(), [(COMMAND_TOPIC.to_owned(), Json::from("command/d1"))].into());
        assert_eq!(command_topic("d1", &protocols).unwrap(), "command/d1");
    }

    #[test]
    fn answers_are_read_by_resource_name() {
        let request =
            CommandRequest { resource_name: "temp".into(), attributes: Map::new(), value_type: ValueType::Int16 };
        assert_eq!(read_answer("d1", &request, br#"{"temp": -4}"#).unwrap().value, Value::Int16(-4));
        for (payload, text) in [
            (&b"oops"[..], "not a JSON object"),
            (b"{\"other\": 1}", "no field 'temp'"),
            (b"{\"temp\": 70000}", "not a Int16 value"),
        ] {
            let err = read_answer("d1", &request, payload).unwrap_err();
            assert!(matches!(&err, DriverError::Failed(m) if m.contains("d1") && m.contains(text)), "{err:?}");
        }
    }
}
