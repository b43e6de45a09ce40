//! A device service's configuration: defaults in code, YAML file, `OXEDGE_*` overrides.
//! (Owned by the runtime part of the SDK; fields are added as the SDK grows.)

use oxedge_bus::config::BusConfig;
use oxedge_runtime::config::{LogSection, ServiceSection};
use serde::{Deserialize, Serialize};

/// The whole configuration of a device service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceServiceConfig {
    /// HTTP listener and limits.
    pub service: ServiceSection,
    /// Logging.
    pub log: LogSection,
    /// The message bus.
    pub bus: BusConfig,
}
