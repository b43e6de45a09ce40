//! device-mqtt against a real Mosquitto and the paho-mqtt device simulator: readings the
//! devices publish become events, GET and PUT go to the devices and back, a silent device
//! times out, malformed messages are counted and dropped, and the service rides out its
//! broker going away.

use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::common::{self, next_event, wait_until, Harness, Simulator, RESPONSE_TIMEOUT};

const SENSOR: &str = "MQTT-Sensor";
const EDGEX_PROFILE: &str = "Test-Device-MQTT-Profile";

fn sensor_state() -> Json {
    json!({"enabled": true, "interval": 10, "label": "roof", "config": {"unit": "C"}, "temperature": 21.5,
           "humidity": 40.25})
}

/// The `(resourceName, value)` of an event's readings; objects as JSON text.
fn readings(event: &Json) -> Vec<(String, String)> {
    event["readings"]
        .as_array()
        .unwrap_or_else(|| panic!("no readings in {event}"))
        .iter()
        .map(|r| {
            let value = match &r["objectValue"] {
                Json::Null => r["value"].as_str().unwrap_or_default().to_owned(),
                object => object.to_string(),
            };
            (r["resourceName"].as_str().unwrap().to_owned(), value)
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_of_every_kind_reach_the_bus_as_events() {
    let Some(mqtt) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let prefix = common::unique_prefix();
    let h = Harness::start(&mqtt.url, &prefix, &[("sensor-1", SENSOR), ("MQTT-test-device", EDGEX_PROFILE)]).await;
    h.wait_healthy().await;
    let mut events = h.events().await;
    let mut sensor = Simulator::start(&mqtt.host, mqtt.port, "sensor-1", &prefix, &sensor_state()).await;
    let mut edgex = Simulator::start(&mqtt.host, mqtt.port, "MQTT-test-device", &prefix, &json!({})).await;

    let object = json!({"unit": "F", "step": 2});
    let cases = [
        (false, "temperature", json!({"temperature": 21.5}), pairs(&[("temperature", "2.15e+01")])),
        (false, "count", json!({"count": 9_007_199_254_740_993_i64}), pairs(&[("count", "9007199254740993")])),
        (false, "climate", json!({"temperature": "19", "humidity": 55.5}), {
            pairs(&[("temperature", "1.9e+01"), ("humidity", "5.55e+01")])
        }),
        (false, "enabled", json!({"enabled": false}), pairs(&[("enabled", "false")])),
        (false, "config", json!({ "config": object }), pairs(&[("config", &object.to_string())])),
        (false, "history", json!({"history": [1.5, 2, -3.25]}), pairs(&[("history", "[1.5e+00, 2e+00, -3.25e+00]")])),
        (true, "allValues", json!({"randfloat32": 1.25, "randfloat64": 99.5, "message": "hello"}), {
            pairs(&[("randfloat32", "1.25e+00"), ("randfloat64", "9.95e+01"), ("message", "hello")])
        }),
    ];
    for (is_edgex, source, payload, expected) in cases {
        let sim = if is_edgex { &mut edgex } else { &mut sensor };
        sim.run(&format!("publish {source} {payload}")).await;
        let event = next_event(&mut events, Duration::from_secs(10)).await;
        assert_eq!(event["sourceName"], json!(source), "{event}");
        assert_eq!(readings(&event), expected, "{event}");
    }
    // EdgeX's event fields: the device, its profile, the units of the profile.
    sensor.run(r#"publish temperature {"temperature": 20}"#).await;
    let event = next_event(&mut events, Duration::from_secs(10)).await;
    assert_eq!((&event["deviceName"], &event["profileName"]), (&json!("sensor-1"), &json!(SENSOR)));
    assert_eq!(event["readings"][0]["units"], json!("degrees Celsius"));
    assert_eq!(event["readings"][0]["valueType"], json!("Float32"));
    assert_eq!(h.metric("device_mqtt_incoming_messages_total").await, 8.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_put_reach_the_device_and_come_back() {
    let Some(mqtt) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let prefix = common::unique_prefix();
    let h = Harness::start(&mqtt.url, &prefix, &[("sensor-2", SENSOR), ("MQTT-test-device", EDGEX_PROFILE)]).await;
    h.wait_healthy().await;
    let mut sensor = Simulator::start(&mqtt.host, mqtt.port, "sensor-2", &prefix, &sensor_state()).await;
    let edgex_state = json!({"randfloat32": 12.5, "randfloat64": 0.25, "message": "hi", "ping": "pong",
                             "json": {"a": [1, 2]}});
    let _edgex = Simulator::start(&mqtt.host, mqtt.port, "MQTT-test-device", &prefix, &edgex_state).await;

    let answer = h.get("sensor-2", "label").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(readings(&answer.body["event"]), pairs(&[("label", "roof")]));
    let answer = h.get("sensor-2", "climate").await;
    assert_eq!(readings(&answer.body["event"]), pairs(&[("temperature", "2.15e+01"), ("humidity", "4.025e+01")]));

    // A device command of two resources: two set requests, the values typed as the device reads them.
    let answer = h.put("sensor-2", "settings", &json!({"enabled": "false", "interval": 30})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut sets = [sensor.expect("set ").await, sensor.expect("set ").await];
    sets.sort();
    assert_eq!(sets, ["set enabled false", "set interval 30"]);
    let answer = h.get("sensor-2", "settings").await;
    assert_eq!(readings(&answer.body["event"]), pairs(&[("enabled", "false"), ("interval", "30")]));
    let answer = h.put("sensor-2", "config", &json!({"config": {"unit": "K"}})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(sensor.expect("set config").await, r#"set config {"unit": "K"}"#);

    // The SDK checks the profile before the device is asked: out of range, read-only.
    let answer = h.put("sensor-2", "interval", &json!({"interval": 0})).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(h.put("sensor-2", "temperature", &json!({"temperature": 1})).await.status, 405);

    // EdgeX's own profile and device.
    let answer = h.get("MQTT-test-device", "allValues").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let expected = [("randfloat32", "1.25e+01"), ("randfloat64", "2.5e-01"), ("message", "hi")];
    assert_eq!(readings(&answer.body["event"]), pairs(&expected));
    assert_eq!(readings(&h.get("MQTT-test-device", "ping").await.body["event"]), pairs(&[("ping", "pong")]));
    let answer = h.put("MQTT-test-device", "randfloat32", &json!({"randfloat32": "42.5"})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = h.get("MQTT-test-device", "randfloat32").await;
    assert_eq!(readings(&answer.body["event"]), pairs(&[("randfloat32", "4.25e+01")]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_times_out_while_the_others_answer() {
    let Some(mqtt) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let prefix = common::unique_prefix();
    let h = Harness::start(&mqtt.url, &prefix, &[("quiet", SENSOR), ("chatty", SENSOR)]).await;
    h.wait_healthy().await;
    let mut quiet = Simulator::start(&mqtt.host, mqtt.port, "quiet", &prefix, &sensor_state()).await;
    let _chatty = Simulator::start(&mqtt.host, mqtt.port, "chatty", &prefix, &sensor_state()).await;
    assert_eq!(h.get("quiet", "label").await.status, 200);
    quiet.run("silent on").await;

    let started = std::time::Instant::now();
    let (silent, other) = tokio::join!(h.get("quiet", "label"), h.get("chatty", "label"));
    assert_eq!(silent.status, 504, "{}", silent.body);
    let message = silent.message();
    assert!(message.contains("quiet") && message.contains("command/quiet/label/get/"), "{message}");
    assert!(
        started.elapsed() >= RESPONSE_TIMEOUT && started.elapsed() < RESPONSE_TIMEOUT * 4,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(h.put("quiet", "label", &json!({"label": "x"})).await.status, 504);

    // No answer is left waiting; the device answers again once it speaks.
    quiet.run("silent off").await;
    assert_eq!(h.get("quiet", "label").await.status, 200);
    assert_eq!(h.metric("device_driver_errors_total").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_counted_and_good_ones_still_flow() {
    let Some(mqtt) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let prefix = common::unique_prefix();
    let h = Harness::start(&mqtt.url, &prefix, &[("sensor-3", SENSOR)]).await;
    h.wait_healthy().await;
    let mut events = h.events().await;
    let mut sim = Simulator::start(&mqtt.host, mqtt.port, "sensor-3", &prefix, &sensor_state()).await;

    let bad = [
        ("raw incoming/data/sensor-3/temperature not json at all", "payload"),
        ("raw incoming/data/sensor-3/temperature [21.5]", "payload"),
        (r#"publish temperature {"humidity": 3}"#, "payload"),
        (r#"publish climate {"temperature": 3}"#, "payload"),
        (r#"publish temperature {"temperature": "warm"}"#, "value"),
        (r#"publish interval {"interval": 70000}"#, "value"),
        (r#"publish nothing {"nothing": 1}"#, "source"),
        (r#"raw incoming/data/ghost/temperature {"temperature": 1}"#, "device"),
        (r#"raw incoming/data/sensor-3 {"temperature": 1}"#, "topic"),
        (r#"raw incoming/data/sensor-3/temperature/extra {"temperature": 1}"#, "topic"),
    ];
    for (line, _) in &bad {
        sim.run(line).await;
    }
    sim.run(r#"publish temperature {"temperature": 30}"#).await;
    let event = next_event(&mut events, Duration::from_secs(10)).await;
    assert_eq!(readings(&event), pairs(&[("temperature", "3e+01")]), "only the good message became an event");

    // Devices are spread over workers: a message of another device may still be on its way.
    for reason in ["payload", "value", "source", "device", "topic"] {
        let expected = bad.iter().filter(|(_, r)| *r == reason).count() as f64;
        let name = format!("device_mqtt_incoming_rejected_total{{reason=\"{reason}\"}}");
        wait_until(&name, Duration::from_secs(5), async || h.metric(&name).await == expected).await;
    }
    assert_eq!(h.metric("device_mqtt_incoming_messages_total").await, bad.len() as f64 + 1.0);
    assert_eq!(h.get("sensor-3", "label").await.status, 200, "commands still work");
    assert!(events.try_next().is_none(), "no other event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_starts_without_its_broker_and_rides_out_a_restart() {
    let Some(mut broker) = oxedge_testkit::mosquitto::private_mosquitto(false).await else { return };
    let port = broker.port();
    broker.stop().await;
    let prefix = common::unique_prefix();
    let h = Harness::start(&format!("mqtt://127.0.0.1:{port}"), &prefix, &[("sensor-4", SENSOR)]).await;

    // Broker down at start: the service serves, says why it is unhealthy, and commands fail fast.
    assert_eq!(h.api.get("/ping").await.status, 200);
    let health = h.api.get("/health").await;
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(health.body.to_string().contains("not connected"), "{}", health.body);
    let answer = h.get("sensor-4", "label").await;
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert!(answer.message().contains("not connected"), "{}", answer.message());

    broker.start().await.unwrap();
    h.wait_healthy().await;
    let mut events = h.events().await;
    let mut sim = Simulator::start("127.0.0.1", port, "sensor-4", &prefix, &sensor_state()).await;
    sim.run(r#"publish temperature {"temperature": 1}"#).await;
    assert_eq!(readings(&next_event(&mut events, Duration::from_secs(10)).await), pairs(&[("temperature", "1e+00")]));
    assert_eq!(h.get("sensor-4", "label").await.status, 200);

    // Broker restarted mid-run: the driver and the simulator reconnect, and everything works again.
    broker.kill().await;
    wait_until("the service sees the broker gone", Duration::from_secs(10), async || {
        h.api.get("/health").await.status == 503
    })
    .await;
    broker.start().await.unwrap();
    sim.expect("subscribed").await;
    h.wait_healthy().await;
    let started = std::time::Instant::now();
    // The driver's subscription may come back a moment after its publishing connection.
    let mut n = 2;
    let event = loop {
        sim.run(&format!(r#"publish temperature {{"temperature": {n}}}"#)).await;
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(500), events.next()).await {
            break oxedge_bus::MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap().payload_as::<Json>().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "no event after the restart");
        n += 1;
    };
    assert_eq!(event["event"]["deviceName"], json!("sensor-4"));
    assert_eq!(h.get("sensor-4", "label").await.status, 200);
}
