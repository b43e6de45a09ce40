//! The running service: everything the SDK's parts share.

use std::sync::Arc;

use oxedge_bus::Bus;
use oxedge_contracts::client::MetadataClient;

use crate::cache::Cache;
use crate::config::DeviceServiceConfig;
use crate::driver::ProtocolDriver;

/// What every part of a running device service shares, behind one `Arc`.
pub(crate) struct Service {
    /// The device service's name, as registered in core-metadata.
    pub name: String,
    /// Its configuration.
    pub config: DeviceServiceConfig,
    /// The protocol driver.
    pub driver: Arc<dyn ProtocolDriver>,
    /// Devices and profiles.
    pub cache: Cache,
    /// The message bus.
    pub bus: Arc<dyn Bus>,
    /// core-metadata.
    pub metadata: MetadataClient,
}
