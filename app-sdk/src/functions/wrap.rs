//! `WrapIntoEvent`: makes an EdgeX event of one reading from raw input (an HTTP or external
//! MQTT trigger with `target_type: raw`), as EdgeX's `WrapIntoEvent`: the event of
//! `DeviceName`/`ProfileName` whose source is `ResourceName`, with a new id and the current
//! time as origin. A `Binary` reading holds the bytes (with `MediaType`), an `Object` reading
//! the input parsed as JSON, any other type the input as text, checked against the type.

use async_trait::async_trait;
use oxedge_contracts::{check_value, Event, Reading, ValueType, API_VERSION};
use serde::Deserialize;
use serde_json::Value as Json;

use super::params::{de, ParameterError};
use crate::{Context, Data, Function, FunctionError};

/// `WrapIntoEvent`'s parameters, with EdgeX's names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrapIntoEventSettings {
    /// The event's and reading's profile.
    #[serde(rename = "ProfileName", deserialize_with = "de::text")]
    pub profile_name: String,
    /// The event's and reading's device.
    #[serde(rename = "DeviceName", deserialize_with = "de::text")]
    pub device_name: String,
    /// The reading's resource, and the event's source.
    #[serde(rename = "ResourceName", deserialize_with = "de::text")]
    pub resource_name: String,
    /// The reading's value type (any case: `int16`, `Binary`, `Object`).
    #[serde(rename = "ValueType", deserialize_with = "de::text")]
    pub value_type: String,
    /// The media type of a `Binary` reading (required for it).
    #[serde(rename = "MediaType", default, deserialize_with = "de::text")]
    pub media_type: String,
}

/// Wraps its input into an event.
#[derive(Debug, Clone)]
pub struct WrapIntoEvent {
    settings: WrapIntoEventSettings,
    value_type: ValueType,
}

impl WrapIntoEvent {
    /// From its settings; an empty name, an unknown value type or a `Binary` type without a
    /// media type is an error naming the parameter.
    pub fn new(settings: WrapIntoEventSettings) -> Result<Self, ParameterError> {
        for (parameter, value) in [
            ("ProfileName", &settings.profile_name),
            ("DeviceName", &settings.device_name),
            ("ResourceName", &settings.resource_name),
        ] {
            if value.is_empty() {
                return Err(ParameterError::new(parameter, "must not be empty"));
            }
        }
        let value_type = ValueType::parse(&settings.value_type).ok_or_else(|| {
            ParameterError::new("ValueType", format!("'{}' is not an EdgeX value type", settings.value_type))
        })?;
        if value_type == ValueType::Binary && settings.media_type.is_empty() {
            return Err(ParameterError::new("MediaType", "missing (ValueType is Binary)"));
        }
        Ok(Self { settings, value_type })
    }

    fn reading(&self, data: Data) -> Result<Reading, String> {
        let s = &self.settings;
        let mut reading = Reading {
            id: uuid::Uuid::new_v4().to_string(),
            origin: 0,
            device_name: s.device_name.clone(),
            resource_name: s.resource_name.clone(),
            profile_name: s.profile_name.clone(),
            value_type: self.value_type,
            units: String::new(),
            tags: Default::default(),
            value: None,
            binary_value: None,
            media_type: String::new(),
            object_value: None,
        };
        match (self.value_type, data) {
            (ValueType::Binary, data) => {
                reading.binary_value = Some(data.to_payload().map_err(|e| e.message)?.0.to_vec());
                reading.media_type = s.media_type.clone();
            }
            (ValueType::Object | ValueType::ObjectArray, Data::Json(value)) => reading.object_value = Some(value),
            (ValueType::Object | ValueType::ObjectArray, Data::Bytes { bytes, .. }) => {
                let value: Json = serde_json::from_slice(&bytes).map_err(|e| format!("the input is not JSON: {e}"))?;
                reading.object_value = Some(value);
            }
            (value_type, data) => {
                let text = match data {
                    Data::Bytes { bytes, .. } => {
                        String::from_utf8(bytes.to_vec()).map_err(|_| "the input is not UTF-8 text".to_owned())?
                    }
                    Data::Json(Json::String(text)) => text,
                    Data::Json(value @ (Json::Number(_) | Json::Bool(_) | Json::Array(_))) => value.to_string(),
                    other => return Err(format!("cannot make a {value_type} value of {}", super::kind(&other))),
                };
                check_value(value_type, &text)?;
                reading.value = Some(text);
            }
        }
        Ok(reading)
    }
}

#[async_trait]
impl Function for WrapIntoEvent {
    fn name(&self) -> &str {
        "WrapIntoEvent"
    }

    async fn call(&self, _ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let mut reading = self.reading(data).map_err(|e| FunctionError::new(format!("WrapIntoEvent: {e}")))?;
        let origin = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        reading.origin = origin;
        let s = &self.settings;
        let event = Event {
            api_version: API_VERSION.to_owned(),
            id: uuid::Uuid::new_v4().to_string(),
            device_name: s.device_name.clone(),
            profile_name: s.profile_name.clone(),
            source_name: s.resource_name.clone(),
            origin,
            readings: vec![reading],
            tags: Default::default(),
        };
        Ok(Some(Data::Event(Box::new(event))))
    }
}
