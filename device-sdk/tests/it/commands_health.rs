//! Devices' operating state follows the driver's results, as EdgeX's `AllowedFails` and
//! `DeviceDownTimeout` say, and core-metadata sees it.

use oxedge_device_sdk::{DriverError, Value};
use serde_json::json;

use crate::commands_common::*;

#[tokio::test]
async fn a_device_goes_down_after_allowed_fails_and_up_again_on_success() {
    let h = start(vec![device("thermo-1")], |cfg| {
        cfg.device.allowed_fails = 3;
        cfg.device.device_down_timeout = "300ms".into();
    })
    .await;
    h.driver.fail_with(Some(DriverError::Failed("no answer on the wire".into())));
    for _ in 0..2 {
        assert_eq!(h.get("thermo-1", "Temperature", "").await.status, 500);
    }
    assert_eq!(h.metadata_device("thermo-1").await["operatingState"], "UP", "two failures are allowed");
    // Invalid requests say nothing about the device.
    h.driver.fail_with(Some(DriverError::Invalid("bad attribute".into())));
    assert_eq!(h.get("thermo-1", "Temperature", "").await.status, 400);
    assert_eq!(h.metadata_device("thermo-1").await["operatingState"], "UP");
    h.driver.fail_with(Some(DriverError::Timeout("no answer".into())));
    assert_eq!(h.get("thermo-1", "Temperature", "").await.status, 504);
    assert_eq!(h.metadata_device("thermo-1").await["operatingState"], "DOWN", "the third failure");

    // The device comes back: the SDK's own check (every device_down_timeout) sets it UP
    // without anybody calling.
    h.driver.fail_with(None);
    h.wait_until("core-metadata sees the device UP", || async {
        h.metadata_device("thermo-1").await["operatingState"] == "UP"
    })
    .await;
    assert_eq!(h.get("thermo-1", "Temperature", "").await.status, 200);
}

#[tokio::test]
async fn without_a_down_timeout_a_down_device_is_refused_until_set_up() {
    let h = start(vec![device("thermo-1")], |cfg| {
        cfg.device.allowed_fails = 1;
        cfg.device.device_down_timeout = "0s".into();
    })
    .await;
    h.driver.fail_with(Some(DriverError::Failed("unplugged".into())));
    assert_eq!(h.put("thermo-1", "SetPoint", &json!({"SetPoint": 10})).await.status, 500);
    assert_eq!(h.metadata_device("thermo-1").await["operatingState"], "DOWN");
    h.driver.fail_with(None);
    let a = h.get("thermo-1", "Temperature", "").await;
    assert_eq!(a.status, 423);
    assert_eq!(a.message(), "device thermo-1 OperatingState is DOWN");
    let reads = h.driver.reads.lock().unwrap().len();
    // Set UP in core-metadata: the system event reaches the cache and commands pass again.
    h.patch_device("thermo-1", json!({"operatingState": "UP"})).await;
    h.wait_until("the device takes commands again", || async {
        h.get("thermo-1", "Temperature", "").await.status == 200
    })
    .await;
    assert!(h.driver.reads.lock().unwrap().len() > reads);
}

#[tokio::test]
async fn allowed_fails_zero_never_sets_a_device_down() {
    let h = start(vec![device("thermo-1")], |cfg| cfg.device.allowed_fails = 0).await;
    h.driver.fail_with(Some(DriverError::Failed("x".into())));
    for _ in 0..5 {
        assert_eq!(h.get("thermo-1", "Mode", "").await.status, 500);
    }
    assert_eq!(h.metadata_device("thermo-1").await["operatingState"], "UP");
}

#[tokio::test]
async fn a_reading_failing_its_assertion_sets_the_device_down() {
    let h = start(vec![device("thermo-1")], |_| {}).await;
    assert_eq!(h.get("thermo-1", "Status", "").await.status, 200);
    h.driver.set("Status", Value::String("FAULT".into()));
    let a = h.get("thermo-1", "Status", "").await;
    assert_eq!(a.status, 500);
    assert!(a.message().contains("Assertion failed for DeviceResource Status"), "{}", a.message());
    assert_eq!(h.metadata_device("thermo-1").await["operatingState"], "DOWN");
    assert_eq!(h.get("thermo-1", "Temperature", "").await.status, 423, "refused as EdgeX does");
}
