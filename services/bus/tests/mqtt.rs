//! The MQTT backend against a real Mosquitto.

mod suite;

use std::sync::Arc;

use async_trait::async_trait;
use oxedge_bus::{Bus, MqttBus, MqttSettings};
use oxedge_testkit::mosquitto::{private_mosquitto, test_mqtt, TestMqtt};
use suite::Backend;

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
