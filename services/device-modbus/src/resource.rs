//! A device resource's Modbus attributes, and its value to and from registers or bits.
//!
//! The attributes are EdgeX device-modbus's (`internal/driver/deviceclient.go`):
//! - `primaryTable`: `HOLDING_REGISTERS`, `INPUT_REGISTERS`, `COILS` or `DISCRETES_INPUT`
//!   (EdgeX's spelling; `DISCRETE_INPUTS` is taken too), any case;
//! - `startingAddress`: the zero-based address of the first register or bit, a number or a
//!   string; `"N.B"` addresses bit `B` (0 = least significant) of register `N` for a `Bool`;
//! - `rawType`: `Int16` or `Uint16`, any case: a `Float32`/`Float64` resource is then one
//!   register holding that integer (the profile's `scale` makes it a float);
//! - `isByteSwap`, `isWordSwap`: booleans (or `"true"`/`"false"`);
//! - `stringRegisterSize`: the registers (two bytes each, 1–123) of a `String` resource.
//!
//! Numbers span registers big-endian, most significant word first: 16-bit types one
//! register, `Int32`/`Uint32`/`Float32` two, `Int64`/`Uint64`/`Float64` four. Strings are
//! two bytes per register, trailing (and leading) NUL bytes dropped on read, padded with NUL
//! bytes on write. Where EdgeX is silent or wrong, this module does what a user expects:
//! - `isByteSwap` swaps the two bytes of every register of the value, and `isWordSwap`
//!   reverses the order of the registers of 32- and 64-bit numbers (EdgeX applies both to
//!   32-bit values only, and silently ignores them elsewhere);
//! - a value type that Modbus cannot hold (`Int8`, arrays, `Binary`, `Object`…), a number in
//!   a bit table, a bit number on a non-`Bool` resource, a write to a read-only table, a
//!   string longer than its registers, or an integer out of `rawType`'s range are refused
//!   with an error naming the attribute (EdgeX truncates, or fails later).

use oxedge_contracts::ValueType;
use oxedge_device_sdk::{CommandRequest, Value};
use serde_json::{Map, Value as Json};

/// The most registers one read request may ask for (Modbus PDU limit).
pub const MAX_READ_REGISTERS: u16 = 125;
/// The most coils or discrete inputs one read request may ask for (Modbus PDU limit).
pub const MAX_READ_BITS: u16 = 2000;
/// The most registers a `String` resource may span (EdgeX's limit).
const MAX_STRING_REGISTERS: u16 = 123;

/// A Modbus data table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Read-write bits.
    Coils,
    /// Read-only bits.
    DiscreteInputs,
    /// Read-only 16-bit registers.
    InputRegisters,
    /// Read-write 16-bit registers.
    HoldingRegisters,
}

impl Table {
    /// EdgeX's name of the table.
    pub fn name(self) -> &'static str {
        match self {
            Table::Coils => "COILS",
            Table::DiscreteInputs => "DISCRETES_INPUT",
            Table::InputRegisters => "INPUT_REGISTERS",
            Table::HoldingRegisters => "HOLDING_REGISTERS",
        }
    }

    /// Whether the table holds bits rather than registers.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coils | Table::DiscreteInputs)
    }

    /// The most addresses one read request of this table may span.
    pub fn max_read(self) -> u16 {
        if self.is_bits() {
            MAX_READ_BITS
        } else {
            MAX_READ_REGISTERS
        }
    }

    fn parse(text: &str) -> Option<Table> {
        match text.trim().to_ascii_uppercase().as_str() {
            "COILS" | "COIL" => Some(Table::Coils),
            "DISCRETES_INPUT" | "DISCRETE_INPUTS" | "DISCRETE_INPUT" => Some(Table::DiscreteInputs),
            "INPUT_REGISTERS" | "INPUT_REGISTER" => Some(Table::InputRegisters),
            "HOLDING_REGISTERS" | "HOLDING_REGISTER" => Some(Table::HoldingRegisters),
            _ => None,
        }
    }
}

/// How a resource's registers or bits make its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One coil or discrete input.
    Bit,
    /// One bit of one register.
    RegisterBit(u8),
    /// A number of the resource's value type over 1, 2 or 4 registers.
    Number,
    /// A `Float32`/`Float64` resource held in one register as a signed (`true`) or unsigned
    /// 16-bit integer (`rawType`).
    Raw16 { signed: bool },
    /// A string over the resource's registers.
    Text,
}

/// Where and how one resource lives on the device.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    /// The resource's name.
    pub resource: String,
    /// Its table.
    pub table: Table,
    /// Its first address.
    pub address: u16,
    /// How many registers (or bits) it spans.
    pub count: u16,
    value_type: ValueType,
    layout: Layout,
    byte_swap: bool,
    word_swap: bool,
}

/// What writing one value takes.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Write one coil (function 5).
    Coil(u16, bool),
    /// Write these registers from this address (function 6 for one, 16 for more).
    Registers(u16, Vec<u16>),
    /// Set bit `bit` of the holding register at this address to the value, keeping the others
    /// (read, then write).
    RegisterBit {
        /// The register.
        address: u16,
        /// The bit, 0 the least significant.
        bit: u8,
        /// The bit's new value.
        value: bool,
    },
}

impl Register {
    /// Reads the Modbus attributes of `req`; the error names the attribute and what is wrong
    /// with it.
    pub fn parse(req: &CommandRequest) -> Result<Register, String> {
        let attrs = &req.attributes;
        let table_attr = attr(attrs, "primaryTable")?;
        let table = table_attr.as_str().and_then(Table::parse).ok_or_else(|| {
            format!(
                "attribute primaryTable: {table_attr} is not one of HOLDING_REGISTERS, INPUT_REGISTERS, COILS, \
                     DISCRETES_INPUT"
            )
        })?;
        let (address, bit) = parse_address(attr(attrs, "startingAddress")?)?;
        let byte_swap = flag(attrs, "isByteSwap")?;
        let word_swap = flag(attrs, "isWordSwap")?;
        let raw_type = match attrs.get("rawType") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) if s.is_empty() => None,
            Some(raw) => Some(match raw.as_str().map(|s| s.to_ascii_uppercase()).as_deref() {
                Some("INT16") => true,
                Some("UINT16") => false,
                _ => return Err(format!("attribute rawType: {raw} is not Int16 or Uint16")),
            }),
        };
        let vt = req.value_type;
        if bit.is_some() && (vt != ValueType::Bool || table.is_bits()) {
            return Err(format!(
                "attribute startingAddress: a bit number (N.B) addresses a bit of a register, for Bool resources \
                 of a register table only; this is a {vt} resource of {}",
                table.name()
            ));
        }
        let (layout, count) = match vt {
            ValueType::Bool if table.is_bits() => (Layout::Bit, 1),
            ValueType::Bool => (Layout::RegisterBit(bit.unwrap_or(0)), 1),
            _ if table.is_bits() => {
                return Err(format!(
                    "attribute primaryTable: {} holds single bits, for Bool resources; this resource is a {vt}",
                    table.name()
                ))
            }
            ValueType::Int16 | ValueType::Uint16 => (Layout::Number, 1),
            ValueType::Float32 | ValueType::Float64 if raw_type.is_some() => {
                (Layout::Raw16 { signed: raw_type == Some(true) }, 1)
            }
            ValueType::Int32 | ValueType::Uint32 | ValueType::Float32 => (Layout::Number, 2),
            ValueType::Int64 | ValueType::Uint64 | ValueType::Float64 => (Layout::Number, 4),
            ValueType::String => (Layout::Text, string_size(attrs)?),
            other => return Err(format!("valueType {other} cannot be held in Modbus registers or bits")),
        };
        let takes_raw_type =
            matches!(layout, Layout::Raw16 { .. }) || matches!(vt, ValueType::Int16 | ValueType::Uint16);
        if raw_type.is_some() && !takes_raw_type {
            return Err(format!(
                "attribute rawType: only Float32, Float64, Int16 and Uint16 resources take it, not {vt}"
            ));
        }
        if u32::from(address) + u32::from(count) > 65_536 {
            return Err(format!(
                "attribute startingAddress: {address} plus {count} registers passes the last address 65535"
            ));
        }
        Ok(Register {
            resource: req.resource_name.clone(),
            table,
            address,
            count,
            value_type: vt,
            layout,
            byte_swap,
            word_swap,
        })
    }

    /// The address after the resource's last.
    pub fn end(&self) -> u32 {
        u32::from(self.address) + u32::from(self.count)
    }

    /// The value of the resource in `words`, the registers from its address on (register
    /// tables).
    pub fn decode_words(&self, words: &[u16]) -> Result<Value, String> {
        let words = words
            .get(..usize::from(self.count))
            .ok_or_else(|| format!("the device answered {} registers where {} were asked", words.len(), self.count))?;
        let bytes = self.swapped(words);
        let be = |n: usize| -> [u8; 8] {
            let mut out = [0u8; 8];
            out[8 - n..].copy_from_slice(&bytes[..n]);
            out
        };
        let u64_of = |n: usize| u64::from_be_bytes(be(n));
        Ok(match (self.layout, self.value_type) {
            (Layout::RegisterBit(bit), _) => Value::Bool((words[0] >> bit) & 1 == 1),
            (Layout::Raw16 { signed }, vt) => {
                let raw = u16::from_be_bytes([bytes[0], bytes[1]]);
                let x = if signed { f64::from(raw as i16) } else { f64::from(raw) };
                if vt == ValueType::Float32 {
                    Value::Float32(x as f32)
                } else {
                    Value::Float64(x)
                }
            }
            (Layout::Text, _) => {
                let text = String::from_utf8_lossy(&bytes);
                Value::String(text.trim_matches('\0').to_owned())
            }
            (_, ValueType::Uint16) => Value::Uint16(u64_of(2) as u16),
            (_, ValueType::Int16) => Value::Int16(u64_of(2) as u16 as i16),
            (_, ValueType::Uint32) => Value::Uint32(u64_of(4) as u32),
            (_, ValueType::Int32) => Value::Int32(u64_of(4) as u32 as i32),
            (_, ValueType::Float32) => Value::Float32(f32::from_bits(u64_of(4) as u32)),
            (_, ValueType::Uint64) => Value::Uint64(u64_of(8)),
            (_, ValueType::Int64) => Value::Int64(u64_of(8) as i64),
            (_, ValueType::Float64) => Value::Float64(f64::from_bits(u64_of(8))),
            (_, vt) => return Err(format!("valueType {vt} cannot be read from registers")),
        })
    }

    /// The value of a resource of a bit table, from `bits` starting at its address.
    pub fn decode_bits(&self, bits: &[bool]) -> Result<Value, String> {
        bits.first().map(|&b| Value::Bool(b)).ok_or_else(|| "the device answered no bits".to_owned())
    }

    /// What writing `value` to the resource takes; the error says why it cannot be written.
    pub fn encode(&self, value: &Value) -> Result<WriteOp, String> {
        if matches!(self.table, Table::DiscreteInputs | Table::InputRegisters) {
            return Err(format!("attribute primaryTable: {} is read-only", self.table.name()));
        }
        if value.value_type() != self.value_type {
            return Err(format!("a {} value was given for a {} resource", value.value_type(), self.value_type));
        }
        let words: Vec<u16> = match (self.layout, value) {
            (Layout::Bit, Value::Bool(b)) => return Ok(WriteOp::Coil(self.address, *b)),
            (Layout::RegisterBit(bit), Value::Bool(b)) => {
                return Ok(WriteOp::RegisterBit { address: self.address, bit, value: *b })
            }
            (Layout::Raw16 { signed }, Value::Float32(_) | Value::Float64(_)) => {
                let x = match *value {
                    Value::Float32(f) => f64::from(f),
                    Value::Float64(f) => f,
                    _ => f64::NAN,
                }
                .round();
                let (lo, hi, name) = if signed { (-32768.0, 32767.0, "Int16") } else { (0.0, 65535.0, "Uint16") };
                if !(lo..=hi).contains(&x) {
                    return Err(format!("attribute rawType: {x} is out of the range of {name}"));
                }
                let word = if signed { x as i16 as u16 } else { x as u16 };
                self.unswap(&word.to_be_bytes())
            }
            (Layout::Text, Value::String(s)) => {
                let size = usize::from(self.count) * 2;
                if s.len() > size {
                    return Err(format!(
                        "attribute stringRegisterSize: '{s}' is {} bytes, longer than the {} registers ({size} bytes) \
                         of the resource",
                        s.len(),
                        self.count
                    ));
                }
                let mut bytes = s.as_bytes().to_vec();
                bytes.resize(size, 0);
                self.unswap(&bytes)
            }
            (Layout::Number, v) => {
                let bytes: Vec<u8> = match v {
                    Value::Uint16(x) => x.to_be_bytes().to_vec(),
                    Value::Int16(x) => x.to_be_bytes().to_vec(),
                    Value::Uint32(x) => x.to_be_bytes().to_vec(),
                    Value::Int32(x) => x.to_be_bytes().to_vec(),
                    Value::Float32(x) => x.to_be_bytes().to_vec(),
                    Value::Uint64(x) => x.to_be_bytes().to_vec(),
                    Value::Int64(x) => x.to_be_bytes().to_vec(),
                    Value::Float64(x) => x.to_be_bytes().to_vec(),
                    other => return Err(format!("a {} value cannot be written to registers", other.value_type())),
                };
                self.unswap(&bytes)
            }
            (_, other) => return Err(format!("a {} value cannot be written here", other.value_type())),
        };
        Ok(WriteOp::Registers(self.address, words))
    }

    /// The value's bytes, most significant first, from the registers as the device holds them.
    fn swapped(&self, words: &[u16]) -> Vec<u8> {
        let mut words = words.to_vec();
        if self.word_swap && matches!(self.layout, Layout::Number) {
            words.reverse();
        }
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        if self.byte_swap {
            bytes.chunks_exact_mut(2).for_each(|pair| pair.swap(0, 1));
        }
        bytes
    }

    /// The registers as the device holds them, from the value's bytes (most significant
    /// first); the inverse of [`Self::swapped`].
    fn unswap(&self, bytes: &[u8]) -> Vec<u16> {
        let mut words: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|pair| {
                if self.byte_swap {
                    u16::from_le_bytes([pair[0], pair[1]])
                } else {
                    u16::from_be_bytes([pair[0], pair[1]])
                }
            })
            .collect();
        if self.word_swap && matches!(self.layout, Layout::Number) {
            words.reverse();
        }
        words
    }
}

fn attr<'a>(attrs: &'a Map<String, Json>, name: &str) -> Result<&'a Json, String> {
    attrs.get(name).filter(|v| !v.is_null()).ok_or_else(|| format!("attribute {name} is missing"))
}

/// `startingAddress`: `N` or `"N.B"`.
fn parse_address(raw: &Json) -> Result<(u16, Option<u8>), String> {
    let text = match raw {
        Json::String(s) => s.trim().to_owned(),
        Json::Number(n) => n.to_string(),
        other => return Err(format!("attribute startingAddress: {other} is not an address from 0 to 65535")),
    };
    let (register, bit) = match text.split_once('.') {
        Some((register, bit)) => (register, Some(bit)),
        None => (text.as_str(), None),
    };
    let register: u16 =
        register.parse().map_err(|_| format!("attribute startingAddress: {raw} is not an address from 0 to 65535"))?;
    let bit = match bit {
        None => None,
        Some(bit) => match bit.parse::<u8>() {
            Ok(b) if b < 16 => Some(b),
            _ => return Err(format!("attribute startingAddress: the bit number of {raw} is not from 0 to 15")),
        },
    };
    Ok((register, bit))
}

/// `isByteSwap`/`isWordSwap`: a boolean, or a string or number Go's `cast.ToBool` takes.
fn flag(attrs: &Map<String, Json>, name: &str) -> Result<bool, String> {
    match attrs.get(name) {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(Json::Number(n)) if n.as_f64().is_some() => Ok(n.as_f64() != Some(0.0)),
        Some(Json::String(s)) => match s.trim() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" | "" => Ok(false),
            _ => Err(format!("attribute {name}: '{s}' is not true or false")),
        },
        Some(other) => Err(format!("attribute {name}: {other} is not true or false")),
    }
}

/// `stringRegisterSize`: 1–123 registers.
fn string_size(attrs: &Map<String, Json>) -> Result<u16, String> {
    let raw = attr(attrs, "stringRegisterSize")?;
    let size = match raw {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match size {
        Some(n) if (1..=u64::from(MAX_STRING_REGISTERS)).contains(&n) => Ok(n as u16),
        _ => Err(format!("attribute stringRegisterSize: {raw} is not a number of registers from 1 to 123")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reg(vt: ValueType, attrs: Json) -> Result<Register, String> {
        let Json::Object(attributes) = attrs else { panic!("attributes must be an object") };
        Register::parse(&CommandRequest { resource_name: "R".into(), attributes, value_type: vt })
    }

    #[test]
    fn numbers_span_registers_most_significant_word_first() {
        let r = reg(ValueType::Int32, json!({"primaryTable": "holding_registers", "startingAddress": 2})).unwrap();
        assert_eq!((r.table, r.address, r.count), (Table::HoldingRegisters, 2, 2));
        assert_eq!(r.decode_words(&[0xFFFF, 0xFFFE]).unwrap(), Value::Int32(-2));
        let r = reg(ValueType::Float64, json!({"primaryTable": "INPUT_REGISTERS", "startingAddress": "7"})).unwrap();
        assert_eq!(r.count, 4);
        let words: Vec<u16> = 1.5f64.to_be_bytes().chunks(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
        assert_eq!(r.decode_words(&words).unwrap(), Value::Float64(1.5));
    }

    #[test]
    fn swaps_invert_on_write_what_they_do_on_read() {
        let r = reg(
            ValueType::Uint32,
            json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0, "isByteSwap": true, "isWordSwap": "true"}),
        )
        .unwrap();
        // 0x11223344 with both swaps is held as [0x4433, 0x2211].
        assert_eq!(r.decode_words(&[0x4433, 0x2211]).unwrap(), Value::Uint32(0x1122_3344));
        assert_eq!(r.encode(&Value::Uint32(0x1122_3344)).unwrap(), WriteOp::Registers(0, vec![0x4433, 0x2211]));
        let r =
            reg(ValueType::Int64, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0, "isWordSwap": 1}))
                .unwrap();
        assert_eq!(r.decode_words(&[4, 3, 2, 1]).unwrap(), Value::Int64(0x0001_0002_0003_0004));
    }

    #[test]
    fn raw_type_holds_a_float_as_a_16_bit_integer() {
        let r = reg(
            ValueType::Float32,
            json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 5, "rawType": "Int16"}),
        )
        .unwrap();
        assert_eq!(r.count, 1);
        assert_eq!(r.decode_words(&[(-215i16) as u16]).unwrap(), Value::Float32(-215.0));
        assert_eq!(r.encode(&Value::Float32(234.999)).unwrap(), WriteOp::Registers(5, vec![235]));
        let err = r.encode(&Value::Float32(40000.0)).unwrap_err();
        assert!(err.contains("rawType") && err.contains("Int16"), "{err}");
        let err = reg(
            ValueType::Int32,
            json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 5, "rawType": "Int16"}),
        )
        .unwrap_err();
        assert!(err.starts_with("attribute rawType"), "{err}");
        let err = reg(
            ValueType::Float32,
            json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 5, "rawType": "Int8"}),
        )
        .unwrap_err();
        assert!(err.starts_with("attribute rawType"), "{err}");
    }

    #[test]
    fn bools_are_bits_of_coils_inputs_or_registers() {
        let r = reg(ValueType::Bool, json!({"primaryTable": "COILS", "startingAddress": 14})).unwrap();
        assert_eq!(r.encode(&Value::Bool(true)).unwrap(), WriteOp::Coil(14, true));
        let r = reg(ValueType::Bool, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": "3.15"})).unwrap();
        assert_eq!(r.decode_words(&[0x8000]).unwrap(), Value::Bool(true));
        assert_eq!(r.encode(&Value::Bool(false)).unwrap(), WriteOp::RegisterBit { address: 3, bit: 15, value: false });
        let err =
            reg(ValueType::Bool, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": "3.16"})).unwrap_err();
        assert!(err.contains("bit number"), "{err}");
        let r = reg(ValueType::Bool, json!({"primaryTable": "DISCRETE_INPUTS", "startingAddress": 1})).unwrap();
        assert!(r.encode(&Value::Bool(true)).unwrap_err().contains("read-only"));
    }

    #[test]
    fn strings_are_padded_and_trimmed() {
        let r = reg(
            ValueType::String,
            json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0, "stringRegisterSize": "3"}),
        )
        .unwrap();
        assert_eq!(r.encode(&Value::String("abc".into())).unwrap(), WriteOp::Registers(0, vec![0x6162, 0x6300, 0]));
        assert_eq!(r.decode_words(&[0x6162, 0x6300, 0]).unwrap(), Value::String("abc".into()));
        assert!(r.encode(&Value::String("abcdefg".into())).unwrap_err().contains("stringRegisterSize"));
        let err =
            reg(ValueType::String, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0})).unwrap_err();
        assert_eq!(err, "attribute stringRegisterSize is missing");
    }

    #[test]
    fn bad_attributes_are_named() {
        let cases = [
            (ValueType::Int16, json!({"startingAddress": 0}), "attribute primaryTable is missing"),
            (ValueType::Int16, json!({"primaryTable": "REGISTERS", "startingAddress": 0}), "attribute primaryTable:"),
            (ValueType::Int16, json!({"primaryTable": "COILS", "startingAddress": 0}), "attribute primaryTable:"),
            (ValueType::Int16, json!({"primaryTable": "COILS"}), "attribute startingAddress is missing"),
            (
                ValueType::Int16,
                json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": -1}),
                "attribute startingAddress:",
            ),
            (
                ValueType::Int16,
                json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": "x"}),
                "attribute startingAddress:",
            ),
            (
                ValueType::Int64,
                json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 65533}),
                "attribute startingAddress:",
            ),
            (
                ValueType::Int16,
                json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": "1.2"}),
                "attribute startingAddress:",
            ),
            (
                ValueType::Int16,
                json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0, "isByteSwap": "yes"}),
                "attribute isByteSwap:",
            ),
            (ValueType::Int8, json!({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0}), "valueType Int8"),
        ];
        for (vt, attrs, want) in cases {
            let err = reg(vt, attrs.clone()).unwrap_err();
            assert!(err.starts_with(want), "{attrs}: {err}");
        }
    }
}
