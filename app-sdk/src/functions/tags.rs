//! `AddTags`: adds tags to each event, as EdgeX's `AddTags`. `Tags` is EdgeX's
//! comma-separated `key:value` list (`"GatewayId:HoustonStore000123, Latitude:29.630771"`; a
//! value may itself hold `:`, as in a URL) or a YAML map (whose values may be any JSON).

use async_trait::async_trait;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value as Json};

use super::params::ParameterError;
use crate::{Context, Data, Function, FunctionError};

/// `AddTags`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddTagsSettings {
    /// The tags to add.
    #[serde(rename = "Tags", deserialize_with = "tags")]
    pub tags: Map<String, Json>,
}

/// Reads `Tags`: EdgeX's `key:value` list or a map.
pub(crate) fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Json>, D::Error> {
    match Json::deserialize(d)? {
        Json::String(spec) => parse_tags(&spec).map_err(serde::de::Error::custom),
        Json::Object(map) => Ok(map),
        other => Err(serde::de::Error::custom(format!("expected 'key:value, key:value' or a map, got {other}"))),
    }
}

/// Parses EdgeX's tag list: comma-separated `key:value` pairs, each trimmed, empty items
/// skipped; the key ends at the first `:`. A pair without `:` or with an empty key or value
/// is an error quoting it.
pub fn parse_tags(spec: &str) -> Result<Map<String, Json>, String> {
    let mut tags = Map::new();
    for item in spec.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (key, value) = item
            .split_once(':')
            .map(|(key, value)| (key.trim(), value.trim()))
            .ok_or_else(|| format!("'{item}' is not key:value"))?;
        if key.is_empty() {
            return Err(format!("'{item}' has no key"));
        }
        if value.is_empty() {
            return Err(format!("'{item}' has no value"));
        }
        tags.insert(key.to_owned(), Json::String(value.to_owned()));
    }
    Ok(tags)
}

/// Adds its tags to each event (a tag of the same name is replaced).
#[derive(Debug, Clone)]
pub struct AddTags {
    tags: Map<String, Json>,
}

impl AddTags {
    /// Adds `tags`.
    pub fn new(tags: Map<String, Json>) -> Self {
        Self { tags }
    }

    /// From EdgeX's parameters.
    pub fn from_settings(settings: AddTagsSettings) -> Result<Self, ParameterError> {
        Ok(Self::new(settings.tags))
    }
}

#[async_trait]
impl Function for AddTags {
    fn name(&self) -> &str {
        "AddTags"
    }

    async fn call(&self, _ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let Data::Event(mut event) = data else {
            return Err(FunctionError::new(format!("AddTags: expects an event, got {}", super::kind(&data))));
        };
        for (key, value) in &self.tags {
            event.tags.insert(key.clone(), value.clone());
        }
        Ok(Some(Data::Event(event)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edgex_examples_parse() {
        let tags = parse_tags("GatewayId:HoustonStore000123, Latitude:29.630771,,Url: http://x:8080/a ").unwrap();
        assert_eq!(tags["GatewayId"], "HoustonStore000123");
        assert_eq!(tags["Latitude"], "29.630771");
        assert_eq!(tags["Url"], "http://x:8080/a");
        assert!(parse_tags("").unwrap().is_empty());
        assert!(parse_tags("novalue").unwrap_err().contains("'novalue'"));
        assert!(parse_tags(":v").unwrap_err().contains("no key"));
        assert!(parse_tags("k: ").unwrap_err().contains("no value"));
    }
}
