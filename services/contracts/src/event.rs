//! `Event` and `Reading`: what devices report.

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::common::ValueType;
use crate::envelope::API_VERSION;
use crate::validate::Validator;

/// One event: readings of one device taken at one time for one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Always `v3`.
    #[serde(default = "api_version")]
    pub api_version: String,
    /// Unique id (UUID).
    pub id: String,
    /// The device that produced it.
    pub device_name: String,
    /// The device's profile.
    pub profile_name: String,
    /// The resource or command that was read.
    pub source_name: String,
    /// When it was taken, nanoseconds since the epoch.
    pub origin: i64,
    /// One or more readings.
    pub readings: Vec<Reading>,
    /// Extra context.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub tags: Map<String, Value>,
}

fn api_version() -> String {
    API_VERSION.to_owned()
}

/// One value of one resource: simple (`value`), binary (`binaryValue`) or object (`objectValue`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reading {
    /// Unique id (UUID).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// When it was taken, nanoseconds since the epoch.
    #[serde(default)]
    pub origin: i64,
    /// The device that produced it.
    #[serde(default)]
    pub device_name: String,
    /// The resource it is a value of.
    pub resource_name: String,
    /// The device's profile.
    #[serde(default)]
    pub profile_name: String,
    /// The type of the value.
    pub value_type: ValueType,
    /// Unit of measure.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub units: String,
    /// Extra context.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub tags: Map<String, Value>,
    /// The value as text, for every type but Binary and Object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The bytes of a Binary value (base64 in JSON; a number array is accepted too).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_bytes",
        deserialize_with = "de_bytes"
    )]
    #[schema(value_type = Option<String>, format = Byte)]
    pub binary_value: Option<Vec<u8>>,
    /// MIME type of a Binary value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// An Object value: any JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_value: Option<Value>,
}

fn ser_bytes<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
        None => s.serialize_none(),
    }
}

fn de_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Bytes {
        Text(String),
        Array(Vec<u8>),
    }
    match Option::<Bytes>::deserialize(d)? {
        None => Ok(None),
        Some(Bytes::Array(a)) => Ok(Some(a)),
        Some(Bytes::Text(t)) => base64::engine::general_purpose::STANDARD
            .decode(t.as_bytes())
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("binaryValue is not valid base64: {e}"))),
    }
}

impl Event {
    /// Checks the event and each reading as EdgeX does, reporting under `prefix`.
    pub fn validate(&self, v: &mut Validator, prefix: &str) {
        v.check(uuid::Uuid::parse_str(&self.id).is_ok(), &format!("{prefix}.id"), "must be a UUID");
        v.name(&format!("{prefix}.deviceName"), &self.device_name);
        v.name(&format!("{prefix}.profileName"), &self.profile_name);
        v.name(&format!("{prefix}.sourceName"), &self.source_name);
        v.check(self.origin > 0, &format!("{prefix}.origin"), "is required");
        v.check(!self.readings.is_empty(), &format!("{prefix}.readings"), "must hold at least one reading");
        for (i, r) in self.readings.iter().enumerate() {
            r.validate(v, &format!("{prefix}.readings[{i}]"));
        }
    }
}

impl Reading {
    /// Checks names, origin and that the value fits the value type.
    pub fn validate(&self, v: &mut Validator, p: &str) {
        v.name(&format!("{p}.deviceName"), &self.device_name);
        v.name(&format!("{p}.resourceName"), &self.resource_name);
        v.name(&format!("{p}.profileName"), &self.profile_name);
        v.check(self.origin > 0, &format!("{p}.origin"), "is required");
        match self.value_type {
            ValueType::Binary => {
                v.check(self.binary_value.is_some(), &format!("{p}.binaryValue"), "is required for Binary readings");
                v.check(!self.media_type.is_empty(), &format!("{p}.mediaType"), "is required for Binary readings");
            }
            ValueType::Object | ValueType::ObjectArray => {
                v.check(self.object_value.is_some(), &format!("{p}.objectValue"), "is required for Object readings");
            }
            vt => match &self.value {
                None => v.fail(&format!("{p}.value"), "is required"),
                Some(val) => {
                    if let Err(e) = check_value(vt, val) {
                        v.fail(&format!("{p}.value"), e);
                    }
                }
            },
        }
    }
}

/// Checks that `value` is a valid text form of `vt` (`"true"`, `"-12"`, `"[1, 2]"`…).
pub fn check_value(vt: ValueType, value: &str) -> Result<(), String> {
    use ValueType::*;
    let scalar = |t: ValueType, s: &str| -> bool {
        let s = s.trim();
        match t {
            Bool => s.parse::<bool>().is_ok(),
            String => true,
            Uint8 => s.parse::<u8>().is_ok(),
            Uint16 => s.parse::<u16>().is_ok(),
            Uint32 => s.parse::<u32>().is_ok(),
            Uint64 => s.parse::<u64>().is_ok(),
            Int8 => s.parse::<i8>().is_ok(),
            Int16 => s.parse::<i16>().is_ok(),
            Int32 => s.parse::<i32>().is_ok(),
            Int64 => s.parse::<i64>().is_ok(),
            Float32 => s.parse::<f32>().is_ok(),
            Float64 => s.parse::<f64>().is_ok(),
            _ => false,
        }
    };
    let element = match vt {
        BoolArray => Some(Bool),
        StringArray => Some(String),
        Uint8Array => Some(Uint8),
        Uint16Array => Some(Uint16),
        Uint32Array => Some(Uint32),
        Uint64Array => Some(Uint64),
        Int8Array => Some(Int8),
        Int16Array => Some(Int16),
        Int32Array => Some(Int32),
        Int64Array => Some(Int64),
        Float32Array => Some(Float32),
        Float64Array => Some(Float64),
        _ => None,
    };
    let ok = match element {
        None => scalar(vt, value),
        Some(String) => serde_json::from_str::<Vec<std::string::String>>(value).is_ok(),
        Some(t) => value
            .trim()
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .is_some_and(|inner| inner.trim().is_empty() || inner.split(',').all(|e| scalar(t, e))),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("'{}' is not a valid {vt} value", truncate(value, 64)))
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binary_values_are_base64_out_and_accept_arrays_in() {
        let r: Reading = serde_json::from_value(json!({
            "resourceName": "r", "valueType": "Binary", "binaryValue": [12, 34], "mediaType": "image"
        }))
        .unwrap();
        assert_eq!(r.binary_value.as_deref(), Some(&[12u8, 34][..]));
        let out = serde_json::to_value(&r).unwrap();
        assert_eq!(out["binaryValue"], json!("DCI="));
        let back: Reading = serde_json::from_value(out).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn simple_values_are_checked_against_their_type() {
        assert!(check_value(ValueType::Uint8, "255").is_ok());
        assert!(check_value(ValueType::Uint8, "256").is_err());
        assert!(check_value(ValueType::Int8, "-128").is_ok());
        assert!(check_value(ValueType::Bool, "yes").is_err());
        assert!(check_value(ValueType::Float32, "39.5").is_ok());
        assert!(check_value(ValueType::Float64, "1e308").is_ok());
        assert!(check_value(ValueType::Int16Array, "[1, -2, 3]").is_ok());
        assert!(check_value(ValueType::Int16Array, "[1, x]").is_err());
        assert!(check_value(ValueType::StringArray, r#"["a","b"]"#).is_ok());
        assert!(check_value(ValueType::BoolArray, "[]").is_ok());
        assert!(check_value(ValueType::String, "anything").is_ok());
    }
}
