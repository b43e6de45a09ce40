//! `ToLineProtocol`: InfluxDB line protocol
//! (`measurement,tag=value field=value timestamp`), as EdgeX's `ToLineProtocol`, with its
//! `Tags` parameter (EdgeX's `key:value, key:value` list, or a YAML map) added to every line.
//!
//! - An **event** gives one line per reading: the measurement is the reading's `resourceName`;
//!   the tags are `deviceName`, `profileName`, `sourceName`, `units` (when set), the event's
//!   and the reading's tags, then `Tags`; the one field `value` is typed by the reading's
//!   `valueType` (`Int*` → `42i`, `Uint*` → `42u` as EdgeX writes unsigned values, `Float*` →
//!   `21.5`, `Bool` → `true`, `String` and arrays → a quoted string); the timestamp is the
//!   reading's `origin` in nanoseconds (the event's when the reading has none). Binary and
//!   Object readings, and floats that are not finite, have no line; an event with no line at
//!   all is an error.
//! - An EdgeX **Metric** DTO (`{"name", "fields": [{name, value}], "tags": [{name, value}],
//!   "timestamp"}`, what EdgeX services publish on `edgex/telemetry/…`, as JSON bytes or a
//!   JSON value) gives its one line, as EdgeX's transform does; JSON numbers are written as
//!   floats (EdgeX decodes them as `float64`).
//! - A **batch** gives the lines of all its items.
//!
//! Unlike EdgeX, which writes names and values as they are, every name and value is escaped
//! as the line protocol reference says: `,` and space in measurements; `,`, `=` and space in
//! tag keys, tag values and field keys; `"` in string values; `\` everywhere (doubled, so that a
//! trailing backslash cannot escape the separator after it). Line protocol cannot carry a line
//! break in any element: `\n`, `\r` and `\t` are written as those two characters. Tags with an
//! empty key or value are left out (line protocol has no empty tag value), tags are sorted by
//! key. The output is `text/plain`, lines separated by `\n`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use async_trait::async_trait;
use bytes::Bytes;
use oxedge_contracts::{Event, Reading, ValueType};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::params::ParameterError;
use crate::{Context, Data, Function, FunctionError};

/// The media type of the output.
pub const CONTENT_TYPE_LINE_PROTOCOL: &str = "text/plain";

/// `ToLineProtocol`'s parameters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToLineProtocolSettings {
    /// Tags added to every line (`"site:houston, line:3"` or a map).
    #[serde(rename = "Tags", default, deserialize_with = "super::tags::tags")]
    pub tags: Map<String, Json>,
}

/// Turns events and EdgeX metrics into InfluxDB line protocol.
#[derive(Debug, Clone)]
pub struct ToLineProtocol {
    tags: BTreeMap<String, String>,
}

impl ToLineProtocol {
    /// With the extra `tags`; an empty tag name is an error naming `Tags`, as in EdgeX.
    pub fn new(tags: &Map<String, Json>) -> Result<Self, ParameterError> {
        if tags.keys().any(|key| key.trim().is_empty()) {
            return Err(ParameterError::new("Tags", "a tag name is empty"));
        }
        Ok(Self { tags: tags.iter().map(|(key, value)| (key.clone(), text(value))).collect() })
    }

    /// From EdgeX's parameters.
    pub fn from_settings(settings: &ToLineProtocolSettings) -> Result<Self, ParameterError> {
        Self::new(&settings.tags)
    }

    /// The lines of `event`, each ended by `\n`; an error when no reading can be written.
    pub fn event_lines(&self, event: &Event, out: &mut String) -> Result<(), String> {
        let mut skipped = None;
        let before = out.len();
        for reading in &event.readings {
            match field_value(reading) {
                Ok(value) => {
                    let mut tags = BTreeMap::new();
                    tags.insert("deviceName".to_owned(), event.device_name.clone());
                    tags.insert("profileName".to_owned(), event.profile_name.clone());
                    tags.insert("sourceName".to_owned(), event.source_name.clone());
                    tags.insert("units".to_owned(), reading.units.clone());
                    tags.extend(event.tags.iter().chain(&reading.tags).map(|(k, v)| (k.clone(), text(v))));
                    tags.extend(self.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
                    let timestamp = if reading.origin > 0 { reading.origin } else { event.origin };
                    line(out, &reading.resource_name, &tags, &[("value", value)], timestamp)
                        .map_err(|e| format!("reading {}: {e}", reading.resource_name))?;
                }
                Err(why) => skipped = skipped.or(Some(format!("reading {}: {why}", reading.resource_name))),
            }
        }
        if out.len() == before {
            return Err(match skipped {
                Some(why) => format!("event {} has no reading line protocol can carry ({why})", event.id),
                None => format!("event {} has no readings", event.id),
            });
        }
        Ok(())
    }

    /// The line of an EdgeX Metric DTO, ended by `\n`.
    pub fn metric_line(&self, metric: &Json, out: &mut String) -> Result<(), String> {
        let metric: Metric = serde_json::from_value(metric.clone()).map_err(|e| format!("not an EdgeX metric: {e}"))?;
        let mut tags: BTreeMap<String, String> =
            metric.tags.iter().map(|tag| (tag.name.clone(), text(&tag.value))).collect();
        tags.extend(self.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        let fields = metric
            .fields
            .iter()
            .map(|field| {
                let value = match &field.value {
                    Json::Number(n) => match n.as_f64() {
                        Some(f) if f.is_finite() => format!("{f}"),
                        _ => return Err(format!("field {}: {n} is not a finite number", field.name)),
                    },
                    Json::Bool(b) => b.to_string(),
                    other => quoted(&text(other)),
                };
                Ok((field.name.as_str(), value))
            })
            .collect::<Result<Vec<_>, String>>()?;
        line(out, &metric.name, &tags, &fields, metric.timestamp).map_err(|e| format!("metric {}: {e}", metric.name))
    }

    fn lines(&self, data: &Data, out: &mut String) -> Result<(), String> {
        match data {
            Data::Event(event) => self.event_lines(event, out),
            Data::Batch(items) => items.iter().try_for_each(|item| self.lines(item, out)),
            Data::Json(json) => self.json_lines(json, out),
            Data::Bytes { bytes, content_type } => {
                let json: Json = serde_json::from_slice(bytes)
                    .map_err(|e| format!("the {content_type} input is not an event or metric in JSON: {e}"))?;
                self.json_lines(&json, out)
            }
        }
    }

    fn json_lines(&self, json: &Json, out: &mut String) -> Result<(), String> {
        let event = json.get("event").unwrap_or(json);
        if event.get("readings").is_some() {
            let event: Event = serde_json::from_value(event.clone()).map_err(|e| format!("not an event: {e}"))?;
            self.event_lines(&event, out)
        } else {
            self.metric_line(json, out)
        }
    }
}

/// EdgeX's Metric DTO, the parts line protocol uses.
#[derive(Deserialize)]
struct Metric {
    name: String,
    fields: Vec<NameValue>,
    #[serde(default)]
    tags: Vec<NameValue>,
    timestamp: i64,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: Json,
}

/// A reading's value as a line protocol field value, or why it has none.
fn field_value(reading: &Reading) -> Result<String, String> {
    use ValueType::*;
    let vt = reading.value_type;
    let Some(value) = reading.value.as_deref().map(str::trim) else {
        return Err(format!("a {vt} reading has no value line protocol can carry"));
    };
    let bad = || format!("'{value}' is not a valid {vt} value");
    Ok(match vt {
        Bool => match value.to_ascii_lowercase().as_str() {
            "true" => "true".to_owned(),
            "false" => "false".to_owned(),
            _ => return Err(bad()),
        },
        Int8 | Int16 | Int32 | Int64 => format!("{}i", value.parse::<i64>().map_err(|_| bad())?),
        Uint8 | Uint16 | Uint32 | Uint64 => format!("{}u", value.parse::<u64>().map_err(|_| bad())?),
        Float32 | Float64 => match value.parse::<f64>() {
            Ok(f) if f.is_finite() => format!("{f}"),
            Ok(_) => return Err(format!("{value} is not a finite number")),
            Err(_) => return Err(bad()),
        },
        Binary | Object | ObjectArray => return Err(format!("a {vt} reading has no value line protocol can carry")),
        _ => quoted(reading.value.as_deref().unwrap_or_default()),
    })
}

/// Writes one line: `measurement[,tag=value…] field=value[,…] timestamp\n`.
fn line(
    out: &mut String,
    measurement: &str,
    tags: &BTreeMap<String, String>,
    fields: &[(&str, String)],
    timestamp: i64,
) -> Result<(), String> {
    if measurement.is_empty() {
        return Err("the measurement name is empty".to_owned());
    }
    if measurement.starts_with('#') {
        return Err(format!("the measurement '{measurement}' starts with '#', which makes the line a comment"));
    }
    if fields.is_empty() {
        return Err("no fields".to_owned());
    }
    if let Some((_, value)) = fields.iter().find(|(name, _)| name.is_empty()) {
        return Err(format!("a field name is empty (value {value})"));
    }
    escape(out, measurement, &[',', ' ']);
    for (key, value) in tags.iter().filter(|(k, v)| !k.is_empty() && !v.is_empty()) {
        out.push(',');
        escape(out, key, &[',', '=', ' ']);
        out.push('=');
        escape(out, value, &[',', '=', ' ']);
    }
    for (i, (name, value)) in fields.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        escape(out, name, &[',', '=', ' ']);
        out.push('=');
        out.push_str(value);
    }
    let _ = writeln!(out, " {timestamp}");
    Ok(())
}

/// Appends `text` with a backslash before each of `special` and before `\`; line breaks and
/// tabs as the two characters `\n`, `\r`, `\t`.
fn escape(out: &mut String, text: &str, special: &[char]) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if special.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// A string field value: quoted, `"` and `\` escaped.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    escape(&mut out, value, &['"']);
    out.push('"');
    out
}

/// A JSON value as text: a string as it is, anything else as JSON.
fn text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Function for ToLineProtocol {
    fn name(&self) -> &str {
        "ToLineProtocol"
    }

    async fn call(&self, _ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let mut out = String::new();
        self.lines(&data, &mut out).map_err(|e| FunctionError::new(format!("ToLineProtocol: {e}")))?;
        Ok(Some(Data::Bytes { bytes: Bytes::from(out), content_type: CONTENT_TYPE_LINE_PROTOCOL.to_owned() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(readings: Json, tags: Json) -> Event {
        serde_json::from_value(json!({
            "apiVersion": "v3", "id": "e1", "deviceName": "boiler 1", "profileName": "Boiler", "sourceName": "status",
            "origin": 1_700_000_000_000_000_000_i64, "readings": readings, "tags": tags
        }))
        .unwrap()
    }

    fn reading(name: &str, vt: &str, value: &str) -> Json {
        json!({"resourceName": name, "valueType": vt, "value": value, "origin": 1_700_000_000_123_456_789_i64})
    }

    fn lines(function: &ToLineProtocol, event: &Event) -> String {
        let mut out = String::new();
        function.event_lines(event, &mut out).unwrap();
        out
    }

    #[test]
    fn each_value_type_is_written_with_its_line_protocol_type() {
        let function = ToLineProtocol::new(&Map::new()).unwrap();
        let readings = json!([
            reading("temp", "Float64", "21.5"),
            reading("count", "Int32", "-7"),
            reading("total", "Uint64", "18446744073709551615"),
            reading("on", "Bool", "TRUE"),
            reading("mode", "String", "auto"),
            reading("levels", "Int16Array", "[1, 2]"),
            {"resourceName": "photo", "valueType": "Binary", "binaryValue": "AQI=", "mediaType": "image/png", "origin": 1},
            {"resourceName": "cfg", "valueType": "Object", "objectValue": {"a": 1}, "origin": 1},
        ]);
        let out = lines(&function, &event(readings, json!({})));
        let tags = r"deviceName=boiler\ 1,profileName=Boiler,sourceName=status";
        let expected = [
            format!("temp,{tags} value=21.5 1700000000123456789"),
            format!("count,{tags} value=-7i 1700000000123456789"),
            format!("total,{tags} value=18446744073709551615u 1700000000123456789"),
            format!("on,{tags} value=true 1700000000123456789"),
            format!("mode,{tags} value=\"auto\" 1700000000123456789"),
            format!("levels,{tags} value=\"[1, 2]\" 1700000000123456789"),
        ];
        assert_eq!(out, expected.join("\n") + "\n");
    }

    #[test]
    fn hostile_names_and_values_are_escaped() {
        let mut extra = Map::new();
        extra.insert("site name".into(), json!("a=b,c"));
        extra.insert("empty".into(), json!(""));
        let function = ToLineProtocol::new(&extra).unwrap();
        let readings = json!([
            {"resourceName": "temp, inside=hot", "valueType": "String", "value": "say \"hi\"\\\nbye",
             "origin": 5, "units": "°C", "tags": {"note": "x\\", "n": 3}},
        ]);
        let out = lines(&function, &event(readings, json!({"line\nbreak": "tab\there"})));
        assert_eq!(
            out,
            "temp\\,\\ inside=hot,deviceName=boiler\\ 1,line\\nbreak=tab\\there,n=3,note=x\\\\,profileName=Boiler,\
             site\\ name=a\\=b\\,c,sourceName=status,units=°C value=\"say \\\"hi\\\"\\\\\\nbye\" 5\n"
        );
        assert_eq!(out.matches('\n').count(), 1, "one line: {out}");
    }

    #[test]
    fn readings_without_a_line_are_skipped_and_an_event_without_any_is_an_error() {
        let function = ToLineProtocol::new(&Map::new()).unwrap();
        let readings = json!([
            reading("nan", "Float64", "NaN"),
            {"resourceName": "photo", "valueType": "Binary", "binaryValue": "AQI=", "mediaType": "image/png", "origin": 1},
        ]);
        let mut out = String::new();
        let err = function.event_lines(&event(readings, json!({})), &mut out).unwrap_err();
        assert!(err.contains("reading nan: NaN is not a finite number"), "{err}");
        let readings = json!([reading("#hash", "Int8", "1")]);
        let err = function.event_lines(&event(readings, json!({})), &mut out).unwrap_err();
        assert!(err.contains("comment"), "{err}");
        let readings = json!([reading("n", "Int8", "x")]);
        let err = function.event_lines(&event(readings, json!({})), &mut out).unwrap_err();
        assert!(err.contains("'x' is not a valid Int8 value"), "{err}");
    }

    #[test]
    fn edgex_metrics_are_written_as_edgex_does_with_escaping() {
        let tags = super::super::tags::parse_tags("gateway:gw 1").unwrap();
        let function = ToLineProtocol::new(&tags).unwrap();
        let metric = json!({
            "apiVersion": "v3", "name": "EventsPersisted",
            "fields": [{"name": "count", "value": 5}, {"name": "rate", "value": 1.5}, {"name": "note", "value": "ok"}],
            "tags": [{"name": "service", "value": "core-data"}],
            "timestamp": 1_650_000_000_000_000_000_i64
        });
        let mut out = String::new();
        function.metric_line(&metric, &mut out).unwrap();
        assert_eq!(
            out,
            "EventsPersisted,gateway=gw\\ 1,service=core-data count=5,rate=1.5,note=\"ok\" 1650000000000000000\n"
        );
        let err = function.metric_line(&json!({"name": "x"}), &mut out).unwrap_err();
        assert!(err.contains("not an EdgeX metric"), "{err}");
        assert!(ToLineProtocol::new(&super::super::tags::parse_tags("a:b").unwrap()).is_ok());
        let mut empty_key = Map::new();
        empty_key.insert(" ".into(), json!("v"));
        assert_eq!(ToLineProtocol::new(&empty_key).unwrap_err().parameter, "Tags");
    }
}
