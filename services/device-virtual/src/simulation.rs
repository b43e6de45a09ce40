//! How a virtual resource behaves, chosen by its `attributes` in the profile, and the values
//! it produces.
//!
//! | attribute    | meaning                                                                    |
//! |--------------|----------------------------------------------------------------------------|
//! | `simulation` | `random` (default), `sine`, `counter` or `constant`                         |
//! | `period`     | `sine`: duration of one period (Go duration, default `60s`)                 |
//! | `step`       | `counter`: added on every read (default 1); past the maximum it wraps to the minimum |
//! | `length`     | arrays: elements (default 5, as EdgeX); Binary: bytes (16); String: characters (8) |
//! | `delay`      | every read of the resource first waits this long (Go duration)             |
//! | `fail`       | `true`: every read fails, as an unreachable device does                     |
//!
//! See `profiles/device-virtual/README.md` for the profiles that use these.
//!
//! Values stay within the resource's `minimum`/`maximum`, or the value type's range when the
//! profile gives none (a sine then swings between -100 and 100, clipped to the type).
//! `constant` returns the resource's `defaultValue` (or the value last written); Object and
//! ObjectArray resources with a `defaultValue` are constant unless told otherwise, as
//! EdgeX's `Fixed-Object-Device`. `sine` and `counter` apply to numeric scalars; arrays,
//! strings, binary and objects are `random` or `constant`.

use std::time::Duration;

use oxedge_contracts::validate::parse_duration;
use oxedge_contracts::{DeviceResource, ValueType};
use oxedge_device_sdk::value::{int_range, parse_value};
use oxedge_device_sdk::Value;
use serde_json::{json, Value as Json};

/// What a resource's reads produce.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A new random value on every read.
    Random,
    /// A sine wave of the given period between the bounds.
    Sine(Duration),
    /// The previous value plus a step, wrapping at the bounds.
    Counter(f64),
    /// The default value, or the value last written.
    Constant,
}

/// A resource's simulation, read from its attributes and properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// What reads produce.
    pub kind: Kind,
    /// The value type.
    pub value_type: ValueType,
    /// Lower bound of generated numbers.
    pub min: f64,
    /// Upper bound of generated numbers.
    pub max: f64,
    /// Elements of an array, bytes of a Binary value, characters of a String.
    pub length: usize,
    /// How long every read waits first.
    pub delay: Duration,
    /// Every read fails.
    pub fail: bool,
    /// The parsed `defaultValue`, if the resource has one.
    pub default: Option<Value>,
}

/// The element type of an array type.
fn element_type(vt: ValueType) -> Option<ValueType> {
    use ValueType::*;
    Some(match vt {
        BoolArray => Bool,
        StringArray => String,
        Uint8Array => Uint8,
        Uint16Array => Uint16,
        Uint32Array => Uint32,
        Uint64Array => Uint64,
        Int8Array => Int8,
        Int16Array => Int16,
        Int32Array => Int32,
        Int64Array => Int64,
        Float32Array => Float32,
        Float64Array => Float64,
        ObjectArray => Object,
        _ => return None,
    })
}

/// The range of a numeric type as floats.
fn type_range(vt: ValueType) -> Option<(f64, f64)> {
    match vt {
        ValueType::Float32 => Some((-f64::from(f32::MAX), f64::from(f32::MAX))),
        ValueType::Float64 => Some((-f64::MAX, f64::MAX)),
        _ => int_range(vt).map(|(lo, hi)| (lo as f64, hi as f64)),
    }
}

/// A number attribute given as a JSON number or as text (EdgeX attributes are often text).
fn number(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Spec {
    /// The simulation of `resource`; the error names the resource and the attribute.
    pub fn of(resource: &DeviceResource) -> Result<Spec, String> {
        let attrs = &resource.attributes;
        let props = &resource.properties;
        let vt = props.value_type;
        let bad = |key: &str, why: &str| format!("device resource {}: attribute {key} {why}", resource.name);
        let duration = |key: &str| -> Result<Option<Duration>, String> {
            match attrs.get(key) {
                None => Ok(None),
                Some(Json::String(s)) => {
                    parse_duration(s).map(Some).ok_or_else(|| bad(key, "is not a duration such as 500ms or 30s"))
                }
                Some(_) => Err(bad(key, "must be a duration such as \"30s\"")),
            }
        };
        let default = match props.default_value.as_str() {
            "" => None,
            text => Some(parse_value(vt, &Json::String(text.to_owned())).map_err(|why| {
                format!("device resource {}: defaultValue '{text}' is not a {vt} value: {why}", resource.name)
            })?),
        };
        let structured = matches!(vt, ValueType::Object | ValueType::ObjectArray);
        let kind = match attrs.get("simulation").map(|v| v.as_str().unwrap_or_default()) {
            None if structured && default.is_some() => Kind::Constant,
            None | Some("random") => Kind::Random,
            Some("constant") => Kind::Constant,
            Some("sine") => Kind::Sine(duration("period")?.filter(|p| !p.is_zero()).unwrap_or(Duration::from_secs(60))),
            Some("counter") => Kind::Counter(match attrs.get("step") {
                None => 1.0,
                Some(v) => number(v).filter(|s| s.is_finite()).ok_or_else(|| bad("step", "must be a number"))?,
            }),
            Some(_) => return Err(bad("simulation", "must be random, sine, counter or constant")),
        };
        let range = type_range(vt);
        if matches!(kind, Kind::Sine(_) | Kind::Counter(_)) && range.is_none() {
            return Err(bad("simulation", &format!("sine and counter need a numeric valueType, not {vt}")));
        }
        let (type_min, type_max) =
            range.or_else(|| element_type(vt).and_then(type_range)).unwrap_or((f64::MIN, f64::MAX));
        let (min, max) = match kind {
            Kind::Sine(_) => (props.minimum.unwrap_or(-100.0), props.maximum.unwrap_or(100.0)),
            _ => (props.minimum.unwrap_or(type_min), props.maximum.unwrap_or(type_max)),
        };
        let (min, max) = (min.max(type_min), max.min(type_max));
        if min > max {
            return Err(format!(
                "device resource {}: no {vt} value lies between minimum {min} and maximum {max}",
                resource.name
            ));
        }
        let length = match attrs.get("length") {
            None => match vt {
                ValueType::Binary => 16,
                ValueType::String => 8,
                _ => 5,
            },
            Some(v) => number(v)
                .filter(|n| n.fract() == 0.0 && (0.0..=1_000_000.0).contains(n))
                .ok_or_else(|| bad("length", "must be a whole number up to 1000000"))? as usize,
        };
        let fail = match attrs.get("fail") {
            None | Some(Json::Bool(false)) => false,
            Some(Json::Bool(true)) => true,
            Some(Json::String(s)) if s == "true" || s == "false" => s == "true",
            Some(_) => return Err(bad("fail", "must be true or false")),
        };
        Ok(Spec {
            kind,
            value_type: vt,
            min,
            max,
            length,
            delay: duration("delay")?.unwrap_or_default(),
            fail,
            default,
        })
    }

    /// The next value: `previous` is the value last read or written, `elapsed` the time since
    /// the simulation started and `phase` (0..1) shifts a sine wave per device.
    pub fn next(&self, previous: Option<&Value>, elapsed: Duration, phase: f64) -> Value {
        match self.kind {
            Kind::Constant => previous.or(self.default.as_ref()).cloned().unwrap_or_else(|| self.zero()),
            Kind::Random => self.random(self.value_type),
            Kind::Sine(period) => {
                let turns = elapsed.as_secs_f64() / period.as_secs_f64() + phase;
                let (mid, amp) = ((self.min + self.max) / 2.0, (self.max - self.min) / 2.0);
                self.number(mid + amp * (turns * std::f64::consts::TAU).sin())
            }
            Kind::Counter(step) => {
                let before = previous.and_then(|v| v.as_i128().map(|i| i as f64).or_else(|| float_of(v)));
                let next = match before {
                    None => self.min.max(0.0_f64.min(self.max)),
                    Some(x) if x + step > self.max || x + step < self.min => {
                        if step >= 0.0 {
                            self.min
                        } else {
                            self.max
                        }
                    }
                    Some(x) => x + step,
                };
                self.number(next)
            }
        }
    }

    /// `x`, clipped to the bounds, as a value of the (numeric) value type.
    fn number(&self, x: f64) -> Value {
        let x = x.clamp(self.min, self.max);
        match self.value_type {
            ValueType::Float32 => Value::Float32(x as f32),
            ValueType::Float64 => Value::Float64(x),
            vt => Value::from_i128(vt, x.round() as i128).unwrap_or_else(|| self.zero()),
        }
    }

    /// A random value of `vt` (the resource's type or its element type).
    fn random(&self, vt: ValueType) -> Value {
        let count = self.length;
        let list = |et: ValueType| (0..count).map(|_| self.random(et)).collect::<Vec<_>>();
        macro_rules! array {
            ($variant:ident, $et:ident) => {
                Value::$variant(
                    list(ValueType::$et)
                        .into_iter()
                        .filter_map(|v| if let Value::$et(x) = v { Some(x) } else { None })
                        .collect(),
                )
            };
        }
        match vt {
            ValueType::Bool => Value::Bool(fastrand::bool()),
            ValueType::String => Value::String((0..count).map(|_| fastrand::alphanumeric()).collect()),
            ValueType::Binary => Value::Binary((0..count).map(|_| fastrand::u8(..)).collect()),
            ValueType::Object => Value::Object(json!({
                "value": random_float(self.min.max(-1e6), self.max.min(1e6)),
                "ok": fastrand::bool(),
                "label": (0..8).map(|_| fastrand::alphanumeric()).collect::<String>(),
            })),
            ValueType::ObjectArray => Value::ObjectArray(
                list(ValueType::Object)
                    .into_iter()
                    .filter_map(|v| if let Value::Object(o) = v { Some(o) } else { None })
                    .collect(),
            ),
            ValueType::Float32 => Value::Float32(random_float(self.min, self.max) as f32),
            ValueType::Float64 => Value::Float64(random_float(self.min, self.max)),
            ValueType::BoolArray => array!(BoolArray, Bool),
            ValueType::StringArray => array!(StringArray, String),
            ValueType::Uint8Array => array!(Uint8Array, Uint8),
            ValueType::Uint16Array => array!(Uint16Array, Uint16),
            ValueType::Uint32Array => array!(Uint32Array, Uint32),
            ValueType::Uint64Array => array!(Uint64Array, Uint64),
            ValueType::Int8Array => array!(Int8Array, Int8),
            ValueType::Int16Array => array!(Int16Array, Int16),
            ValueType::Int32Array => array!(Int32Array, Int32),
            ValueType::Int64Array => array!(Int64Array, Int64),
            ValueType::Float32Array => array!(Float32Array, Float32),
            ValueType::Float64Array => array!(Float64Array, Float64),
            int => {
                let (lo, hi) = int_range(int).unwrap_or((0, 0));
                let lo = lo.max(self.min.ceil() as i128);
                let hi = hi.min(self.max.floor() as i128);
                Value::from_i128(int, fastrand::i128(lo..=hi.max(lo))).unwrap_or_else(|| self.zero())
            }
        }
    }

    /// The zero of the value type (an empty string, array or object).
    fn zero(&self) -> Value {
        match self.value_type {
            ValueType::Float32 => Value::Float32(0.0),
            ValueType::Float64 => Value::Float64(0.0),
            ValueType::Bool => Value::Bool(false),
            ValueType::Object => Value::Object(json!({})),
            vt => Value::from_i128(vt, 0)
                .or_else(|| parse_value(vt, &json!([])).ok())
                .or_else(|| parse_value(vt, &json!("")).ok())
                .unwrap_or(Value::String(String::new())),
        }
    }
}

fn float_of(v: &Value) -> Option<f64> {
    match *v {
        Value::Float32(f) => Some(f64::from(f)),
        Value::Float64(f) => Some(f),
        _ => None,
    }
}

/// A random float in `[min, max]`, without overflowing when the range spans the whole type
/// (as EdgeX's device-virtual draws it).
fn random_float(min: f64, max: f64) -> f64 {
    if min < 0.0 && max > 0.0 {
        fastrand::f64() * min + fastrand::f64() * max
    } else {
        min + fastrand::f64() * (max - min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(vt: &str, props: Json, attributes: Json) -> Result<Spec, String> {
        let mut p = json!({ "valueType": vt, "readWrite": "RW" });
        p.as_object_mut().unwrap().extend(props.as_object().unwrap().clone());
        let r: DeviceResource =
            serde_json::from_value(json!({ "name": "r", "properties": p, "attributes": attributes })).unwrap();
        Spec::of(&r)
    }

    #[test]
    fn every_type_has_a_random_value_of_its_type() {
        for vt in ValueType::ALL {
            let s = spec(vt.as_str(), json!({}), json!({})).unwrap();
            let v = s.next(None, Duration::ZERO, 0.0);
            assert_eq!(v.value_type(), *vt);
            assert_eq!(s.kind, Kind::Random);
        }
    }

    #[test]
    fn random_numbers_stay_within_minimum_and_maximum() {
        for vt in ["Uint8", "Int8", "Int16", "Uint64", "Int64", "Float32", "Float64"] {
            let s = spec(vt, json!({ "minimum": 3, "maximum": 7 }), json!({})).unwrap();
            for _ in 0..200 {
                let v = s.next(None, Duration::ZERO, 0.0);
                let x = v.as_i128().map(|i| i as f64).or_else(|| float_of(&v)).unwrap();
                assert!((3.0..=7.0).contains(&x), "{vt}: {x}");
            }
        }
        let s = spec("Int32Array", json!({ "minimum": -2, "maximum": 2 }), json!({ "length": "3" })).unwrap();
        let Value::Int32Array(items) = s.next(None, Duration::ZERO, 0.0) else { panic!("not an Int32Array") };
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(|x| (-2..=2).contains(x)));
    }

    #[test]
    fn sine_swings_between_the_bounds() {
        let s =
            spec("Float64", json!({ "minimum": 10, "maximum": 20 }), json!({ "simulation": "sine", "period": "4s" }))
                .unwrap();
        let at = |ms: u64| match s.next(None, Duration::from_millis(ms), 0.0) {
            Value::Float64(x) => x,
            other => panic!("{other:?}"),
        };
        assert!((at(0) - 15.0).abs() < 1e-9);
        assert!((at(1000) - 20.0).abs() < 1e-9);
        assert!((at(3000) - 10.0).abs() < 1e-9);
        assert!((0..4000).step_by(37).all(|ms| (10.0..=20.0).contains(&at(ms))));
        let s = spec("Uint8", json!({}), json!({ "simulation": "sine" })).unwrap();
        assert_eq!((s.min, s.max), (0.0, 100.0), "the default swing is clipped to the type");
    }

    #[test]
    fn counters_count_and_wrap() {
        let s = spec("Int16", json!({ "minimum": -1, "maximum": 2 }), json!({ "simulation": "counter" })).unwrap();
        let mut v = None;
        let mut seen = Vec::new();
        for _ in 0..6 {
            let next = s.next(v.as_ref(), Duration::ZERO, 0.0);
            seen.push(next.as_i128().unwrap());
            v = Some(next);
        }
        assert_eq!(seen, [0, 1, 2, -1, 0, 1]);
        let s = spec("Float32", json!({}), json!({ "simulation": "counter", "step": 0.5 })).unwrap();
        assert_eq!(s.next(Some(&Value::Float32(1.0)), Duration::ZERO, 0.0), Value::Float32(1.5));
    }

    #[test]
    fn constants_and_fixed_objects_return_the_default() {
        let s = spec("String", json!({ "defaultValue": "hello" }), json!({ "simulation": "constant" })).unwrap();
        assert_eq!(s.next(None, Duration::ZERO, 0.0), Value::String("hello".into()));
        let s = spec("Object", json!({ "defaultValue": r#"{"key1": "value1", "key2": 123}"# }), json!({})).unwrap();
        assert_eq!(s.kind, Kind::Constant);
        assert_eq!(s.next(None, Duration::ZERO, 0.0), Value::Object(json!({ "key1": "value1", "key2": 123 })));
        let s = spec("Int8Array", json!({}), json!({ "simulation": "constant" })).unwrap();
        assert_eq!(s.next(None, Duration::ZERO, 0.0), Value::Int8Array(vec![]));
    }

    #[test]
    fn delay_fail_and_length_are_read() {
        let s = spec("Binary", json!({}), json!({ "delay": "250ms", "fail": true, "length": 4 })).unwrap();
        assert_eq!((s.delay, s.fail, s.length), (Duration::from_millis(250), true, 4));
        assert!(matches!(s.next(None, Duration::ZERO, 0.0), Value::Binary(b) if b.len() == 4));
    }

    #[test]
    fn contradictory_attributes_are_named() {
        let cases = [
            ("Bool", json!({}), json!({ "simulation": "sine" }), "simulation"),
            ("Float64", json!({}), json!({ "simulation": "wave" }), "simulation"),
            ("Float64", json!({}), json!({ "simulation": "sine", "period": "soon" }), "period"),
            ("Int8", json!({}), json!({ "simulation": "counter", "step": "x" }), "step"),
            ("Int8Array", json!({}), json!({ "length": -1 }), "length"),
            ("Int8", json!({}), json!({ "fail": "yes" }), "fail"),
            ("Int8", json!({}), json!({ "delay": 5 }), "delay"),
            ("Uint8", json!({ "minimum": 300 }), json!({}), "minimum"),
            ("Int8", json!({ "defaultValue": "x" }), json!({}), "defaultValue"),
        ];
        for (vt, props, attrs, key) in cases {
            let err = spec(vt, props, attrs.clone()).unwrap_err();
            assert!(err.contains("device resource r") && err.contains(key), "{attrs}: {err}");
        }
    }
}
