//! Triggers: where a pipeline's messages come from — the message bus, an external MQTT
//! broker, or HTTP POST.
//!
//! Each trigger turns what it receives into the [`Data`] the first function gets, as the
//! trigger's `target_type` says: an EdgeX event (an `AddEventRequest` or a bare event, JSON
//! or CBOR), or the raw bytes. What cannot be decoded is malformed: the message bus and MQTT
//! triggers count it (`app_trigger_messages_malformed_total`), log it and acknowledge it, so
//! it does not come back; the HTTP trigger answers 400 naming what is wrong.

pub(crate) mod bus;
pub(crate) mod http;

use bytes::Bytes;
use oxedge_bus::{MessageEnvelope, CONTENT_TYPE_CBOR, CONTENT_TYPE_JSON};
use oxedge_contracts::{AddEventRequest, Event};
use serde_json::value::RawValue;

use crate::config::TargetType;
use crate::Data;

/// An EdgeX message envelope as the data the pipelines get, and its correlation id (a new
/// one when the envelope has none).
pub(crate) fn from_envelope(payload: &[u8], topic: &str, target: TargetType) -> Result<(String, Data), String> {
    let env = MessageEnvelope::from_bytes(payload, topic).map_err(|e| e.to_string())?;
    let data = match target {
        TargetType::Event => Data::Event(Box::new(event_from_envelope(&env)?)),
        TargetType::Raw => {
            let content_type =
                if env.content_type.is_empty() { CONTENT_TYPE_JSON.to_owned() } else { env.content_type.clone() };
            Data::Bytes { bytes: Bytes::from(env.payload_bytes().map_err(|e| e.to_string())?), content_type }
        }
    };
    let correlation_id =
        if env.correlation_id.is_empty() { uuid::Uuid::new_v4().to_string() } else { env.correlation_id };
    Ok((correlation_id, data))
}

fn event_from_envelope(env: &MessageEnvelope) -> Result<Event, String> {
    match env.payload_as::<AddEventRequest>() {
        Ok(request) => Ok(request.event),
        Err(request_error) => env
            .payload_as::<Event>()
            .map_err(|event_error| not_an_event(env.payload.get().contains("\"event\""), &request_error, &event_error)),
    }
}

/// Raw bytes (external MQTT, HTTP) as the data the pipelines get.
pub(crate) fn from_raw(bytes: Bytes, content_type: &str, target: TargetType) -> Result<Data, String> {
    match target {
        TargetType::Raw => Ok(Data::Bytes { bytes, content_type: content_type.to_owned() }),
        TargetType::Event if is_cbor(content_type) => {
            let parse = |bytes: &[u8]| ciborium::from_reader::<AddEventRequest, _>(bytes).map(|r| r.event);
            parse(&bytes).or_else(|request_error| {
                ciborium::from_reader::<Event, _>(&bytes[..])
                    .map_err(|event_error| not_an_event(false, &request_error, &event_error))
            })
        }
        .map(|event| Data::Event(Box::new(event))),
        TargetType::Event => {
            let raw: &RawValue = serde_json::from_slice(&bytes).map_err(|e| format!("body is not JSON: {e}"))?;
            match serde_json::from_str::<AddEventRequest>(raw.get()) {
                Ok(request) => Ok(Data::Event(Box::new(request.event))),
                Err(request_error) => serde_json::from_str::<Event>(raw.get())
                    .map(|event| Data::Event(Box::new(event)))
                    .map_err(|event_error| not_an_event(raw.get().contains("\"event\""), &request_error, &event_error)),
            }
        }
    }
}

fn is_cbor(content_type: &str) -> bool {
    content_type.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case(CONTENT_TYPE_CBOR)
}

/// The error of the form the payload looks like: an `AddEventRequest` when it has an
/// `event` field, else a bare event.
fn not_an_event(looks_like_request: bool, request: &dyn std::fmt::Display, event: &dyn std::fmt::Display) -> String {
    if looks_like_request {
        format!("payload is not an AddEventRequest: {request}")
    } else {
        format!("payload is not an event: {event}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> serde_json::Value {
        json!({"apiVersion": "v3", "id": "e1", "deviceName": "d", "profileName": "p", "sourceName": "s",
               "origin": 1, "readings": [{"resourceName": "r", "valueType": "Int8", "value": "1"}]})
    }

    #[test]
    fn envelopes_decode_json_and_cbor_requests_and_bare_events() {
        for env in [
            MessageEnvelope::json(&json!({"apiVersion": "v3", "event": event()}), Some("c1")).unwrap(),
            MessageEnvelope::cbor(&json!({"apiVersion": "v3", "event": event()}), Some("c1")).unwrap(),
            MessageEnvelope::json(&event(), Some("c1")).unwrap(),
        ] {
            let (correlation_id, data) = from_envelope(&env.to_bytes().unwrap(), "t", TargetType::Event).unwrap();
            assert_eq!(correlation_id, "c1");
            let Data::Event(event) = data else { panic!("not an event") };
            assert_eq!(event.device_name, "d");
        }
        let env = MessageEnvelope::json(&json!({"x": 1}), None).unwrap();
        let (_, raw) = from_envelope(&env.to_bytes().unwrap(), "t", TargetType::Raw).unwrap();
        assert_eq!(
            raw,
            Data::Bytes { bytes: Bytes::from_static(br#"{"x":1}"#), content_type: "application/json".into() }
        );
    }

    #[test]
    fn what_is_not_an_event_says_what_is_wrong() {
        let err = from_envelope(b"{nope", "t", TargetType::Event).unwrap_err();
        assert!(err.contains("not a message envelope"), "{err}");
        let env = MessageEnvelope::json(&json!({"apiVersion": "v3", "event": {"id": 3}}), None).unwrap();
        let err = from_envelope(&env.to_bytes().unwrap(), "t", TargetType::Event).unwrap_err();
        assert!(err.contains("AddEventRequest"), "{err}");
        let err =
            from_raw(Bytes::from_static(b"{\"deviceName\":1}"), "application/json", TargetType::Event).unwrap_err();
        assert!(err.contains("not an event"), "{err}");
        let err = from_raw(Bytes::from_static(b"\xff"), "application/cbor", TargetType::Event).unwrap_err();
        assert!(err.contains("not an event"), "{err}");
    }

    #[test]
    fn raw_bodies_decode_as_events_or_stay_bytes() {
        let body = Bytes::from(json!({"apiVersion": "v3", "event": event()}).to_string());
        assert!(matches!(from_raw(body.clone(), "application/json", TargetType::Event), Ok(Data::Event(_))));
        let mut cbor = Vec::new();
        ciborium::into_writer(&event(), &mut cbor).unwrap();
        assert!(matches!(from_raw(Bytes::from(cbor), "application/cbor", TargetType::Event), Ok(Data::Event(_))));
        assert_eq!(
            from_raw(body.clone(), "text/plain", TargetType::Raw).unwrap(),
            Data::Bytes { bytes: body, content_type: "text/plain".into() }
        );
    }
}
