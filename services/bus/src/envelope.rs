//! The EdgeX 4.x message envelope: what every message on the bus carries.
//!
//! ```json
//! {"apiVersion":"v3","receivedTopic":"","correlationID":"…","requestID":"…","errorCode":0,
//!  "payload":{"apiVersion":"v3","event":{…}},"contentType":"application/json"}
//! ```
//! As in EdgeX 4.x, a JSON payload is embedded as a JSON value. A CBOR payload (and a
//! payload from a publisher running with `EDGEX_MSG_BASE64_PAYLOAD=true`) travels as a
//! base64 string of its bytes; [`MessageEnvelope::payload_as`] reads all three forms.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{BusError, Bytes};

/// `application/json`.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// `application/cbor`.
pub const CONTENT_TYPE_CBOR: &str = "application/cbor";
/// `text/plain`, used by error responses.
pub const CONTENT_TYPE_TEXT: &str = "text/plain";

/// One message as EdgeX 4.x puts it on the bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageEnvelope {
    /// Always `v3`.
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    /// The topic the message arrived on (filled in by the receiver).
    #[serde(rename = "receivedTopic", default)]
    pub received_topic: String,
    /// Ties together everything done for one original request.
    #[serde(rename = "correlationID", default)]
    pub correlation_id: String,
    /// Identifies a request, so that its response can be matched to it.
    #[serde(rename = "requestID", default)]
    pub request_id: String,
    /// `0` for success, `1` for an error (the payload then holds the error text).
    #[serde(rename = "errorCode", default)]
    pub error_code: i32,
    /// The payload: a JSON value, or a base64 string of CBOR or other bytes.
    pub payload: Box<RawValue>,
    /// How the payload is encoded: `application/json`, `application/cbor`, `text/plain`.
    #[serde(rename = "contentType", default)]
    pub content_type: String,
    /// Query parameters of a command request.
    #[serde(rename = "queryParams", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query_params: BTreeMap<String, String>,
}

impl MessageEnvelope {
    /// An envelope with `payload` embedded as JSON, a fresh correlation id unless one is given.
    pub fn json<T: Serialize + ?Sized>(payload: &T, correlation_id: Option<&str>) -> Result<Self, BusError> {
        let payload = serde_json::value::to_raw_value(payload).map_err(|e| BusError::Malformed(e.to_string()))?;
        Ok(Self::with_payload(payload, CONTENT_TYPE_JSON, correlation_id))
    }

    /// An envelope with `payload` encoded as CBOR (a base64 string on the wire, as EdgeX does).
    pub fn cbor<T: Serialize + ?Sized>(payload: &T, correlation_id: Option<&str>) -> Result<Self, BusError> {
        let mut bytes = Vec::new();
        ciborium::into_writer(payload, &mut bytes).map_err(|e| BusError::Malformed(e.to_string()))?;
        Ok(Self::with_payload(base64_raw(&bytes), CONTENT_TYPE_CBOR, correlation_id))
    }

    /// An error response to request `request_id`: `errorCode` 1 and the message as payload.
    pub fn error(request_id: &str, correlation_id: &str, message: &str) -> Self {
        let payload = serde_json::value::to_raw_value(message).expect("a string always serializes");
        let mut env = Self::with_payload(payload, CONTENT_TYPE_TEXT, Some(correlation_id));
        env.request_id = request_id.to_owned();
        env.error_code = 1;
        env
    }

    fn with_payload(payload: Box<RawValue>, content_type: &str, correlation_id: Option<&str>) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            received_topic: String::new(),
            correlation_id: correlation_id.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned),
            request_id: String::new(),
            error_code: 0,
            payload,
            content_type: content_type.to_owned(),
            query_params: BTreeMap::new(),
        }
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// Sets the query parameters.
    pub fn with_query_params(mut self, params: BTreeMap<String, String>) -> Self {
        self.query_params = params;
        self
    }

    /// Parses an envelope received on `topic`; fills in `receivedTopic`.
    pub fn from_bytes(bytes: &[u8], topic: &str) -> Result<Self, BusError> {
        let mut env: Self =
            serde_json::from_slice(bytes).map_err(|e| BusError::Malformed(format!("not a message envelope: {e}")))?;
        env.received_topic = topic.to_owned();
        Ok(env)
    }

    /// The envelope as JSON bytes, ready to publish.
    pub fn to_bytes(&self) -> Result<Bytes, BusError> {
        serde_json::to_vec(self).map(Bytes::from).map_err(|e| BusError::Malformed(e.to_string()))
    }

    /// Decodes the payload as `T`, whichever form it travels in: an embedded JSON value,
    /// or a base64 string of JSON or CBOR bytes as `contentType` says.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, BusError> {
        let raw = self.payload.get();
        let cbor = self.content_type.eq_ignore_ascii_case(CONTENT_TYPE_CBOR);
        if !raw.starts_with('"') || !cbor {
            // An embedded value, or a string that is itself the payload (as EdgeX reads it
            // when the target type is a string); otherwise a base64 string of JSON.
            match serde_json::from_str(raw) {
                Ok(v) => return Ok(v),
                Err(e) if !raw.starts_with('"') => return Err(BusError::Malformed(format!("payload: {e}"))),
                Err(_) => {}
            }
        }
        let bytes = self.base64_payload()?;
        if cbor {
            ciborium::from_reader(bytes.as_slice()).map_err(|e| BusError::Malformed(format!("CBOR payload: {e}")))
        } else {
            serde_json::from_slice(&bytes).map_err(|e| BusError::Malformed(format!("payload: {e}")))
        }
    }

    fn base64_payload(&self) -> Result<Vec<u8>, BusError> {
        let text: String =
            serde_json::from_str(self.payload.get()).map_err(|e| BusError::Malformed(format!("payload: {e}")))?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| BusError::Malformed(format!("payload is neither a JSON value nor base64: {e}")))
    }

    /// The payload's bytes: the JSON text of an embedded value, the decoded bytes of a
    /// base64 string (or, when it is not base64, the string itself, as error texts are).
    pub fn payload_bytes(&self) -> Result<Vec<u8>, BusError> {
        let raw = self.payload.get();
        if !raw.starts_with('"') {
            return Ok(raw.as_bytes().to_vec());
        }
        let text: String = serde_json::from_str(raw).map_err(|e| BusError::Malformed(format!("payload: {e}")))?;
        Ok(base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).unwrap_or_else(|_| text.into_bytes()))
    }
}

fn base64_raw(bytes: &[u8]) -> Box<RawValue> {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    serde_json::value::to_raw_value(&text).expect("a string always serializes")
}

/// The `apiVersion` of envelopes this crate writes.
const API_VERSION: &str = "v3";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn json_payloads_are_embedded_as_values() {
        let env = MessageEnvelope::json(&json!({"apiVersion": "v3", "event": {"id": "x"}}), Some("c-1")).unwrap();
        let wire: Value = serde_json::from_slice(&env.to_bytes().unwrap()).unwrap();
        assert_eq!(wire["payload"]["event"]["id"], "x");
        assert_eq!(wire["correlationID"], "c-1");
        assert_eq!(wire["contentType"], "application/json");
        assert_eq!(wire["errorCode"], 0);
        assert!(wire.get("queryParams").is_none());
    }

    #[test]
    fn cbor_and_base64_json_payloads_decode_alike() {
        let body = json!({"a": [1, 2, 3], "b": "text"});
        let cbor = MessageEnvelope::cbor(&body, None).unwrap();
        let back = MessageEnvelope::from_bytes(&cbor.to_bytes().unwrap(), "t").unwrap();
        assert_eq!(back.payload_as::<Value>().unwrap(), body);
        assert_eq!(back.received_topic, "t");

        let b64 = base64::engine::general_purpose::STANDARD.encode(body.to_string());
        let wire = json!({"apiVersion": "v3", "payload": b64, "contentType": "application/json"});
        let env = MessageEnvelope::from_bytes(wire.to_string().as_bytes(), "t").unwrap();
        let map: serde_json::Map<String, Value> = env.payload_as().unwrap();
        assert_eq!(Value::Object(map), body);
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        for bad in [&b"{"[..], b"[]", b"{\"payload\":\"%%%\",\"contentType\":\"application/cbor\"}", b"\xff\xfe"] {
            let res = MessageEnvelope::from_bytes(bad, "t").and_then(|e| e.payload_as::<Value>());
            assert!(matches!(res, Err(BusError::Malformed(_))), "{bad:?}");
        }
    }

    #[test]
    fn error_envelopes_carry_the_text() {
        let env = MessageEnvelope::error("r-1", "c-1", "device is locked");
        assert_eq!(env.error_code, 1);
        assert_eq!(env.payload_bytes().unwrap(), b"device is locked");
    }
}
