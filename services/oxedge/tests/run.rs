//! `oxedge run` as a user starts it: one process, embedded broker and SQLite, virtual
//! devices. Within five seconds events from virtual devices are queryable at core-data,
//! and a GET and a PUT through core-command reach a virtual device.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oxedge_testkit::free_port;
use oxedge_testkit::http::Api;
use serde_json::json;

/// The running all-in-one; killed if the test fails before stopping it.
struct Gateway {
    child: Child,
    metadata: Api,
    data: Api,
    command: Api,
}

impl Gateway {
    /// Starts `oxedge run` with core-command relaying over `transport` (`rest` or `bus`).
    fn start(data_dir: &std::path::Path, transport: &str) -> Self {
        Self::start_with(data_dir, free_port(), &[("OXEDGE_CORE_COMMAND_COMMAND_TRANSPORT", transport)])
    }

    /// Starts `oxedge run` with its broker on `broker_port` and the extra environment `env`.
    fn start_with(data_dir: &std::path::Path, broker_port: u16, env: &[(&str, &str)]) -> Self {
        Self::start_with_args(data_dir, broker_port, env, &[])
    }

    /// Like [`start_with`](Self::start_with), with extra arguments of `oxedge run`.
    fn start_with_args(data_dir: &std::path::Path, broker_port: u16, env: &[(&str, &str)], args: &[&str]) -> Self {
        let ports = [free_port(), free_port(), free_port(), free_port()];
        let child = Command::new(env!("CARGO_BIN_EXE_oxedge"))
            .args(["run", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("OXEDGE_CORE_METADATA_SERVICE_PORT", ports[0].to_string())
            .env("OXEDGE_CORE_DATA_SERVICE_PORT", ports[1].to_string())
            .env("OXEDGE_CORE_COMMAND_SERVICE_PORT", ports[2].to_string())
            .env("OXEDGE_DEVICE_VIRTUAL_SERVICE_PORT", ports[3].to_string())
            .env("OXEDGE_BUS_EMBEDDED_LISTEN", format!("127.0.0.1:{broker_port}"))
            .env("OXEDGE_LOG_LEVEL", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(data_dir.with_extension("log")).expect("log file"))
            .spawn()
            .expect("start oxedge");
        let api = |port: u16| Api::new(format!("http://127.0.0.1:{port}"));
        Self { child, metadata: api(ports[0]), data: api(ports[1]), command: api(ports[2]) }
    }

    /// SIGTERM, then the exit status within the grace period.
    fn stop(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "oxedge did not stop within 15 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service that fails stops the whole all-in-one: core-data cannot open its database, so
/// `oxedge run` exits non-zero within 10 s, naming core-data, instead of serving on
/// without storage.
#[test]
fn a_failing_service_stops_the_all_in_one_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("a-file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_oxedge"))
        .args(["run", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("OXEDGE_CORE_DATA_DATABASE_PATH", not_a_dir.join("core-data.db"))
        .env("OXEDGE_CORE_METADATA_SERVICE_PORT", ports[0].to_string())
        .env("OXEDGE_CORE_DATA_SERVICE_PORT", ports[1].to_string())
        .env("OXEDGE_CORE_COMMAND_SERVICE_PORT", ports[2].to_string())
        .env("OXEDGE_DEVICE_VIRTUAL_SERVICE_PORT", ports[3].to_string())
        .env("OXEDGE_BUS_EMBEDDED_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("OXEDGE_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oxedge");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("oxedge still runs 10 s after core-data failed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "exit status {status}; stderr: {stderr}");
    assert!(stderr.contains("core-data failed") && stderr.contains("Failed to open"), "not named: {stderr}");
}

#[tokio::test]
async fn virtual_events_reach_core_data_and_commands_reach_virtual_devices_over_rest() {
    events_and_commands("rest").await;
}

#[tokio::test]
async fn virtual_events_reach_core_data_and_commands_reach_virtual_devices_over_the_bus() {
    events_and_commands("bus").await;
}

async fn events_and_commands(transport: &str) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let gw = Gateway::start(dir.path(), transport);

    // Events of virtual devices, stored by core-data, within five seconds of the start.
    let events = loop {
        let answer = gw.data.get("/api/v3/event/device/name/Virtual-Simulation-Device").await;
        if answer.status == 200 && answer.body["totalCount"].as_u64().unwrap_or(0) > 0 {
            break answer;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no virtual event in core-data within 5 s: {answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let event = &events.body["events"][0];
    assert_eq!(event["profileName"], "Virtual-Simulation");
    assert!(!event["readings"].as_array().unwrap().is_empty());
    assert_eq!(gw.metadata.get("/api/v3/deviceservice/name/device-virtual").await.status, 200);

    // A GET through core-command reaches the device and returns its reading.
    let read = gw.command.get("/api/v3/device/name/Random-Integer-Device/Int16").await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["event"]["readings"][0]["resourceName"], "Int16");

    // A PUT through core-command: randomization off, a value written, the same value read back.
    let body = json!({"Int16": "-1234", "EnableRandomization_Int16": "false"});
    let put = gw.command.put("/api/v3/device/name/Random-Integer-Device/WriteInt16Value", &body).await;
    assert_eq!(put.status, 200, "{put:?}");
    let back = gw.command.get("/api/v3/device/name/Random-Integer-Device/Int16").await;
    assert_eq!(back.body["event"]["readings"][0]["value"], "-1234", "{back:?}");

    // Refusals come from core-command before the device: unknown command, read-only write.
    assert_eq!(gw.command.get("/api/v3/device/name/Random-Integer-Device/NoSuchCommand").await.status, 404);
    assert_eq!(gw.command.get("/api/v3/device/name/no-such-device/Int16").await.status, 404);

    let status = gw.stop();
    assert!(status.success(), "oxedge exited with {status}");
}

/// A device service started on its own joins the embedded broker over TCP under its own
/// client id and every event it publishes is stored. With the built-in device-virtual turned
/// off, nothing in the gateway holds that client id, so the broker never has to drop a
/// connection for a duplicate id.
#[tokio::test]
async fn a_separately_started_device_service_joins_the_embedded_broker() {
    use oxedge_bus::mqtt::{MqttBus, MqttSettings};
    use oxedge_bus::{Bus, MessageEnvelope};

    let dir = tempfile::tempdir().unwrap();
    let broker_port = free_port();
    let gw = Gateway::start_with(dir.path(), broker_port, &[("OXEDGE_SERVICES_DEVICE_VIRTUAL", "false")]);
    let bus = MqttBus::connect(MqttSettings::new("127.0.0.1", broker_port, "device-virtual")).unwrap();
    let topic = oxedge_bus::topic::event("device-virtual", "P", "outside-1", "S");
    // core-data subscribes when it starts; what is published before has no subscriber. Event 0
    // is sent until it is stored; then the others, each once.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let payload = MessageEnvelope::json(&event(0), None).unwrap().to_bytes().unwrap();
        bus.publish(&topic, payload).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        if gw.data.get("/api/v3/event/count/device/name/outside-1").await.body["count"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "core-data stored nothing within 10 s");
    }
    for i in 1..20 {
        let payload = MessageEnvelope::json(&event(i), None).unwrap().to_bytes().unwrap();
        let published = tokio::time::timeout(Duration::from_secs(10), bus.publish(&topic, payload)).await;
        published.expect("publish not acknowledged within 10 s").unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let count = gw.data.get("/api/v3/event/count/device/name/outside-1").await;
        if count.body["count"] == 20 {
            break;
        }
        assert!(Instant::now() < deadline, "events of the outside service not all stored: {count:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(bus.is_connected());
    assert_eq!(gw.metadata.get("/api/v3/deviceservice/name/device-virtual").await.status, 404);
    assert!(gw.stop().success());
    let log = std::fs::read_to_string(dir.path().with_extension("log")).unwrap();
    assert!(!log.contains("Duplicate client_id"), "a client id was used twice:\n{log}");
}

/// Event `i` of the device `outside-1`, with a fixed id: sent twice, it is stored once.
fn event(i: i64) -> serde_json::Value {
    let origin = 1_700_000_000_000_000_000i64 + i;
    json!({"apiVersion": "v3", "event": {"apiVersion": "v3", "id": format!("00000000-0000-4000-8000-{i:012}"),
        "deviceName": "outside-1", "profileName": "P", "sourceName": "S", "origin": origin,
        "readings": [{"origin": origin, "deviceName": "outside-1", "resourceName": "S",
            "profileName": "P", "valueType": "Int64", "value": i.to_string()}]}})
}

/// A protocol device service switched on in the all-in-one: device-rest loads its profiles
/// and devices, and a reading a device pushes to it is stored by core-data.
#[tokio::test]
async fn device_rest_runs_in_the_all_in_one_and_its_pushed_readings_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles/device-rest");
    let rest_port = free_port();
    let gw = Gateway::start_with(
        dir.path(),
        free_port(),
        &[
            ("OXEDGE_SERVICES_DEVICE_VIRTUAL", "false"),
            ("OXEDGE_SERVICES_DEVICE_REST", "true"),
            ("OXEDGE_DEVICE_REST_SERVICE_PORT", &rest_port.to_string()),
            ("OXEDGE_DEVICE_REST_DEVICE_PROFILES_DIR", &format!("{profiles}/profiles")),
            ("OXEDGE_DEVICE_REST_DEVICE_DEVICES_DIR", &format!("{profiles}/devices")),
        ],
    );
    let rest = Api::new(format!("http://127.0.0.1:{rest_port}"));
    let started = Instant::now();
    // The process binds its ports a moment after it starts.
    while tokio::net::TcpStream::connect(("127.0.0.1", rest_port)).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "device-rest never listened on {rest_port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        let pushed = rest.post_raw("/api/v3/resource/sample-numeric/int", "text/plain", "42").await;
        if pushed.status == 200 {
            break;
        }
        // 404 until device-rest has loaded its devices.
        assert!(started.elapsed() < Duration::from_secs(20), "device-rest never took the reading: {pushed:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stored = loop {
        let answer = gw.data.get("/api/v3/reading/device/name/sample-numeric").await;
        if answer.body["totalCount"].as_u64().unwrap_or(0) > 0 {
            break answer;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the pushed reading is not in core-data: {answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stored.body["readings"][0]["resourceName"], "int");
    assert_eq!(stored.body["readings"][0]["value"], "42");
    let unknown = rest.post_raw("/api/v3/resource/no-such-device/int", "text/plain", "1").await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(gw.stop().success());
}

/// `oxedge run --export-mqtt URL --export-topic TEMPLATE`: virtual devices' events reach a
/// second broker (the cloud) as JSON events, on topics filled from each event.
#[tokio::test]
async fn export_mqtt_sends_events_to_a_cloud_broker_on_templated_topics() {
    use oxedge_bus::mqtt::{MqttBus, MqttSettings};
    use oxedge_bus::{Bus, SubscribeOptions};

    let Some(cloud) = oxedge_testkit::mosquitto::private_mosquitto(false).await else { return };
    let subscriber = MqttBus::connect(MqttSettings::new("127.0.0.1", cloud.port(), "cloud-subscriber")).unwrap();
    let mut received = subscriber.subscribe(&["factory/#".to_owned()], SubscribeOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("mqtt://127.0.0.1:{}", cloud.port());
    let export_port = free_port().to_string();
    let env = [("OXEDGE_APP_MQTT_EXPORT_SERVICE_PORT", export_port.as_str())];
    let args = ["--export-mqtt", url.as_str(), "--export-topic", "factory/{deviceName}/{sourceName}"];
    let gw = Gateway::start_with_args(dir.path(), free_port(), &env, &args);

    let delivery = tokio::time::timeout(Duration::from_secs(15), received.next())
        .await
        .expect("no exported event at the cloud broker within 15 s")
        .unwrap();
    let event: serde_json::Value = serde_json::from_slice(&delivery.payload).unwrap();
    let device = event["deviceName"].as_str().expect("an event's deviceName");
    let source = event["sourceName"].as_str().unwrap();
    assert_eq!(delivery.topic, format!("factory/{device}/{source}"));
    assert!(!event["readings"].as_array().unwrap().is_empty(), "{event}");
    let health = Api::new(format!("http://127.0.0.1:{export_port}")).get("/api/v3/ping").await;
    assert_eq!(health.status, 200, "{health:?}");
    assert!(gw.stop().success());
}
