//! A simulated radio and its peripherals, behind the driver's [`Radio`] trait, behaving as
//! BlueZ does where it matters: peripherals advertise while in range; connecting to one out of
//! range fails; GATT calls need a connection; unknown characteristics fail "No such
//! characteristic", operations a characteristic does not allow fail "NotPermitted"; reads
//! can be slow; writes change the value; subscribed characteristics notify at a rate while
//! connected; a lost link is reported on the disconnection stream and ends nothing else.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt};
use oxedge_device_ble::attributes::parse_uuid;
use oxedge_device_ble::{Advertisement, Characteristic, Notification, Properties, Radio, RadioError, WriteKind};
use tokio::sync::broadcast;
use uuid::Uuid;

/// The UUID of a SIG short form (`180D`).
pub fn sig(short: &str) -> Uuid {
    parse_uuid(short).unwrap()
}

/// What a characteristic allows, spelled `r`, `w`, `c` (write command), `n`.
pub fn props(spec: &str) -> Properties {
    Properties {
        read: spec.contains('r'),
        write: spec.contains('w'),
        write_without_response: spec.contains('c'),
        notify: spec.contains('n'),
        indicate: false,
    }
}

struct Char {
    props: Properties,
    value: Vec<u8>,
    subscribed: bool,
}

struct Peripheral {
    name: Option<String>,
    advertised: Vec<Uuid>,
    chars: HashMap<(Uuid, Uuid), Char>,
    in_range: bool,
    connected: bool,
    connects: u32,
    read_delay: Duration,
    notifications: broadcast::Sender<Notification>,
}

/// The simulated radio. Clones share their peripherals.
#[derive(Clone)]
pub struct FakeRadio {
    world: Arc<Mutex<HashMap<String, Peripheral>>>,
    lost: broadcast::Sender<String>,
}

impl Default for FakeRadio {
    fn default() -> Self {
        Self { world: Arc::default(), lost: broadcast::channel(64).0 }
    }
}

fn receive<T: Clone + Send + 'static>(rx: broadcast::Receiver<T>) -> BoxStream<'static, T> {
    stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(item) => return Some((item, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

impl FakeRadio {
    fn with<T>(
        &self,
        address: &str,
        f: impl FnOnce(&mut Peripheral) -> Result<T, RadioError>,
    ) -> Result<T, RadioError> {
        let mut world = self.world.lock().unwrap();
        let p = world.get_mut(address).ok_or_else(|| RadioError::NotFound(address.to_owned()))?;
        f(p)
    }

    fn connected<T>(
        &self,
        address: &str,
        f: impl FnOnce(&mut Peripheral) -> Result<T, RadioError>,
    ) -> Result<T, RadioError> {
        self.with(address, |p| if p.connected { f(p) } else { Err(RadioError::NotConnected(address.to_owned())) })
    }

    /// Adds a peripheral in range advertising `advertised`.
    pub fn add(&self, address: &str, name: Option<&str>, advertised: &[&str]) {
        self.world.lock().unwrap().insert(
            address.to_owned(),
            Peripheral {
                name: name.map(str::to_owned),
                advertised: advertised.iter().map(|s| sig(s)).collect(),
                chars: HashMap::new(),
                in_range: true,
                connected: false,
                connects: 0,
                read_delay: Duration::ZERO,
                notifications: broadcast::channel(256).0,
            },
        );
    }

    /// Gives the peripheral a characteristic.
    pub fn characteristic(&self, address: &str, service: &str, uuid: &str, spec: &str, value: &[u8]) {
        self.with(address, |p| {
            let c = Char { props: props(spec), value: value.to_vec(), subscribed: false };
            p.chars.insert((sig(service), sig(uuid)), c);
            Ok(())
        })
        .unwrap();
    }

    /// The characteristic's current bytes.
    pub fn value(&self, address: &str, service: &str, uuid: &str) -> Vec<u8> {
        self.with(address, |p| Ok(p.chars[&(sig(service), sig(uuid))].value.clone())).unwrap()
    }

    /// Every read of the peripheral first waits `delay`.
    pub fn set_read_delay(&self, address: &str, delay: Duration) {
        self.with(address, |p| {
            p.read_delay = delay;
            Ok(())
        })
        .unwrap();
    }

    /// Whether the peripheral is connected now.
    pub fn is_connected(&self, address: &str) -> bool {
        self.with(address, |p| Ok(p.connected)).unwrap()
    }

    /// How many times the peripheral was connected.
    pub fn connects(&self, address: &str) -> u32 {
        self.with(address, |p| Ok(p.connects)).unwrap()
    }

    /// Moves the peripheral out of range (the link drops, as a supervision timeout does) or
    /// back in range.
    pub fn set_in_range(&self, address: &str, in_range: bool) {
        let dropped = self
            .with(address, |p| {
                p.in_range = in_range;
                let dropped = p.connected && !in_range;
                if dropped {
                    p.connected = false;
                    p.chars.values_mut().for_each(|c| c.subscribed = false);
                }
                Ok(dropped)
            })
            .unwrap();
        if dropped {
            let _ = self.lost.send(address.to_owned());
        }
    }

    /// Every `period`, while the peripheral is connected and the characteristic subscribed,
    /// sets its value to `next(n)` (n = 0, 1, …) and notifies it; until the radio is dropped.
    pub fn notify_every(
        &self,
        address: &str,
        service: &str,
        uuid: &str,
        period: Duration,
        next: impl Fn(u32) -> Vec<u8> + Send + 'static,
    ) {
        let world: Weak<Mutex<HashMap<String, Peripheral>>> = Arc::downgrade(&self.world);
        let (address, service, uuid) = (address.to_owned(), sig(service), sig(uuid));
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                tokio::time::sleep(period).await;
                let Some(world) = world.upgrade() else { return };
                let mut world = world.lock().unwrap();
                let Some(p) = world.get_mut(&address) else { return };
                let Some(c) = p.chars.get_mut(&(service, uuid)) else { return };
                if p.connected && c.subscribed {
                    c.value = next(n);
                    n += 1;
                    let note = Notification { service, characteristic: uuid, value: c.value.clone() };
                    let _ = p.notifications.send(note);
                }
            }
        });
    }
}

#[async_trait]
impl Radio for FakeRadio {
    async fn check(&self) -> Result<(), RadioError> {
        Ok(())
    }

    async fn scan(&self, duration: Duration) -> Result<Vec<Advertisement>, RadioError> {
        tokio::time::sleep(duration).await;
        let world = self.world.lock().unwrap();
        Ok(world
            .iter()
            .filter(|(_, p)| p.in_range)
            .map(|(address, p)| Advertisement {
                address: address.clone(),
                name: p.name.clone(),
                services: p.advertised.clone(),
                rssi: Some(-60),
            })
            .collect())
    }

    async fn connect(&self, address: &str) -> Result<(), RadioError> {
        // A connection takes a few connection intervals.
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.with(address, |p| {
            if !p.in_range {
                return Err(RadioError::Failed(format!(
                    "peripheral {address}: le-connection-abort-by-local (org.bluez.Error.Failed)"
                )));
            }
            if !p.connected {
                p.connected = true;
                p.connects += 1;
            }
            Ok(())
        })
    }

    async fn disconnect(&self, address: &str) -> Result<(), RadioError> {
        let was = self.with(address, |p| {
            let was = p.connected;
            p.connected = false;
            p.chars.values_mut().for_each(|c| c.subscribed = false);
            Ok(was)
        })?;
        if was {
            let _ = self.lost.send(address.to_owned());
        }
        Ok(())
    }

    async fn characteristics(&self, address: &str) -> Result<Vec<Characteristic>, RadioError> {
        self.connected(address, |p| {
            Ok(p.chars
                .iter()
                .map(|((service, uuid), c)| Characteristic { service: *service, uuid: *uuid, properties: c.props })
                .collect())
        })
    }

    async fn read(&self, address: &str, service: Uuid, characteristic: Uuid) -> Result<Vec<u8>, RadioError> {
        let delay = self.connected(address, |p| Ok(p.read_delay))?;
        tokio::time::sleep(delay).await;
        self.connected(address, |p| {
            let c = p
                .chars
                .get(&(service, characteristic))
                .ok_or(RadioError::NoSuchCharacteristic { service, characteristic })?;
            if !c.props.read {
                return Err(RadioError::NotPermitted("org.bluez.Error.NotPermitted: Read not permitted".to_owned()));
            }
            Ok(c.value.clone())
        })
    }

    async fn write(
        &self,
        address: &str,
        service: Uuid,
        characteristic: Uuid,
        value: &[u8],
        kind: WriteKind,
    ) -> Result<(), RadioError> {
        self.connected(address, |p| {
            let c = p
                .chars
                .get_mut(&(service, characteristic))
                .ok_or(RadioError::NoSuchCharacteristic { service, characteristic })?;
            let allowed = match kind {
                WriteKind::WithResponse => c.props.write,
                WriteKind::WithoutResponse => c.props.write_without_response,
            };
            if !allowed {
                return Err(RadioError::NotPermitted("org.bluez.Error.NotPermitted: Write not permitted".to_owned()));
            }
            c.value = value.to_vec();
            Ok(())
        })
    }

    async fn subscribe(&self, address: &str, service: Uuid, characteristic: Uuid) -> Result<(), RadioError> {
        self.connected(address, |p| {
            let c = p
                .chars
                .get_mut(&(service, characteristic))
                .ok_or(RadioError::NoSuchCharacteristic { service, characteristic })?;
            if !c.props.notify {
                return Err(RadioError::NotPermitted(
                    "org.bluez.Error.NotSupported: Operation is not supported".into(),
                ));
            }
            c.subscribed = true;
            Ok(())
        })
    }

    async fn notifications(&self, address: &str) -> Result<BoxStream<'static, Notification>, RadioError> {
        self.with(address, |p| Ok(receive(p.notifications.subscribe())))
    }

    async fn disconnections(&self) -> Result<BoxStream<'static, String>, RadioError> {
        Ok(receive(self.lost.subscribe()))
    }
}
