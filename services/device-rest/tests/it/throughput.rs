//! Throughput of pushed readings: concurrent clients POST Float64 readings for a few seconds;
//! every one answered 200 must have been published, and is counted by a subscriber. Ignored in
//! the normal run (measurements; scripts/test.sh --soak runs them):
//! `cargo test --release -p oxedge-device-rest --test it -- throughput:: --ignored --nocapture --test-threads 1`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxedge_bus::{Bus, BusConfig, BusType, InProcessBus, SubscribeOptions};

use crate::common::*;

const DEVICES: &str = r#"
deviceList:
  - { name: "rest-sensor-01", profileName: "rest-sensor", protocols: { other: {} } }
"#;

const CLIENTS: u64 = 32;
const RUN_FOR: Duration = Duration::from_secs(5);

/// Pushes readings to `h` from [`CLIENTS`] clients for [`RUN_FOR`] while `subscriber` counts
/// the events; prints and checks the figures.
async fn measure(h: Harness, subscriber: Arc<dyn Bus>, bus: &str) {
    let filter = format!("edgex/events/device/{SERVICE}/#");
    let mut events = subscriber.subscribe(&[filter], SubscribeOptions::default()).await.unwrap();
    let published = Arc::new(AtomicU64::new(0));
    let counter = published.clone();
    tokio::spawn(async move {
        while let Some(delivery) = events.next().await {
            counter.fetch_add(1, Ordering::Relaxed);
            delivery.ack().await.expect("ack");
        }
    });

    let url = h.ds.url("/resource/rest-sensor-01/float64");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut other, mut n) = (0u64, 0u64, 0u64);
            while started.elapsed() < RUN_FOR {
                n += 1;
                let res = client.post(&url).header("content-type", "text/plain").body(format!("{c}.{n}")).send().await;
                match res {
                    Ok(r) if r.status() == 200 => ok += 1,
                    _ => other += 1,
                }
            }
            (ok, other)
        }));
    }
    let (mut ok, mut other) = (0, 0);
    for t in tasks {
        let (o, e) = t.await.unwrap();
        ok += o;
        other += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    wait_until("every accepted reading is counted", || async { published.load(Ordering::Relaxed) >= ok }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "device-rest push, {bus}: {CLIENTS} clients, {elapsed:.1} s: {ok} readings accepted ({:.0}/s), {} published, \
         {other} refused",
        ok as f64 / elapsed,
        published.load(Ordering::Relaxed)
    );
    assert_eq!(other, 0, "no reading refused");
    assert_eq!(published.load(Ordering::Relaxed), ok, "every accepted reading published once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --release --ignored --nocapture"]
async fn pushed_readings_per_second_on_the_in_process_bus() {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    let h = start_on(bus.clone(), bus.clone(), DEVICES, &["rest-sensor-01"], |_| ()).await;
    measure(h, bus, "in-process bus").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run with --release --ignored --nocapture"]
async fn pushed_readings_per_second_on_mosquitto_qos1() {
    let Some(mqtt) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let connect = |name: &str| {
        let cfg = BusConfig {
            kind: BusType::Mqtt,
            url: mqtt.url.clone(),
            client_id: format!("{name}-{}", std::process::id()),
            qos: 1,
            ..BusConfig::default()
        };
        async move { oxedge_bus::connect(&cfg, "device-rest-bench").await.unwrap() }
    };
    let (md_bus, bus, subscriber) = (connect("md").await, connect("ds").await, connect("sub").await);
    let h = start_on(md_bus, bus, DEVICES, &["rest-sensor-01"], |_| ()).await;
    measure(h, subscriber, "Mosquitto, QoS 1").await;
}
