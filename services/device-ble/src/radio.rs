//! [`Radio`]: the one interface between the driver and a Bluetooth Low Energy radio.
//!
//! The driver knows peripherals by their address (`AA:BB:CC:DD:EE:FF`) and characteristics
//! by their service and characteristic UUIDs; a radio scans, connects, discovers GATT,
//! reads, writes and streams notifications. [`crate::bluez::BluezRadio`] (feature `bluez`)
//! is the real one; tests drive the driver with a simulated peripheral behind this trait.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use uuid::Uuid;

/// What one advertising peripheral said during a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// Its address, upper case (`AA:BB:CC:DD:EE:FF`).
    pub address: String,
    /// Its advertised (local) name, if any.
    pub name: Option<String>,
    /// The service UUIDs it advertises.
    pub services: Vec<Uuid>,
    /// The signal strength last received, in dBm.
    pub rssi: Option<i16>,
}

/// What a characteristic allows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Properties {
    #[allow(missing_docs)]
    pub read: bool,
    /// Write with response (a request the peripheral acknowledges).
    pub write: bool,
    /// Write without response (a command).
    pub write_without_response: bool,
    #[allow(missing_docs)]
    pub notify: bool,
    /// Notifications the central acknowledges.
    pub indicate: bool,
}

/// A GATT characteristic of a connected peripheral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Characteristic {
    /// The service it belongs to.
    pub service: Uuid,
    /// The characteristic's UUID.
    pub uuid: Uuid,
    /// What it allows.
    pub properties: Properties,
}

/// A value a peripheral sent on its own for a characteristic it was subscribed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The characteristic's service.
    pub service: Uuid,
    /// The characteristic.
    pub characteristic: Uuid,
    /// Its new value.
    pub value: Vec<u8>,
}

/// How a value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// A write request, acknowledged by the peripheral.
    WithResponse,
    /// A write command, not acknowledged.
    WithoutResponse,
}

/// What went wrong in the radio.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RadioError {
    /// No usable adapter: no BlueZ, no D-Bus system bus, no controller, powered off, or a
    /// build without BLE support.
    #[error("no Bluetooth adapter: {0}")]
    NoAdapter(String),
    /// The peripheral was not seen by the adapter.
    #[error("peripheral {0} not found")]
    NotFound(String),
    /// The peripheral is not connected (any more).
    #[error("peripheral {0} is not connected")]
    NotConnected(String),
    /// The connected peripheral has no such characteristic.
    #[error("peripheral has no characteristic {characteristic} in service {service}")]
    NoSuchCharacteristic {
        /// The service asked for.
        service: Uuid,
        /// The characteristic asked for.
        characteristic: Uuid,
    },
    /// The peripheral refused the operation on that characteristic (not readable, not
    /// writable, needs pairing).
    #[error("not permitted: {0}")]
    NotPermitted(String),
    /// Any other failure of the radio or the link.
    #[error("{0}")]
    Failed(String),
}

/// A Bluetooth Low Energy radio, as the driver uses it. Peripherals are named by address.
#[async_trait]
pub trait Radio: Send + Sync + 'static {
    /// Whether the adapter is there and usable; the error says why not.
    async fn check(&self) -> Result<(), RadioError>;

    /// Listens to advertisements for `duration`; one entry per peripheral seen.
    async fn scan(&self, duration: Duration) -> Result<Vec<Advertisement>, RadioError>;

    /// Connects to the peripheral at `address` (done at once if it is connected already).
    async fn connect(&self, address: &str) -> Result<(), RadioError>;

    /// Disconnects from the peripheral at `address`.
    async fn disconnect(&self, address: &str) -> Result<(), RadioError>;

    /// Discovers the GATT services and characteristics of the connected peripheral.
    async fn characteristics(&self, address: &str) -> Result<Vec<Characteristic>, RadioError>;

    /// Reads a characteristic's value.
    async fn read(&self, address: &str, service: Uuid, characteristic: Uuid) -> Result<Vec<u8>, RadioError>;

    /// Writes a characteristic's value.
    async fn write(
        &self,
        address: &str,
        service: Uuid,
        characteristic: Uuid,
        value: &[u8],
        kind: WriteKind,
    ) -> Result<(), RadioError>;

    /// Turns notifications (or indications) of a characteristic on.
    async fn subscribe(&self, address: &str, service: Uuid, characteristic: Uuid) -> Result<(), RadioError>;

    /// The notifications of the peripheral at `address`, from now on. The stream may end
    /// when the connection is lost.
    async fn notifications(&self, address: &str) -> Result<BoxStream<'static, Notification>, RadioError>;

    /// The addresses of peripherals whose connection is lost, from now on.
    async fn disconnections(&self) -> Result<BoxStream<'static, String>, RadioError>;
}

/// A radio that is not there: every call fails with [`RadioError::NoAdapter`] and its reason.
/// The driver uses it when the service is built without BLE support.
#[derive(Debug, Clone)]
pub struct NoRadio(pub String);

impl NoRadio {
    fn fail<T>(&self) -> Result<T, RadioError> {
        Err(RadioError::NoAdapter(self.0.clone()))
    }
}

#[async_trait]
impl Radio for NoRadio {
    async fn check(&self) -> Result<(), RadioError> {
        self.fail()
    }

    async fn scan(&self, _: Duration) -> Result<Vec<Advertisement>, RadioError> {
        self.fail()
    }

    async fn connect(&self, _: &str) -> Result<(), RadioError> {
        self.fail()
    }

    async fn disconnect(&self, _: &str) -> Result<(), RadioError> {
        self.fail()
    }

    async fn characteristics(&self, _: &str) -> Result<Vec<Characteristic>, RadioError> {
        self.fail()
    }

    async fn read(&self, _: &str, _: Uuid, _: Uuid) -> Result<Vec<u8>, RadioError> {
        self.fail()
    }

    async fn write(&self, _: &str, _: Uuid, _: Uuid, _: &[u8], _: WriteKind) -> Result<(), RadioError> {
        self.fail()
    }

    async fn subscribe(&self, _: &str, _: Uuid, _: Uuid) -> Result<(), RadioError> {
        self.fail()
    }

    async fn notifications(&self, _: &str) -> Result<BoxStream<'static, Notification>, RadioError> {
        self.fail()
    }

    async fn disconnections(&self) -> Result<BoxStream<'static, String>, RadioError> {
        self.fail()
    }
}
