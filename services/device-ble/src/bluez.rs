//! [`BluezRadio`]: the real radio, BlueZ over the D-Bus system bus through btleplug.
//!
//! The adapter is opened on first use and again after a failure, so a service started
//! before `bluetoothd` (or without a controller) reports why in its health and works once
//! the adapter appears. The first adapter BlueZ lists is used.

use std::time::Duration;

use async_trait::async_trait;
use btleplug::api::{Central, CentralEvent, CentralState, Manager as _, Peripheral as _, ScanFilter, WriteType};
use btleplug::platform::{Adapter, Manager, Peripheral};
use futures_util::stream::{BoxStream, StreamExt};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::radio::{Advertisement, Characteristic, Notification, Properties, Radio, RadioError, WriteKind};

/// How long opening the D-Bus connection and listing adapters may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `connect` scans for a peripheral BlueZ has not seen yet.
const FIND_TIMEOUT: Duration = Duration::from_secs(10);

/// The BlueZ radio. Cheap to create: nothing is opened before the first call.
#[derive(Default)]
pub struct BluezRadio {
    adapter: Mutex<Option<Adapter>>,
}

impl BluezRadio {
    /// A radio on the first adapter BlueZ lists.
    pub fn new() -> Self {
        Self::default()
    }

    /// The adapter, opened now if it is not yet.
    async fn adapter(&self) -> Result<Adapter, RadioError> {
        let mut slot = self.adapter.lock().await;
        if let Some(adapter) = slot.as_ref() {
            return Ok(adapter.clone());
        }
        let open = async {
            let manager = Manager::new().await.map_err(|e| {
                RadioError::NoAdapter(format!(
                    "cannot reach BlueZ on the D-Bus system bus (is bluetoothd running?): {e}"
                ))
            })?;
            let adapters = manager
                .adapters()
                .await
                .map_err(|e| RadioError::NoAdapter(format!("BlueZ cannot list its adapters: {e}")))?;
            adapters.into_iter().next().ok_or_else(|| RadioError::NoAdapter("BlueZ has no adapter".to_owned()))
        };
        let adapter = tokio::time::timeout(OPEN_TIMEOUT, open).await.map_err(|_| {
            RadioError::NoAdapter(format!("BlueZ did not answer on the D-Bus system bus within {OPEN_TIMEOUT:?}"))
        })??;
        *slot = Some(adapter.clone());
        Ok(adapter)
    }

    /// The peripheral at `address` among those BlueZ knows.
    async fn known(adapter: &Adapter, address: &str) -> Result<Option<Peripheral>, RadioError> {
        let peripherals = adapter.peripherals().await.map_err(|e| map_err(e, address))?;
        Ok(peripherals.into_iter().find(|p| p.address().to_string().eq_ignore_ascii_case(address)))
    }

    /// The peripheral at `address`; scans up to [`FIND_TIMEOUT`] when `scan` and BlueZ has
    /// not seen it yet.
    async fn peripheral(&self, address: &str, scan: bool) -> Result<Peripheral, RadioError> {
        let adapter = self.adapter().await?;
        if let Some(p) = Self::known(&adapter, address).await? {
            return Ok(p);
        }
        if !scan {
            return Err(RadioError::NotFound(address.to_owned()));
        }
        adapter.start_scan(ScanFilter::default()).await.map_err(|e| map_err(e, address))?;
        let found = tokio::time::timeout(FIND_TIMEOUT, async {
            loop {
                if let Some(p) = Self::known(&adapter, address).await? {
                    return Ok(p);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
        .await;
        let _ = adapter.stop_scan().await;
        found.map_err(|_| RadioError::NotFound(address.to_owned()))?
    }

    async fn characteristic(
        &self,
        address: &str,
        service: Uuid,
        uuid: Uuid,
    ) -> Result<(Peripheral, btleplug::api::Characteristic), RadioError> {
        let p = self.peripheral(address, false).await?;
        let c = p
            .characteristics()
            .into_iter()
            .find(|c| c.uuid == uuid && c.service_uuid == service)
            .ok_or(RadioError::NoSuchCharacteristic { service, characteristic: uuid })?;
        Ok((p, c))
    }
}

/// btleplug's error as the driver needs it.
fn map_err(e: btleplug::Error, address: &str) -> RadioError {
    use btleplug::Error as E;
    match e {
        E::NoAdapterAvailable => RadioError::NoAdapter("BlueZ has no adapter".to_owned()),
        E::DeviceNotFound => RadioError::NotFound(address.to_owned()),
        E::NotConnected => RadioError::NotConnected(address.to_owned()),
        E::PermissionDenied => RadioError::NotPermitted("permission denied".to_owned()),
        other => {
            let text = other.to_string();
            if text.contains("NotPermitted") || text.contains("NotAuthorized") || text.contains("NotSupported") {
                RadioError::NotPermitted(text)
            } else if text.contains("Not connected") || text.contains("NotConnected") {
                RadioError::NotConnected(address.to_owned())
            } else {
                RadioError::Failed(format!("peripheral {address}: {text}"))
            }
        }
    }
}

#[async_trait]
impl Radio for BluezRadio {
    async fn check(&self) -> Result<(), RadioError> {
        let adapter = self.adapter().await?;
        match adapter.adapter_state().await {
            Ok(CentralState::PoweredOn) => Ok(()),
            Ok(state) => Err(RadioError::NoAdapter(format!("the Bluetooth adapter is {state:?}"))),
            Err(e) => {
                // The adapter went away (bluetoothd restarted, controller unplugged): open
                // it again on the next call.
                *self.adapter.lock().await = None;
                Err(RadioError::NoAdapter(format!("the Bluetooth adapter does not answer: {e}")))
            }
        }
    }

    async fn scan(&self, duration: Duration) -> Result<Vec<Advertisement>, RadioError> {
        let adapter = self.adapter().await?;
        adapter.start_scan(ScanFilter::default()).await.map_err(|e| map_err(e, "scan"))?;
        tokio::time::sleep(duration).await;
        let _ = adapter.stop_scan().await;
        let mut seen = Vec::new();
        for p in adapter.peripherals().await.map_err(|e| map_err(e, "scan"))? {
            let Ok(Some(props)) = p.properties().await else { continue };
            seen.push(Advertisement {
                address: p.address().to_string().to_ascii_uppercase(),
                name: props.local_name.or(props.advertisement_name),
                services: props.services,
                rssi: props.rssi,
            });
        }
        Ok(seen)
    }

    async fn connect(&self, address: &str) -> Result<(), RadioError> {
        let p = self.peripheral(address, true).await?;
        if !p.is_connected().await.unwrap_or(false) {
            p.connect().await.map_err(|e| map_err(e, address))?;
        }
        Ok(())
    }

    async fn disconnect(&self, address: &str) -> Result<(), RadioError> {
        let p = self.peripheral(address, false).await?;
        p.disconnect().await.map_err(|e| map_err(e, address))
    }

    async fn characteristics(&self, address: &str) -> Result<Vec<Characteristic>, RadioError> {
        use btleplug::api::CharPropFlags as F;
        let p = self.peripheral(address, false).await?;
        p.discover_services().await.map_err(|e| map_err(e, address))?;
        Ok(p.characteristics()
            .into_iter()
            .map(|c| Characteristic {
                service: c.service_uuid,
                uuid: c.uuid,
                properties: Properties {
                    read: c.properties.contains(F::READ),
                    write: c.properties.contains(F::WRITE),
                    write_without_response: c.properties.contains(F::WRITE_WITHOUT_RESPONSE),
                    notify: c.properties.contains(F::NOTIFY),
                    indicate: c.properties.contains(F::INDICATE),
                },
            })
            .collect())
    }

    async fn read(&self, address: &str, service: Uuid, characteristic: Uuid) -> Result<Vec<u8>, RadioError> {
        let (p, c) = self.characteristic(address, service, characteristic).await?;
        p.read(&c).await.map_err(|e| map_err(e, address))
    }

    async fn write(
        &self,
        address: &str,
        service: Uuid,
        characteristic: Uuid,
        value: &[u8],
        kind: WriteKind,
    ) -> Result<(), RadioError> {
        let (p, c) = self.characteristic(address, service, characteristic).await?;
        let kind = match kind {
            WriteKind::WithResponse => WriteType::WithResponse,
            WriteKind::WithoutResponse => WriteType::WithoutResponse,
        };
        p.write(&c, value, kind).await.map_err(|e| map_err(e, address))
    }

    async fn subscribe(&self, address: &str, service: Uuid, characteristic: Uuid) -> Result<(), RadioError> {
        let (p, c) = self.characteristic(address, service, characteristic).await?;
        p.subscribe(&c).await.map_err(|e| map_err(e, address))
    }

    async fn notifications(&self, address: &str) -> Result<BoxStream<'static, Notification>, RadioError> {
        let p = self.peripheral(address, false).await?;
        let stream = p.notifications().await.map_err(|e| map_err(e, address))?;
        Ok(stream.map(|n| Notification { service: n.service_uuid, characteristic: n.uuid, value: n.value }).boxed())
    }

    async fn disconnections(&self) -> Result<BoxStream<'static, String>, RadioError> {
        let adapter = self.adapter().await?;
        let events = adapter.events().await.map_err(|e| map_err(e, "events"))?;
        Ok(events
            .filter_map(move |event| {
                let adapter = adapter.clone();
                async move {
                    let CentralEvent::DeviceDisconnected(id) = event else { return None };
                    let p = adapter.peripheral(&id).await.ok()?;
                    Some(p.address().to_string().to_ascii_uppercase())
                }
            })
            .boxed())
    }
}
