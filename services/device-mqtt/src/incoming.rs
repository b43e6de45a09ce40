//! Readings devices publish on their own, as EdgeX 3/4's device-mqtt takes them: on
//! `{incoming topic}/{device-name}/{source-name}`, a JSON object with a value for every
//! resource of the source (`{"temperature": 21.5}`; for a device command, one per resource
//! it reads). EdgeX 2's form (`name` and `cmd` inside the payload) is gone from EdgeX 3 and
//! not taken here either.
//!
//! A message that cannot become readings is dropped with a warning naming the topic and
//! why, and counted in `device_mqtt_incoming_rejected_total{reason}`; the next ones flow.
//! A message is acknowledged to the broker only once its event is on the service's message
//! bus or it has been dropped so: one left unacknowledged when the driver stops is
//! delivered again (with a persistent session, to the next run of the service).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use oxedge_bus::{Delivery, Subscription};
use oxedge_contracts::{DeviceProfile, DeviceResource, ErrorKind};
use oxedge_device_sdk::value::parse_value;
use oxedge_device_sdk::{CommandValue, Sdk};
use serde_json::{Map, Value as Json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::{DriverMetrics, Rejection};

/// Deliveries waiting for one worker.
const WORKER_QUEUE: usize = 256;

/// A delivery for a worker, with the device and source its topic names.
type Work = ((String, String), Delivery);

/// The device and source `topic` names below the subscription `filter`: the two levels
/// after the filter's prefix when it ends in `#` (EdgeX's rule), else the topic's last two.
pub fn topic_names<'a>(filter: &str, topic: &'a str) -> Option<(&'a str, &'a str)> {
    let (device, source) = match filter.strip_suffix('#') {
        Some(prefix) => topic.strip_prefix(prefix)?.split_once('/')?,
        None => {
            let (rest, source) = topic.rsplit_once('/')?;
            (rest.rsplit_once('/').map_or(rest, |(_, device)| device), source)
        }
    };
    (!device.is_empty() && !source.is_empty() && !source.contains('/')).then_some((device, source))
}

/// The readings `payload` gives for `source` (a resource or a command) of `device`.
pub fn decode(profile: &DeviceProfile, source: &str, payload: &[u8]) -> Result<Vec<CommandValue>, (Rejection, String)> {
    let resources = readable_resources(profile, source).map_err(|why| (Rejection::Source, why))?;
    let object: Map<String, Json> = serde_json::from_slice(payload)
        .map_err(|e| (Rejection::Payload, format!("the payload is not a JSON object of resource values: {e}")))?;
    resources
        .into_iter()
        .map(|resource| {
            let raw = object.get(&resource.name).ok_or_else(|| {
                (Rejection::Payload, format!("the payload has no value for resource '{}'", resource.name))
            })?;
            let value = parse_value(resource.properties.value_type, raw).map_err(|why| {
                let vt = resource.properties.value_type;
                (Rejection::Value, format!("resource '{}': {raw} is not a {vt} value: {why}", resource.name))
            })?;
            Ok(CommandValue::new(resource.name.clone(), value))
        })
        .collect()
}

/// The resources `source` reads: a readable command's, or a readable resource itself.
fn readable_resources<'a>(profile: &'a DeviceProfile, source: &str) -> Result<Vec<&'a DeviceResource>, String> {
    if let Some(command) = profile.command(source) {
        if !command.read_write.readable() {
            return Err(format!("device command '{source}' of profile {} is not readable", profile.name()));
        }
        return command
            .resource_operations
            .iter()
            .map(|op| {
                profile.resource(&op.device_resource).ok_or_else(|| {
                    format!(
                        "device command '{source}' names resource '{}', which is not in profile {}",
                        op.device_resource,
                        profile.name()
                    )
                })
            })
            .collect();
    }
    match profile.resource(source) {
        Some(resource) if resource.properties.read_write.readable() => Ok(vec![resource]),
        Some(_) => Err(format!("device resource '{source}' of profile {} is not readable", profile.name())),
        None => Err(format!("profile {} has no device command or resource '{source}'", profile.name())),
    }
}

/// How the workers treat the readings they take.
#[derive(Clone)]
pub struct Handling {
    /// The service the events are published through.
    pub sdk: Sdk,
    /// Counts what is received and dropped.
    pub metrics: DriverMetrics,
    /// How long an event the message bus refuses is offered again before it is dropped.
    pub refused_retry: Duration,
    /// Ends the workers; what they have not published is left unacknowledged.
    pub stop: CancellationToken,
}

/// Takes the deliveries of the incoming subscription until `stop`, spreading them over
/// `workers` tasks by device name, so that a device's readings keep their order.
///
/// A delivery is acknowledged once its event is on the message bus, or once it is dropped
/// (malformed, or refused by the bus for longer than `refused_retry`) and counted. What the
/// workers hold when the driver stops is not acknowledged: the broker delivers it again
/// (to the next run, with a persistent session).
pub async fn listen(mut subscription: Subscription, filter: String, workers: usize, handling: Handling) {
    let stop = handling.stop.clone();
    let mut queues = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (tx, rx) = mpsc::channel(WORKER_QUEUE);
        queues.push(tx);
        tokio::spawn(work(rx, handling.clone()));
    }
    loop {
        let delivery = tokio::select! {
            () = stop.cancelled() => return,
            delivery = subscription.next() => match delivery {
                Some(delivery) => delivery,
                None => return,
            },
        };
        handling.metrics.received();
        let Some((device, source)) = topic_names(&filter, &delivery.topic) else {
            tracing::warn!(topic = %delivery.topic, %filter, "Incoming message dropped: its topic is not …/{{device-name}}/{{source-name}} below the incoming topic.");
            handling.metrics.rejected(Rejection::Topic);
            ack(delivery).await;
            continue;
        };
        let mut hasher = DefaultHasher::new();
        device.hash(&mut hasher);
        let queue = &queues[(hasher.finish() % queues.len() as u64) as usize];
        let names = (device.to_owned(), source.to_owned());
        if queue.send((names, delivery)).await.is_err() {
            return;
        }
    }
}

/// What became of a delivery.
#[derive(Debug)]
enum Outcome {
    /// Its event is on the message bus.
    Published,
    /// It cannot become an event, or the bus refused the event for good: dropped.
    Rejected(Rejection, String),
    /// The driver stopped before the event was published.
    Interrupted,
}

/// One worker: turns deliveries into events, one at a time, and acknowledges each once it is
/// published or rejected. On `stop` it ends, leaving what it holds unacknowledged.
async fn work(mut rx: mpsc::Receiver<Work>, handling: Handling) {
    loop {
        let ((device, source), delivery) = tokio::select! {
            biased;
            () = handling.stop.cancelled() => return,
            work = rx.recv() => match work {
                Some(work) => work,
                None => return,
            },
        };
        match handle(&device, &source, &delivery.payload, &handling).await {
            Outcome::Published => {}
            Outcome::Rejected(why, message) => {
                tracing::warn!(topic = %delivery.topic, reason = why.as_str(), error = %message, "Incoming message dropped.");
                handling.metrics.rejected(why);
            }
            Outcome::Interrupted => {
                tracing::info!(topic = %delivery.topic, "Incoming message left unacknowledged: the driver stopped before its event was published.");
                return;
            }
        }
        ack(delivery).await;
    }
}

/// Publishes the event a delivery carries. While the service's message bus refuses it, it
/// is offered again with backoff for `refused_retry` (a bus that is down makes the publish
/// wait instead: its client retries by itself); `stop` interrupts it at any point.
async fn handle(device_name: &str, source: &str, payload: &[u8], handling: &Handling) -> Outcome {
    let sdk = &handling.sdk;
    let Some(device) = sdk.device(device_name) else {
        return Outcome::Rejected(Rejection::Device, format!("device '{device_name}' is not a device of this service"));
    };
    let Some(profile) = sdk.profile(&device.profile_name) else {
        let message = format!("the profile {} of device '{device_name}' is not known", device.profile_name);
        return Outcome::Rejected(Rejection::Device, message);
    };
    let values = match decode(&profile, source, payload) {
        Ok(values) => values,
        Err((why, message)) => return Outcome::Rejected(why, format!("device '{device_name}': {message}")),
    };
    let mut backoff = Duration::from_millis(100);
    let mut refused_since = None;
    loop {
        let pushed = tokio::select! {
            biased;
            () = handling.stop.cancelled() => return Outcome::Interrupted,
            pushed = sdk.push(device_name, source, values.clone()) => pushed,
        };
        let error = match pushed {
            Ok(()) => return Outcome::Published,
            Err(e) if e.kind == ErrorKind::ServiceUnavailable => e.message,
            Err(e) => return Outcome::Rejected(Rejection::Reading, e.message),
        };
        let since = *refused_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= handling.refused_retry {
            return Outcome::Rejected(Rejection::Refused, error);
        }
        tracing::warn!(device = device_name, %source, %error, ?backoff, "Event not published yet; retrying.");
        tokio::select! {
            biased;
            () = handling.stop.cancelled() => return Outcome::Interrupted,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn ack(delivery: Delivery) {
    if let Err(error) = delivery.ack().await {
        tracing::debug!(%error, "Incoming message not acknowledged; the broker may deliver it again.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_name_device_and_source_below_the_filter() {
        let f = "incoming/data/#";
        assert_eq!(topic_names(f, "incoming/data/dev-1/temperature"), Some(("dev-1", "temperature")));
        assert_eq!(topic_names(f, "incoming/data/dev-1"), None);
        assert_eq!(topic_names(f, "incoming/data/dev-1/a/b"), None);
        assert_eq!(topic_names(f, "incoming/data//a"), None);
        assert_eq!(topic_names(f, "other/dev-1/a"), None);
        assert_eq!(topic_names("#", "dev/src"), Some(("dev", "src")));
        assert_eq!(topic_names("site/+/+/values", "site/a/b/values"), Some(("b", "values")));
    }

    fn profile() -> DeviceProfile {
        let yaml = include_str!("../../../profiles/device-mqtt/profiles/mqtt.test.device.profile.yml");
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn payloads_become_values_of_the_resource_types() {
        let p = profile();
        let values = decode(&p, "randfloat32", br#"{"randfloat32": 12.5}"#).unwrap();
        assert_eq!(values, vec![CommandValue::new("randfloat32", oxedge_device_sdk::Value::Float32(12.5))]);
        let values = decode(&p, "allValues", br#"{"randfloat32": "1.5", "randfloat64": 2, "message": "hi"}"#).unwrap();
        let names: Vec<&str> = values.iter().map(|v| v.resource_name.as_str()).collect();
        assert_eq!(names, ["randfloat32", "randfloat64", "message"]);
        let values = decode(&p, "json", br#"{"json": {"a": 1}}"#).unwrap();
        assert_eq!(values[0].value, oxedge_device_sdk::Value::Object(serde_json::json!({"a": 1})));
    }

    #[test]
    fn bad_payloads_say_why() {
        let p = profile();
        let cases: [(&str, &[u8], Rejection, &str); 5] = [
            ("randfloat32", b"12.5", Rejection::Payload, "not a JSON object"),
            ("randfloat32", b"{\"other\": 1}", Rejection::Payload, "no value for resource 'randfloat32'"),
            ("randfloat32", b"{\"randfloat32\": \"warm\"}", Rejection::Value, "resource 'randfloat32'"),
            ("allValues", b"{\"randfloat32\": 1, \"randfloat64\": 2}", Rejection::Payload, "'message'"),
            ("nothing", b"{}", Rejection::Source, "no device command or resource 'nothing'"),
        ];
        for (source, payload, why, text) in cases {
            let (got, message) = decode(&p, source, payload).unwrap_err();
            assert_eq!(got, why, "{message}");
            assert!(message.contains(text), "{text} not in {message}");
        }
    }
}
