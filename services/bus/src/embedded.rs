//! The all-in-one's embedded MQTT broker (rumqttd 0.20), and a [`Bus`] that joins it
//! through a local link, without a socket.
//!
//! The broker's router runs on its own thread (`router-0`), the MQTT 3.1.1 listener on
//! another (`oxedge-mqtt`); neither keeps the process alive at exit. External clients
//! (an [`MqttBus`](crate::MqttBus), `mosquitto_sub`) and local links see each other's
//! messages: they share one router.
//!
//! What a local link promises, which is what rumqttd promises a TCP client:
//! - `publish` sends the message at QoS 1 and resolves on the router's `PUBACK`, given
//!   once the message is appended to the router's in-memory log. The log is not persisted:
//!   nothing survives the process.
//! - A subscription is its own link subscribed at QoS 1; a delivery's [`Delivery::ack`]
//!   sends the `PUBACK` (released in order, as rumqttd demands). The router sends a link
//!   at most its in-flight window of unacked messages, then waits: a slow consumer holds
//!   the router back for that subscription. A durable subscription (`clean_session =
//!   false`, client id `{name}-durable`) gets, when it comes back, what was published
//!   meanwhile and what it had not acked.
//! - The log of each filter keeps `max_segment_count` segments of `max_segment_size`
//!   bytes: a subscriber (or an absent durable one) that falls further behind than that
//!   loses the oldest messages. The defaults keep 64 MiB per filter.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::FutureExt as _;
use rumqttd::local::{LinkBuilder, LinkRx, LinkTx};
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::{
    Disconnect, DisconnectReasonCode, Filter, Packet, PubAck, PubAckReason, Publish, QoS, RetainForwardRule, Subscribe,
    SubscribeReasonCode,
};
use rumqttd::{ConnectionSettings, LinkType, Notification, Router, RouterConfig, Server, ServerSettings};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::{error, info};

use crate::ack::InOrderAcks;
use crate::config::EmbeddedConfig;
use crate::mqtt::durable_client_id;
use crate::{topic, Bus, BusError, Bytes, Delivery, SubscribeOptions, Subscription};

type Linker = dyn Fn(&str, bool) -> Result<(LinkTx, LinkRx), BusError> + Send + Sync;

/// A running embedded broker. Dropping it does not stop the broker threads (rumqttd has
/// no way to stop them); they end with the process.
#[derive(Clone)]
pub struct EmbeddedBroker {
    linker: Arc<Linker>,
    config: EmbeddedConfig,
}

impl EmbeddedBroker {
    /// Starts the router and the TCP listener; fails when the listen address is taken.
    pub fn start(config: EmbeddedConfig) -> Result<Self, BusError> {
        // rumqttd binds on its own thread and only logs a failure: find out here.
        drop(std::net::TcpListener::bind(config.listen).map_err(|e| {
            BusError::Connection(format!("embedded MQTT broker cannot listen on {}: {e}", config.listen))
        })?);
        let router = Router::new(
            0,
            RouterConfig {
                max_connections: config.max_connections,
                max_outgoing_packet_count: config.max_outgoing_inflight,
                max_segment_size: config.max_segment_size,
                max_segment_count: config.max_segment_count,
                ..RouterConfig::default()
            },
        );
        let router_tx = router.spawn();
        let settings = ServerSettings {
            name: "oxedge-mqtt".to_owned(),
            listen: config.listen,
            tls: None,
            next_connection_delay_ms: 0,
            connections: ConnectionSettings {
                connection_timeout_ms: 5000,
                max_payload_size: config.max_payload_size,
                max_inflight_count: config.max_inflight,
                auth: None,
                external_auth: None,
                dynamic_filters: false,
            },
        };
        let mut server = Server::new(settings, router_tx.clone(), V4);
        let listen = config.listen;
        std::thread::Builder::new()
            .name("oxedge-mqtt".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => return error!(error = %e, "Embedded MQTT broker could not start a runtime."),
                };
                if let Err(e) = runtime.block_on(server.start(LinkType::Remote)) {
                    error!(error = %e, %listen, "Embedded MQTT broker stopped listening.");
                }
            })
            .map_err(|e| BusError::Connection(format!("embedded MQTT broker thread: {e}")))?;
        info!(%listen, "Embedded MQTT broker started.");
        let linker = move |client_id: &str, clean: bool| {
            LinkBuilder::new(client_id, router_tx.clone())
                .clean_session(clean)
                .build()
                .map(|(tx, rx, _connack)| (tx, rx))
                .map_err(|e| BusError::Connection(format!("embedded MQTT broker refused link '{client_id}': {e}")))
        };
        Ok(Self { linker: Arc::new(linker), config })
    }

    /// Where external clients connect.
    pub fn listen_addr(&self) -> SocketAddr {
        self.config.listen
    }

    /// A bus client named `client_id` on a local link.
    pub fn bus(&self, client_id: &str) -> Result<Arc<dyn Bus>, BusError> {
        Ok(Arc::new(LocalBus::connect(self.clone(), client_id)?))
    }
}

/// A [`Bus`] on local links of an [`EmbeddedBroker`].
struct LocalBus {
    broker: EmbeddedBroker,
    client_id: String,
    tx: Arc<Mutex<LinkTx>>,
    waiters: Arc<Mutex<HashMap<u16, oneshot::Sender<()>>>>,
    next_pkid: AtomicU16,
    /// One permit per packet id in use: at most `max_inflight` publishes wait for their ack.
    inflight: Arc<Semaphore>,
    connected: Arc<AtomicBool>,
    _acks: tokio::task::JoinHandle<()>,
}

impl LocalBus {
    fn connect(broker: EmbeddedBroker, client_id: &str) -> Result<Self, BusError> {
        let (tx, mut rx) = (broker.linker)(client_id, true)?;
        let waiters: Arc<Mutex<HashMap<u16, oneshot::Sender<()>>>> = Arc::default();
        let connected = Arc::new(AtomicBool::new(true));
        let (pending, alive) = (waiters.clone(), connected.clone());
        let acks = tokio::spawn(async move {
            loop {
                match rx.next().await {
                    Ok(Some(Notification::Unschedule)) => {
                        if rx.wake().await.is_err() {
                            break;
                        }
                    }
                    Ok(Some(notification)) => {
                        if let Some(Packet::PubAck(ack, _)) = Option::<Packet>::from(notification) {
                            if let Some(waiter) = lock(&pending).remove(&ack.pkid) {
                                let _ = waiter.send(());
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
            alive.store(false, Ordering::Relaxed);
            lock(&pending).clear();
        });
        let inflight = Arc::new(Semaphore::new(broker.config.max_inflight.clamp(1, u16::MAX as usize - 1)));
        Ok(Self {
            broker,
            inflight,
            client_id: client_id.to_owned(),
            tx: Arc::new(Mutex::new(tx)),
            waiters,
            next_pkid: AtomicU16::new(1),
            connected,
            _acks: acks,
        })
    }

    fn pkid(&self) -> u16 {
        loop {
            let id = self.next_pkid.fetch_add(1, Ordering::Relaxed);
            if id != 0 && !lock(&self.waiters).contains_key(&id) {
                return id;
            }
        }
    }
}

impl Drop for LocalBus {
    fn drop(&mut self) {
        disconnect(&mut lock(&self.tx));
    }
}

// rumqttd 0.20 keeps the QoS and packet id of a `Publish` to itself (`pub(crate)`, as its
// `LinkTx::publish` sends QoS 0 only). Its MQTT-independent (de)serialization, a header
// byte, the packet id, the topic and the payload, is how a local link sets and reads them.

/// A QoS 1 publish with packet id `pkid`.
fn qos1_publish(topic: &str, pkid: u16, payload: &[u8]) -> Publish {
    let mut bytes = Vec::with_capacity(5 + topic.len() + payload.len());
    bytes.push(0b0011_0010);
    bytes.extend_from_slice(&pkid.to_be_bytes());
    bytes.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    bytes.extend_from_slice(topic.as_bytes());
    bytes.extend_from_slice(payload);
    Publish::deserialize(Bytes::from(bytes))
}

/// The QoS and packet id of `publish`.
fn qos_and_pkid(publish: &Publish) -> (u8, u16) {
    let mut header = publish.clone();
    header.payload = Bytes::new();
    let bytes = header.serialize();
    ((bytes[0] >> 1) & 0b11, u16::from_be_bytes([bytes[1], bytes[2]]))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hands `packet` to the router. `LinkTx::send` is an `async fn` that never waits.
fn send(tx: &mut LinkTx, packet: Packet) -> Result<(), BusError> {
    match tx.send(packet).now_or_never() {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(BusError::Connection(format!("embedded MQTT broker: {e}"))),
        None => Err(BusError::Connection("embedded MQTT broker did not take the packet".to_owned())),
    }
}

fn disconnect(tx: &mut LinkTx) {
    let _ = send(tx, Packet::Disconnect(Disconnect { reason_code: DisconnectReasonCode::NormalDisconnection }, None));
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        if !topic::is_valid_topic(topic) {
            return Err(BusError::Refused(format!("'{topic}' is not a topic one can publish on")));
        }
        if payload.len() > self.broker.config.max_payload_size {
            return Err(BusError::Refused(format!(
                "a message of {} bytes exceeds the embedded broker's max payload size of {} bytes",
                payload.len(),
                self.broker.config.max_payload_size
            )));
        }
        let _permit = self.inflight.acquire().await.map_err(|_| BusError::Closed)?;
        let (ack_tx, ack_rx) = oneshot::channel();
        let pkid = self.pkid();
        lock(&self.waiters).insert(pkid, ack_tx);
        let publish = qos1_publish(topic, pkid, &payload);
        if let Err(e) = send(&mut lock(&self.tx), Packet::Publish(publish, None)) {
            lock(&self.waiters).remove(&pkid);
            return Err(e);
        }
        ack_rx.await.map_err(|_| BusError::Closed)
    }

    async fn subscribe(&self, filters: &[String], options: SubscribeOptions) -> Result<Subscription, BusError> {
        if filters.is_empty() {
            return Err(BusError::Refused("a subscription needs at least one topic filter".to_owned()));
        }
        if let Some(bad) = filters.iter().find(|f| !topic::is_valid_filter(f)) {
            return Err(BusError::Refused(format!("'{bad}' is not a valid topic filter")));
        }
        let (link_id, clean) = match &options.durable {
            Some(name) => (durable_client_id(name), false),
            None => (format!("{}-sub-{}", self.client_id, &uuid::Uuid::new_v4().simple().to_string()[..12]), true),
        };
        let (mut tx, mut rx) = (self.broker.linker)(&link_id, clean)?;
        let subscribe = Subscribe {
            pkid: 1,
            filters: filters
                .iter()
                .map(|f| Filter {
                    path: f.clone(),
                    qos: QoS::AtLeastOnce,
                    nolocal: false,
                    preserve_retain: false,
                    retain_forward_rule: RetainForwardRule::Never,
                })
                .collect(),
        };
        send(&mut tx, Packet::Subscribe(subscribe, None))?;
        let mut early = Vec::new();
        loop {
            match rx.next().await.map_err(|e| BusError::Connection(format!("embedded MQTT broker: {e}")))? {
                Some(Notification::DeviceAck(ack)) => {
                    let Some(Packet::SubAck(suback, _)) = Option::<Packet>::from(Notification::DeviceAck(ack)) else {
                        continue;
                    };
                    if suback.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                        disconnect(&mut tx);
                        return Err(BusError::Refused("the embedded MQTT broker refused the subscription".to_owned()));
                    }
                    break;
                }
                // A durable link may get its backlog before the ack of the new subscribe.
                Some(notification) => early.push(notification),
                None => {}
            }
        }
        let (deliveries, subscription) = mpsc::channel(options.capacity.max(1));
        tokio::spawn(
            LocalSubscription { tx: Arc::new(Mutex::new(tx)), acks: Arc::default() }.run(rx, early, deliveries),
        );
        Ok(Subscription::new(subscription))
    }

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn describe(&self) -> String {
        format!("embedded mqtt://{} (local link)", self.broker.config.listen)
    }
}

/// The link of one subscription.
struct LocalSubscription {
    tx: Arc<Mutex<LinkTx>>,
    acks: Arc<InOrderAcks<u16>>,
}

impl LocalSubscription {
    async fn run(self, mut rx: LinkRx, early: Vec<Notification>, deliveries: mpsc::Sender<Delivery>) {
        let mut backlog = early.into_iter();
        loop {
            let notification = match backlog.next() {
                Some(n) => n,
                None => tokio::select! {
                    () = deliveries.closed() => break,
                    n = rx.next() => match n {
                        Ok(Some(n)) => n,
                        Ok(None) => continue,
                        Err(_) => break,
                    },
                },
            };
            let gone = match notification {
                Notification::Forward(forward) => deliveries.send(self.delivery(forward.publish)).await.is_err(),
                Notification::Unschedule => rx.wake().await.is_err(),
                _ => false,
            };
            if gone {
                break;
            }
        }
        disconnect(&mut lock(&self.tx));
    }

    fn delivery(&self, publish: Publish) -> Delivery {
        let topic = String::from_utf8_lossy(&publish.topic).into_owned();
        let (qos, pkid) = qos_and_pkid(&publish);
        if qos == 0 {
            return Delivery::new(topic, publish.payload);
        }
        let ticket = self.acks.register(pkid);
        let (acks, tx) = (self.acks.clone(), self.tx.clone());
        Delivery::with_acker(
            topic,
            publish.payload,
            Box::new(move || {
                Box::pin(async move {
                    for pkid in acks.ack(ticket) {
                        send(&mut lock(&tx), Packet::PubAck(PubAck { pkid, reason: PubAckReason::Success }, None))?;
                    }
                    Ok(())
                })
            }),
        )
    }
}
