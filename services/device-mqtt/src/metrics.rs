//! What the driver counts: messages received from devices, and those it had to drop.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Why an incoming message was dropped: the value of the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// The topic is not `…/{device-name}/{source-name}` below the incoming topic.
    Topic,
    /// No device of this service has that name.
    Device,
    /// The device's profile has no readable resource or command of that name.
    Source,
    /// The payload is not a JSON object holding a value for every resource of the source.
    Payload,
    /// A value does not parse as its resource's value type.
    Value,
    /// The SDK refused the readings (a transform overflowed, an assertion failed…).
    Reading,
    /// The service's message bus refused the event for longer than `driver.refused_retry`
    /// (too large, no JetStream stream takes its topic).
    Refused,
}

impl Rejection {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Topic => "topic",
            Rejection::Device => "device",
            Rejection::Source => "source",
            Rejection::Payload => "payload",
            Rejection::Value => "value",
            Rejection::Reading => "reading",
            Rejection::Refused => "refused",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// `device_mqtt_incoming_messages_total` and `device_mqtt_incoming_rejected_total{reason}`.
#[derive(Debug, Clone, Default)]
pub struct DriverMetrics {
    received: Counter,
    rejected: Family<ReasonLabel, Counter>,
}

impl DriverMetrics {
    /// Registers the counters in the service's `/metrics`.
    pub fn register(&self, sdk: &oxedge_device_sdk::Sdk) {
        sdk.register_metric(
            "device_mqtt_incoming_messages",
            "Messages received on the incoming topic",
            self.received.clone(),
        );
        sdk.register_metric(
            "device_mqtt_incoming_rejected",
            "Messages received on the incoming topic and dropped, by reason",
            self.rejected.clone(),
        );
    }

    /// Counts a message received.
    pub fn received(&self) {
        self.received.inc();
    }

    /// Counts a message dropped for `why`.
    pub fn rejected(&self, why: Rejection) {
        self.rejected.get_or_create(&ReasonLabel { reason: why.as_str() }).inc();
    }
}
