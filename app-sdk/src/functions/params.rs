//! Function parameters as EdgeX's configurable pipelines write them: a map of parameter names
//! (any case: `DeviceNames`, `devicenames`) to values that are mostly strings (`FilterOut:
//! "true"`, `BatchThreshold: "30"`), read into a typed settings struct with serde.
//!
//! A settings struct names its fields as EdgeX does (`#[serde(rename = "DeviceNames")]`) and
//! reads scalars with the lenient readers in [`de`]; [`from_parameters`] matches the given
//! keys to those names without regard to case and reports a problem under the parameter's name:
//! `BrokerAddress: missing`, `FilterOut: expected true or false, got 'maybe'`, `Color: unknown
//! parameter`.

use std::fmt;

use serde::de::{DeserializeOwned, Visitor};
use serde_json::{Map, Value as Json};

/// A problem with one parameter of a function.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {message}")]
pub struct ParameterError {
    /// The parameter, as the settings name it (`BrokerAddress`); empty for the whole set.
    pub parameter: String,
    /// What is wrong with it.
    pub message: String,
}

impl ParameterError {
    /// A problem `message` with `parameter`.
    pub fn new(parameter: impl Into<String>, message: impl Into<String>) -> Self {
        Self { parameter: parameter.into(), message: message.into() }
    }
}

/// Reads the settings `T` from `parameters` (keys in any case, values as EdgeX writes them).
/// A key naming no field of `T` is an error, so that a typo does not go unnoticed.
pub fn from_parameters<T: DeserializeOwned>(parameters: &Map<String, Json>) -> Result<T, ParameterError> {
    let fields = field_names::<T>();
    let mut canonical = Map::new();
    for (key, value) in parameters {
        let field = fields.iter().find(|field| field.eq_ignore_ascii_case(key)).ok_or_else(|| {
            ParameterError::new(key.clone(), format!("unknown parameter (known: {})", fields.join(", ")))
        })?;
        if canonical.insert((*field).to_owned(), value.clone()).is_some() {
            return Err(ParameterError::new(*field, "given twice (parameter names are not case-sensitive)"));
        }
    }
    serde_path_to_error::deserialize(Json::Object(canonical)).map_err(|error| {
        let message = error.inner().to_string();
        let path = error.path().to_string();
        match message.strip_prefix("missing field `").and_then(|rest| rest.split_once('`')) {
            Some((field, _)) => ParameterError::new(field, "missing"),
            None if path == "." || path.is_empty() => ParameterError::new("", message),
            None => ParameterError::new(path, message),
        }
    })
}

/// The field names serde uses for the struct `T` (empty when `T` is not a struct with named
/// fields).
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldNames { fields: &mut fields });
    fields
}

/// A deserializer that only records the fields a struct asks for, then stops.
struct FieldNames<'a> {
    fields: &'a mut &'static [&'static str],
}

#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stop")
    }
}

impl std::error::Error for Stop {}

impl serde::de::Error for Stop {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.fields = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// Lenient readers for settings fields (`#[serde(deserialize_with = "de::flag")]`): EdgeX
/// writes every parameter as a string, YAML users write booleans and numbers as such; both are
/// accepted.
pub mod de {
    use std::str::FromStr;
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};
    use serde_json::Value as Json;

    fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        match Json::deserialize(d)? {
            Json::String(s) => Ok(s.trim().to_owned()),
            Json::Bool(b) => Ok(b.to_string()),
            Json::Number(n) => Ok(n.to_string()),
            other => Err(serde::de::Error::custom(format!("expected a single value, got {other}"))),
        }
    }

    /// A boolean as Go's `strconv.ParseBool` reads it (`true`, `True`, `1`, `t`… and their
    /// opposites), or a YAML boolean.
    pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        let text = scalar(d)?;
        parse_flag(&text).ok_or_else(|| serde::de::Error::custom(format!("expected true or false, got '{text}'")))
    }

    /// Go's `strconv.ParseBool`.
    pub fn parse_flag(text: &str) -> Option<bool> {
        match text {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
            _ => None,
        }
    }

    /// A number (or anything `FromStr`) written as a string or a YAML number.
    pub fn number<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<T, D::Error> {
        let text = scalar(d)?;
        text.parse().map_err(|_| serde::de::Error::custom(format!("expected a number, got '{text}'")))
    }

    /// An optional number; an empty string counts as absent.
    pub fn optional_number<'de, D: Deserializer<'de>, T: FromStr>(d: D) -> Result<Option<T>, D::Error> {
        let text = scalar(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| serde::de::Error::custom(format!("expected a number, got '{text}'")))
    }

    /// A string written as a string or any YAML scalar, trimmed.
    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        scalar(d)
    }

    /// A list: a comma-separated string (`"a, b,,c"` → `a`, `b`, `c`, as EdgeX splits it) or a
    /// YAML sequence of scalars.
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        match Json::deserialize(d)? {
            Json::String(s) => Ok(split_list(&s)),
            Json::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Json::String(s) => Ok(s.trim().to_owned()),
                    Json::Number(n) => Ok(n.to_string()),
                    Json::Bool(b) => Ok(b.to_string()),
                    other => Err(serde::de::Error::custom(format!("expected a list of names, got {other}"))),
                })
                .filter(|item| !matches!(item, Ok(s) if s.is_empty()))
                .collect(),
            other => Err(serde::de::Error::custom(format!("expected a comma-separated list, got {other}"))),
        }
    }

    /// Splits a comma-separated list, trimming each item and dropping empty ones.
    pub fn split_list(text: &str) -> Vec<String> {
        text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
    }

    /// An optional Go duration (`10s`, `1m30s`, `500ms`); an empty string counts as absent.
    pub fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = scalar(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        oxedge_contracts::validate::parse_duration(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("'{text}' is not a duration such as 500ms, 10s or 1m")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(rename = "BrokerAddress", deserialize_with = "de::text")]
        broker: String,
        #[serde(rename = "Retain", default, deserialize_with = "de::flag")]
        retain: bool,
        #[serde(rename = "Qos", default, deserialize_with = "de::number")]
        qos: u8,
    }

    fn params(value: Json) -> Map<String, Json> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn keys_match_in_any_case_and_strings_become_scalars() {
        let s: Settings =
            from_parameters(&params(json!({"brokeraddress": "tcp://x:1883", "RETAIN": "true", "qos": 1}))).unwrap();
        assert_eq!(s, Settings { broker: "tcp://x:1883".into(), retain: true, qos: 1 });
    }

    #[test]
    fn problems_name_the_parameter() {
        let missing = from_parameters::<Settings>(&params(json!({"Retain": false}))).unwrap_err();
        assert_eq!(missing.to_string(), "BrokerAddress: missing");
        let bad = from_parameters::<Settings>(&params(json!({"BrokerAddress": "x", "Retain": "maybe"}))).unwrap_err();
        assert_eq!(bad.parameter, "Retain");
        assert!(bad.message.contains("'maybe'"), "{bad}");
        let unknown = from_parameters::<Settings>(&params(json!({"BrokerAddress": "x", "Colour": "red"}))).unwrap_err();
        assert_eq!(unknown.parameter, "Colour");
        assert!(unknown.message.contains("BrokerAddress"), "{unknown}");
        let twice = from_parameters::<Settings>(&params(json!({"qos": "1", "QoS": "2", "BrokerAddress": "x"})));
        assert_eq!(twice.unwrap_err().parameter, "Qos");
    }

    #[test]
    fn lists_split_like_edgex() {
        assert_eq!(de::split_list(" a, b,,c ,"), ["a", "b", "c"]);
        assert!(de::split_list("").is_empty());
    }
}
