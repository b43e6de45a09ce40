//! Enumerations shared by several DTOs, spelled as EdgeX spells them.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Whether an entity accepts commands (`adminState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AdminState {
    /// Commands are refused.
    Locked,
    /// Commands are accepted.
    Unlocked,
}

/// Whether a device is reachable (`operatingState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum OperatingState {
    /// The device answers.
    Up,
    /// The device does not answer.
    Down,
    /// Not known yet.
    Unknown,
}

/// Read/write permission of a resource or command (`readWrite`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum ReadWrite {
    /// GET only.
    R,
    /// SET only.
    W,
    /// GET and SET.
    RW,
    /// GET and SET (EdgeX accepts both spellings).
    WR,
}

impl ReadWrite {
    /// True when a GET (read) is allowed.
    pub fn readable(self) -> bool {
        !matches!(self, ReadWrite::W)
    }
    /// True when a SET (write) is allowed.
    pub fn writable(self) -> bool {
        !matches!(self, ReadWrite::R)
    }
}

macro_rules! value_types {
    ($($v:ident),* $(,)?) => {
        /// The type of a resource's or reading's value (`valueType`). EdgeX matches it
        /// case-insensitively on input and answers with the canonical spelling.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
        pub enum ValueType { $(#[allow(missing_docs)] $v),* }

        impl ValueType {
            /// Every value type EdgeX lists.
            pub const ALL: &'static [ValueType] = &[$(ValueType::$v),*];
            /// The canonical spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(ValueType::$v => stringify!($v)),* }
            }
        }
    };
}

value_types!(
    Bool,
    String,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Binary,
    Object,
    BoolArray,
    StringArray,
    Uint8Array,
    Uint16Array,
    Uint32Array,
    Uint64Array,
    Int8Array,
    Int16Array,
    Int32Array,
    Int64Array,
    Float32Array,
    Float64Array,
    ObjectArray,
);

impl ValueType {
    /// Parses a value type case-insensitively, as EdgeX does.
    pub fn parse(s: &str) -> Option<ValueType> {
        ValueType::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
    /// True for the integer and float scalar types.
    pub fn is_numeric(self) -> bool {
        use ValueType::*;
        matches!(self, Uint8 | Uint16 | Uint32 | Uint64 | Int8 | Int16 | Int32 | Int64 | Float32 | Float64)
    }
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ValueType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ValueType::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown valueType `{s}`, expected one of the EdgeX value types"))
        })
    }
}

/// Serde helper: writes a float as Go's `encoding/json` does — integral values without
/// a fraction (`1`, not `1.0`), so our JSON matches EdgeX's byte for byte.
pub(crate) fn go_float<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

/// [`go_float`] for optional values.
pub(crate) fn go_float_opt<S: serde::Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(f) => go_float(f, s),
        None => s.serialize_none(),
    }
}

/// Serde helper: skip integers that are zero (Go's `omitempty`).
pub(crate) fn is_zero(v: &i64) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_types_parse_case_insensitively_and_print_canonically() {
        let v: ValueType = serde_json::from_str("\"float32\"").unwrap();
        assert_eq!(v, ValueType::Float32);
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"Float32\"");
        assert!(serde_json::from_str::<ValueType>("\"Float128\"").is_err());
        for v in ValueType::ALL {
            assert_eq!(ValueType::parse(v.as_str()), Some(*v));
        }
    }

    #[test]
    fn floats_are_written_as_go_writes_them() {
        #[derive(Serialize)]
        struct F(#[serde(serialize_with = "go_float")] f64);
        assert_eq!(serde_json::to_string(&F(1.0)).unwrap(), "1");
        assert_eq!(serde_json::to_string(&F(-40.0)).unwrap(), "-40");
        assert_eq!(serde_json::to_string(&F(0.1)).unwrap(), "0.1");
        assert_eq!(serde_json::to_string(&F(1e300)).unwrap(), "1e+300");
    }

    #[test]
    fn unknown_states_are_rejected() {
        assert!(serde_json::from_str::<AdminState>("\"locked\"").is_err());
        assert_eq!(serde_json::from_str::<AdminState>("\"LOCKED\"").unwrap(), AdminState::Locked);
        assert_eq!(serde_json::to_string(&OperatingState::Unknown).unwrap(), "\"UNKNOWN\"");
    }
}
