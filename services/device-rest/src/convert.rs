//! HTTP bodies and resource values, both ways: a reading POSTed by a device or a device's answer
//! to a GET becomes the resource's [`Value`]; a value to PUT becomes a body.
//!
//! As EdgeX's device-rest reads them (`validateCommandValue`):
//! - `Binary`: the raw body, whose `Content-Type` must be the resource's `mediaType`
//!   (`application/octet-stream` when the profile gives none);
//! - `Object`: a JSON object, sent as `application/json`;
//! - every other type: the body as text, parsed as the resource's value type.
//!
//! Where EdgeX is narrower we accept more, and say so here: a text value sent as
//! `application/json` may be JSON (`"on"`, `12.5`, `[1, 2]`), otherwise it is read as text;
//! the array types and `ObjectArray` are accepted (text or JSON arrays); surrounding white
//! space is ignored except for `String`. Parsing is the SDK's ([`value::parse_value`]), the
//! same as for a PUT, so a value that is out of its type's range is refused where EdgeX's
//! device-rest would wrap it around.

use oxedge_contracts::{DeviceResource, ValueType};
use oxedge_device_sdk::value;
use oxedge_device_sdk::Value;
use serde_json::Value as Json;

/// The content type of JSON bodies.
pub(crate) const JSON: &str = "application/json";
/// The content type of text bodies.
pub(crate) const TEXT: &str = "text/plain";
/// The content type of a Binary resource without a `mediaType`.
pub(crate) const OCTET_STREAM: &str = "application/octet-stream";

/// The media type of a `Content-Type` header, without parameters, in lower case.
pub(crate) fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// The media type of the Binary resource `resource`.
fn binary_media_type(resource: &DeviceResource) -> &str {
    match resource.properties.media_type.as_str() {
        "" => OCTET_STREAM,
        given => given,
    }
}

/// The value of `resource` that `body`, sent with `content_type`, holds; the error says why
/// not (the caller names the device and the resource).
pub(crate) fn from_body(resource: &DeviceResource, content_type: &str, body: &[u8]) -> Result<Value, String> {
    if body.is_empty() {
        return Err("no request body provided".to_owned());
    }
    let vt = resource.properties.value_type;
    let given = essence(content_type);
    match vt {
        ValueType::Binary => {
            let expected = binary_media_type(resource);
            if given != essence(expected) {
                return Err(format!("wrong Content-Type: expected '{expected}' but received '{content_type}'"));
            }
            return Ok(Value::Binary(body.to_vec()));
        }
        ValueType::Object | ValueType::ObjectArray => {
            if given != JSON {
                return Err(format!("wrong Content-Type: expected '{JSON}' but received '{content_type}'"));
            }
            let json: Json =
                serde_json::from_slice(body).map_err(|e| format!("the body is not a valid {vt} value: {e}"))?;
            return value::parse_value(vt, &json).map_err(|why| format!("the body is not a valid {vt} value: {why}"));
        }
        _ => {}
    }
    let text = std::str::from_utf8(body).map_err(|e| format!("the body is not UTF-8 text ({e})"))?;
    let text = if vt == ValueType::String { text } else { text.trim() };
    let raw = match given == JSON {
        true => serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned())),
        false => Json::String(text.to_owned()),
    };
    value::parse_value(vt, &raw).map_err(|why| format!("cannot use {} as a {vt} value: {why}", shown(text)))
}

/// `text` quoted and cut to 64 characters, for error messages.
fn shown(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((i, _)) => format!("'{}…'", &text[..i]),
        None => format!("'{text}'"),
    }
}

/// The body that writes `value` to `resource` of a device, and its content type: JSON for
/// objects and arrays, the raw bytes with the resource's media type for Binary, text
/// otherwise (as EdgeX's device-rest writes scalars: `12.5`, `true`).
pub(crate) fn to_body(resource: &DeviceResource, value: &Value) -> (String, Vec<u8>) {
    fn json<T: serde::Serialize>(v: &T) -> (String, Vec<u8>) {
        (JSON.to_owned(), serde_json::to_vec(v).unwrap_or_default())
    }
    fn text(s: String) -> (String, Vec<u8>) {
        (TEXT.to_owned(), s.into_bytes())
    }
    match value {
        Value::Binary(bytes) => (binary_media_type(resource).to_owned(), bytes.clone()),
        Value::Object(o) => json(o),
        Value::ObjectArray(a) => json(a),
        Value::BoolArray(a) => json(a),
        Value::StringArray(a) => json(a),
        Value::Uint8Array(a) => json(a),
        Value::Uint16Array(a) => json(a),
        Value::Uint32Array(a) => json(a),
        Value::Uint64Array(a) => json(a),
        Value::Int8Array(a) => json(a),
        Value::Int16Array(a) => json(a),
        Value::Int32Array(a) => json(a),
        Value::Int64Array(a) => json(a),
        Value::Float32Array(a) => json(a),
        Value::Float64Array(a) => json(a),
        Value::String(s) => text(s.clone()),
        Value::Bool(v) => text(v.to_string()),
        Value::Uint8(v) => text(v.to_string()),
        Value::Uint16(v) => text(v.to_string()),
        Value::Uint32(v) => text(v.to_string()),
        Value::Uint64(v) => text(v.to_string()),
        Value::Int8(v) => text(v.to_string()),
        Value::Int16(v) => text(v.to_string()),
        Value::Int32(v) => text(v.to_string()),
        Value::Int64(v) => text(v.to_string()),
        Value::Float32(v) => text(v.to_string()),
        Value::Float64(v) => text(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(vt: &str, media_type: &str) -> DeviceResource {
        serde_json::from_value(json!({
            "name": "r", "properties": { "valueType": vt, "readWrite": "RW", "mediaType": media_type }
        }))
        .unwrap()
    }

    #[test]
    fn text_and_json_bodies_give_values_of_the_resource_type() {
        let cases: Vec<(&str, &str, &str, Value)> = vec![
            ("Int64", TEXT, "1001", Value::Int64(1001)),
            ("Int64", "", " -5\n", Value::Int64(-5)),
            ("Float64", TEXT, "500.568", Value::Float64(500.568)),
            ("Float32", JSON, "1.5", Value::Float32(1.5)),
            ("Bool", JSON, "true", Value::Bool(true)),
            ("Bool", TEXT, "F", Value::Bool(false)),
            ("String", JSON, "\"on air\"", Value::String("on air".into())),
            ("String", TEXT, " as is ", Value::String(" as is ".into())),
            ("String", JSON, "not json", Value::String("not json".into())),
            ("Uint8", "text/plain; charset=utf-8", "255", Value::Uint8(255)),
            ("Int16Array", JSON, "[1, -2]", Value::Int16Array(vec![1, -2])),
            ("StringArray", TEXT, "[\"a\"]", Value::StringArray(vec!["a".into()])),
        ];
        for (vt, ct, body, want) in cases {
            assert_eq!(from_body(&res(vt, ""), ct, body.as_bytes()), Ok(want), "{vt} {ct} {body:?}");
        }
    }

    #[test]
    fn bad_bodies_say_why() {
        let err = |vt: &str, ct: &str, body: &[u8]| from_body(&res(vt, ""), ct, body).unwrap_err();
        assert_eq!(err("Int64", TEXT, b""), "no request body provided");
        assert!(err("Uint8", TEXT, b"256").contains("cannot use '256' as a Uint8 value"));
        assert!(err("Int8", TEXT, b"abc").contains("as a Int8 value"));
        assert!(err("Float64", TEXT, b"1e999").contains("out of the Float64 range"));
        assert!(err("Int64", TEXT, &[0xff, 0xfe]).contains("not UTF-8"));
        assert!(err("Object", TEXT, b"{}").contains("expected 'application/json' but received 'text/plain'"));
        assert!(err("Object", JSON, b"[1]").contains("not a valid Object value"));
        assert!(err("Binary", TEXT, b"x").contains("expected 'application/octet-stream'"));
        let deep = "[".repeat(100_000);
        assert!(err("Object", JSON, deep.as_bytes()).contains("not a valid Object value"));
        assert!(err("Int64Array", JSON, deep.as_bytes()).contains("Int64Array"));
    }

    #[test]
    fn binary_bodies_need_the_media_type_and_bodies_round_trip() {
        let jpeg = res("Binary", "image/jpeg");
        assert_eq!(from_body(&jpeg, "IMAGE/JPEG", &[1, 2]), Ok(Value::Binary(vec![1, 2])));
        assert!(from_body(&jpeg, OCTET_STREAM, &[1]).is_err());
        assert_eq!(to_body(&jpeg, &Value::Binary(vec![9])), ("image/jpeg".to_owned(), vec![9]));
        for (vt, value) in [
            ("Float32", Value::Float32(0.1)),
            ("Float64", Value::Float64(-1e300)),
            ("Uint64", Value::Uint64(u64::MAX)),
            ("Bool", Value::Bool(true)),
            ("Object", Value::Object(json!({"a": [1]}))),
            ("Float64Array", Value::Float64Array(vec![1.5, -2.0])),
        ] {
            let r = res(vt, "");
            let (ct, body) = to_body(&r, &value);
            assert_eq!(from_body(&r, &ct, &body), Ok(value), "{vt}");
        }
    }
}
