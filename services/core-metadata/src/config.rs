//! core-metadata's configuration: defaults in code, YAML file, `OXEDGE_*` overrides.

use std::path::PathBuf;

use oxedge_bus::config::{BusConfig, BusType};
pub use oxedge_runtime::config::{Backend, DatabaseSection};
use oxedge_runtime::config::{LogSection, ServiceSection};
use serde::{Deserialize, Serialize};

/// The default port, EdgeX's.
pub const DEFAULT_PORT: u16 = 59881;

/// Units of measure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UomSection {
    /// A YAML file of units (EdgeX's `uom.yaml` layout); the built-in list when empty.
    pub file: Option<PathBuf>,
    /// Reject profiles whose resources use units not in the list.
    pub validation: bool,
}

/// The whole configuration of core-metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataConfig {
    /// HTTP listener and limits.
    pub service: ServiceSection,
    /// Logging.
    pub log: LogSection,
    /// Storage.
    pub database: DatabaseSection,
    /// Units of measure.
    pub uom: UomSection,
    /// The message bus system events are published on (an MQTT broker on localhost by default).
    pub bus: BusConfig,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            service: ServiceSection { port: DEFAULT_PORT, ..Default::default() },
            log: LogSection::default(),
            database: DatabaseSection::sqlite("oxedge-data/core-metadata.db"),
            uom: UomSection::default(),
            bus: BusConfig { kind: BusType::Mqtt, ..BusConfig::default() },
        }
    }
}
