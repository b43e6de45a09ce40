//! How many readings per second device-mqtt turns into events, with simulators publishing
//! flat out (QoS 1) on a real Mosquitto. A measurement, not a check: run it on its own, in
//! release, and read its output:
//!
//! ```sh
//! cargo test --release -p oxedge-device-mqtt --test it -- throughput:: --ignored --nocapture
//! ```
//!
//! `OXEDGE_MQTT_BENCH_DEVICES` (default 4) devices publish `OXEDGE_MQTT_BENCH_READINGS`
//! (default 10,000) readings each; events go to the in-process bus, so the figure is the
//! driver's and the SDK's, not the service bus's.

use std::time::{Duration, Instant};

use crate::common::{self, Harness, Simulator};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture, in release"]
async fn readings_per_second_from_simulators_publishing_flat_out() {
    let Some(mqtt) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let (devices, per_device) = (env_or("OXEDGE_MQTT_BENCH_DEVICES", 4), env_or("OXEDGE_MQTT_BENCH_READINGS", 10_000));
    let prefix = common::unique_prefix();
    let names: Vec<String> = (1..=devices).map(|i| format!("bench-{i}")).collect();
    let list: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "MQTT-Sensor")).collect();
    let h = Harness::start(&mqtt.url, &prefix, &list).await;
    h.wait_healthy().await;
    let mut events = h.events().await;
    let mut sims = Vec::new();
    for name in &names {
        sims.push(Simulator::start(&mqtt.host, mqtt.port, name, &prefix, &serde_json::json!({})).await);
    }

    let total = devices * per_device;
    let started = Instant::now();
    for sim in &mut sims {
        sim.send(&format!("flood count count {per_device}"));
    }
    let mut received = 0;
    while received < total {
        match tokio::time::timeout(Duration::from_secs(30), events.next()).await {
            Ok(Some(_)) => received += 1,
            _ => panic!("{received} of {total} events after {:?}", started.elapsed()),
        }
    }
    let elapsed = started.elapsed();
    let mut published = Vec::new();
    for sim in &mut sims {
        published.push(sim.expect("done flood").await);
    }
    let rejected = h.metric("device_mqtt_incoming_messages_total").await - total as f64;
    println!(
        "device-mqtt: {total} readings from {devices} devices became events in {:.2} s: {:.0} readings/s \
         (simulators: {published:?}; messages beyond the readings: {rejected})",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
}
