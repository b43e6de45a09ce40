//! What a device service implements: [`ProtocolDriver`], the counterpart of EdgeX's
//! `ProtocolDriver` interface, and the values it exchanges with the SDK.

use std::collections::BTreeMap;

use async_trait::async_trait;
use oxedge_contracts::{Device, ProtocolProperties, ValueType};
use serde_json::{Map, Value as Json};

/// The protocol properties of a device, by protocol name (`{"modbus-tcp": {"Address": …}}`).
pub type Protocols = BTreeMap<String, ProtocolProperties>;

/// One resource to read or write, as the driver needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRequest {
    /// The device resource's name.
    pub resource_name: String,
    /// The resource's `attributes` from the profile (register address, UUID…), with any
    /// query parameters of the call merged under `urlRawQuery` as EdgeX does.
    pub attributes: Map<String, Json>,
    /// The resource's value type.
    pub value_type: ValueType,
}

/// A value as read from or written to a device, before the profile's transforms.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    #[allow(missing_docs)]
    Bool(bool),
    #[allow(missing_docs)]
    String(String),
    #[allow(missing_docs)]
    Uint8(u8),
    #[allow(missing_docs)]
    Uint16(u16),
    #[allow(missing_docs)]
    Uint32(u32),
    #[allow(missing_docs)]
    Uint64(u64),
    #[allow(missing_docs)]
    Int8(i8),
    #[allow(missing_docs)]
    Int16(i16),
    #[allow(missing_docs)]
    Int32(i32),
    #[allow(missing_docs)]
    Int64(i64),
    #[allow(missing_docs)]
    Float32(f32),
    #[allow(missing_docs)]
    Float64(f64),
    /// Opaque bytes, with the resource's `mediaType`.
    Binary(Vec<u8>),
    /// A JSON object (`Object` value type).
    Object(Json),
    #[allow(missing_docs)]
    BoolArray(Vec<bool>),
    #[allow(missing_docs)]
    StringArray(Vec<String>),
    #[allow(missing_docs)]
    Uint8Array(Vec<u8>),
    #[allow(missing_docs)]
    Uint16Array(Vec<u16>),
    #[allow(missing_docs)]
    Uint32Array(Vec<u32>),
    #[allow(missing_docs)]
    Uint64Array(Vec<u64>),
    #[allow(missing_docs)]
    Int8Array(Vec<i8>),
    #[allow(missing_docs)]
    Int16Array(Vec<i16>),
    #[allow(missing_docs)]
    Int32Array(Vec<i32>),
    #[allow(missing_docs)]
    Int64Array(Vec<i64>),
    #[allow(missing_docs)]
    Float32Array(Vec<f32>),
    #[allow(missing_docs)]
    Float64Array(Vec<f64>),
    /// A JSON array of objects (`ObjectArray` value type).
    ObjectArray(Vec<Json>),
}

/// A resource's value read from a device, or to be written to it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandValue {
    /// The device resource's name.
    pub resource_name: String,
    /// The raw value.
    pub value: Value,
    /// When the device produced it, in Unix nanoseconds; 0 means "now".
    pub origin: i64,
    /// Tags the driver adds to the reading.
    pub tags: Map<String, Json>,
}

impl CommandValue {
    /// `value` for the resource `resource_name`, stamped when the SDK receives it.
    pub fn new(resource_name: impl Into<String>, value: Value) -> Self {
        Self { resource_name: resource_name.into(), value, origin: 0, tags: Map::new() }
    }
}

/// One resource to write and the value to write to it: paired, so that a driver never
/// matches two lists by position (EdgeX hands its drivers two parallel slices).
#[derive(Debug, Clone, PartialEq)]
pub struct WriteCommand {
    /// The resource and its attributes.
    pub request: CommandRequest,
    /// The value, in the resource's raw type (the SDK has reversed the profile's transforms).
    pub value: CommandValue,
}

impl WriteCommand {
    /// `value` to be written to `request`.
    pub fn new(request: CommandRequest, value: CommandValue) -> Self {
        Self { request, value }
    }
}

/// A device found by [`ProtocolDriver::discover`] (EdgeX's `DiscoveredDevice` of the SDK).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovered {
    /// The name the device gets if a provision watcher takes it.
    pub name: String,
    /// How to reach it.
    pub protocols: Protocols,
    /// Free text.
    pub description: String,
    /// Labels added to those of the provision watcher.
    pub labels: Vec<String>,
    /// What provision watchers match on (`identifiers` are matched against these and the
    /// protocol properties).
    pub properties: Map<String, Json>,
}

/// What went wrong in a driver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// The device failed or could not be reached. Counts towards marking the device
    /// DOWN (EdgeX's `AllowedFails`); answered 500.
    #[error("{0}")]
    Failed(String),
    /// The device did not answer in time. Counts towards DOWN; answered 504.
    #[error("{0}")]
    Timeout(String),
    /// The request cannot be done as asked (bad attributes, bad value). Does not count
    /// towards DOWN; answered 400.
    #[error("{0}")]
    Invalid(String),
    /// The device answered, refusing the request (a Modbus exception: an address it does
    /// not have, a value it will not take). Answered 500, as EdgeX answers every driver
    /// error; it shows the device is reachable, so it never counts towards DOWN (EdgeX
    /// counts it) and brings a device the SDK set DOWN back UP.
    #[error("{0}")]
    Refused(String),
}

impl DriverError {
    /// True when the error says the device is failing or unreachable.
    pub fn counts_as_failure(&self) -> bool {
        matches!(self, DriverError::Failed(_) | DriverError::Timeout(_))
    }
}

/// The result of a driver call.
pub type DriverResult<T> = Result<T, DriverError>;

/// A device service's protocol driver. Only reads and writes are required; every other
/// callback has a default that does nothing.
///
/// The SDK calls the driver concurrently for different devices; a driver that must
/// serialise access to one connection does so itself.
#[async_trait]
pub trait ProtocolDriver: Send + Sync + 'static {
    /// Called once before any other call, with a handle for pushing asynchronous
    /// readings and discovered devices.
    async fn initialize(&self, _sdk: crate::Sdk) -> DriverResult<()> {
        Ok(())
    }

    /// Reads the resources `requests` of the device `device`, in the same order.
    async fn handle_read_commands(
        &self,
        device: &str,
        protocols: &Protocols,
        requests: &[CommandRequest],
    ) -> DriverResult<Vec<CommandValue>>;

    /// Writes each value of `writes` to its resource of the device `device`, in order.
    async fn handle_write_commands(
        &self,
        device: &str,
        protocols: &Protocols,
        writes: &[WriteCommand],
    ) -> DriverResult<()>;

    /// A device of this service was added (at start, or later in core-metadata).
    async fn add_device(&self, _device: &Device) -> DriverResult<()> {
        Ok(())
    }

    /// A device of this service changed.
    async fn update_device(&self, _device: &Device) -> DriverResult<()> {
        Ok(())
    }

    /// A device of this service was removed.
    async fn remove_device(&self, _device: &Device) -> DriverResult<()> {
        Ok(())
    }

    /// Scans for devices (`POST /discovery`); what it returns is matched against the
    /// service's provision watchers and the matches are added as devices.
    async fn discover(&self) -> DriverResult<Vec<Discovered>> {
        Ok(Vec::new())
    }

    /// Checks a device's protocol properties before it is added; an error rejects it.
    async fn validate_device(&self, _device: &Device) -> DriverResult<()> {
        Ok(())
    }

    /// The driver's own health, shown as the check `driver` of `/api/v3/health`: `Err(why)`
    /// when it cannot reach any device (no radio adapter, no serial port), which answers 503
    /// with `why` while the service keeps serving. Asked on every health request; keep it cheap.
    async fn health(&self) -> Result<(), String> {
        Ok(())
    }

    /// Extra HTTP routes the driver serves on the device service's own server, under `/api/v3`
    /// (EdgeX's `AddCustomRoute`; device-rest's `POST /resource/{device}/{resource}`).
    ///
    /// Called once per HTTP worker, after [`initialize`](Self::initialize); handlers reach the
    /// driver's state through what they capture (a clone of an `Arc` the driver holds, as
    /// `web::Data`). The SDK's routes are registered first, so a driver route cannot shadow
    /// them; bodies are limited to `service.max_request_size` (413) and error answers take
    /// EdgeX's JSON shape, as for every route. None by default.
    fn routes(&self, _routes: &mut actix_web::web::ServiceConfig) {}

    /// The service is stopping; `force` when it must not wait for pending work.
    async fn stop(&self, _force: bool) {}
}
