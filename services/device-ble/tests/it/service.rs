//! device-ble as a device service, driving simulated peripherals through the `Radio` trait:
//! a real core-metadata (in-process, SQLite in a temporary directory), an in-process bus,
//! the SDK's `serve`, and `profiles/device-ble/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use oxedge_bus::{Bus, SubscribeOptions, Subscription};
use oxedge_device_ble::BleDriver;
use oxedge_device_sdk::config::DeviceServiceConfig;
use serde_json::{json, Value as Json};
use tokio_util::sync::CancellationToken;

use crate::fake::FakeRadio;
use crate::runtime_support::{bus, config, core_metadata, one, Api, CoreMetadata};

const HRM: &str = "C0:FF:EE:00:00:10";
const ENV: &str = "C0:FF:EE:00:00:20";
const TAG: &str = "C0:FF:EE:00:00:30";

/// core-metadata, the bus and device-ble on a fake radio; stops when dropped.
struct Stack {
    md: CoreMetadata,
    api: Api,
    bus: Arc<dyn Bus>,
    _stop: tokio_util::sync::DropGuard,
}

/// Starts the stack with `profiles/device-ble/`'s profiles and watchers (not its devices),
/// then `adjust` on the configuration.
async fn start(radio: FakeRadio, adjust: impl FnOnce(&mut DeviceServiceConfig)) -> Stack {
    let bus = bus();
    let md = core_metadata(bus.clone(), 0).await;
    let files = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles/device-ble");
    let mut cfg = config(md.port);
    cfg.device.profiles_dir = files.join("profiles");
    cfg.device.provision_watchers_dir = files.join("provisionwatchers");
    cfg.device.discovery.enabled = true;
    cfg.driver.insert("scan_duration".into(), json!("200ms"));
    cfg.driver.insert("reconnect_min".into(), json!("100ms"));
    cfg.driver.insert("reconnect_max".into(), json!("200ms"));
    cfg.driver.insert("connect_timeout".into(), json!("2s"));
    adjust(&mut cfg);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = Api::new(format!("http://127.0.0.1:{}/api/v3", listener.local_addr().unwrap().port()));
    let stop = CancellationToken::new();
    let driver = Arc::new(BleDriver::new(Arc::new(radio)));
    tokio::spawn(oxedge_device_sdk::run(
        oxedge_device_sdk::ServiceContext::standalone("device-ble", bus.clone(), stop.clone()),
        cfg,
        driver,
        listener,
    ));
    let stack = Stack { md, api, bus, _stop: stop.drop_guard() };
    wait_until("device-ble is registered and healthy", Duration::from_secs(10), async || {
        stack.api.get("/health").await.status == 200
    })
    .await;
    stack
}

impl Stack {
    /// Adds a device of `profile` at `address` in core-metadata and waits until the service
    /// has it.
    async fn add_device(&self, name: &str, profile: &str, address: &str) {
        let device = json!({
            "name": name, "adminState": "UNLOCKED", "operatingState": "UP",
            "serviceName": "device-ble", "profileName": profile,
            "protocols": { "ble": { "Address": address } }
        });
        let answer = self.md.post("/device", &one("device", device)).await;
        assert_eq!(answer.item(0)["statusCode"], 201, "{answer:?}");
        wait_until("the service has the device", Duration::from_secs(10), async || {
            self.api.get(&format!("/device/name/{name}/nothing")).await.message().contains("nothing")
        })
        .await;
    }

    async fn events(&self, filter: &str) -> Subscription {
        let topic = format!("edgex/events/device/device-ble/{filter}");
        self.bus.subscribe(&[topic], SubscribeOptions::default()).await.unwrap()
    }

    async fn operating_state(&self, device: &str) -> String {
        let answer = self.md.get(&format!("/device/name/{device}")).await;
        answer.body["device"]["operatingState"].as_str().unwrap_or_default().to_owned()
    }
}

async fn wait_until(what: &str, limit: Duration, cond: impl AsyncFn() -> bool) {
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The next event on `sub`, within 5 s.
async fn next_event(sub: &mut Subscription) -> Json {
    let delivery =
        tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("an event within 5 s").unwrap();
    let envelope: Json = serde_json::from_slice(&delivery.payload).unwrap();
    let payload = envelope.get("payload").cloned().unwrap_or(envelope);
    let event = match payload {
        Json::String(b64) => {
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
        }
        other => other,
    };
    event.get("event").cloned().unwrap_or(event)
}

/// A heart rate strap: 0x2A37 notifies `[flags 0, 60 + n]` every 50 ms.
fn heart_rate_strap(radio: &FakeRadio, address: &str, name: &str) {
    radio.add(address, Some(name), &["180D", "180F"]);
    radio.characteristic(address, "180D", "2A37", "n", &[0, 0]);
    radio.characteristic(address, "180D", "2A38", "r", &[1]);
    radio.characteristic(address, "180F", "2A19", "r", &[87]);
    radio.characteristic(address, "1800", "2A00", "r", name.as_bytes());
    radio.notify_every(address, "180D", "2A37", Duration::from_millis(50), |n| vec![0, 60 + (n % 100) as u8]);
}

/// An environmental sensor: 21.50 degC notified every 50 ms (rising 0.01 each), 45.00 %RH,
/// 1013.25 hPa.
fn environment_sensor(radio: &FakeRadio, address: &str) {
    radio.add(address, Some("ENV sensor"), &["181A"]);
    radio.characteristic(address, "181A", "2A6E", "rn", &2150i16.to_le_bytes());
    radio.characteristic(address, "181A", "2A6F", "r", &4500u16.to_le_bytes());
    radio.characteristic(address, "181A", "2A6D", "r", &1_013_250u32.to_le_bytes());
    radio
        .notify_every(address, "181A", "2A6E", Duration::from_millis(50), |n| (2150 + n as i16).to_le_bytes().to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_provisions_what_the_watchers_take_and_their_notifications_become_events() {
    let radio = FakeRadio::default();
    heart_rate_strap(&radio, HRM, "Polar H10 1A2B");
    environment_sensor(&radio, ENV);
    radio.add(TAG, Some("tag"), &["180F"]);
    radio.characteristic(TAG, "180F", "2A19", "r", &[50]);
    let stack = start(radio.clone(), |_| {}).await;
    let mut events = stack.events("BLE-Heart-Rate/#").await;

    let answer = stack.api.post("/discovery", &json!({})).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let strap = "Polar-H10-1A2B-C0FFEE000010";
    let sensor = "ENV-sensor-C0FFEE000020";
    wait_until("the watchers' devices are in core-metadata", Duration::from_secs(10), async || {
        stack.md.get(&format!("/device/name/{sensor}")).await.status == 200
            && stack.md.get(&format!("/device/name/{strap}")).await.status == 200
    })
    .await;
    let device = stack.md.get(&format!("/device/name/{strap}")).await.body["device"].clone();
    assert_eq!(device["profileName"], "BLE-Heart-Rate");
    assert_eq!(device["protocols"]["ble"]["Address"], HRM);
    assert_eq!(device["properties"]["ServiceUuids"], "180D,180F");
    let sensor_device = stack.md.get(&format!("/device/name/{sensor}")).await.body["device"].clone();
    assert_eq!(sensor_device["autoEvents"][0]["sourceName"], "Climate");
    let tags = stack.md.get("/device/service/name/device-ble").await;
    assert_eq!(tags.body["totalCount"], 2, "no watcher takes the battery-only tag: {:?}", tags.body);

    // The strap is connected, HeartRate subscribed, and each notification is an event.
    let mut rates = Vec::new();
    while rates.len() < 3 {
        let event = next_event(&mut events).await;
        assert_eq!((event["deviceName"].as_str(), event["sourceName"].as_str()), (Some(strap), Some("HeartRate")));
        let reading = &event["readings"][0];
        assert_eq!((reading["valueType"].as_str(), reading["units"].as_str()), (Some("Uint8"), Some("bpm")));
        rates.push(reading["value"].as_str().unwrap().parse::<u8>().unwrap());
    }
    assert!(rates.windows(2).all(|w| w[1] > w[0]), "notifications arrive in order: {rates:?}");

    // Reads of the same device: one command, two characteristics.
    let answer = stack.api.get(&format!("/device/name/{strap}/Status")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let readings = &answer.body["event"]["readings"];
    assert_eq!((readings[0]["value"].as_str(), readings[1]["value"].as_str()), (Some("1"), Some("87")));
    let answer = stack.api.get(&format!("/device/name/{strap}/DeviceName")).await;
    assert_eq!(answer.body["event"]["readings"][0]["value"], "Polar H10 1A2B");
    let answer = stack.api.get(&format!("/device/name/{sensor}/Climate")).await;
    let values: Vec<&str> =
        answer.body["event"]["readings"].as_array().unwrap().iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(values[1..], ["4.5e+01", "1.01325e+05"], "{answer:?}");
}

/// A profile with one resource per mapped type.
fn types_profile() -> Json {
    let res = |name: &str, ch: &str, vt: &str, rw: &str, extra: Json| {
        let mut attrs = json!({"serviceUuid": "0xFFF0", "characteristicUuid": ch});
        attrs.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"name": name, "attributes": attrs, "properties": {"valueType": vt, "readWrite": rw}})
    };
    let mut scaled = res("Scaled", "FFF9", "Float32", "RW", json!({"rawType": "Int16"}));
    scaled["properties"]["scale"] = json!(0.01);
    json!({
        "name": "BLE-Test-Types",
        "manufacturer": "Oxedge",
        "deviceResources": [
            res("U8", "FFF1", "Uint8", "RW", json!({})),
            res("I16BE", "FFF2", "Int16", "RW", json!({"byteOrder": "big"})),
            res("U32", "FFF3", "Uint32", "R", json!({})),
            res("I64", "FFF4", "Int64", "RW", json!({"writeType": "WithoutResponse"})),
            res("F32", "FFF5", "Float32", "RW", json!({})),
            res("F64", "FFF6", "Float64", "R", json!({"byteOrder": "big"})),
            res("Flag", "FFF7", "Bool", "RW", json!({})),
            res("Label", "FFF8", "String", "RW", json!({})),
            scaled,
            res("Blob", "FFFA", "Binary", "R", json!({})),
            res("Packed", "FFFB", "Uint8", "RW", json!({"offset": 2})),
            // Bad mappings, each answered 400 naming its attribute.
            res("BadUuid", "heart", "Uint8", "R", json!({})),
            res("BadRaw", "FFF1", "Int32", "R", json!({"rawType": "Int24"})),
            res("Missing", "FFEE", "Uint8", "R", json!({})),
            res("Short", "FFF1", "Uint32", "R", json!({})),
            res("NotReadable", "FFFC", "Uint8", "R", json!({})),
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mapped_type_is_read_and_written_and_bad_attributes_are_400_naming_them() {
    const DEV: &str = "C0:FF:EE:00:00:40";
    let radio = FakeRadio::default();
    radio.add(DEV, Some("types"), &["FFF0"]);
    radio.characteristic(DEV, "FFF0", "FFF1", "rw", &[200]);
    radio.characteristic(DEV, "FFF0", "FFF2", "rw", &(-300i16).to_be_bytes());
    radio.characteristic(DEV, "FFF0", "FFF3", "r", &4_000_000_000u32.to_le_bytes());
    radio.characteristic(DEV, "FFF0", "FFF4", "rc", &(-5_000_000_000i64).to_le_bytes());
    radio.characteristic(DEV, "FFF0", "FFF5", "rw", &1.5f32.to_le_bytes());
    radio.characteristic(DEV, "FFF0", "FFF6", "r", &(-2.25f64).to_be_bytes());
    radio.characteristic(DEV, "FFF0", "FFF7", "rw", &[1]);
    radio.characteristic(DEV, "FFF0", "FFF8", "rw", b"hello\0\0");
    radio.characteristic(DEV, "FFF0", "FFF9", "rw", &(-1234i16).to_le_bytes());
    radio.characteristic(DEV, "FFF0", "FFFA", "r", &[0xde, 0xad, 0xbe, 0xef]);
    radio.characteristic(DEV, "FFF0", "FFFB", "rw", &[9, 8, 7, 6]);
    radio.characteristic(DEV, "FFF0", "FFFC", "n", &[0]);
    let stack = start(radio.clone(), |_| {}).await;
    let answer = stack.md.post("/deviceprofile", &one("profile", types_profile())).await;
    assert_eq!(answer.item(0)["statusCode"], 201, "{answer:?}");
    stack.add_device("types", "BLE-Test-Types", DEV).await;
    wait_until("connected", Duration::from_secs(5), async || {
        stack.api.get("/device/name/types/U8").await.status == 200
    })
    .await;

    let read = async |resource: &str| {
        let answer = stack.api.get(&format!("/device/name/types/{resource}")).await;
        assert_eq!(answer.status, 200, "{resource}: {answer:?}");
        let reading = answer.body["event"]["readings"][0].clone();
        if reading["valueType"] == "Binary" {
            return json!(reading["binaryValue"]);
        }
        reading["value"].clone()
    };
    let expected = [
        ("U8", json!("200")),
        ("I16BE", json!("-300")),
        ("U32", json!("4000000000")),
        ("I64", json!("-5000000000")),
        ("F32", json!("1.5e+00")),
        ("F64", json!("-2.25e+00")),
        ("Flag", json!("true")),
        ("Label", json!("hello")),
        ("Scaled", json!("-1.234e+01")),
        ("Blob", json!("3q2+7w==")),
        ("Packed", json!("7")),
    ];
    for (resource, value) in expected {
        assert_eq!(read(resource).await, value, "{resource}");
    }

    let write = async |resource: &str, value: &str| {
        let answer = stack.api.put(&format!("/device/name/types/{resource}"), &json!({ resource: value })).await;
        assert_eq!(answer.status, 200, "{resource}: {answer:?}");
    };
    write("U8", "17").await;
    write("I16BE", "-2").await;
    write("I64", "42").await;
    write("F32", "-0.5").await;
    write("Flag", "false").await;
    write("Label", "héllo").await;
    write("Scaled", "21.5").await;
    write("Packed", "255").await;
    assert_eq!(radio.value(DEV, "FFF0", "FFF2"), [0xFF, 0xFE], "big-endian on the wire");
    assert_eq!(radio.value(DEV, "FFF0", "FFF9"), 2150i16.to_le_bytes(), "the scale reversed");
    assert_eq!(radio.value(DEV, "FFF0", "FFFB"), [9, 8, 255, 6], "written in place, the rest kept");
    let back = [("U8", "17"), ("I16BE", "-2"), ("I64", "42"), ("F32", "-5e-01"), ("Flag", "false"), ("Label", "héllo")];
    for (resource, value) in back {
        assert_eq!(read(resource).await, json!(value), "{resource}");
    }

    // Bad mappings: 400, naming the device, the resource and the attribute.
    let bad = [
        ("BadUuid", "attribute characteristicUuid: 'heart'"),
        ("BadRaw", "attribute rawType: 'Int24'"),
        ("Missing", "attribute characteristicUuid: peripheral has no characteristic"),
        ("Short", "1 bytes, too few for 4 bytes of Uint32 at offset 0"),
        ("NotReadable", "Read not permitted"),
    ];
    for (resource, message) in bad {
        let answer = stack.api.get(&format!("/device/name/types/{resource}")).await;
        assert_eq!(answer.status, 400, "{resource}: {answer:?}");
        let text = answer.message();
        assert!(text.contains("device types") && text.contains(resource) && text.contains(message), "{text}");
    }
    let answer = stack.api.put("/device/name/types/U8", &json!({"U8": "300"})).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(stack.operating_state("types").await, "UP", "bad requests say nothing about the device");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_link_fails_reads_sets_the_device_down_then_reconnects_and_notifications_resume() {
    let radio = FakeRadio::default();
    environment_sensor(&radio, ENV);
    let stack = start(radio.clone(), |cfg| {
        cfg.device.allowed_fails = 2;
        cfg.device.device_down_timeout = "300ms".into();
    })
    .await;
    let mut events = stack.events("BLE-Environmental-Sensing/greenhouse/Temperature").await;
    stack.add_device("greenhouse", "BLE-Environmental-Sensing", ENV).await;

    let mut last = 0.0f64;
    for _ in 0..3 {
        let event = next_event(&mut events).await;
        let value: f64 = event["readings"][0]["value"].as_str().unwrap().parse().unwrap();
        assert!(value >= 21.5 && value > last, "{value} after {last}");
        last = value;
    }

    radio.set_in_range(ENV, false);
    wait_until("reads fail while the link is down", Duration::from_secs(5), async || {
        stack.api.get("/device/name/greenhouse/Humidity").await.status == 500
    })
    .await;
    let answer = stack.api.get("/device/name/greenhouse/Humidity").await;
    assert!(answer.message().contains("greenhouse") && answer.message().contains("not connected"), "{answer:?}");
    wait_until("the device is DOWN", Duration::from_secs(5), async || {
        stack.operating_state("greenhouse").await == "DOWN"
    })
    .await;
    // Drain what was notified before the link dropped.
    while tokio::time::timeout(Duration::from_millis(200), events.next()).await.is_ok() {}

    radio.set_in_range(ENV, true);
    let event = next_event(&mut events).await;
    assert_eq!(event["sourceName"], "Temperature");
    assert_eq!(radio.connects(ENV), 2, "reconnected once");
    wait_until("the device is UP again", Duration::from_secs(5), async || {
        stack.operating_state("greenhouse").await == "UP"
    })
    .await;
    let answer = stack.api.get("/device/name/greenhouse/Humidity").await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_read_is_504_and_a_device_without_an_address_does_not_stop_the_others() {
    let radio = FakeRadio::default();
    heart_rate_strap(&radio, HRM, "strap");
    environment_sensor(&radio, ENV);
    let stack = start(radio.clone(), |cfg| {
        cfg.device.command_timeout = "300ms".into();
        cfg.device.allowed_fails = 0;
    })
    .await;
    stack.add_device("strap", "BLE-Heart-Rate", HRM).await;
    stack.add_device("sensor", "BLE-Environmental-Sensing", ENV).await;
    stack.add_device("nowhere", "BLE-Battery", "not-an-address").await;
    wait_until("connected", Duration::from_secs(5), async || {
        stack.api.get("/device/name/strap/BatteryLevel").await.status == 200
    })
    .await;

    radio.set_read_delay(HRM, Duration::from_secs(2));
    let started = Instant::now();
    let answer = stack.api.get("/device/name/strap/BatteryLevel").await;
    assert_eq!(answer.status, 504, "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "answered at the command timeout");

    let answer = stack.api.get("/device/name/nowhere/BatteryLevel").await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.message().contains("device nowhere") && answer.message().contains("ble.Address"), "{answer:?}");

    let answer = stack.api.get("/device/name/sensor/Humidity").await;
    assert_eq!((answer.status, answer.body["event"]["readings"][0]["value"].as_str()), (200, Some("4.5e+01")));
    radio.set_read_delay(HRM, Duration::ZERO);
    assert_eq!(stack.api.get("/device/name/strap/BatteryLevel").await.status, 200);

    // A device removed from core-metadata is disconnected; an update of its operating state
    // is not a reason to reconnect.
    let connects = radio.connects(ENV);
    let update = json!({"name": "sensor", "operatingState": "DOWN"});
    assert_eq!(stack.md.patch("/device", &one("device", update)).await.item(0)["statusCode"], 200);
    assert_eq!(stack.md.delete("/device/name/sensor").await.status, 200);
    wait_until("the removed device is disconnected", Duration::from_secs(5), async || !radio.is_connected(ENV)).await;
    assert_eq!(radio.connects(ENV), connects);
    assert!(radio.is_connected(HRM), "the other device keeps its connection");
}
