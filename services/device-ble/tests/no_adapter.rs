//! device-ble with the radio it is built with, on a machine with no Bluetooth: it starts,
//! registers, serves its API, and says why BLE is unusable in its health and its errors.
//!
//! Built with `bluez` (opt-in; scripts/test.sh turns it on), the real BlueZ backend runs against a D-Bus system bus
//! address where nothing listens (so the test means the same on a machine that has BlueZ);
//! built without it, the driver says it has no BLE support.

// Its own test binary, not a module of tests/it: the test sets DBUS_SYSTEM_BUS_ADDRESS
// (process-global), which `cargo test` (scripts/test.sh without nextest) would change under
// the other tests of a shared binary, run as threads of one process.

#[path = "../../../device-sdk/tests/it/runtime_support/mod.rs"]
mod runtime_support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use oxedge_device_ble::BleDriver;
use runtime_support::{bus, config, core_metadata, wait_until, Api};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_adapter_the_service_runs_and_says_why_in_health_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    // The only test of this binary: nothing else reads the environment meanwhile.
    std::env::set_var(
        "DBUS_SYSTEM_BUS_ADDRESS",
        format!("unix:path={}", dir.path().join("no_system_bus_socket").display()),
    );
    let bus = bus();
    let md = core_metadata(bus.clone(), 0).await;
    let files = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles/device-ble");
    let mut cfg = config(md.port);
    cfg.device.profiles_dir = files.join("profiles");
    cfg.device.devices_dir = files.join("devices");
    cfg.device.provision_watchers_dir = files.join("provisionwatchers");
    cfg.device.discovery.enabled = true;
    cfg.driver.insert("scan_duration".into(), json!("100ms"));
    cfg.driver.insert("reconnect_min".into(), json!("100ms"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = Api::new(format!("http://127.0.0.1:{}/api/v3", listener.local_addr().unwrap().port()));
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    let driver = Arc::new(BleDriver::default());
    let served = tokio::spawn(oxedge_device_sdk::run(
        oxedge_device_sdk::ServiceContext::standalone("device-ble", bus, stop.clone()),
        cfg,
        driver,
        listener,
    ));

    wait_until("registered, the example devices loaded", async || {
        api.get("/health").await.body["checks"]["core-metadata"] == "UP"
            && md.get("/device/name/chest-strap").await.status == 200
            && api.get("/device/name/chest-strap/x").await.status == 404
    })
    .await;
    let health = api.get("/health").await;
    assert_eq!(health.status, 503, "{health:?}");
    let why = health.body["checks"]["driver"].as_str().unwrap_or_default().to_owned();
    assert!(why.starts_with("no Bluetooth adapter: "), "{why}");
    if cfg!(feature = "bluez") {
        assert!(why.contains("D-Bus"), "{why}");
    } else {
        assert!(why.contains("built without BLE support"), "{why}");
    }

    // The API keeps serving: reads fail naming the device and why, discovery runs and fails
    // in the log, and the service is still up afterwards.
    let answer = api.get("/device/name/chest-strap/BatteryLevel").await;
    assert_eq!(answer.status, 500, "{answer:?}");
    assert!(
        answer.message().contains("chest-strap") && answer.message().contains("no Bluetooth adapter"),
        "{answer:?}"
    );
    assert_eq!(api.post("/discovery", &json!({})).await.status, 202);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(api.get("/ping").await.status, 200);
    assert_eq!(api.get("/device/name/greenhouse-sensor/Climate").await.status, 500);
    assert!(!served.is_finished(), "the service is still serving");

    stop.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), served).await.expect("stops within 10 s").unwrap();
    assert!(result.is_ok(), "{result:?}");
}
