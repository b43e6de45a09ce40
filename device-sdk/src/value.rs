//! From raw values to readings and back, per the profile: value types, `base`, `scale`,
//! `offset`, `mask`, `shift`, `minimum`/`maximum`, `assertion`, units, binary and object
//! values.
//!
//! This follows EdgeX's device-sdk-go (`internal/transformer`, `application/command.go`) and
//! the reading constructors of go-mod-core-contracts:
//! - a reading's `value` is written as EdgeX writes it: floats in Go's shortest `%e` form
//!   (`1.25e+01`), arrays as `[1, 2, 3]`, string arrays as JSON;
//! - transforms on read apply to numeric scalars only, in EdgeX's order: `mask` and `shift`
//!   (unsigned types only), then `base` (`base^value`), `scale`, `offset`; on write the
//!   reverse of `offset`, `scale`, `base`, after the `minimum`/`maximum` check;
//! - a value that leaves its type's range after a transform is an overflow error.
//!
//! Where EdgeX is wrong we do what a user expects, and say so here:
//! - EdgeX multiplies an integer by its `scale` truncated to an integer (a scale of 0.1 gives
//!   0) and divides by zero on write; we compute in exact integers when the parameter is
//!   integral, in floating point otherwise, and round the result to the nearest integer;
//! - EdgeX turns an overflowing or NaN value into a String reading `"overflow"`/`"NaN"` for a
//!   resource of another type; we answer an error naming the resource instead (500);
//! - EdgeX formats a JSON number in a PUT body through Go's `%v` (`1e+08`), which its own
//!   integer parser then refuses; we take the number as written.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use oxedge_contracts::{DeviceResource, EdgeXError, ErrorKind, Reading, ValueType};
use serde_json::Value as Json;

use crate::driver::{CommandValue, Value};

/// How every assertion error message starts (EdgeX's wording); see [`is_assertion_failure`].
pub const ASSERTION_FAILED: &str = "Assertion failed for DeviceResource";

/// True when `err` comes from a reading that does not equal its resource's `assertion`: EdgeX
/// then sets the device's operatingState to DOWN.
pub fn is_assertion_failure(err: &EdgeXError) -> bool {
    err.kind == ErrorKind::ServerError && err.message.starts_with(ASSERTION_FAILED)
}

/// The reading of `resource` that the raw value `cv` read from device `device_name` gives,
/// with the profile's transforms applied.
///
/// Errors (500, naming the resource): a value of another type than the resource's
/// `valueType`, a NaN, a value out of its type's range after a transform ("overflow"), and a
/// value unequal to the resource's `assertion` (see [`is_assertion_failure`]).
pub fn to_reading(
    device_name: &str,
    profile_name: &str,
    resource: &DeviceResource,
    cv: CommandValue,
) -> Result<Reading, EdgeXError> {
    let props = &resource.properties;
    let got = cv.value.value_type();
    if got != props.value_type {
        return Err(EdgeXError::server(format!(
            "DeviceResource {}: the driver returned a {got} value but the profile declares valueType {}",
            resource.name, props.value_type
        )));
    }
    if cv.resource_name != resource.name {
        return Err(EdgeXError::server(format!(
            "the driver returned a value for DeviceResource {} where {} was asked",
            cv.resource_name, resource.name
        )));
    }
    let value = transform_read(resource, cv.value)?;
    if !props.assertion.is_empty() {
        let shown = go_string(&value);
        if shown != props.assertion {
            return Err(EdgeXError::server(format!("{ASSERTION_FAILED} {}, with value {shown}", resource.name)));
        }
    }
    let mut tags = resource.tags.clone();
    tags.extend(cv.tags);
    let mut reading = Reading {
        id: uuid::Uuid::new_v4().to_string(),
        origin: if cv.origin != 0 { cv.origin } else { now_ns() },
        device_name: device_name.to_owned(),
        resource_name: resource.name.clone(),
        profile_name: profile_name.to_owned(),
        value_type: props.value_type,
        units: props.units.clone(),
        tags,
        value: None,
        binary_value: None,
        media_type: String::new(),
        object_value: None,
    };
    match value {
        Value::Binary(bytes) => {
            reading.binary_value = Some(bytes);
            // A Binary reading needs a media type; a profile without one gets the generic one.
            reading.media_type = if props.media_type.is_empty() {
                "application/octet-stream".to_owned()
            } else {
                props.media_type.clone()
            };
        }
        Value::Object(obj) => reading.object_value = Some(obj),
        Value::ObjectArray(items) => reading.object_value = Some(Json::Array(items)),
        other => reading.value = Some(reading_text(&other)),
    }
    Ok(reading)
}

/// The raw value to write to `resource`, from the value a PUT body or bus request gives
/// for it, checked and with the transforms reversed.
///
/// Accepts what EdgeX accepts: text (`"true"`, `"12.5"`, `"[1, 2]"`, base64 for Binary and,
/// as EdgeX does, 4 or 8 big-endian bytes in base64 for Float32/Float64), JSON numbers, bools
/// and arrays, and JSON objects for Object. Errors: 405 for a read-only resource (EdgeX's
/// `NotAllowed`), 400 for a value that does not parse, is out of `minimum`/`maximum`, or
/// leaves its type's range when the transforms are reversed.
pub fn parse_write(resource: &DeviceResource, raw: &Json) -> Result<CommandValue, EdgeXError> {
    let props = &resource.properties;
    if !props.read_write.writable() {
        return Err(EdgeXError::new(
            ErrorKind::MethodNotAllowed,
            format!("DeviceResource {} is marked as read-only", resource.name),
        ));
    }
    let value = parse_value(props.value_type, raw).map_err(|why| {
        EdgeXError::invalid(format!(
            "DeviceResource {}: cannot use {} as a {} value: {why}",
            resource.name,
            shorten(&raw.to_string()),
            props.value_type
        ))
    })?;
    let value = transform_write(resource, value)?;
    Ok(CommandValue::new(resource.name.clone(), value))
}

impl Value {
    /// The EdgeX value type of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Uint8(_) => ValueType::Uint8,
            Value::Uint16(_) => ValueType::Uint16,
            Value::Uint32(_) => ValueType::Uint32,
            Value::Uint64(_) => ValueType::Uint64,
            Value::Int8(_) => ValueType::Int8,
            Value::Int16(_) => ValueType::Int16,
            Value::Int32(_) => ValueType::Int32,
            Value::Int64(_) => ValueType::Int64,
            Value::Float32(_) => ValueType::Float32,
            Value::Float64(_) => ValueType::Float64,
            Value::Binary(_) => ValueType::Binary,
            Value::Object(_) => ValueType::Object,
            Value::BoolArray(_) => ValueType::BoolArray,
            Value::StringArray(_) => ValueType::StringArray,
            Value::Uint8Array(_) => ValueType::Uint8Array,
            Value::Uint16Array(_) => ValueType::Uint16Array,
            Value::Uint32Array(_) => ValueType::Uint32Array,
            Value::Uint64Array(_) => ValueType::Uint64Array,
            Value::Int8Array(_) => ValueType::Int8Array,
            Value::Int16Array(_) => ValueType::Int16Array,
            Value::Int32Array(_) => ValueType::Int32Array,
            Value::Int64Array(_) => ValueType::Int64Array,
            Value::Float32Array(_) => ValueType::Float32Array,
            Value::Float64Array(_) => ValueType::Float64Array,
            Value::ObjectArray(_) => ValueType::ObjectArray,
        }
    }
}

/// The value as Go's `fmt` `%v` prints it, which is what EdgeX compares with a resource's
/// `assertion` and looks up in a resource operation's `mappings` (`12.5`, `1e+06`, `[1 2]`).
pub fn go_string(value: &Value) -> String {
    fn list<T>(items: &[T], f: impl Fn(&T) -> String) -> String {
        format!("[{}]", items.iter().map(f).collect::<Vec<_>>().join(" "))
    }
    match value {
        Value::Float32(f) => go_float(f64::from(*f), *f, 'g'),
        Value::Float64(f) => go_float(*f, *f, 'g'),
        Value::String(s) => s.clone(),
        Value::Binary(b) => format!("Binary: [{} bytes]", b.len()),
        Value::Object(o) => o.to_string(),
        Value::StringArray(a) => list(a, |s| s.clone()),
        Value::Float32Array(a) => list(a, |f| go_float(f64::from(*f), *f, 'g')),
        Value::Float64Array(a) => list(a, |f| go_float(*f, *f, 'g')),
        Value::ObjectArray(a) => list(a, |o| o.to_string()),
        other => reading_text(other).replace(", ", " "),
    }
}

/// The `value` text of a simple reading, as go-mod-core-contracts' `NewSimpleReading` writes it.
fn reading_text(value: &Value) -> String {
    fn list<T: ToString>(items: &[T]) -> String {
        format!("[{}]", items.iter().map(T::to_string).collect::<Vec<_>>().join(", "))
    }
    fn floats<T: Copy>(items: &[T], f: impl Fn(T) -> String) -> String {
        format!("[{}]", items.iter().map(|x| f(*x)).collect::<Vec<_>>().join(", "))
    }
    match value {
        Value::Bool(v) => v.to_string(),
        Value::String(v) => v.clone(),
        Value::Uint8(v) => v.to_string(),
        Value::Uint16(v) => v.to_string(),
        Value::Uint32(v) => v.to_string(),
        Value::Uint64(v) => v.to_string(),
        Value::Int8(v) => v.to_string(),
        Value::Int16(v) => v.to_string(),
        Value::Int32(v) => v.to_string(),
        Value::Int64(v) => v.to_string(),
        Value::Float32(v) => go_float(f64::from(*v), *v, 'e'),
        Value::Float64(v) => go_float(*v, *v, 'e'),
        Value::BoolArray(a) => list(a),
        Value::StringArray(a) => go_json_strings(a),
        Value::Uint8Array(a) => list(a),
        Value::Uint16Array(a) => list(a),
        Value::Uint32Array(a) => list(a),
        Value::Uint64Array(a) => list(a),
        Value::Int8Array(a) => list(a),
        Value::Int16Array(a) => list(a),
        Value::Int32Array(a) => list(a),
        Value::Int64Array(a) => list(a),
        Value::Float32Array(a) => floats(a, |f| go_float(f64::from(f), f, 'e')),
        Value::Float64Array(a) => floats(a, |f| go_float(f, f, 'e')),
        Value::Binary(_) | Value::Object(_) | Value::ObjectArray(_) => String::new(),
    }
}

/// A string array as Go's `json.Marshal` writes it (HTML characters escaped).
fn go_json_strings(items: &[String]) -> String {
    let json = serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned());
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A float as Go's `strconv.FormatFloat(v, fmt, -1, bits)` writes it, `fmt` being `'e'` or
/// `'g'`. `shortest` is the value at its own precision (an `f32` for Float32), whose
/// shortest round-trip digits Rust's `{:e}` gives; `wide` is the same value as `f64`.
fn go_float<T: std::fmt::LowerExp>(wide: f64, shortest: T, fmt: char) -> String {
    if wide.is_nan() {
        return "NaN".to_owned();
    }
    if wide.is_infinite() {
        return if wide > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let text = format!("{shortest:e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    if fmt == 'e' || !(-4..6).contains(&exp) {
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{exp_sign}{:02}", exp.unsigned_abs());
    }
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let point = exp + 1;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

fn shorten(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

// ---- transforms ----------------------------------------------------------------------------

/// Which way a transform runs.
#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Read,
    Write,
}

/// The range of an integer value type, as `i128`; `None` for other types.
pub fn int_range(vt: ValueType) -> Option<(i128, i128)> {
    use ValueType::*;
    Some(match vt {
        Uint8 => (0, u8::MAX.into()),
        Uint16 => (0, u16::MAX.into()),
        Uint32 => (0, u32::MAX.into()),
        Uint64 => (0, u64::MAX.into()),
        Int8 => (i8::MIN.into(), i8::MAX.into()),
        Int16 => (i16::MIN.into(), i16::MAX.into()),
        Int32 => (i32::MIN.into(), i32::MAX.into()),
        Int64 => (i64::MIN.into(), i64::MAX.into()),
        _ => return None,
    })
}

impl Value {
    /// The value of an integer scalar, widened; `None` for other types.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Value::Uint8(x) => x.into(),
            Value::Uint16(x) => x.into(),
            Value::Uint32(x) => x.into(),
            Value::Uint64(x) => x.into(),
            Value::Int8(x) => x.into(),
            Value::Int16(x) => x.into(),
            Value::Int32(x) => x.into(),
            Value::Int64(x) => x.into(),
            _ => return None,
        })
    }

    /// `x` as a value of the integer type `vt`; `None` when `vt` is not an integer type or
    /// `x` is out of its range.
    pub fn from_i128(vt: ValueType, x: i128) -> Option<Value> {
        use ValueType::*;
        let (lo, hi) = int_range(vt)?;
        if x < lo || x > hi {
            return None;
        }
        Some(match vt {
            Uint8 => Value::Uint8(x as u8),
            Uint16 => Value::Uint16(x as u16),
            Uint32 => Value::Uint32(x as u32),
            Uint64 => Value::Uint64(x as u64),
            Int8 => Value::Int8(x as i8),
            Int16 => Value::Int16(x as i16),
            Int32 => Value::Int32(x as i32),
            _ => Value::Int64(x as i64),
        })
    }
}

/// A transform step that broke the type's range; the caller names the resource.
struct Overflow {
    step: &'static str,
    param: f64,
}

/// One arithmetic step on an integer: exact when the parameter is integral, else in floating
/// point rounded to the nearest integer; `None` when the result is not finite.
fn int_step(x: i128, op: char, p: f64) -> Option<i128> {
    const EXACT: f64 = 9.2e18;
    if p.fract() == 0.0 && p.abs() < EXACT && op != '^' && op != 'l' {
        let q = p as i128;
        return match op {
            '*' => Some(x * q),
            '+' => Some(x + q),
            '-' => Some(x - q),
            _ => {
                if q == 0 {
                    return None;
                }
                let (d, r) = (x / q, x % q);
                let away = if (x < 0) == (q < 0) { 1 } else { -1 };
                Some(if 2 * r.abs() >= q.abs() { d + away } else { d })
            }
        };
    }
    let xf = x as f64;
    let y = match op {
        '*' => xf * p,
        '+' => xf + p,
        '-' => xf - p,
        '/' => xf / p,
        '^' => p.powf(xf),
        _ => xf.ln() / p.ln(),
    }
    .round();
    y.is_finite().then_some(y as i128)
}

fn float_step(x: f64, op: char, p: f64) -> f64 {
    match op {
        '*' => x * p,
        '+' => x + p,
        '-' => x - p,
        '/' => x / p,
        '^' => p.powf(x),
        _ => x.ln() / p.ln(),
    }
}

/// The steps to run for `resource` in direction `dir`: (name, operator, parameter).
fn steps(resource: &DeviceResource, dir: Dir) -> Vec<(&'static str, char, f64)> {
    let p = &resource.properties;
    let base = p.base.filter(|b| *b != 0.0);
    let scale = p.scale.filter(|s| *s != 1.0);
    let offset = p.offset.filter(|o| *o != 0.0);
    let mut out = Vec::with_capacity(3);
    match dir {
        Dir::Read => {
            out.extend(base.map(|b| ("base", '^', b)));
            out.extend(scale.map(|s| ("scale", '*', s)));
            out.extend(offset.map(|o| ("offset", '+', o)));
        }
        Dir::Write => {
            out.extend(offset.map(|o| ("offset", '-', o)));
            out.extend(scale.map(|s| ("scale", '/', s)));
            out.extend(base.map(|b| ("base", 'l', b)));
        }
    }
    out
}

/// Runs `steps` on a numeric scalar (mask and shift first on read, for unsigned types).
fn apply(resource: &DeviceResource, value: Value, dir: Dir) -> Result<Value, Overflow> {
    let props = &resource.properties;
    let vt = value.value_type();
    if let (Some((lo, hi)), Some(mut x)) = (int_range(vt), value.as_i128()) {
        if dir == Dir::Read && lo == 0 {
            if let Some(mask) = props.mask.filter(|m| *m != 0) {
                x &= i128::from(mask) & hi;
            }
            if let Some(shift) = props.shift.filter(|s| *s != 0) {
                let bits = (hi + 1).trailing_zeros();
                let amount = shift.unsigned_abs();
                x = if amount >= u64::from(bits) {
                    0
                } else if shift > 0 {
                    (x << amount) & hi
                } else {
                    x >> amount
                };
            }
        }
        for (step, op, param) in steps(resource, dir) {
            x = int_step(x, op, param).filter(|y| (lo..=hi).contains(y)).ok_or(Overflow { step, param })?;
        }
        return Ok(Value::from_i128(vt, x).unwrap_or(value));
    }
    match value {
        Value::Float64(mut x) => {
            for (step, op, param) in steps(resource, dir) {
                x = float_step(x, op, param);
                if !x.is_finite() {
                    return Err(Overflow { step, param });
                }
            }
            Ok(Value::Float64(x))
        }
        Value::Float32(mut x) => {
            for (step, op, param) in steps(resource, dir) {
                let wide = float_step(f64::from(x), op, param);
                if wide.is_nan() || wide.abs() > f64::from(f32::MAX) {
                    return Err(Overflow { step, param });
                }
                x = match op {
                    '*' => x * param as f32,
                    '+' => x + param as f32,
                    '-' => x - param as f32,
                    '/' => x / param as f32,
                    _ => wide as f32,
                };
            }
            Ok(Value::Float32(x))
        }
        other => Ok(other),
    }
}

fn transform_read(resource: &DeviceResource, value: Value) -> Result<Value, EdgeXError> {
    if !value.value_type().is_numeric() {
        return Ok(value);
    }
    let nan = matches!(value, Value::Float32(f) if f.is_nan()) || matches!(value, Value::Float64(f) if f.is_nan());
    if nan {
        return Err(EdgeXError::server(format!("NaN error for DeviceResource {}", resource.name)));
    }
    let shown = reading_text(&value);
    apply(resource, value, Dir::Read).map_err(|o| {
        EdgeXError::server(format!(
            "overflow: DeviceResource {}: the value {shown} leaves the {} range when {} {} is applied",
            resource.name,
            resource.properties.value_type,
            o.step,
            go_float(o.param, o.param, 'g')
        ))
    })
}

/// Checks a numeric scalar `value` against the `minimum` and `maximum` of `resource`; other
/// values pass. The error (400) names the resource and the limit.
pub fn check_limits(resource: &DeviceResource, value: &Value) -> Result<(), EdgeXError> {
    let props = &resource.properties;
    let x = match (value, value.as_i128()) {
        (_, Some(i)) => i as f64,
        (Value::Float32(f), None) => f64::from(*f),
        (Value::Float64(f), None) => *f,
        _ => return Ok(()),
    };
    if let Some(max) = props.maximum.filter(|max| x > *max) {
        return Err(EdgeXError::invalid(format!(
            "DeviceResource {}: the value {} is above the maximum {}",
            resource.name,
            go_string(value),
            go_float(max, max, 'g')
        )));
    }
    if let Some(min) = props.minimum.filter(|min| x < *min) {
        return Err(EdgeXError::invalid(format!(
            "DeviceResource {}: the value {} is below the minimum {}",
            resource.name,
            go_string(value),
            go_float(min, min, 'g')
        )));
    }
    Ok(())
}

fn transform_write(resource: &DeviceResource, value: Value) -> Result<Value, EdgeXError> {
    if !value.value_type().is_numeric() {
        return Ok(value);
    }
    let props = &resource.properties;
    check_limits(resource, &value)?;
    let shown = go_string(&value);
    apply(resource, value, Dir::Write).map_err(|o| {
        EdgeXError::invalid(format!(
            "DeviceResource {}: the value {shown} leaves the {} range when {} {} is reversed",
            resource.name,
            props.value_type,
            o.step,
            go_float(o.param, o.param, 'g')
        ))
    })
}

// ---- parsing written values ----------------------------------------------------------------

/// Parses a value of type `vt` from JSON as a PUT body gives it (see [`parse_write`]), with no
/// checks against a resource; the error says why not.
pub fn parse_value(vt: ValueType, raw: &Json) -> Result<Value, String> {
    use ValueType as T;
    if raw.is_null() {
        return Err("a value is required".to_owned());
    }
    // The text EdgeX parses: a JSON string as is, numbers and bools as written.
    let text = match raw {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        _ => String::new(),
    };
    let composite = matches!(raw, Json::Array(_) | Json::Object(_));
    if !matches!(vt, T::String | T::Binary) && !composite && text.trim().is_empty() {
        return Err(format!("empty string is invalid for {vt} value type"));
    }
    let scalar_text = || if composite { Err("expected a single value".to_owned()) } else { Ok(text.as_str()) };
    Ok(match vt {
        T::String => Value::String(scalar_text()?.to_owned()),
        T::Bool => Value::Bool(go_parse_bool(scalar_text()?)?),
        T::Uint8 => Value::Uint8(parse_int(scalar_text()?)?),
        T::Uint16 => Value::Uint16(parse_int(scalar_text()?)?),
        T::Uint32 => Value::Uint32(parse_int(scalar_text()?)?),
        T::Uint64 => Value::Uint64(parse_int(scalar_text()?)?),
        T::Int8 => Value::Int8(parse_int(scalar_text()?)?),
        T::Int16 => Value::Int16(parse_int(scalar_text()?)?),
        T::Int32 => Value::Int32(parse_int(scalar_text()?)?),
        T::Int64 => Value::Int64(parse_int(scalar_text()?)?),
        T::Float32 => Value::Float32(parse_f32(scalar_text()?)?),
        T::Float64 => Value::Float64(parse_f64(scalar_text()?)?),
        T::Binary => Value::Binary(match raw {
            Json::Array(_) => elements(raw, &text, |j| serde_json::from_value(j.clone()).map_err(|e| e.to_string()))?,
            _ => {
                base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|e| format!("not base64: {e}"))?
            }
        }),
        T::Object => match json_or_text(raw, &text)? {
            obj @ Json::Object(_) => Value::Object(obj),
            _ => return Err("expected a JSON object".to_owned()),
        },
        T::ObjectArray => match json_or_text(raw, &text)? {
            Json::Array(items) if items.iter().all(Json::is_object) => Value::ObjectArray(items),
            _ => return Err("expected a JSON array of objects".to_owned()),
        },
        T::BoolArray => Value::BoolArray(elements(raw, &text, |j| match j {
            Json::Bool(b) => Ok(*b),
            Json::String(s) => go_parse_bool(s),
            _ => Err(format!("{j} is not a bool")),
        })?),
        T::StringArray => Value::StringArray(elements(raw, &text, |j| match j {
            Json::String(s) => Ok(s.clone()),
            _ => Err(format!("{j} is not a string")),
        })?),
        T::Uint8Array => Value::Uint8Array(elements(raw, &text, int_elem)?),
        T::Uint16Array => Value::Uint16Array(elements(raw, &text, int_elem)?),
        T::Uint32Array => Value::Uint32Array(elements(raw, &text, int_elem)?),
        T::Uint64Array => Value::Uint64Array(elements(raw, &text, int_elem)?),
        T::Int8Array => Value::Int8Array(elements(raw, &text, int_elem)?),
        T::Int16Array => Value::Int16Array(elements(raw, &text, int_elem)?),
        T::Int32Array => Value::Int32Array(elements(raw, &text, int_elem)?),
        T::Int64Array => Value::Int64Array(elements(raw, &text, int_elem)?),
        T::Float32Array => Value::Float32Array(elements(raw, &text, |j| parse_f32(&elem_text(j)?))?),
        T::Float64Array => Value::Float64Array(elements(raw, &text, |j| parse_f64(&elem_text(j)?))?),
    })
}

/// `raw` itself when it is structured JSON, else the JSON its text holds.
fn json_or_text(raw: &Json, text: &str) -> Result<Json, String> {
    match raw {
        Json::Object(_) | Json::Array(_) => Ok(raw.clone()),
        _ => serde_json::from_str(text).map_err(|e| format!("not JSON: {e}")),
    }
}

/// The elements of an array value: a JSON array, or text holding one (`"[1, 2]"`).
fn elements<T>(raw: &Json, text: &str, each: impl Fn(&Json) -> Result<T, String>) -> Result<Vec<T>, String> {
    let parsed;
    let items = match raw {
        Json::Array(items) => items,
        _ => {
            parsed = serde_json::from_str::<Json>(text).map_err(|e| format!("not a JSON array: {e}"))?;
            parsed.as_array().ok_or_else(|| "not a JSON array".to_owned())?
        }
    };
    items.iter().enumerate().map(|(i, j)| each(j).map_err(|e| format!("element {i}: {e}"))).collect()
}

fn elem_text(j: &Json) -> Result<String, String> {
    match j {
        Json::Number(n) => Ok(n.to_string()),
        Json::String(s) => Ok(s.clone()),
        _ => Err(format!("{j} is not a number")),
    }
}

fn int_elem<T: std::str::FromStr + TryFrom<i128>>(j: &Json) -> Result<T, String> {
    parse_int(&elem_text(j)?)
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("'{}' is not a bool", shorten(s))),
    }
}

/// An integer in base 10; a JSON number with a zero fraction (`12.0`, `1e3`) is accepted.
fn parse_int<T: std::str::FromStr + TryFrom<i128>>(s: &str) -> Result<T, String> {
    let s = s.trim();
    if let Ok(v) = s.parse::<T>() {
        return Ok(v);
    }
    let out_of_range = || format!("{} is out of range", shorten(s));
    if let Ok(wide) = s.parse::<i128>() {
        return T::try_from(wide).map_err(|_| out_of_range());
    }
    match s.parse::<f64>() {
        Ok(f)
            if f.is_finite() && f.fract() == 0.0 && s.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            T::try_from(f as i128).map_err(|_| out_of_range())
        }
        _ => Err(format!("'{}' is not an integer", shorten(s))),
    }
}

/// True when `s` spells an infinity, as Go's `ParseFloat` reads it.
fn spells_infinity(s: &str) -> bool {
    let t = s.trim_start_matches(['+', '-']).to_ascii_lowercase();
    t == "inf" || t == "infinity"
}

fn parse_f64(s: &str) -> Result<f64, String> {
    let s = s.trim();
    match s.parse::<f64>() {
        Ok(f) if f.is_nan() => Err("NaN cannot be written".to_owned()),
        Ok(f) if f.is_infinite() && !spells_infinity(s) => Err(format!("{} is out of the Float64 range", shorten(s))),
        Ok(f) => Ok(f),
        Err(_) => {
            match base64::engine::general_purpose::STANDARD.decode(s).ok().and_then(|b| <[u8; 8]>::try_from(b).ok()) {
                Some(bytes) if !f64::from_be_bytes(bytes).is_nan() => Ok(f64::from_be_bytes(bytes)),
                _ => Err(format!("'{}' is not a number", shorten(s))),
            }
        }
    }
}

fn parse_f32(s: &str) -> Result<f32, String> {
    let s = s.trim();
    match s.parse::<f64>() {
        Ok(f) if f.is_nan() => Err("NaN cannot be written".to_owned()),
        Ok(f) if (f.is_infinite() && !spells_infinity(s)) || (f.is_finite() && f.abs() > f64::from(f32::MAX)) => {
            Err(format!("{} is out of the Float32 range", shorten(s)))
        }
        Ok(_) => s.parse::<f32>().map_err(|e| e.to_string()),
        Err(_) => {
            match base64::engine::general_purpose::STANDARD.decode(s).ok().and_then(|b| <[u8; 4]>::try_from(b).ok()) {
                Some(bytes) if !f32::from_be_bytes(bytes).is_nan() => Ok(f32::from_be_bytes(bytes)),
                _ => Err(format!("'{}' is not a number", shorten(s))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxedge_contracts::Validator;
    use proptest::prelude::*;
    use serde_json::json;

    /// A resource `r` of type `vt` with the extra `properties` given.
    fn res(vt: &str, extra: Json) -> DeviceResource {
        let mut props = json!({ "valueType": vt, "readWrite": "RW" });
        if let (Some(p), Json::Object(e)) = (props.as_object_mut(), extra) {
            p.extend(e);
        }
        serde_json::from_value(json!({ "name": "r", "properties": props })).unwrap()
    }

    fn read(r: &DeviceResource, v: Value) -> Result<Reading, EdgeXError> {
        to_reading("dev", "prof", r, CommandValue::new("r", v))
    }

    fn text(r: &DeviceResource, v: Value) -> String {
        read(r, v).unwrap().value.unwrap()
    }

    fn write(r: &DeviceResource, raw: Json) -> Result<Value, EdgeXError> {
        parse_write(r, &raw).map(|cv| cv.value)
    }

    fn valid(r: &Reading) {
        let mut v = Validator::new();
        r.validate(&mut v, "reading");
        assert!(v.is_ok(), "{r:?} is not a valid reading");
    }

    #[test]
    fn every_simple_type_is_written_as_edgex_writes_it() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("Bool", Value::Bool(true), "true"),
            ("String", Value::String("hi there".into()), "hi there"),
            ("Uint8", Value::Uint8(255), "255"),
            ("Uint16", Value::Uint16(65535), "65535"),
            ("Uint32", Value::Uint32(7), "7"),
            ("Uint64", Value::Uint64(u64::MAX), "18446744073709551615"),
            ("Int8", Value::Int8(-128), "-128"),
            ("Int16", Value::Int16(-2), "-2"),
            ("Int32", Value::Int32(123456), "123456"),
            ("Int64", Value::Int64(i64::MIN), "-9223372036854775808"),
            ("Float32", Value::Float32(12.5), "1.25e+01"),
            ("Float32", Value::Float32(0.1), "1e-01"),
            ("Float64", Value::Float64(0.0), "0e+00"),
            ("Float64", Value::Float64(-1.5e-7), "-1.5e-07"),
            ("Float64", Value::Float64(1e100), "1e+100"),
            ("Float64", Value::Float64(f64::INFINITY), "+Inf"),
            ("Float64", Value::Float64(f64::NEG_INFINITY), "-Inf"),
            ("BoolArray", Value::BoolArray(vec![true, false]), "[true, false]"),
            ("StringArray", Value::StringArray(vec!["a".into(), "<b>&".into()]), r#"["a","\u003cb\u003e\u0026"]"#),
            ("Uint8Array", Value::Uint8Array(vec![1, 2, 3]), "[1, 2, 3]"),
            ("Uint16Array", Value::Uint16Array(vec![]), "[]"),
            ("Uint32Array", Value::Uint32Array(vec![4]), "[4]"),
            ("Uint64Array", Value::Uint64Array(vec![0, u64::MAX]), "[0, 18446744073709551615]"),
            ("Int8Array", Value::Int8Array(vec![-1, 1]), "[-1, 1]"),
            ("Int16Array", Value::Int16Array(vec![-300]), "[-300]"),
            ("Int32Array", Value::Int32Array(vec![1, -2, 3]), "[1, -2, 3]"),
            ("Int64Array", Value::Int64Array(vec![5]), "[5]"),
            ("Float32Array", Value::Float32Array(vec![1.5, 2.0]), "[1.5e+00, 2e+00]"),
            ("Float64Array", Value::Float64Array(vec![0.25, -3.0]), "[2.5e-01, -3e+00]"),
        ];
        for (vt, value, want) in cases {
            let r = res(vt, json!({}));
            let reading = read(&r, value.clone()).unwrap();
            assert_eq!(reading.value.as_deref(), Some(want), "{vt} {value:?}");
            assert_eq!(reading.value_type.as_str(), vt);
            assert!(reading.binary_value.is_none() && reading.object_value.is_none());
            valid(&reading);
        }
    }

    #[test]
    fn binary_and_object_values_go_to_their_own_fields() {
        let r = res("Binary", json!({ "mediaType": "image/png", "readWrite": "R" }));
        let reading = read(&r, Value::Binary(vec![1, 2, 255])).unwrap();
        assert_eq!(reading.binary_value.as_deref(), Some(&[1u8, 2, 255][..]));
        assert_eq!(reading.media_type, "image/png");
        assert_eq!(reading.value, None);
        valid(&reading);

        let r = res("Object", json!({}));
        let reading = read(&r, Value::Object(json!({ "a": 1, "b": [true] }))).unwrap();
        assert_eq!(reading.object_value, Some(json!({ "a": 1, "b": [true] })));
        assert_eq!(reading.value, None);
        valid(&reading);

        let r = res("ObjectArray", json!({}));
        let reading = read(&r, Value::ObjectArray(vec![json!({ "a": 1 }), json!({})])).unwrap();
        assert_eq!(reading.object_value, Some(json!([{ "a": 1 }, {}])));
        valid(&reading);
    }

    #[test]
    fn a_reading_carries_names_units_tags_and_origin() {
        let mut r = res("Int16", json!({ "units": "degC" }));
        r.tags.insert("site".into(), json!("north"));
        r.tags.insert("floor".into(), json!(1));
        let mut cv = CommandValue::new("r", Value::Int16(21));
        cv.origin = 1_700_000_000_000_000_000;
        cv.tags.insert("floor".into(), json!(2));
        let reading = to_reading("dev", "prof", &r, cv).unwrap();
        assert_eq!((reading.device_name.as_str(), reading.profile_name.as_str()), ("dev", "prof"));
        assert_eq!(reading.resource_name, "r");
        assert_eq!(reading.units, "degC");
        assert_eq!(reading.origin, 1_700_000_000_000_000_000);
        assert_eq!(reading.tags.get("site"), Some(&json!("north")));
        assert_eq!(reading.tags.get("floor"), Some(&json!(2)), "the value's tags win");

        let before = now_ns();
        let reading = read(&r, Value::Int16(21)).unwrap();
        assert!(reading.origin >= before && reading.origin <= now_ns());
    }

    #[test]
    fn a_value_of_another_type_is_an_error_naming_both_types() {
        let r = res("Int16", json!({}));
        let err = read(&r, Value::Float32(1.0)).unwrap_err();
        assert_eq!(err.status_code(), 500);
        assert!(err.message.contains("DeviceResource r"), "{err}");
        assert!(err.message.contains("Float32") && err.message.contains("Int16"), "{err}");

        let err = to_reading("dev", "prof", &r, CommandValue::new("other", Value::Int16(1))).unwrap_err();
        assert!(err.message.contains("other"), "{err}");
    }

    #[test]
    fn mask_then_shift_apply_to_unsigned_types_only() {
        let r = res("Uint16", json!({ "mask": 0xFF00, "shift": -8 }));
        assert_eq!(text(&r, Value::Uint16(0xABCD)), "171");
        let r = res("Uint8", json!({ "shift": 4 }));
        assert_eq!(text(&r, Value::Uint8(0x0F)), "240");
        assert_eq!(text(&r, Value::Uint8(0xFF)), "240", "bits shifted out are lost, as in Go");
        let r = res("Uint8", json!({ "shift": 8 }));
        assert_eq!(text(&r, Value::Uint8(0xFF)), "0");
        let r = res("Uint64", json!({ "shift": i64::MIN }));
        assert_eq!(text(&r, Value::Uint64(u64::MAX)), "0");
        let r = res("Uint32", json!({ "mask": u64::MAX }));
        assert_eq!(text(&r, Value::Uint32(0xDEADBEEF)), "3735928559");
        // EdgeX ignores mask and shift on signed types.
        let r = res("Int16", json!({ "mask": 255, "shift": -4 }));
        assert_eq!(text(&r, Value::Int16(-1)), "-1");
    }

    #[test]
    fn base_scale_and_offset_run_in_edgex_order() {
        let r = res("Int32", json!({ "base": 2, "scale": 3, "offset": 1 }));
        assert_eq!(text(&r, Value::Int32(3)), "25");
        let r = res("Float64", json!({ "base": 10 }));
        assert_eq!(text(&r, Value::Float64(2.0)), "1e+02");
        let r = res("Float32", json!({ "scale": 0.5, "offset": -40 }));
        assert_eq!(text(&r, Value::Float32(100.0)), "1e+01");
        let r = res("Uint16", json!({ "base": 2 }));
        assert_eq!(text(&r, Value::Uint16(10)), "1024");
        // A fractional scale on an integer rounds to the nearest integer.
        let r = res("Int16", json!({ "scale": 0.1 }));
        assert_eq!(text(&r, Value::Int16(251)), "25");
        assert_eq!(text(&r, Value::Int16(-255)), "-26");
        // Integral parameters are exact on 64-bit integers.
        let r = res("Int64", json!({ "offset": 1 }));
        assert_eq!(text(&r, Value::Int64(i64::MAX - 1)), i64::MAX.to_string());
        let r = res("Uint64", json!({ "scale": 2 }));
        assert_eq!(text(&r, Value::Uint64(u64::MAX / 2)), (u64::MAX - 1).to_string());
        // Default parameters change nothing.
        let r = res("Int8", json!({ "base": 0, "scale": 1, "offset": 0, "mask": 0, "shift": 0 }));
        assert_eq!(text(&r, Value::Int8(-7)), "-7");
        // Non-numeric types are not transformed.
        let r = res("String", json!({ "scale": 10 }));
        assert_eq!(text(&r, Value::String("5".into())), "5");
        let r = res("Int16Array", json!({ "scale": 10 }));
        assert_eq!(text(&r, Value::Int16Array(vec![5])), "[5]");
    }

    #[test]
    fn leaving_the_type_range_is_an_overflow_error_naming_the_resource() {
        let cases = [
            (res("Int16", json!({ "scale": 10 })), Value::Int16(4000)),
            (res("Uint8", json!({ "offset": -10 })), Value::Uint8(5)),
            (res("Uint8", json!({ "base": 2 })), Value::Uint8(10)),
            (res("Int8", json!({ "scale": 0.5, "offset": 100 })), Value::Int8(100)),
            (res("Uint64", json!({ "scale": 2 })), Value::Uint64(u64::MAX)),
            (res("Float64", json!({ "scale": 10 })), Value::Float64(1e308)),
            (res("Float32", json!({ "offset": 1e38 })), Value::Float32(f32::MAX)),
            (res("Float64", json!({ "scale": 2 })), Value::Float64(f64::INFINITY)),
            (res("Float64", json!({ "base": -2 })), Value::Float64(0.5)),
        ];
        for (r, v) in cases {
            let err = read(&r, v.clone()).unwrap_err();
            assert_eq!(err.status_code(), 500, "{v:?}");
            assert!(err.message.contains("overflow") && err.message.contains("DeviceResource r"), "{err}");
            assert!(!is_assertion_failure(&err));
        }
    }

    #[test]
    fn nan_is_an_error_and_infinity_passes_untransformed() {
        let r = res("Float32", json!({}));
        let err = read(&r, Value::Float32(f32::NAN)).unwrap_err();
        assert_eq!(err.status_code(), 500);
        assert!(err.message.contains("NaN") && err.message.contains("r"), "{err}");
        assert_eq!(text(&r, Value::Float32(f32::INFINITY)), "+Inf");
    }

    #[test]
    fn a_failed_assertion_is_told_apart() {
        let r = res("Int32", json!({ "assertion": "1" }));
        assert_eq!(text(&r, Value::Int32(1)), "1");
        let err = read(&r, Value::Int32(0)).unwrap_err();
        assert!(is_assertion_failure(&err), "{err}");
        assert_eq!(err.message, "Assertion failed for DeviceResource r, with value 0");
        // The assertion is compared with the transformed value, as Go's %v prints it.
        let r = res("Float64", json!({ "assertion": "12.5", "scale": 0.5 }));
        assert!(read(&r, Value::Float64(25.0)).is_ok());
        let r = res("Uint8Array", json!({ "assertion": "[1 2]" }));
        assert!(read(&r, Value::Uint8Array(vec![1, 2])).is_ok());
        assert!(is_assertion_failure(&read(&r, Value::Uint8Array(vec![2, 1])).unwrap_err()));
    }

    #[test]
    fn go_prints_floats_like_this() {
        let g = |f: f64| go_string(&Value::Float64(f));
        assert_eq!(g(12.5), "12.5");
        assert_eq!(g(1e6), "1e+06");
        assert_eq!(g(100000.0), "100000");
        assert_eq!(g(1234567.0), "1.234567e+06");
        assert_eq!(g(0.0001), "0.0001");
        assert_eq!(g(0.00001), "1e-05");
        assert_eq!(g(-0.5), "-0.5");
        assert_eq!(g(0.0), "0");
        assert_eq!(g(f64::NAN), "NaN");
        assert_eq!(go_string(&Value::Float32(0.1)), "0.1");
        assert_eq!(go_string(&Value::Float32Array(vec![1.0, 2.5])), "[1 2.5]");
        assert_eq!(go_string(&Value::StringArray(vec!["a".into(), "b".into()])), "[a b]");
        assert_eq!(go_string(&Value::BoolArray(vec![true, false])), "[true false]");
    }

    #[test]
    fn written_values_parse_as_edgex_parses_them() {
        let w = |vt: &str, raw: Json| write(&res(vt, json!({})), raw);
        assert_eq!(w("Bool", json!("true")).unwrap(), Value::Bool(true));
        assert_eq!(w("Bool", json!("F")).unwrap(), Value::Bool(false));
        assert_eq!(w("Bool", json!(true)).unwrap(), Value::Bool(true));
        assert_eq!(w("String", json!("x y")).unwrap(), Value::String("x y".into()));
        assert_eq!(w("String", json!("")).unwrap(), Value::String(String::new()));
        assert_eq!(w("String", json!(12)).unwrap(), Value::String("12".into()));
        assert_eq!(w("Uint8", json!("255")).unwrap(), Value::Uint8(255));
        assert_eq!(w("Uint32", json!(100000000)).unwrap(), Value::Uint32(100_000_000));
        assert_eq!(w("Int16", json!(-12.0)).unwrap(), Value::Int16(-12));
        assert_eq!(w("Int64", json!("-9223372036854775808")).unwrap(), Value::Int64(i64::MIN));
        assert_eq!(w("Uint64", json!(u64::MAX)).unwrap(), Value::Uint64(u64::MAX));
        assert_eq!(w("Float32", json!("12.5")).unwrap(), Value::Float32(12.5));
        assert_eq!(w("Float64", json!(12.5)).unwrap(), Value::Float64(12.5));
        assert_eq!(w("Float64", json!("1.25e+01")).unwrap(), Value::Float64(12.5));
        assert_eq!(w("Float64", json!("-Inf")).unwrap(), Value::Float64(f64::NEG_INFINITY));
        let b64 = |b: &[u8]| json!(base64::engine::general_purpose::STANDARD.encode(b));
        assert_eq!(w("Float32", b64(&1.5f32.to_be_bytes())).unwrap(), Value::Float32(1.5));
        assert_eq!(w("Float64", b64(&(-2.25f64).to_be_bytes())).unwrap(), Value::Float64(-2.25));
        assert_eq!(w("Binary", b64(&[1, 2])).unwrap(), Value::Binary(vec![1, 2]));
        assert_eq!(w("Binary", json!([1, 2])).unwrap(), Value::Binary(vec![1, 2]));
        assert_eq!(w("Uint8Array", json!("[1, 2]")).unwrap(), Value::Uint8Array(vec![1, 2]));
        assert_eq!(w("Int8Array", json!([-1, "2"])).unwrap(), Value::Int8Array(vec![-1, 2]));
        assert_eq!(w("Int32Array", json!("[]")).unwrap(), Value::Int32Array(vec![]));
        assert_eq!(w("BoolArray", json!("[true, false]")).unwrap(), Value::BoolArray(vec![true, false]));
        assert_eq!(w("StringArray", json!(r#"["a","b"]"#)).unwrap(), Value::StringArray(vec!["a".into(), "b".into()]));
        assert_eq!(w("Float32Array", json!("[1.5e+00, 2]")).unwrap(), Value::Float32Array(vec![1.5, 2.0]));
        assert_eq!(w("Float64Array", json!([0.5])).unwrap(), Value::Float64Array(vec![0.5]));
        assert_eq!(w("Object", json!({ "a": 1 })).unwrap(), Value::Object(json!({ "a": 1 })));
        assert_eq!(w("Object", json!(r#"{"a":1}"#)).unwrap(), Value::Object(json!({ "a": 1 })));
        assert_eq!(w("ObjectArray", json!([{ "a": 1 }])).unwrap(), Value::ObjectArray(vec![json!({ "a": 1 })]));
    }

    #[test]
    fn bad_written_values_are_400_naming_the_resource() {
        let cases = [
            ("Bool", json!("yes")),
            ("Bool", json!(1.5)),
            ("Uint8", json!("256")),
            ("Uint8", json!("-1")),
            ("Int16", json!("12.5")),
            ("Int16", json!("")),
            ("Int16", json!("  ")),
            ("Int32", json!("0x10")),
            ("Int32", json!([1])),
            ("Float32", json!("1e39")),
            ("Float64", json!("1e400")),
            ("Float64", json!("NaN")),
            ("Float64", json!("abc")),
            ("Uint8Array", json!("[1, x]")),
            ("Int8Array", json!([200])),
            ("Int8Array", json!("1, 2")),
            ("StringArray", json!([1])),
            ("BoolArray", json!(["maybe"])),
            ("Binary", json!("not base64!")),
            ("Object", json!(5)),
            ("Object", json!("[1]")),
            ("ObjectArray", json!([1])),
            ("Int16", Json::Null),
            ("String", json!({ "a": 1 })),
        ];
        for (vt, raw) in cases {
            let err = write(&res(vt, json!({})), raw.clone()).unwrap_err();
            assert_eq!(err.status_code(), 400, "{vt} {raw}: {err}");
            assert!(err.message.contains("DeviceResource r") && err.message.contains(vt), "{err}");
        }
    }

    #[test]
    fn read_only_resources_are_refused_as_edgex_refuses_them() {
        let r = res("Int16", json!({ "readWrite": "R" }));
        let err = write(&r, json!("1")).unwrap_err();
        assert_eq!(err.status_code(), 405);
        assert_eq!(err.message, "DeviceResource r is marked as read-only");
        for rw in ["W", "RW", "WR"] {
            assert!(write(&res("Int16", json!({ "readWrite": rw })), json!("1")).is_ok());
        }
    }

    #[test]
    fn minimum_and_maximum_bound_written_values() {
        let r = res("Int16", json!({ "minimum": -10, "maximum": 100 }));
        assert_eq!(write(&r, json!("100")).unwrap(), Value::Int16(100));
        assert_eq!(write(&r, json!(-10)).unwrap(), Value::Int16(-10));
        let err = write(&r, json!("101")).unwrap_err();
        assert_eq!(err.status_code(), 400);
        assert!(err.message.contains("DeviceResource r") && err.message.contains("maximum 100"), "{err}");
        let err = write(&r, json!("-11")).unwrap_err();
        assert!(err.message.contains("minimum -10"), "{err}");
        let r = res("Float32", json!({ "maximum": 1.5 }));
        assert!(write(&r, json!("1.5")).is_ok());
        assert!(write(&r, json!("1.6")).unwrap_err().message.contains("maximum 1.5"));
        assert!(write(&r, json!("+Inf")).is_err());
        // The bounds are checked on the value as written, before the transforms are reversed.
        let r = res("Int16", json!({ "maximum": 50, "scale": 0.1 }));
        assert_eq!(write(&r, json!(50)).unwrap(), Value::Int16(500));
    }

    #[test]
    fn limits_are_checked_on_any_numeric_value_and_other_values_pass() {
        let r = res("Uint64", json!({ "minimum": 1, "maximum": 10, "readWrite": "R" }));
        assert!(check_limits(&r, &Value::Uint64(10)).is_ok());
        let err = check_limits(&r, &Value::Uint64(u64::MAX)).unwrap_err();
        assert_eq!(err.status_code(), 400);
        assert!(err.message.contains("DeviceResource r") && err.message.contains("maximum 10"), "{err}");
        assert!(check_limits(&r, &Value::Uint64(0)).unwrap_err().message.contains("minimum 1"));
        let r = res("Float64", json!({ "maximum": 2.5 }));
        assert!(check_limits(&r, &Value::Float64(f64::INFINITY)).is_err());
        assert!(check_limits(&r, &Value::Float64(2.5)).is_ok());
        assert!(check_limits(&r, &Value::String("99".into())).is_ok());
        assert!(check_limits(&res("Int8", json!({})), &Value::Int8(i8::MIN)).is_ok());
    }

    #[test]
    fn transforms_are_reversed_on_write() {
        assert_eq!(write(&res("Int16", json!({ "scale": 0.1 })), json!("25")).unwrap(), Value::Int16(250));
        let r = res("Int32", json!({ "scale": 2, "offset": 10 }));
        assert_eq!(write(&r, json!(30)).unwrap(), Value::Int32(10));
        assert_eq!(write(&r, json!(31)).unwrap(), Value::Int32(11), "10.5 rounds away from zero");
        assert_eq!(write(&res("Float64", json!({ "base": 10 })), json!(100)).unwrap(), Value::Float64(2.0));
        assert_eq!(write(&res("Uint16", json!({ "base": 2 })), json!(1024)).unwrap(), Value::Uint16(10));
        let r = res("Float32", json!({ "scale": 0.5, "offset": -40 }));
        assert_eq!(write(&r, json!(10)).unwrap(), Value::Float32(100.0));
        // Mask and shift are not reversed (EdgeX does not either).
        assert_eq!(
            write(&res("Uint16", json!({ "mask": 255, "shift": 4 })), json!(4096)).unwrap(),
            Value::Uint16(4096)
        );
        for (r, raw) in [
            (res("Uint8", json!({ "offset": 10 })), json!(5)),
            (res("Int16", json!({ "scale": 0 })), json!(5)),
            (res("Float64", json!({ "scale": 0 })), json!(5)),
            (res("Float64", json!({ "base": 10 })), json!(-1)),
            (res("Int8", json!({ "scale": 0.01 })), json!(100)),
        ] {
            let err = write(&r, raw.clone()).unwrap_err();
            assert_eq!(err.status_code(), 400, "{raw}: {err}");
            assert!(err.message.contains("DeviceResource r") && err.message.contains("reversed"), "{err}");
        }
    }

    const TYPES: &[&str] = &[
        "Bool",
        "String",
        "Uint8",
        "Uint16",
        "Uint32",
        "Uint64",
        "Int8",
        "Int16",
        "Int32",
        "Int64",
        "Float32",
        "Float64",
        "Binary",
        "Object",
        "BoolArray",
        "StringArray",
        "Uint8Array",
        "Uint16Array",
        "Uint32Array",
        "Uint64Array",
        "Int8Array",
        "Int16Array",
        "Int32Array",
        "Int64Array",
        "Float32Array",
        "Float64Array",
        "ObjectArray",
    ];

    fn finite32() -> impl Strategy<Value = f32> {
        any::<f32>().prop_filter("finite", |f| f.is_finite())
    }

    fn finite64() -> impl Strategy<Value = f64> {
        any::<f64>().prop_filter("finite", |f| f.is_finite())
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let obj = || prop::collection::btree_map("[a-z]{1,4}", any::<i32>(), 0..3).prop_map(|m| json!(m));
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<String>().prop_map(Value::String),
            any::<u8>().prop_map(Value::Uint8),
            any::<u16>().prop_map(Value::Uint16),
            any::<u32>().prop_map(Value::Uint32),
            any::<u64>().prop_map(Value::Uint64),
            any::<i8>().prop_map(Value::Int8),
            any::<i16>().prop_map(Value::Int16),
            any::<i32>().prop_map(Value::Int32),
            any::<i64>().prop_map(Value::Int64),
            finite32().prop_map(Value::Float32),
            finite64().prop_map(Value::Float64),
            prop::collection::vec(any::<u8>(), 0..16).prop_map(Value::Binary),
            obj().prop_map(Value::Object),
            prop::collection::vec(any::<bool>(), 0..4).prop_map(Value::BoolArray),
            prop::collection::vec(any::<String>(), 0..4).prop_map(Value::StringArray),
            prop::collection::vec(any::<u8>(), 0..4).prop_map(Value::Uint8Array),
            prop::collection::vec(any::<u16>(), 0..4).prop_map(Value::Uint16Array),
            prop::collection::vec(any::<u32>(), 0..4).prop_map(Value::Uint32Array),
            prop::collection::vec(any::<u64>(), 0..4).prop_map(Value::Uint64Array),
            prop::collection::vec(any::<i8>(), 0..4).prop_map(Value::Int8Array),
            prop::collection::vec(any::<i16>(), 0..4).prop_map(Value::Int16Array),
            prop::collection::vec(any::<i32>(), 0..4).prop_map(Value::Int32Array),
            prop::collection::vec(any::<i64>(), 0..4).prop_map(Value::Int64Array),
            prop::collection::vec(finite32(), 0..4).prop_map(Value::Float32Array),
            prop::collection::vec(finite64(), 0..4).prop_map(Value::Float64Array),
            prop::collection::vec(obj(), 0..3).prop_map(Value::ObjectArray),
        ]
    }

    proptest! {
        #[test]
        fn writing_a_formatted_reading_gives_the_value_back(value in any_value()) {
            let r = res(value.value_type().as_str(), json!({}));
            let reading = read(&r, value.clone()).unwrap();
            valid(&reading);
            let raw = match (&reading.value, &reading.binary_value, &reading.object_value) {
                (Some(v), _, _) => json!(v),
                (_, Some(b), _) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
                (_, _, Some(o)) => o.clone(),
                _ => unreachable!("a reading holds a value"),
            };
            prop_assert_eq!(write(&r, raw).unwrap(), value);
        }

        #[test]
        fn integral_transforms_invert_exactly(x in any::<i32>(), scale in -1000i32..1000, offset in any::<i32>()) {
            prop_assume!(scale != 0);
            let r = res("Int64", json!({ "scale": scale, "offset": offset }));
            let shown = text(&r, Value::Int64(x.into()));
            prop_assert_eq!(write(&r, json!(shown)).unwrap(), Value::Int64(x.into()));
        }

        #[test]
        fn float_transforms_invert_within_precision(
            x in -1e6f64..1e6, scale in prop_oneof![-1e3f64..-1e-3, 1e-3f64..1e3], offset in -1e6f64..1e6,
        ) {
            let r = res("Float64", json!({ "scale": scale, "offset": offset }));
            let shown = text(&r, Value::Float64(x));
            let Value::Float64(back) = write(&r, json!(shown)).unwrap() else { panic!("not a Float64") };
            prop_assert!((back - x).abs() <= 1e-6 * (1.0 + x.abs()), "{} came back as {}", x, back);
        }

        #[test]
        fn base_inverts_within_precision(x in -20f64..20.0, base in 1.1f64..10.0) {
            let r = res("Float64", json!({ "base": base }));
            let shown = text(&r, Value::Float64(x));
            let Value::Float64(back) = write(&r, json!(shown)).unwrap() else { panic!("not a Float64") };
            prop_assert!((back - x).abs() <= 1e-9 * (1.0 + x.abs()), "{} came back as {}", x, back);
        }

        #[test]
        fn no_input_string_makes_parse_write_panic(s in any::<String>(), i in 0..TYPES.len()) {
            let r = res(TYPES[i], json!({ "minimum": -5, "maximum": 5, "scale": 0.5, "base": 3 }));
            let _ = write(&r, json!(s));
            let _ = write(&r, json!([s]));
        }

        #[test]
        fn no_profile_parameters_make_to_reading_panic(
            x in any::<i64>(), f in any::<f64>(), mask in any::<u64>(), shift in any::<i64>(),
            base in any::<f64>(), scale in any::<f64>(), offset in any::<f64>(), i in 0..10usize,
        ) {
            let props = json!({ "mask": mask, "shift": shift, "base": base, "scale": scale, "offset": offset });
            let values = [
                Value::Uint8(x as u8), Value::Uint16(x as u16), Value::Uint32(x as u32), Value::Uint64(x as u64),
                Value::Int8(x as i8), Value::Int16(x as i16), Value::Int32(x as i32), Value::Int64(x),
                Value::Float32(f as f32), Value::Float64(f),
            ];
            let value = values[i].clone();
            let r = res(value.value_type().as_str(), props);
            if let Ok(reading) = read(&r, value) {
                valid(&reading);
                let _ = write(&r, json!(reading.value));
            }
        }
    }
}
