//! Units of measure (`GET /uom`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A family of units, e.g. temperature.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Unit {
    /// Where the units are documented.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The accepted spellings.
    #[serde(default)]
    pub values: Vec<String>,
}

/// The units of measure a deployment accepts in profiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnitsOfMeasure {
    /// Where the units are documented.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Unit families by name.
    #[serde(default)]
    pub units: BTreeMap<String, Unit>,
}

impl UnitsOfMeasure {
    /// True when `unit` is one of the listed values.
    pub fn contains(&self, unit: &str) -> bool {
        self.units.values().any(|u| u.values.iter().any(|v| v == unit))
    }
}
