//! The MQTT backend: rumqttc 0.25, MQTT 3.1.1, one connection for publishing and one per
//! subscription.
//!
//! What it promises:
//! - [`MqttBus::publish`] resolves when the broker acknowledged the message (`PUBACK` at
//!   QoS 1, `PUBCOMP` at QoS 2, written to the socket at QoS 0). At most `max_inflight`
//!   messages are unacknowledged and 64 more queued; further publishers wait.
//! - Every connection reconnects by itself (backoff 100 ms → 5 s, or
//!   `max_reconnect_interval`). Publishes not yet
//!   acknowledged are sent again on the new connection, whether or not the broker kept
//!   the session, so a publish that resolved was acknowledged and one that is pending is
//!   retried until it is (at-least-once: a broker restart may produce a duplicate).
//! - A subscription has its own connection with manual acks: the `PUBACK` for a message
//!   goes to the broker when the consumer [`Delivery::ack`]s it and every message
//!   delivered before it on that subscription (brokers such as rumqttd demand acks in
//!   order). An unacked message is redelivered when the subscription reconnects to a
//!   broker that kept its session.
//! - A subscription's memory is bounded by the client, not the broker: it holds at most
//!   `capacity` deliveries (from arrival until the consumer acks or drops them), plus the
//!   few packets of one socket read. At that many it stops reading the connection, so the
//!   rest waits at the broker (in its queue for the client, and in TCP buffers), and the
//!   connection still writes the acks the consumer sends meanwhile, so it cannot deadlock.
//!   Brokers are not trusted with this: Mosquitto 2.0.11 was seen sending a slow but
//!   acking consumer over 17,000 unacked messages with `max_inflight_messages 1000`, and
//!   as many with an MQTT 5 `receive_maximum` of 100. A pause longer than the keep-alive
//!   may cost a reconnection (the ping's answer waits behind the unread messages); a
//!   durable subscription then gets its unacked messages again.
//! - `durable: Some(name)`: the subscription's client id is `{name}-durable` (so it never
//!   collides with the publishing connection of a service named `name`) and its session is
//!   persistent (`clean_session = false`); the broker queues QoS ≥ 1 messages while it is
//!   away or slow (Mosquitto keeps them across its own restart only with persistence on,
//!   and drops what exceeds `max_queued_messages`, 1000 by default: raise it for a durable
//!   subscriber that may fall behind). Otherwise the session is clean and filters are
//!   subscribed again on every reconnect; messages published while disconnected are lost.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Incoming, MqttOptions, Outgoing, PubAck, PubRec, Publish, QoS,
    Request, SubscribeFilter, SubscribeReasonCode, TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::ack::InOrderAcks;
use crate::{topic, Bus, BusError, Bytes, Delivery, SubscribeOptions, Subscription};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Publishes accepted by the client but not yet handed to the connection.
const PUBLISH_QUEUE: usize = 64;

/// How to reach an MQTT broker.
#[derive(Clone)]
pub struct MqttSettings {
    /// Host name or address of the broker.
    pub host: String,
    /// Its port (1883, 8883 with TLS).
    pub port: u16,
    /// Client id of the publishing connection; non-durable subscriptions add a suffix.
    pub client_id: String,
    /// QoS of publishes and subscriptions: 0, 1 or 2.
    pub qos: u8,
    /// User name and password.
    pub credentials: Option<(String, String)>,
    /// TLS client configuration; plain TCP when `None`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Keep-alive interval (pings while idle).
    pub keep_alive: Duration,
    /// Unacknowledged publishes per connection.
    pub max_inflight: u16,
    /// Largest packet sent or accepted, in bytes.
    pub max_packet_size: usize,
    /// The last will of the publishing connection: what the broker publishes for it when the
    /// connection ends without a DISCONNECT (dropped, keep-alive timeout, process killed).
    pub last_will: Option<MqttLastWill>,
    /// The longest wait between two connection attempts (the backoff doubles from 100 ms up
    /// to this).
    pub max_reconnect_interval: Duration,
    /// How long one connection attempt (TCP, TLS and CONNACK) may take; `None`: rumqttc's 5 s.
    pub connect_timeout: Option<Duration>,
}

/// An MQTT last will (see [`MqttSettings::last_will`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttLastWill {
    /// The topic it is published on.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
    /// Its QoS: 0, 1 or 2.
    pub qos: u8,
    /// Whether the broker keeps it as the topic's retained message.
    pub retain: bool,
}

impl MqttSettings {
    /// Settings for `host:port` with the defaults: QoS 1, 30 s keep-alive, 100 in flight, 16 MiB
    /// packets, no last will, reconnection attempts at most 5 s apart.
    pub fn new(host: impl Into<String>, port: u16, client_id: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            client_id: client_id.into(),
            qos: 1,
            credentials: None,
            tls: None,
            keep_alive: Duration::from_secs(30),
            max_inflight: 100,
            max_packet_size: 16 * 1024 * 1024,
            last_will: None,
            max_reconnect_interval: MAX_BACKOFF,
            connect_timeout: None,
        }
    }

    /// Applies `connect_timeout` to a connection's event loop (whole seconds, at least 1).
    fn set_connect_timeout(&self, eventloop: &mut EventLoop) {
        if let Some(timeout) = self.connect_timeout {
            let seconds = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
            eventloop.network_options.set_connection_timeout(seconds.max(1));
        }
    }

    fn qos(&self) -> Result<QoS, BusError> {
        rumqttc::qos(self.qos).map_err(|_| BusError::Refused(format!("MQTT qos must be 0, 1 or 2, not {}", self.qos)))
    }

    fn options(&self, client_id: &str, clean_session: bool) -> MqttOptions {
        let mut options = MqttOptions::new(client_id, &self.host, self.port);
        options
            .set_keep_alive(self.keep_alive)
            .set_clean_session(clean_session)
            .set_inflight(self.max_inflight.max(1))
            .set_max_packet_size(self.max_packet_size, self.max_packet_size);
        if let Some((user, password)) = &self.credentials {
            options.set_credentials(user, password);
        }
        if let Some(tls) = &self.tls {
            options.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls.clone())));
        }
        options
    }

    fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

/// The MQTT client id of the durable subscription `name`: distinct from any publishing
/// connection's id (a service publishing as `core-data` subscribes durably as `core-data`
/// too, and two connections with one client id would take turns kicking each other off),
/// and the same on every restart, so the broker finds the session again.
pub(crate) fn durable_client_id(name: &str) -> String {
    format!("{name}-durable")
}

/// A [`Bus`] over an MQTT broker. Cheap to share behind an `Arc`; dropping it closes the
/// publishing connection (subscriptions live on until dropped).
pub struct MqttBus {
    settings: Arc<MqttSettings>,
    qos: QoS,
    client: AsyncClient,
    /// Keeps publishes entering the client in the same order as their waiters enter `tracker`.
    send_order: tokio::sync::Mutex<()>,
    tracker: Arc<Mutex<PublishTracker>>,
    connected: Arc<AtomicBool>,
    _driver: AbortOnDrop,
}

impl MqttBus {
    /// Starts the publishing connection and returns at once; it connects (and reconnects)
    /// in the background, and publishes wait meanwhile.
    pub fn connect(settings: MqttSettings) -> Result<Self, BusError> {
        let qos = settings.qos()?;
        let mut options = settings.options(&settings.client_id, true);
        if let Some(will) = &settings.last_will {
            let will_qos = rumqttc::qos(will.qos)
                .map_err(|_| BusError::Refused(format!("MQTT last will qos must be 0, 1 or 2, not {}", will.qos)))?;
            if !topic::is_valid_topic(&will.topic) {
                return Err(BusError::Refused(format!(
                    "'{}' is not a topic a last will can be published on",
                    will.topic
                )));
            }
            options.set_last_will(rumqttc::LastWill::new(&will.topic, will.payload.to_vec(), will_qos, will.retain));
        }
        let settings = Arc::new(settings);
        let (client, mut eventloop) = AsyncClient::new(options, PUBLISH_QUEUE);
        settings.set_connect_timeout(&mut eventloop);
        let tracker = Arc::new(Mutex::new(PublishTracker::default()));
        let connected = Arc::new(AtomicBool::new(false));
        let on_event = {
            let tracker = tracker.clone();
            move |event: Event| lock(&tracker).on_event(&event)
        };
        let driver = tokio::spawn(drive(
            eventloop,
            settings.client_id.clone(),
            settings.max_reconnect_interval,
            connected.clone(),
            on_event,
            std::future::pending(),
            None,
        ));
        Ok(Self {
            settings,
            qos,
            client,
            send_order: tokio::sync::Mutex::new(()),
            tracker,
            connected,
            _driver: AbortOnDrop(driver),
        })
    }
}

impl MqttBus {
    /// Like [`Bus::publish`], with the MQTT retain flag: with `retain`, the broker keeps the
    /// message as the topic's last known value for subscribers to come.
    pub async fn publish_retained(&self, topic: &str, payload: Bytes, retain: bool) -> Result<(), BusError> {
        if !topic::is_valid_topic(topic) {
            return Err(BusError::Refused(format!("'{topic}' is not a topic one can publish on")));
        }
        // Headers take at most 5 bytes plus the topic; a packet over the limit would break the connection.
        if payload.len() + topic.len() + 5 > self.settings.max_packet_size {
            return Err(BusError::Refused(format!(
                "a message of {} bytes exceeds the MQTT max packet size of {} bytes",
                payload.len(),
                self.settings.max_packet_size
            )));
        }
        let (tx, rx) = oneshot::channel();
        {
            let _order = self.send_order.lock().await;
            lock(&self.tracker).queued.push_back(tx);
            // If this future is dropped before the client took the request, take the waiter back.
            let mut unqueue = Unqueue(Some(&self.tracker));
            let sent = self.client.publish_bytes(topic, self.qos, retain, payload).await;
            if sent.is_ok() {
                unqueue.0 = None;
            }
            sent.map_err(|_| BusError::Closed)?;
        }
        rx.await.map_err(|_| BusError::Closed)?
    }
}

#[async_trait]
impl Bus for MqttBus {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), BusError> {
        self.publish_retained(topic, payload, false).await
    }

    async fn subscribe(&self, filters: &[String], options: SubscribeOptions) -> Result<Subscription, BusError> {
        subscribe(&self.settings, filters, options).await
    }

    fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn describe(&self) -> String {
        self.settings.url()
    }
}

type Waiter = oneshot::Sender<Result<(), BusError>>;

/// Matches publishes to the broker's acks: the client hands requests to the connection in
/// order, so the n-th new `Outgoing::Publish` is the n-th queued waiter; then its packet id
/// identifies it until `PUBACK`/`PUBCOMP`.
#[derive(Default)]
struct PublishTracker {
    queued: VecDeque<Waiter>,
    inflight: HashMap<u16, Waiter>,
    /// A publish whose packet id was still in use (the broker acked out of order); rumqttc
    /// sends it once the id is free.
    collided: Option<(u16, Waiter)>,
}

impl PublishTracker {
    fn on_event(&mut self, event: &Event) {
        match event {
            Event::Outgoing(Outgoing::Publish(0)) => self.resolve_next(),
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some((id, waiter)) = self.collided.take_if(|(id, _)| id == pkid) {
                    self.inflight.insert(id, waiter);
                } else if !self.inflight.contains_key(pkid) {
                    // Not a retransmission of an unacked publish: a new one.
                    if let Some(waiter) = self.queued.pop_front() {
                        self.inflight.insert(*pkid, waiter);
                    }
                }
            }
            Event::Outgoing(Outgoing::AwaitAck(pkid)) => {
                if let Some(waiter) = self.queued.pop_front() {
                    self.collided = Some((*pkid, waiter));
                }
            }
            Event::Incoming(Incoming::PubAck(ack)) => self.resolve(ack.pkid),
            Event::Incoming(Incoming::PubComp(comp)) => self.resolve(comp.pkid),
            _ => {}
        }
    }

    fn resolve_next(&mut self) {
        if let Some(waiter) = self.queued.pop_front() {
            let _ = waiter.send(Ok(()));
        }
    }

    fn resolve(&mut self, pkid: u16) {
        if let Some(waiter) = self.inflight.remove(&pkid) {
            let _ = waiter.send(Ok(()));
        }
    }
}

/// Removes the last queued waiter unless disarmed (its publish never reached the client).
struct Unqueue<'a>(Option<&'a Mutex<PublishTracker>>);

impl Drop for Unqueue<'_> {
    fn drop(&mut self) {
        if let Some(tracker) = self.0 {
            lock(tracker).queued.pop_back();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Aborts a background task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens the connection of one subscription; resolves once the broker acknowledged the
/// filters (waiting for the broker as long as it takes).
async fn subscribe(
    settings: &MqttSettings,
    filters: &[String],
    options: SubscribeOptions,
) -> Result<Subscription, BusError> {
    if filters.is_empty() {
        return Err(BusError::Refused("a subscription needs at least one topic filter".to_owned()));
    }
    if let Some(bad) = filters.iter().find(|f| !topic::is_valid_filter(f)) {
        return Err(BusError::Refused(format!("'{bad}' is not a valid topic filter")));
    }
    let qos = settings.qos()?;
    let (client_id, clean) = match &options.durable {
        Some(name) => (durable_client_id(name), false),
        None => (format!("{}-sub-{}", settings.client_id, &uuid::Uuid::new_v4().simple().to_string()[..12]), true),
    };
    let mut mqtt_options = settings.options(&client_id, clean);
    mqtt_options.set_manual_acks(true);
    let capacity = options.capacity.max(1);
    let (client, mut eventloop) = AsyncClient::new(mqtt_options, 16);
    settings.set_connect_timeout(&mut eventloop);
    let (tx, rx) = mpsc::channel(capacity);
    let (ready_tx, ready_rx) = oneshot::channel();
    let (due_tx, due_rx) = mpsc::unbounded_channel();
    let window = Arc::new(Window { held: AtomicUsize::new(0), limit: capacity, freed: Notify::new() });
    let acks = Arc::new(InOrderAcks::default());
    let flow = Flow { window: window.clone(), acks: acks.clone(), due: due_rx };
    let inbox = Inbox { tx, window, acks, due: due_tx };
    let stop = inbox.closed();
    let mut handler = SubscriptionHandler {
        client,
        filters: filters.iter().map(|f| SubscribeFilter::new(f.clone(), qos)).collect(),
        subscribed_once: false,
        ready: Some(ready_tx),
        inbox,
    };
    let connected = Arc::new(AtomicBool::new(false));
    let max_backoff = settings.max_reconnect_interval;
    tokio::spawn(drive(eventloop, client_id, max_backoff, connected, move |e| handler.on_event(e), stop, Some(flow)));
    ready_rx.await.map_err(|_| BusError::Closed)??;
    Ok(Subscription::new(rx))
}

/// What a subscription's connection handles with its events.
struct SubscriptionHandler {
    client: AsyncClient,
    filters: Vec<SubscribeFilter>,
    subscribed_once: bool,
    ready: Option<oneshot::Sender<Result<(), BusError>>>,
    inbox: Inbox,
}

impl SubscriptionHandler {
    fn on_event(&mut self, event: Event) {
        match event {
            Event::Incoming(Incoming::ConnAck(connack)) => {
                self.inbox.acks.new_session();
                if !connack.session_present || !self.subscribed_once {
                    self.subscribed_once = true;
                    if let Err(e) = self.client.try_subscribe_many(self.filters.clone()) {
                        warn!(error = %e, "MQTT subscribe could not be queued.");
                    }
                }
            }
            Event::Incoming(Incoming::SubAck(suback)) => {
                let refused = suback.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure));
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(if refused {
                        Err(BusError::Refused("the MQTT broker refused the subscription".to_owned()))
                    } else {
                        Ok(())
                    });
                } else if refused {
                    warn!("MQTT broker refused a resubscription; no messages will arrive.");
                }
            }
            Event::Incoming(Incoming::Publish(publish)) => {
                // A broker that kept the session delivers before it answers the subscribe: the
                // subscription is live, and its consumer must start, or a full window would keep
                // the connection from ever reading that answer.
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
                self.inbox.push(publish);
            }
            _ => {}
        }
    }
}

/// The deliveries one subscription holds in memory, from their arrival until the consumer
/// acks or drops them; its connection reads from the broker only while fewer than `limit`.
struct Window {
    held: AtomicUsize,
    limit: usize,
    freed: Notify,
}

impl Window {
    fn is_open(&self) -> bool {
        self.held.load(Ordering::Acquire) < self.limit
    }

    fn take(self: &Arc<Self>) -> Slot {
        self.held.fetch_add(1, Ordering::AcqRel);
        Slot(self.clone())
    }
}

/// One delivery's place in its subscription's [`Window`], given back when dropped.
struct Slot(Arc<Window>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

/// Acks due on the connection numbered `.0` (see [`InOrderAcks::session`]).
type DueAcks = (u64, Vec<(QoS, u16)>);

/// Where a subscription's deliveries go: to the consumer, each holding a [`Slot`]; their
/// acks come back to the connection through `due`.
struct Inbox {
    tx: mpsc::Sender<Delivery>,
    window: Arc<Window>,
    acks: Arc<InOrderAcks<(QoS, u16)>>,
    due: mpsc::UnboundedSender<DueAcks>,
}

impl Inbox {
    /// Resolves when the consumer dropped its [`Subscription`].
    fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let tx = self.tx.clone();
        async move { tx.closed().await }
    }

    fn push(&self, publish: Publish) {
        let slot = self.window.take();
        let delivery = if publish.qos == QoS::AtMostOnce {
            Delivery::new(publish.topic, publish.payload)
        } else {
            let ticket = self.acks.register((publish.qos, publish.pkid));
            let (acks, due) = (self.acks.clone(), self.due.clone());
            Delivery::with_acker(
                publish.topic,
                publish.payload,
                Box::new(move || {
                    Box::pin(async move {
                        let now_due = acks.ack(ticket);
                        if !now_due.is_empty() {
                            due.send((ticket.session(), now_due)).map_err(|_| BusError::Closed)?;
                        }
                        Ok(())
                    })
                }),
            )
        };
        // The channel has room: it holds `limit` deliveries and each one in it holds a slot,
        // of which fewer than `limit` were taken when the connection read this one.
        if let Err(mpsc::error::TrySendError::Full(d)) = self.tx.try_send(delivery.holding(slot)) {
            tracing::error!(topic = %d.topic, "MQTT subscription queue unexpectedly full; message left unacknowledged.");
        }
    }
}

/// The part of a subscription's connection that the driving loop sees.
struct Flow {
    window: Arc<Window>,
    acks: Arc<InOrderAcks<(QoS, u16)>>,
    due: mpsc::UnboundedReceiver<DueAcks>,
}

/// Writes acks straight to the connection, without reading from it (a paused subscription
/// still acknowledges). Acks of an earlier connection are void: the broker redelivers
/// those messages, and their packet ids may now name others.
async fn write_acks(eventloop: &mut EventLoop, acks: &InOrderAcks<(QoS, u16)>, (session, due): DueAcks) {
    if session != acks.session() {
        return;
    }
    let Some(network) = eventloop.network.as_mut() else { return };
    for (qos, pkid) in due {
        let request = match qos {
            QoS::AtMostOnce => continue,
            QoS::AtLeastOnce => Request::PubAck(PubAck::new(pkid)),
            QoS::ExactlyOnce => Request::PubRec(PubRec::new(pkid)),
        };
        match eventloop.state.handle_outgoing_packet(request) {
            Ok(Some(packet)) => {
                // The state queued an `Outgoing` event for `poll` to report: nobody needs it.
                if matches!(
                    eventloop.state.events.back(),
                    Some(Event::Outgoing(Outgoing::PubAck(_) | Outgoing::PubRec(_)))
                ) {
                    eventloop.state.events.pop_back();
                }
                if let Err(error) = network.write(packet).await {
                    debug!(%error, "MQTT ack not written; the broker will deliver the message again.");
                    return;
                }
            }
            Ok(None) => {}
            Err(error) => debug!(%error, "MQTT ack refused by the client state."),
        }
    }
    if let Err(error) = network.flush().await {
        debug!(%error, "MQTT acks not flushed; the broker will deliver the messages again.");
    }
}

/// Polls one connection until `stop` resolves: reconnects with backoff (up to `max_backoff`
/// between attempts) and sends again
/// what the broker had not acknowledged, even when it kept no session. With a `flow` (a
/// subscription), reads only while its window is open, and writes acks as they come due.
async fn drive(
    mut eventloop: EventLoop,
    client_id: String,
    max_backoff: Duration,
    connected: Arc<AtomicBool>,
    mut on_event: impl FnMut(Event) + Send,
    stop: impl Future<Output = ()> + Send,
    flow: Option<Flow>,
) {
    tokio::pin!(stop);
    let mut backoff = MIN_BACKOFF;
    let mut unacked: VecDeque<Request> = VecDeque::new();
    let (window, acks, mut due) = match flow {
        Some(f) => (Some(f.window), Some(f.acks), Some(f.due)),
        None => (None, None, None),
    };
    loop {
        let open = window.as_ref().is_none_or(|w| w.is_open());
        let linked = eventloop.network.is_some();
        tokio::select! {
            biased;
            () = &mut stop => {
                // Acks given before the consumer went away still reach the broker.
                if let (Some(due), Some(acks), true) = (due.as_mut(), &acks, linked) {
                    while let Ok(d) = due.try_recv() {
                        write_acks(&mut eventloop, acks, d).await;
                    }
                }
                return;
            }
            Some(d) = async { match due.as_mut() { Some(due) => due.recv().await, None => std::future::pending().await } }, if linked => {
                if let Some(acks) = &acks {
                    write_acks(&mut eventloop, acks, d).await;
                }
            }
            () = async { match &window { Some(w) => w.freed.notified().await, None => std::future::pending().await } }, if !open => {}
            polled = eventloop.poll(), if open => match polled {
                Ok(event) => {
                    if let Event::Incoming(Incoming::ConnAck(connack)) = &event {
                        // rumqttc drops its pending list when the broker kept no session: restore it.
                        eventloop.pending.extend(unacked.drain(..));
                        connected.store(true, Ordering::Relaxed);
                        backoff = MIN_BACKOFF;
                        info!(%client_id, session_present = connack.session_present, "MQTT connected.");
                    }
                    on_event(event);
                }
                Err(e) => {
                    unacked.extend(eventloop.pending.drain(..));
                    let lost = connected.swap(false, Ordering::Relaxed);
                    if matches!(e, ConnectionError::RequestsDone) {
                        return;
                    }
                    if lost {
                        warn!(%client_id, error = %e, "MQTT connection lost; reconnecting.");
                    } else if backoff == MIN_BACKOFF || matches!(e, ConnectionError::ConnectionRefused(_)) {
                        warn!(%client_id, error = %e, "MQTT broker unreachable; retrying.");
                    } else {
                        debug!(%client_id, error = %e, ?backoff, "MQTT connection failed; retrying.");
                    }
                    tokio::select! {
                        biased;
                        () = &mut stop => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(max_backoff);
                }
            },
        }
    }
}
