//! What devices publish while device-mqtt is away, against a real Mosquitto and the paho-mqtt
//! device simulator: with the persistent session (the default) the broker keeps it, also
//! across its own restart when it persists, and the service's next run publishes every
//! reading, in order; without it, it is lost; and a reading is acknowledged only once its
//! event is published, or dropped and counted.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use oxedge_bus::{Bus, MqttBus, MqttSettings, SubscribeOptions, Subscription};
use oxedge_device_mqtt::SERVICE_NAME;
use serde_json::{json, Value as Json};

use crate::common::{self, next_event, wait_until, Harness, Simulator};

const SENSOR: &str = "MQTT-Sensor";
/// Readings published while the service is away.
const AWAY: i64 = 500;

/// The value of the `count` reading of `event`.
fn count(event: &Json) -> i64 {
    assert_eq!(event["readings"][0]["resourceName"], json!("count"), "{event}");
    event["readings"][0]["value"].as_str().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{event}"))
}

/// Publishes one reading and waits for its event, so that the service is known to listen.
async fn one_reading_goes_through(sim: &mut Simulator, events: &mut Subscription, value: i64) {
    sim.run(&format!(r#"publish count {{"count": {value}}}"#)).await;
    assert_eq!(count(&next_event(events, Duration::from_secs(10)).await), value);
}

/// Stops the service, has the device publish `AWAY` readings (0, 1, …) at QoS 1 meanwhile,
/// and starts the service again with the same client id.
async fn publish_while_away(h: &mut Harness, sim: &mut Simulator, events: &mut Subscription) {
    h.stop_service().await;
    sim.send(&format!("flood count count {AWAY}"));
    sim.expect("done flood").await;
    assert!(events.try_next().is_none(), "no event while the service is stopped");
    h.start_service(&json!({})).await;
    h.wait_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_published_while_the_service_is_away_reach_the_bus_when_it_returns() {
    let Some(mqtt) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let prefix = common::unique_prefix();
    let mut h = Harness::start(&mqtt.url, &prefix, &[("keeper", SENSOR)]).await;
    h.wait_healthy().await;
    let mut events = h.events().await;
    let mut sim = Simulator::start(&mqtt.host, mqtt.port, "keeper", &prefix, &json!({})).await;
    one_reading_goes_through(&mut sim, &mut events, -1).await;

    publish_while_away(&mut h, &mut sim, &mut events).await;
    let mut values = Vec::new();
    let mut distinct = HashSet::new();
    while distinct.len() < AWAY as usize {
        let value = count(&next_event(&mut events, Duration::from_secs(20)).await);
        distinct.insert(value);
        values.push(value);
    }
    // QoS 1 may repeat a reading, never skip or reorder one: the first sight of each is in order.
    let mut seen = HashSet::new();
    let firsts: Vec<i64> = values.iter().copied().filter(|v| seen.insert(*v)).collect();
    assert_eq!(firsts, (0..AWAY).collect::<Vec<_>>(), "readings in the order published");
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Some(d) = events.try_next() {
        let envelope = oxedge_bus::MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap();
        values.push(count(&envelope.payload_as::<Json>().unwrap()["event"]));
    }
    let repeated = values.len() - AWAY as usize;
    assert!(repeated <= AWAY as usize, "{repeated} repeated readings");
    println!("{AWAY} readings published while the service was away: all delivered, {repeated} repeated");

    one_reading_goes_through(&mut sim, &mut events, AWAY).await;
    assert_eq!(h.metric("device_mqtt_incoming_messages_total").await, (values.len() + 1) as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_queued_for_the_service_survive_a_restart_of_a_persistent_broker() {
    let Some(mut broker) = oxedge_testkit::mosquitto::private_mosquitto(true).await else { return };
    let port = broker.port();
    let prefix = common::unique_prefix();
    let mut h = Harness::start(&format!("mqtt://127.0.0.1:{port}"), &prefix, &[("survivor", SENSOR)]).await;
    h.wait_healthy().await;
    let mut events = h.events().await;
    let mut sim = Simulator::start("127.0.0.1", port, "survivor", &prefix, &json!({})).await;
    one_reading_goes_through(&mut sim, &mut events, -1).await;

    // The service is away while the device publishes, then the broker restarts (saving its
    // sessions on the way down), then the service comes back.
    h.stop_service().await;
    sim.send(&format!("flood count count {AWAY}"));
    sim.expect("done flood").await;
    broker.stop().await;
    broker.start().await.unwrap();
    sim.expect("subscribed").await;
    h.start_service(&json!({})).await;
    h.wait_healthy().await;
    let mut distinct = HashSet::new();
    let mut firsts = Vec::new();
    while distinct.len() < AWAY as usize {
        let value = count(&next_event(&mut events, Duration::from_secs(20)).await);
        if distinct.insert(value) {
            firsts.push(value);
        }
    }
    assert_eq!(firsts, (0..AWAY).collect::<Vec<_>>(), "readings in the order published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_persistent_session_readings_published_while_away_are_lost() {
    let Some(mqtt) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let prefix = common::unique_prefix();
    let bus = Arc::new(oxedge_bus::InProcessBus::new());
    let clean = json!({"persistent_session": false});
    let mut h = Harness::start_with(&mqtt.url, &prefix, &[("forgetter", SENSOR)], bus, &clean).await;
    h.wait_healthy().await;
    let mut events = h.events().await;
    let mut sim = Simulator::start(&mqtt.host, mqtt.port, "forgetter", &prefix, &json!({})).await;
    one_reading_goes_through(&mut sim, &mut events, -1).await;

    publish_while_away(&mut h, &mut sim, &mut events).await;
    // The broker kept nothing: the first event after the restart is the next reading.
    one_reading_goes_through(&mut sim, &mut events, AWAY).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(events.try_next().is_none(), "no other event");
    assert_eq!(h.metric("device_mqtt_incoming_messages_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_bus_refuses_stays_unacked_at_a_stop_then_is_dropped_without_blocking_the_rest() {
    let Some(mqtt) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let prefix = common::unique_prefix();
    let device = format!("refused-{}", prefix.trim_end_matches('/'));
    // The service's own bus: the same Mosquitto, with packets of 4 KiB at most.
    let settings = MqttSettings {
        max_packet_size: 4096,
        ..MqttSettings::new(&mqtt.host, mqtt.port, format!("bus-{}", prefix.trim_end_matches('/')))
    };
    let bus: Arc<dyn Bus> = Arc::new(MqttBus::connect(settings).unwrap());
    let filter = format!("edgex/events/device/{SERVICE_NAME}/+/{device}/#");
    let mut events = bus.subscribe(&[filter], SubscribeOptions::default()).await.unwrap();
    let patient = json!({"refused_retry": "1h"});
    let mut h = Harness::start_with(&mqtt.url, &prefix, &[(&device, SENSOR)], bus, &patient).await;
    h.wait_healthy().await;
    let mut sim = Simulator::start(&mqtt.host, mqtt.port, &device, &prefix, &json!({})).await;
    one_reading_goes_through(&mut sim, &mut events, -1).await;

    // An event over 4 KiB, which the bus refuses, then a reading that waits behind it.
    let label = "x".repeat(5000);
    sim.run(&format!(r#"publish label {{"label": "{label}"}}"#)).await;
    sim.run(r#"publish count {"count": 1}"#).await;
    wait_until("both readings received", Duration::from_secs(10), async || {
        h.metric("device_mqtt_incoming_messages_total").await == 3.0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(events.try_next().is_none(), "the reading behind the refused one waits");
    assert_eq!(h.metric("device_mqtt_incoming_rejected_total{reason=\"refused\"}").await, 0.0);

    // Stopped while retrying: neither is acknowledged, so the next run gets both again, drops
    // the refused one after its (now short) retry, and the other follows.
    h.stop_service().await;
    h.start_service(&json!({"refused_retry": "1s"})).await;
    assert_eq!(count(&next_event(&mut events, Duration::from_secs(20)).await), 1);
    assert_eq!(h.metric("device_mqtt_incoming_rejected_total{reason=\"refused\"}").await, 1.0);
    assert_eq!(h.metric("device_mqtt_incoming_messages_total").await, 2.0);
    one_reading_goes_through(&mut sim, &mut events, 2).await;
}
