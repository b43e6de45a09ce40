//! The NATS backend against a real nats-server with JetStream.

use std::sync::Arc;

use async_trait::async_trait;
use oxedge_bus::nats::JetStreamSettings;
use oxedge_bus::{Bus, NatsBus, NatsSettings};
use oxedge_testkit::nats::{private_nats, test_nats, TestNats};

use crate::shared_suite;
use crate::suite::{self, Backend};

struct Nats {
    url: String,
    _shared: Option<TestNats>,
}

#[async_trait]
impl Backend for Nats {
    async fn bus(&self, name: &str) -> Arc<dyn Bus> {
        let mut settings = NatsSettings::new(&self.url, name);
        // Short, so that an unacked message comes back within the test.
        settings.jetstream = Some(JetStreamSettings { ack_wait_secs: 1, ..JetStreamSettings::default() });
        Arc::new(NatsBus::connect(settings).await.unwrap())
    }
}

async fn shared() -> Option<Nats> {
    let server = test_nats().await?;
    Some(Nats { url: server.url.clone(), _shared: Some(server) })
}

shared_suite!(shared());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_resolves_only_once_the_broker_acknowledged() {
    let Some(mut server) = private_nats().await else { return };
    let backend = Nats { url: format!("nats://127.0.0.1:{}", server.port()), _shared: None };
    suite::publish_resolves_only_once_the_broker_acknowledged(&backend, &mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_publisher_and_subscriber_continue() {
    let Some(mut server) = private_nats().await else { return };
    let backend = Nats { url: format!("nats://127.0.0.1:{}", server.port()), _shared: None };
    suite::after_a_broker_restart_publisher_and_subscriber_continue(&backend, &mut server).await;
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = NatsBus::connect(NatsSettings::new(format!("nats://127.0.0.1:{port}"), "x")).await.err().unwrap();
    assert!(err.to_string().contains("cannot connect to NATS"), "{err}");
}
