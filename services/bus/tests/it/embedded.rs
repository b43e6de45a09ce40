//! The embedded broker (rumqttd): local links among themselves, and with TCP clients.

use std::process::Stdio;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use oxedge_bus::{Bus, Bytes, EmbeddedBroker, EmbeddedConfig, MqttBus, MqttSettings, SubscribeOptions};

use crate::shared_suite;
use crate::suite::{self, next, scope, Backend, WAIT};

/// One broker per test binary: rumqttd's threads cannot be stopped.
fn broker() -> &'static EmbeddedBroker {
    static BROKER: OnceLock<EmbeddedBroker> = OnceLock::new();
    BROKER.get_or_init(|| {
        let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        EmbeddedBroker::start(EmbeddedConfig { listen, ..EmbeddedConfig::default() }).unwrap()
    })
}

fn tcp_client(name: &str) -> Arc<dyn Bus> {
    let port = broker().listen_addr().port();
    let id = format!("{name}-{}", uuid::Uuid::new_v4().simple());
    Arc::new(MqttBus::connect(MqttSettings::new("127.0.0.1", port, id)).unwrap())
}

struct LocalLinks;

#[async_trait]
impl Backend for LocalLinks {
    async fn bus(&self, name: &str) -> Arc<dyn Bus> {
        broker().bus(&format!("{name}-{}", uuid::Uuid::new_v4().simple())).unwrap()
    }
}

async fn local_links() -> Option<LocalLinks> {
    Some(LocalLinks)
}

shared_suite!(local_links());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_local_link_publishes_reaches_tcp_clients_and_mosquitto_sub() {
    let s = scope();
    let local = LocalLinks.bus("local-pub").await;
    let mut tcp_sub = tcp_client("tcp-sub").subscribe(&[format!("{s}/#")], SubscribeOptions::default()).await.unwrap();
    let port = broker().listen_addr().port().to_string();
    let cli = tokio::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &port, "-q", "1", "-C", "1", "-W", "10", "-v", "-t", &format!("{s}/#")])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let Ok(cli) = cli else {
        panic!("mosquitto_sub is missing: apt-get install -y mosquitto-clients");
    };
    // mosquitto_sub has no "subscribed" signal: publish until it has seen one.
    let topic = format!("{s}/from-local");
    let publisher = local.clone();
    let repeat = tokio::spawn(async move {
        loop {
            publisher.publish(&topic, Bytes::from_static(b"hello")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let out = tokio::time::timeout(WAIT, cli.wait_with_output()).await.unwrap().unwrap();
    repeat.abort();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{s}/from-local hello"));
    let d = next(&mut tcp_sub).await;
    assert_eq!((d.topic.as_str(), &d.payload[..]), (format!("{s}/from-local").as_str(), &b"hello"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_tcp_client_publishes_reaches_local_links() {
    let s = scope();
    let mut local_sub =
        LocalLinks.bus("local-sub").await.subscribe(&[format!("{s}/+")], SubscribeOptions::default()).await.unwrap();
    let tcp = tcp_client("tcp-pub");
    tcp.publish(&format!("{s}/from-tcp"), Bytes::from_static(b"hi")).await.unwrap();
    let d = next(&mut local_sub).await;
    assert_eq!((d.topic.as_str(), &d.payload[..]), (format!("{s}/from-tcp").as_str(), &b"hi"[..]));
    d.ack().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_small_messages_pass_through_a_local_link_in_order() {
    let s = scope();
    let bus = LocalLinks.bus("many").await;
    let mut sub = bus.subscribe(&[format!("{s}/n")], SubscribeOptions::default()).await.unwrap();
    let topic = format!("{s}/n");
    let publisher = bus.clone();
    let publishing = tokio::spawn(async move {
        for i in 0..10_000u32 {
            publisher.publish(&topic, Bytes::from(i.to_string())).await.unwrap();
        }
    });
    for i in 0..10_000u32 {
        let d = next(&mut sub).await;
        assert_eq!(d.payload, i.to_string());
        d.ack().await.unwrap();
    }
    publishing.await.unwrap();
}

#[test]
fn a_taken_listen_address_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err =
        EmbeddedBroker::start(EmbeddedConfig { listen: taken.local_addr().unwrap(), ..EmbeddedConfig::default() })
            .err()
            .expect("the address is taken");
    assert!(err.to_string().contains("cannot listen on"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_subscribes_durably_under_its_own_client_id() {
    let id = format!("svc-{}", uuid::Uuid::new_v4().simple());
    suite::a_service_subscribes_durably_under_its_own_client_id(broker().bus(&id).unwrap(), &id).await;
}
