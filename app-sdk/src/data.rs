//! [`Data`]: what flows from one pipeline function to the next.

use bytes::Bytes;
use oxedge_contracts::Event;
use serde_json::Value as Json;

use crate::function::FunctionError;

/// What a pipeline function takes and returns. A trigger starts a pipeline with an
/// [`Data::Event`] (or [`Data::Bytes`] when the message is not an event and the pipeline
/// takes raw input); transforms turn it into bytes or JSON, a batch into [`Data::Batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// An EdgeX event.
    Event(Box<Event>),
    /// Several items, released together by a batch.
    Batch(Vec<Data>),
    /// Serialized data (after a transform, compression or encryption) and its media type.
    Bytes {
        /// The bytes.
        bytes: Bytes,
        /// Their media type, e.g. `application/json`, `application/xml`, `application/octet-stream`.
        content_type: String,
    },
    /// Any JSON value (after a JSON conversion, or from a custom function).
    Json(Json),
}

/// `application/json`.
pub const CONTENT_TYPE_JSON: &str = "application/json";

impl Data {
    /// The bytes an export sends and their media type: an event or JSON value as JSON, bytes
    /// as they are, a batch as a JSON array (events and JSON embedded; bytes embedded as JSON
    /// when their media type is JSON, else as base64 strings).
    pub fn to_payload(&self) -> Result<(Bytes, String), FunctionError> {
        match self {
            Data::Bytes { bytes, content_type } => Ok((bytes.clone(), content_type.clone())),
            other => {
                let json = serde_json::to_vec(&other.to_json()?)
                    .map_err(|e| FunctionError::new(format!("payload: cannot serialize as JSON: {e}")))?;
                Ok((Bytes::from(json), CONTENT_TYPE_JSON.to_owned()))
            }
        }
    }

    /// The data as a JSON value (see [`to_payload`](Self::to_payload)).
    pub(crate) fn to_json(&self) -> Result<Json, FunctionError> {
        match self {
            Data::Event(event) => serde_json::to_value(event)
                .map_err(|e| FunctionError::new(format!("event {}: cannot serialize as JSON: {e}", event.id))),
            Data::Json(json) => Ok(json.clone()),
            Data::Batch(items) => items.iter().map(Data::to_json).collect::<Result<Vec<_>, _>>().map(Json::Array),
            Data::Bytes { bytes, content_type } if is_json(content_type) => serde_json::from_slice(bytes)
                .map_err(|e| FunctionError::new(format!("batch item of type {content_type} is not JSON: {e}"))),
            Data::Bytes { bytes, .. } => {
                use base64::Engine as _;
                Ok(Json::String(base64::engine::general_purpose::STANDARD.encode(bytes)))
            }
        }
    }
}

/// Whether `content_type` is JSON (`application/json`, `application/json; charset=utf-8`,
/// `application/cloudevents+json`…).
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case(CONTENT_TYPE_JSON)
        || essence.rsplit_once('+').is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Data {
        let event: Event = serde_json::from_value(json!({
            "apiVersion": "v3", "id": "e1", "deviceName": "d", "profileName": "p", "sourceName": "s",
            "origin": 1, "readings": []
        }))
        .unwrap();
        Data::Event(Box::new(event))
    }

    #[test]
    fn events_and_json_become_json() {
        let (bytes, ct) = event().to_payload().unwrap();
        assert_eq!(ct, "application/json");
        let back: Json = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back["deviceName"], "d");
        let (bytes, _) = Data::Json(json!({"a": 1})).to_payload().unwrap();
        assert_eq!(&bytes[..], br#"{"a":1}"#);
    }

    #[test]
    fn bytes_go_as_they_are_and_batches_as_arrays() {
        let raw =
            Data::Bytes { bytes: Bytes::from_static(b"\x01\x02"), content_type: "application/octet-stream".into() };
        assert_eq!(raw.to_payload().unwrap(), (Bytes::from_static(b"\x01\x02"), "application/octet-stream".into()));
        let json_bytes =
            Data::Bytes { bytes: Bytes::from_static(br#"{"x":true}"#), content_type: "application/json".into() };
        let (bytes, ct) = Data::Batch(vec![event(), Data::Json(json!(3)), json_bytes, raw]).to_payload().unwrap();
        assert_eq!(ct, "application/json");
        let back: Json = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back[0]["id"], "e1");
        assert_eq!(back[1], 3);
        assert_eq!(back[2], json!({"x": true}));
        assert_eq!(back[3], "AQI=");
    }

    #[test]
    fn a_batch_item_claiming_json_that_is_not_is_an_error() {
        let bad = Data::Bytes { bytes: Bytes::from_static(b"{"), content_type: "application/json".into() };
        let err = Data::Batch(vec![bad]).to_payload().unwrap_err();
        assert!(err.message.contains("application/json"), "{err}");
    }
}
