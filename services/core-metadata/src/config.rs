//! core-metadata's configuration: defaults in code, YAML file, `OXEDGE_*` overrides.

use std::path::PathBuf;

use oxedge_runtime::config::{LogSection, ServiceSection};
use serde::{Deserialize, Serialize};

/// The default port, EdgeX's.
pub const DEFAULT_PORT: u16 = 59881;

/// Which store keeps the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A SQLite file (embedded, the default).
    Sqlite,
    /// A Redis server.
    Redis,
}

/// Where metadata is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite` or `redis`.
    pub backend: Backend,
    /// The SQLite file (backend `sqlite`).
    pub path: PathBuf,
    /// The Redis URL (backend `redis`), e.g. `redis://127.0.0.1:6379`; a password belongs
    /// in the secret store or `OXEDGE_DATABASE_REDIS_URL`, not in the file.
    pub redis_url: String,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            path: PathBuf::from("oxedge-data/core-metadata.db"),
            redis_url: "redis://127.0.0.1:6379".to_owned(),
        }
    }
}

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            service: ServiceSection { port: DEFAULT_PORT, ..Default::default() },
            log: LogSection::default(),
            database: DatabaseSection::default(),
            uom: UomSection::default(),
        }
    }
}
