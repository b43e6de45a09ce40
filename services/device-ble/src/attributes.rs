//! How a device resource maps to a GATT characteristic: its `attributes` in the profile.
//!
//! | attribute | required | meaning |
//! |---|---|---|
//! | `serviceUuid` | yes | the GATT service: `180D`, `0x180D` (Bluetooth SIG 16-bit) or a full UUID |
//! | `characteristicUuid` | yes | the characteristic in that service, same forms |
//! | `rawType` | no | how the bytes read: `Uint8`…`Int64`, `Float32`, `Float64`, `Bool`, `String`, `Binary`; default: the resource's `valueType` |
//! | `byteOrder` | no | `little` (default: GATT's order) or `big` |
//! | `offset` | no | where the value starts in the characteristic's bytes (default 0) |
//! | `length` | no | bytes taken by a `String` or `Binary` (default: to the end) |
//! | `notify` | no | `true`: subscribe when the device is added; each notification is an event |
//! | `writeType` | no | `WithResponse` (default) or `WithoutResponse` |
//!
//! A numeric `rawType` becomes the resource's numeric `valueType` (an `Int16` characteristic
//! read as `Float32`, with the profile's `scale`, say); a value that does not fit is an error.

use oxedge_contracts::ValueType;
use oxedge_device_sdk::value::int_range;
use oxedge_device_sdk::Value;
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use crate::radio::WriteKind;

/// The low 96 bits of the Bluetooth SIG base UUID `0000xxxx-0000-1000-8000-00805F9B34FB`.
const SIG_BASE: u128 = 0x0000_1000_8000_0080_5F9B_34FB;

/// A UUID as profiles spell it: `180D`, `0x180D`, `0000180D` (SIG short forms) or a full UUID.
pub fn parse_uuid(text: &str) -> Option<Uuid> {
    let t = text.trim();
    let t = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")).unwrap_or(t);
    if (t.len() == 4 || t.len() == 8) && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        let short = u32::from_str_radix(t, 16).ok()?;
        return Some(Uuid::from_u128((u128::from(short) << 96) | SIG_BASE));
    }
    Uuid::parse_str(t).ok()
}

/// A UUID as the service reports it: the SIG short form (`180D`) when it is one, else the
/// full lower-case form.
pub fn short_uuid(uuid: Uuid) -> String {
    let n = uuid.as_u128();
    if n & ((1u128 << 96) - 1) == SIG_BASE {
        let short = n >> 96;
        if short <= 0xFFFF {
            return format!("{short:04X}");
        }
        return format!("{short:08X}");
    }
    uuid.to_string()
}

/// A resource's characteristic and byte layout, from its attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// The GATT service.
    pub service: Uuid,
    /// The characteristic.
    pub characteristic: Uuid,
    /// How the bytes read.
    pub raw_type: ValueType,
    /// Big-endian numbers (`byteOrder: big`).
    pub big_endian: bool,
    /// Where the value starts.
    pub offset: usize,
    /// Bytes of a `String` or `Binary` value; `None`: to the end.
    pub length: Option<usize>,
    /// Subscribed when the device is added.
    pub notify: bool,
    /// How writes are sent.
    pub write_kind: WriteKind,
}

/// The attribute `key` as text (strings, numbers and booleans are all accepted).
fn text(attrs: &Map<String, Json>, key: &str) -> Option<String> {
    match attrs.get(key)? {
        Json::String(s) => Some(s.trim().to_owned()),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

fn number(attrs: &Map<String, Json>, key: &str) -> Result<Option<usize>, String> {
    match text(attrs, key) {
        None => Ok(None),
        Some(t) => {
            t.parse::<usize>().map(Some).map_err(|_| format!("attribute {key}: '{t}' is not a byte count (0, 1, 2…)"))
        }
    }
}

/// The byte size of a numeric raw type; `None` for `String` and `Binary`.
fn size(raw: ValueType) -> Option<usize> {
    match raw {
        ValueType::Bool | ValueType::Uint8 | ValueType::Int8 => Some(1),
        ValueType::Uint16 | ValueType::Int16 => Some(2),
        ValueType::Uint32 | ValueType::Int32 | ValueType::Float32 => Some(4),
        ValueType::Uint64 | ValueType::Int64 | ValueType::Float64 => Some(8),
        _ => None,
    }
}

fn is_number(vt: ValueType) -> bool {
    int_range(vt).is_some() || matches!(vt, ValueType::Float32 | ValueType::Float64)
}

impl Mapping {
    /// Reads the attributes of a resource of type `value_type`; the error names the attribute.
    pub fn parse(attrs: &Map<String, Json>, value_type: ValueType) -> Result<Self, String> {
        let uuid = |key: &str| -> Result<Uuid, String> {
            let t = text(attrs, key).ok_or_else(|| format!("attribute {key} is missing"))?;
            parse_uuid(&t).ok_or_else(|| format!("attribute {key}: '{t}' is not a UUID (180D, 0x180D or a full UUID)"))
        };
        let service = uuid("serviceUuid")?;
        let characteristic = uuid("characteristicUuid")?;
        let raw_type = match text(attrs, "rawType") {
            None => value_type,
            Some(t) => ValueType::parse(&t)
                .filter(|vt| size(*vt).is_some() || matches!(vt, ValueType::String | ValueType::Binary))
                .ok_or_else(|| {
                    format!(
                        "attribute rawType: '{t}' is not one of Uint8…Int64, Float32, Float64, Bool, String, Binary"
                    )
                })?,
        };
        // A Uint8Array resource is the characteristic's bytes, as Binary.
        let raw_type = if raw_type == ValueType::Uint8Array { ValueType::Binary } else { raw_type };
        let compatible = match value_type {
            ValueType::Bool => raw_type == ValueType::Bool || int_range(raw_type).is_some(),
            ValueType::String => raw_type == ValueType::String,
            ValueType::Binary | ValueType::Uint8Array => raw_type == ValueType::Binary,
            ValueType::Float32 | ValueType::Float64 => is_number(raw_type),
            vt if int_range(vt).is_some() => int_range(raw_type).is_some(),
            _ => false,
        };
        if !compatible {
            return Err(format!("attribute rawType: {raw_type} bytes cannot give a {value_type} value"));
        }
        let big_endian = match text(attrs, "byteOrder").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("little") => false,
            Some("big") => true,
            Some(other) => return Err(format!("attribute byteOrder: '{other}' is not little or big")),
        };
        let notify = match text(attrs, "notify").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(format!("attribute notify: '{other}' is not true or false")),
        };
        let write_kind = match text(attrs, "writeType").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("withresponse") => WriteKind::WithResponse,
            Some("withoutresponse") => WriteKind::WithoutResponse,
            Some(other) => {
                return Err(format!("attribute writeType: '{other}' is not WithResponse or WithoutResponse"))
            }
        };
        Ok(Self {
            service,
            characteristic,
            raw_type,
            big_endian,
            offset: number(attrs, "offset")?.unwrap_or(0),
            length: number(attrs, "length")?,
            notify,
            write_kind,
        })
    }

    /// The bytes of the value in a characteristic's `bytes`.
    fn slice<'a>(&self, bytes: &'a [u8]) -> Result<&'a [u8], String> {
        let want = size(self.raw_type).or(self.length);
        let end = want.map_or(Some(bytes.len()), |n| self.offset.checked_add(n)).unwrap_or(usize::MAX);
        if self.offset > bytes.len() || end > bytes.len() {
            return Err(format!(
                "the characteristic's value has {} bytes, too few for {} at offset {}",
                bytes.len(),
                want.map_or_else(|| self.raw_type.to_string(), |n| format!("{n} bytes of {}", self.raw_type)),
                self.offset
            ));
        }
        Ok(&bytes[self.offset..end])
    }

    /// The value of type `value_type` in a characteristic's `bytes`.
    pub fn decode(&self, bytes: &[u8], value_type: ValueType) -> Result<Value, String> {
        let raw = self.slice(bytes)?;
        match self.raw_type {
            ValueType::String => {
                let text =
                    std::str::from_utf8(raw).map_err(|e| format!("the characteristic's value is not UTF-8: {e}"))?;
                return Ok(Value::String(text.trim_end_matches('\0').to_owned()));
            }
            ValueType::Binary if value_type == ValueType::Uint8Array => return Ok(Value::Uint8Array(raw.to_vec())),
            ValueType::Binary => return Ok(Value::Binary(raw.to_vec())),
            _ => {}
        }
        // The n bytes as an unsigned number in the low bits of `word`.
        let mut buf = [0u8; 8];
        let n = raw.len();
        let word = if self.big_endian {
            buf[8 - n..].copy_from_slice(raw);
            u64::from_be_bytes(buf)
        } else {
            buf[..n].copy_from_slice(raw);
            u64::from_le_bytes(buf)
        };
        let number: Result<i128, f64> = match self.raw_type {
            ValueType::Float32 => Err(f64::from(f32::from_bits(word as u32))),
            ValueType::Float64 => Err(f64::from_bits(word)),
            ValueType::Int8 | ValueType::Int16 | ValueType::Int32 | ValueType::Int64 => {
                let shift = 64 - 8 * n as u32;
                Ok(i128::from(((word << shift) as i64) >> shift))
            }
            _ => Ok(i128::from(word)),
        };
        match (value_type, number) {
            (ValueType::Bool, Ok(x)) => Ok(Value::Bool(x != 0)),
            (ValueType::Float32, Ok(x)) => Ok(Value::Float32(x as f32)),
            (ValueType::Float64, Ok(x)) => Ok(Value::Float64(x as f64)),
            (ValueType::Float32, Err(x)) => Ok(Value::Float32(x as f32)),
            (ValueType::Float64, Err(x)) => Ok(Value::Float64(x)),
            (vt, Ok(x)) => Value::from_i128(vt, x).ok_or_else(|| format!("{x} does not fit {vt}")),
            (vt, Err(x)) => Err(format!("{x} cannot be a {vt}")),
        }
    }

    /// The raw bytes of `value` alone, as `rawType` lays them out.
    fn raw_bytes(&self, value: &Value) -> Result<Vec<u8>, String> {
        let out_of_range = |shown: String| format!("{shown} does not fit rawType {}", self.raw_type);
        let bytes = match (self.raw_type, value) {
            (ValueType::String, Value::String(s)) => s.as_bytes().to_vec(),
            (ValueType::Binary, Value::Binary(b) | Value::Uint8Array(b)) => b.clone(),
            (ValueType::Float32 | ValueType::Float64, v) => {
                let x = match v {
                    Value::Float32(x) => f64::from(*x),
                    Value::Float64(x) => *x,
                    other => {
                        other.as_i128().ok_or_else(|| format!("a {} cannot be written", other.value_type()))? as f64
                    }
                };
                match (self.raw_type, self.big_endian) {
                    (ValueType::Float32, false) => (x as f32).to_le_bytes().to_vec(),
                    (ValueType::Float32, true) => (x as f32).to_be_bytes().to_vec(),
                    (_, false) => x.to_le_bytes().to_vec(),
                    (_, true) => x.to_be_bytes().to_vec(),
                }
            }
            (raw, v) => {
                let x = match v {
                    Value::Bool(b) => i128::from(*b),
                    Value::Float32(x) if x.is_finite() => x.round() as i128,
                    Value::Float64(x) if x.is_finite() => x.round() as i128,
                    other => other.as_i128().ok_or_else(|| format!("a {} cannot be written", other.value_type()))?,
                };
                let (lo, hi) = int_range(raw).unwrap_or((0, 1));
                if x < lo || x > hi {
                    return Err(out_of_range(x.to_string()));
                }
                let n = size(raw).unwrap_or(1);
                let le = (x as u64).to_le_bytes();
                let mut bytes = le[..n].to_vec();
                if self.big_endian {
                    bytes.reverse();
                }
                bytes
            }
        };
        match self.length {
            Some(n) if size(self.raw_type).is_none() && bytes.len() > n => {
                Err(format!("{} bytes do not fit attribute length {n}", bytes.len()))
            }
            _ => Ok(bytes),
        }
    }

    /// The characteristic's new bytes with `value` written at `offset` into `current` (its
    /// bytes now; needed only when `offset` is not 0).
    pub fn encode(&self, value: &Value, current: Option<&[u8]>) -> Result<Vec<u8>, String> {
        let raw = self.raw_bytes(value)?;
        if self.offset == 0 && current.is_none() {
            return Ok(raw);
        }
        let mut bytes = current.unwrap_or_default().to_vec();
        if bytes.len() < self.offset {
            return Err(format!(
                "the characteristic's value has {} bytes, too few to write at offset {}",
                bytes.len(),
                self.offset
            ));
        }
        let end = self.offset + raw.len();
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[self.offset..end].copy_from_slice(&raw);
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(extra: Json, vt: ValueType) -> Result<Mapping, String> {
        let mut attrs = json!({"serviceUuid": "0x181A", "characteristicUuid": "2A6E"});
        attrs.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Mapping::parse(attrs.as_object().unwrap(), vt)
    }

    #[test]
    fn sig_short_forms_and_full_uuids_parse_and_print_back() {
        let hr = parse_uuid("180D").unwrap();
        assert_eq!(hr.to_string(), "0000180d-0000-1000-8000-00805f9b34fb");
        assert_eq!(parse_uuid("0x180d"), Some(hr));
        assert_eq!(parse_uuid("0000180D-0000-1000-8000-00805F9B34FB"), Some(hr));
        assert_eq!(short_uuid(hr), "180D");
        let custom = parse_uuid("6e400001-b5a3-f393-e0a9-e50e24dcca9e").unwrap();
        assert_eq!(short_uuid(custom), "6e400001-b5a3-f393-e0a9-e50e24dcca9e");
        assert_eq!(parse_uuid("18 0D"), None);
        assert_eq!(parse_uuid("heart"), None);
    }

    #[test]
    fn numbers_decode_by_raw_type_byte_order_and_offset() {
        let m = mapping(json!({"rawType": "Int16"}), ValueType::Float32).unwrap();
        assert_eq!(m.decode(&[0x2A, 0xF8], ValueType::Float32), Ok(Value::Float32(-2006.0)));
        let m = mapping(json!({"rawType": "Uint16", "byteOrder": "big", "offset": 1}), ValueType::Uint16).unwrap();
        assert_eq!(m.decode(&[9, 0x01, 0x02], ValueType::Uint16), Ok(Value::Uint16(0x0102)));
        let m = mapping(json!({"offset": "1"}), ValueType::Uint8).unwrap();
        assert_eq!(m.decode(&[0, 72], ValueType::Uint8), Ok(Value::Uint8(72)));
        let m = mapping(json!({}), ValueType::Float32).unwrap();
        assert_eq!(m.decode(&1.5f32.to_le_bytes(), ValueType::Float32), Ok(Value::Float32(1.5)));
        let m = mapping(json!({"byteOrder": "big"}), ValueType::Int64).unwrap();
        assert_eq!(m.decode(&(-3i64).to_be_bytes(), ValueType::Int64), Ok(Value::Int64(-3)));
        let m = mapping(json!({"rawType": "Uint32"}), ValueType::Int8).unwrap();
        assert_eq!(m.decode(&[200, 0, 0, 0], ValueType::Int8), Err("200 does not fit Int8".to_owned()));
        let m = mapping(json!({"offset": 1}), ValueType::Uint8Array).unwrap();
        let bytes: Vec<u8> = (0..20).collect();
        assert_eq!(m.decode(&bytes, ValueType::Uint8Array), Ok(Value::Uint8Array(bytes[1..].to_vec())));
        assert_eq!(m.encode(&Value::Uint8Array(vec![7; 12]), Some(&[1])), Ok([vec![1], vec![7; 12]].concat()));
        let m = mapping(json!({"length": 3}), ValueType::String).unwrap();
        assert_eq!(m.decode(b"abcdef", ValueType::String), Ok(Value::String("abc".into())));
    }

    #[test]
    fn short_or_malformed_values_are_errors_not_panics() {
        let m = mapping(json!({"rawType": "Int32", "offset": 2}), ValueType::Int32).unwrap();
        let err = m.decode(&[1, 2, 3], ValueType::Int32).unwrap_err();
        assert!(err.contains("3 bytes") && err.contains("offset 2"), "{err}");
        let m = mapping(json!({"offset": 99999999999u64, "length": 99999999999u64}), ValueType::Binary).unwrap();
        assert!(m.decode(&[1], ValueType::Binary).is_err());
        let m = mapping(json!({}), ValueType::String).unwrap();
        assert!(m.decode(&[0xff, 0xfe], ValueType::String).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn writes_encode_in_place_and_check_ranges() {
        let m = mapping(json!({"rawType": "Int16", "byteOrder": "big"}), ValueType::Float32).unwrap();
        assert_eq!(m.encode(&Value::Float32(-2.4), None), Ok(vec![0xFF, 0xFE]));
        let m = mapping(json!({"rawType": "Uint8", "offset": 1}), ValueType::Uint16).unwrap();
        assert_eq!(m.encode(&Value::Uint16(7), Some(&[1, 2, 3])), Ok(vec![1, 7, 3]));
        assert!(m.encode(&Value::Uint16(300), Some(&[1, 2])).unwrap_err().contains("300 does not fit rawType Uint8"));
        assert!(m.encode(&Value::Uint16(1), Some(&[])).unwrap_err().contains("offset 1"));
        let m = mapping(json!({"length": 2}), ValueType::Binary).unwrap();
        assert!(m.encode(&Value::Binary(vec![1, 2, 3]), None).unwrap_err().contains("length 2"));
    }

    #[test]
    fn bad_attributes_name_the_attribute() {
        let err = |extra: Json, vt| mapping(extra, vt).unwrap_err();
        assert!(err(json!({"serviceUuid": "heart"}), ValueType::Uint8).starts_with("attribute serviceUuid"));
        assert!(err(json!({"characteristicUuid": null}), ValueType::Uint8).contains("characteristicUuid is missing"));
        assert!(err(json!({"rawType": "Int24"}), ValueType::Int32).starts_with("attribute rawType"));
        assert!(err(json!({"rawType": "Float32"}), ValueType::Int32).starts_with("attribute rawType"));
        assert!(err(json!({}), ValueType::Object).starts_with("attribute rawType"));
        assert!(err(json!({"byteOrder": "middle"}), ValueType::Int32).starts_with("attribute byteOrder"));
        assert!(err(json!({"offset": -1}), ValueType::Int32).starts_with("attribute offset"));
        assert!(err(json!({"notify": "yes"}), ValueType::Int32).starts_with("attribute notify"));
        assert!(err(json!({"writeType": "maybe"}), ValueType::Int32).starts_with("attribute writeType"));
    }
}
