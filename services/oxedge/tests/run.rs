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
        let ports = [free_port(), free_port(), free_port(), free_port(), free_port()];
        let child = Command::new(env!("CARGO_BIN_EXE_oxedge"))
            .args(["run", "--data-dir"])
            .arg(data_dir)
            .env("OXEDGE_CORE_METADATA_SERVICE_PORT", ports[0].to_string())
            .env("OXEDGE_CORE_DATA_SERVICE_PORT", ports[1].to_string())
            .env("OXEDGE_CORE_COMMAND_SERVICE_PORT", ports[2].to_string())
            .env("OXEDGE_DEVICE_VIRTUAL_SERVICE_PORT", ports[3].to_string())
            .env("OXEDGE_BUS_EMBEDDED_LISTEN", format!("127.0.0.1:{}", ports[4]))
            .env("OXEDGE_CORE_COMMAND_COMMAND_TRANSPORT", transport)
            .env("OXEDGE_LOG_LEVEL", "warn")
            .stdin(Stdio::null())
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
