//! JSON conversions: `ToJsonValue` turns whatever it gets into a generic JSON value (for custom
//! functions that edit JSON), `ToEvent` turns JSON (a value, or JSON bytes from an HTTP or MQTT
//! trigger) back into an EdgeX event, checked as core-data checks one.

use async_trait::async_trait;
use oxedge_contracts::validate::Validator;
use oxedge_contracts::Event;

use crate::data::is_json;
use crate::{Context, Data, Function, FunctionError};

/// Any data as a [`Data::Json`] value: an event or batch as its JSON, JSON bytes parsed;
/// bytes that are not JSON are an error.
#[derive(Debug, Clone, Default)]
pub struct ToJsonValue;

#[async_trait]
impl Function for ToJsonValue {
    fn name(&self) -> &str {
        "ToJsonValue"
    }

    async fn call(&self, _ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let value = match data {
            Data::Json(value) => value,
            Data::Bytes { bytes, content_type } => serde_json::from_slice(&bytes)
                .map_err(|e| FunctionError::new(format!("ToJsonValue: the {content_type} input is not JSON: {e}")))?,
            other => {
                let (bytes, _) = other.to_payload()?;
                serde_json::from_slice(&bytes).map_err(|e| FunctionError::new(format!("ToJsonValue: {e}")))?
            }
        };
        Ok(Some(Data::Json(value)))
    }
}

/// A JSON value or JSON bytes as a [`Data::Event`]; an event that does not parse or fails
/// core-data's checks is an error naming the field.
#[derive(Debug, Clone, Default)]
pub struct ToEvent;

#[async_trait]
impl Function for ToEvent {
    fn name(&self) -> &str {
        "ToEvent"
    }

    async fn call(&self, _ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let parsed: Result<Event, String> = match data {
            Data::Event(event) => return Ok(Some(Data::Event(event))),
            Data::Json(value) => serde_path_to_error::deserialize(value).map_err(|e| path_error(&e)),
            Data::Bytes { bytes, content_type } if is_json(&content_type) || content_type.is_empty() => {
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
                    .map_err(|e| path_error(&e))
            }
            other => return Err(FunctionError::new(format!("ToEvent: expects JSON, got {}", super::kind(&other)))),
        };
        let event = parsed.map_err(|e| FunctionError::new(format!("ToEvent: not an event: {e}")))?;
        let mut validator = Validator::new();
        event.validate(&mut validator, "event");
        validator.finish().map_err(|e| FunctionError::new(format!("ToEvent: {}", e.message)))?;
        Ok(Some(Data::Event(Box::new(event))))
    }
}

fn path_error<E: std::fmt::Display>(error: &serde_path_to_error::Error<E>) -> String {
    let path = error.path().to_string();
    if path == "." {
        error.inner().to_string()
    } else {
        format!("{path}: {}", error.inner())
    }
}
