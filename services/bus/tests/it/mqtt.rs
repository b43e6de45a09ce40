//! The MQTT backend against a real Mosquitto.

use std::sync::Arc;

use async_trait::async_trait;
use oxedge_bus::{Bus, MqttBus, MqttSettings};
use oxedge_testkit::mosquitto::{private_mosquitto, test_mqtt, TestMqtt};

use crate::shared_suite;
use crate::suite::{self, Backend};

struct Mosquitto {
    host: String,
    port: u16,
    _shared: Option<TestMqtt>,
}

#[async_trait]
impl Backend for Mosquitto {
    async fn bus(&self, name: &str) -> Arc<dyn Bus> {
        let id = format!("{name}-{}", uuid::Uuid::new_v4().simple());
        Arc::new(MqttBus::connect(MqttSettings::new(&self.host, self.port, id)).unwrap())
    }
}

async fn shared() -> Option<Mosquitto> {
    let broker = test_mqtt().await?;
    Some(Mosquitto { host: broker.host.clone(), port: broker.port, _shared: Some(broker) })
}

shared_suite!(shared());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_resolves_only_once_the_broker_acknowledged() {
    let Some(mut server) = private_mosquitto(false).await else { return };
    let backend = Mosquitto { host: "127.0.0.1".into(), port: server.port(), _shared: None };
    suite::publish_resolves_only_once_the_broker_acknowledged(&backend, &mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_publisher_and_subscriber_continue() {
    let Some(mut server) = private_mosquitto(false).await else { return };
    let backend = Mosquitto { host: "127.0.0.1".into(), port: server.port(), _shared: None };
    suite::after_a_broker_restart_publisher_and_subscriber_continue(&backend, &mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_subscribes_durably_under_its_own_client_id() {
    let Some(b) = shared().await else { return };
    let id = format!("svc-{}", uuid::Uuid::new_v4().simple());
    let bus = Arc::new(MqttBus::connect(MqttSettings::new(&b.host, b.port, id.clone())).unwrap());
    suite::a_service_subscribes_durably_under_its_own_client_id(bus, &id).await;
}

/// The resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Four publishers flat out, 160 MB in all, against a consumer that first acks nothing,
/// then acks slowly: the subscription never holds more than its capacity, the backlog
/// waits at the broker, and every message arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_under_a_flood_holds_at_most_its_capacity_and_loses_nothing() {
    use std::collections::HashSet;
    use std::time::Duration;

    use oxedge_bus::SubscribeOptions;

    const CAPACITY: usize = 64;
    const PUBLISHERS: usize = 4;
    const EACH: usize = 5_000;
    const SIZE: usize = 8 * 1024;
    let Some(server) = private_mosquitto(false).await else { return };
    let settings = |id: String| MqttSettings::new("127.0.0.1", server.port(), id);
    let consumer = MqttBus::connect(settings("flood-consumer".into())).unwrap();
    let options = SubscribeOptions { durable: Some("flood-consumer".into()), capacity: CAPACITY };
    let mut sub = consumer.subscribe(&["flood/#".to_owned()], options).await.unwrap();
    let rss_before = rss_kib();

    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let bus = MqttBus::connect(settings(format!("flood-publisher-{p}"))).unwrap();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let mut payload = vec![b'x'; SIZE];
                    payload[..16].copy_from_slice(format!("{p:07}:{i:08}").as_bytes());
                    bus.publish(&format!("flood/{p}"), payload.into()).await.unwrap();
                }
            })
        })
        .collect();

    // Nothing acked: exactly `CAPACITY` deliveries come, however many wait at the broker.
    let mut held = Vec::new();
    for _ in 0..CAPACITY {
        let d = tokio::time::timeout(Duration::from_secs(30), sub.next()).await;
        held.push(d.expect("a delivery within 30 s").expect("subscription open"));
    }
    let more = tokio::time::timeout(Duration::from_millis(1500), sub.next()).await;
    assert!(more.is_err(), "a subscription holding its capacity unacked receives no more");

    // Then slowly, acking as it goes.
    let total = PUBLISHERS * EACH;
    let mut seen = HashSet::new();
    let (mut received, mut peak_rss) = (0, rss_before);
    let mut received_when_published = None;
    while received < total {
        if received_when_published.is_none() && publishers.iter().all(|p| p.is_finished()) {
            received_when_published = Some(received + held.len());
        }
        if held.is_empty() {
            let d = tokio::time::timeout(Duration::from_secs(30), sub.next()).await;
            held.push(d.expect("a delivery within 30 s").expect("subscription open"));
        }
        for d in held.drain(..) {
            received += 1;
            seen.insert(String::from_utf8_lossy(&d.payload[..16]).into_owned());
            d.ack().await.unwrap();
            if received % 8 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if received % 1000 == 0 {
            peak_rss = peak_rss.max(rss_kib());
        }
    }
    for p in publishers {
        p.await.unwrap();
    }
    assert_eq!(seen.len(), total, "every message arrives, none twice");
    assert!(tokio::time::timeout(Duration::from_millis(500), sub.next()).await.is_err(), "nothing more");
    let backlog = total - received_when_published.unwrap_or(total);
    let grown = peak_rss.saturating_sub(rss_before);
    eprintln!("flood: {backlog} messages waited at the broker when publishing ended; RSS grew by {grown} KiB");
    // 160 MB went through; what the subscription holds is 64 × 8 KiB.
    assert!(grown < 32 * 1024, "RSS grew by {grown} KiB");
}

/// The last will reaches a subscriber when the connection that set it ends without a
/// DISCONNECT (here: the bus is dropped, its socket closed), and not while it lives; the
/// reconnection backoff is capped by `max_reconnect_interval`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_will_is_published_when_the_connection_drops_and_reconnects_are_capped() {
    use std::time::{Duration, Instant};

    use oxedge_bus::{MqttLastWill, SubscribeOptions};

    let Some(mut server) = private_mosquitto(false).await else { return };
    let port = server.port();
    let id = |tag: &str| format!("{tag}-{}", uuid::Uuid::new_v4().simple());
    let watcher = MqttBus::connect(MqttSettings::new("127.0.0.1", port, id("watcher"))).unwrap();
    let mut wills = watcher.subscribe(&["wills/#".to_owned()], SubscribeOptions::default()).await.unwrap();

    let mut settings = MqttSettings::new("127.0.0.1", port, id("willing"));
    settings.last_will =
        Some(MqttLastWill { topic: "wills/app".into(), payload: "gone".into(), qos: 1, retain: false });
    settings.max_reconnect_interval = Duration::from_millis(300);
    let bus = MqttBus::connect(settings).unwrap();
    bus.publish("alive/app", "here".into()).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(500), wills.next()).await.is_err(), "no will while connected");

    // The broker goes away for longer than the default 5 s cap would allow to notice quickly.
    server.stop().await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    server.start().await.unwrap();
    let back = Instant::now();
    // A new subscription: the old one may still be waiting to reconnect.
    let mut wills = watcher.subscribe(&["wills/#".to_owned()], SubscribeOptions::default()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), bus.publish("alive/app", "again".into()))
        .await
        .expect("reconnected within the capped backoff")
        .unwrap();
    let reconnect = back.elapsed();
    assert!(reconnect < Duration::from_secs(2), "reconnected {reconnect:?} after the broker came back");

    drop(bus);
    let will = tokio::time::timeout(Duration::from_secs(10), wills.next())
        .await
        .expect("the will within 10 s of the connection dropping")
        .expect("subscription open");
    assert_eq!(will.topic, "wills/app");
    assert_eq!(&will.payload[..], b"gone");

    let mut bad = MqttSettings::new("127.0.0.1", port, id("bad-will"));
    bad.last_will = Some(MqttLastWill { topic: "wills/#".into(), payload: "x".into(), qos: 1, retain: false });
    assert!(MqttBus::connect(bad).is_err(), "a will on a filter is refused");
}
