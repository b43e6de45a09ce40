//! `Transform`: an event to JSON or to XML, as EdgeX's `TransformToJSON` / `TransformToXML`.
//!
//! The XML is the document Go's `encoding/xml` writes for EdgeX's `dtos.Event`: an `<Event>`
//! element with `ApiVersion`, `Id`, `DeviceName`, `ProfileName`, `SourceName`, `Origin`, one
//! `<Readings>` element per reading (`Id`, `Origin`, `DeviceName`, `ResourceName`,
//! `ProfileName`, `ValueType`, `Units`, `Tags`, `BinaryValue`, `MediaType`, `Value`,
//! `ObjectValue`) and `<Tags>` with one element per tag when there are tags. Where Go's
//! encoder would fail or write something no parser reads back, this one writes text: binary
//! values as base64, object values and non-string tag values as JSON.

use async_trait::async_trait;
use bytes::Bytes;
use oxedge_contracts::{Event, Reading};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::params::{de, ParameterError};
use crate::{Context, Data, Function, FunctionError};

/// `application/xml`.
pub const CONTENT_TYPE_XML: &str = "application/xml";

/// What [`Transform`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransformType {
    /// JSON (`application/json`).
    Json,
    /// XML (`application/xml`).
    Xml,
}

/// `Transform`'s parameters: `Type` is `json` or `xml` (any case).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformSettings {
    /// `json` or `xml`.
    #[serde(rename = "Type", deserialize_with = "de::text")]
    pub kind: String,
}

/// Turns an event into JSON or XML bytes.
#[derive(Debug, Clone)]
pub struct Transform {
    kind: TransformType,
}

impl Transform {
    /// A transform to `kind`.
    pub fn new(kind: TransformType) -> Self {
        Self { kind }
    }

    /// A transform from EdgeX's parameters.
    pub fn from_settings(settings: &TransformSettings) -> Result<Self, ParameterError> {
        match settings.kind.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::new(TransformType::Json)),
            "xml" => Ok(Self::new(TransformType::Xml)),
            other => Err(ParameterError::new("Type", format!("'{other}' is not json or xml"))),
        }
    }
}

#[async_trait]
impl Function for Transform {
    fn name(&self) -> &str {
        match self.kind {
            TransformType::Json => "TransformToJSON",
            TransformType::Xml => "TransformToXML",
        }
    }

    async fn call(&self, _ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let (bytes, content_type) = match (self.kind, &data) {
            (TransformType::Json, Data::Event(_) | Data::Json(_) | Data::Batch(_)) => data.to_payload()?,
            (TransformType::Xml, Data::Event(event)) => {
                (Bytes::from(event_to_xml(event)?), CONTENT_TYPE_XML.to_owned())
            }
            (TransformType::Xml, Data::Batch(items)) => {
                let mut xml = String::from("<Events>");
                for item in items {
                    let Data::Event(event) = item else {
                        return Err(FunctionError::new(format!(
                            "{}: a batch to write as XML must hold events only, it holds {}",
                            self.name(),
                            super::kind(item)
                        )));
                    };
                    xml.push_str(&event_to_xml(event)?);
                }
                xml.push_str("</Events>");
                (Bytes::from(xml), CONTENT_TYPE_XML.to_owned())
            }
            _ => {
                return Err(FunctionError::new(format!(
                    "{}: expects an event, got {}",
                    self.name(),
                    super::kind(&data)
                )));
            }
        };
        Ok(Some(Data::Bytes { bytes, content_type }))
    }
}

/// The event as EdgeX's XML (see the module documentation).
pub fn event_to_xml(event: &Event) -> Result<String, FunctionError> {
    let mut xml = String::with_capacity(256 + event.readings.len() * 256);
    xml.push_str("<Event>");
    element(&mut xml, "ApiVersion", &event.api_version);
    element(&mut xml, "Id", &event.id);
    element(&mut xml, "DeviceName", &event.device_name);
    element(&mut xml, "ProfileName", &event.profile_name);
    element(&mut xml, "SourceName", &event.source_name);
    element(&mut xml, "Origin", &event.origin.to_string());
    for (i, reading) in event.readings.iter().enumerate() {
        reading_to_xml(&mut xml, reading).map_err(|e| FunctionError::new(format!("readings[{i}].{}", e.message)))?;
    }
    tags_to_xml(&mut xml, &event.tags).map_err(|e| FunctionError::new(e.message))?;
    xml.push_str("</Event>");
    Ok(xml)
}

fn reading_to_xml(xml: &mut String, reading: &Reading) -> Result<(), FunctionError> {
    use base64::Engine as _;
    xml.push_str("<Readings>");
    element(xml, "Id", &reading.id);
    element(xml, "Origin", &reading.origin.to_string());
    element(xml, "DeviceName", &reading.device_name);
    element(xml, "ResourceName", &reading.resource_name);
    element(xml, "ProfileName", &reading.profile_name);
    element(xml, "ValueType", &reading.value_type.to_string());
    element(xml, "Units", &reading.units);
    tags_to_xml(xml, &reading.tags)?;
    let binary = reading.binary_value.as_deref().map(|b| base64::engine::general_purpose::STANDARD.encode(b));
    element(xml, "BinaryValue", binary.as_deref().unwrap_or_default());
    element(xml, "MediaType", &reading.media_type);
    element(xml, "Value", reading.value.as_deref().unwrap_or_default());
    if let Some(object) = &reading.object_value {
        element(xml, "ObjectValue", &object.to_string());
    }
    xml.push_str("</Readings>");
    Ok(())
}

fn tags_to_xml(xml: &mut String, tags: &Map<String, Json>) -> Result<(), FunctionError> {
    if tags.is_empty() {
        return Ok(());
    }
    xml.push_str("<Tags>");
    for (key, value) in tags {
        if !is_xml_name(key) {
            return Err(FunctionError::new(format!("tags: '{key}' cannot be an XML element name")));
        }
        match value {
            Json::String(text) => element(xml, key, text),
            other => element(xml, key, &other.to_string()),
        }
    }
    xml.push_str("</Tags>");
    Ok(())
}

fn element(xml: &mut String, name: &str, text: &str) {
    xml.push('<');
    xml.push_str(name);
    xml.push('>');
    escape_into(xml, text);
    xml.push_str("</");
    xml.push_str(name);
    xml.push('>');
}

/// Escapes character data as Go's `xml.EscapeText` does.
fn escape_into(xml: &mut String, text: &str) {
    let plain = |c: char| is_xml_char(c) && !matches!(c, '"' | '\'' | '&' | '<' | '>');
    if text.chars().all(plain) {
        xml.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '"' => xml.push_str("&#34;"),
            '\'' => xml.push_str("&#39;"),
            '&' => xml.push_str("&amp;"),
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            '\t' => xml.push_str("&#x9;"),
            '\n' => xml.push_str("&#xA;"),
            '\r' => xml.push_str("&#xD;"),
            c if is_xml_char(c) => xml.push(c),
            _ => xml.push('\u{FFFD}'),
        }
    }
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Whether `name` can be an element name (letters, digits, `_`, `-`, `.`, not starting with a
/// digit, `-` or `.`, no `:` namespaces).
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Event {
        serde_json::from_value(json!({
            "apiVersion": "v3", "id": "e1", "deviceName": "d<1>", "profileName": "p", "sourceName": "s",
            "origin": 7, "tags": {"site": "a&b", "floor": 3},
            "readings": [{"id": "r1", "origin": 7, "deviceName": "d<1>", "resourceName": "temp", "profileName": "p",
                          "valueType": "Int16", "value": "21"}]
        }))
        .unwrap()
    }

    #[test]
    fn xml_has_edgex_shape() {
        let xml = event_to_xml(&event()).unwrap();
        assert_eq!(
            xml,
            "<Event><ApiVersion>v3</ApiVersion><Id>e1</Id><DeviceName>d&lt;1&gt;</DeviceName><ProfileName>p</ProfileName>\
             <SourceName>s</SourceName><Origin>7</Origin><Readings><Id>r1</Id><Origin>7</Origin>\
             <DeviceName>d&lt;1&gt;</DeviceName><ResourceName>temp</ResourceName><ProfileName>p</ProfileName>\
             <ValueType>Int16</ValueType><Units></Units><BinaryValue></BinaryValue><MediaType></MediaType>\
             <Value>21</Value></Readings><Tags><floor>3</floor><site>a&amp;b</site></Tags></Event>"
        );
    }

    #[test]
    fn a_tag_that_cannot_be_an_element_is_an_error_naming_it() {
        let mut e = event();
        e.tags.insert("1 bad".into(), json!("x"));
        let err = event_to_xml(&e).unwrap_err();
        assert!(err.message.contains("'1 bad'"), "{err}");
    }

    #[test]
    fn control_characters_are_replaced() {
        let mut xml = String::new();
        escape_into(&mut xml, "a\u{1}b\n");
        assert_eq!(xml, "a\u{FFFD}b&#xA;");
    }
}
