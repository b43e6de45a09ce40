//! The device cache follows changes made through core-metadata's REST API, calling the
//! driver's callbacks; discovery turns what the driver finds into devices through the
//! service's provision watchers.

use oxedge_device_sdk::Discovered;
use serde_json::json;

use crate::runtime_support::*;

const SERVICE: &str = "device-cache";

async fn started(
    cfg_edit: impl FnOnce(&mut oxedge_device_sdk::DeviceServiceConfig),
) -> (CoreMetadata, DeviceService, TestDriver) {
    let bus = bus();
    let md = core_metadata(bus.clone(), 0).await;
    assert_eq!(md.post("/deviceprofile", &one("profile", profile("P"))).await.item(0)["statusCode"], 201);
    let mut cfg = config(md.port);
    cfg_edit(&mut cfg);
    let driver = TestDriver::default();
    let ds = start(SERVICE, cfg, driver.clone(), bus);
    ds.wait_healthy().await;
    (md, ds, driver)
}

fn has(driver: &TestDriver, call: &str) -> bool {
    driver.0.calls().iter().any(|c| c == call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_follows_device_and_profile_changes_made_through_core_metadata() {
    let (md, ds, driver) = started(|_| {}).await;
    let sdk = driver.0.sdk();

    // Added.
    assert_eq!(md.post("/device", &one("device", device("d1", SERVICE, "P"))).await.item(0)["statusCode"], 201);
    wait_until("add:d1", async || has(&driver, "add:d1")).await;
    assert_eq!(sdk.device("d1").unwrap().profile_name, "P");
    assert!(sdk.profile("P").is_some(), "the device's profile is cached with it");

    // Another service's device is none of ours.
    assert_eq!(
        md.post(
            "/deviceservice",
            &one("service", json!({"name": "other", "adminState": "UNLOCKED", "baseAddress": "http://other:1"}))
        )
        .await
        .item(0)["statusCode"],
        201
    );
    assert_eq!(md.post("/device", &one("device", device("o1", "other", "P"))).await.item(0)["statusCode"], 201);

    // Updated.
    let patch = json!([{ "apiVersion": "v3", "device": { "name": "d1", "labels": ["moved"], "description": "now" } }]);
    assert_eq!(md.patch("/device", &patch).await.item(0)["statusCode"], 200);
    wait_until("update:d1", async || has(&driver, "update:d1")).await;
    assert_eq!(sdk.device("d1").unwrap().labels, ["moved"]);
    assert_eq!(sdk.device("d1").unwrap().description, "now");

    // The profile changed.
    let mut changed = profile("P");
    changed["description"] = json!("second edition");
    assert_eq!(md.put("/deviceprofile", &one("profile", changed)).await.item(0)["statusCode"], 200);
    wait_until("the profile is updated", async || {
        sdk.profile("P").is_some_and(|p| p.info.description == "second edition")
    })
    .await;

    // Moved to another service: gone from ours.
    assert_eq!(md.post("/device", &one("device", device("d2", SERVICE, "P"))).await.item(0)["statusCode"], 201);
    wait_until("add:d2", async || has(&driver, "add:d2")).await;
    let patch = json!([{ "apiVersion": "v3", "device": { "name": "d2", "serviceName": "other" } }]);
    assert_eq!(md.patch("/device", &patch).await.item(0)["statusCode"], 200);
    wait_until("remove:d2", async || has(&driver, "remove:d2")).await;
    assert!(sdk.device("d2").is_none());

    // Deleted.
    assert_eq!(md.delete("/device/name/d1").await.status, 200);
    wait_until("remove:d1", async || has(&driver, "remove:d1")).await;
    assert!(sdk.device("d1").is_none());
    assert!(sdk.profile("P").is_none(), "a profile no device uses leaves the cache");

    assert!(!driver.0.calls().iter().any(|c| c.ends_with(":o1")), "{:?}", driver.0.calls());
    let calls: Vec<String> = driver.0.calls().into_iter().filter(|c| c.ends_with(":d1")).collect();
    assert_eq!(calls, ["add:d1", "update:d1", "remove:d1"], "each change is told once");
    ds.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_the_service_starts_is_not_lost() {
    let bus = bus();
    let md = core_metadata(bus.clone(), 0).await;
    assert_eq!(md.post("/deviceprofile", &one("profile", profile("P"))).await.item(0)["statusCode"], 201);
    let service = json!({"name": SERVICE, "adminState": "UNLOCKED", "baseAddress": "http://127.0.0.1:1"});
    assert_eq!(md.post("/deviceservice", &one("service", service)).await.item(0)["statusCode"], 201);
    let driver = TestDriver::default();
    let ds = start(SERVICE, config(md.port), driver.clone(), bus);
    // Devices added while the service starts, registers and loads: each ends up cached once.
    for i in 0..30 {
        let answer = md.post("/device", &one("device", device(&format!("s{i:02}"), SERVICE, "P"))).await;
        assert_eq!(answer.item(0)["statusCode"], 201, "{answer:?}");
    }
    ds.wait_healthy().await;
    let expected = devices_of(&md, SERVICE).await;
    assert_eq!(expected.len(), 30);
    let sdk = driver.0.sdk();
    wait_until("every device is cached", async || sdk.devices().len() == expected.len()).await;
    for name in &expected {
        let adds = driver.0.calls().iter().filter(|c| **c == format!("add:{name}")).count();
        assert_eq!(adds, 1, "{name}: {:?}", driver.0.calls());
    }
    ds.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_adds_what_the_provision_watchers_take() {
    let (md, ds, driver) = started(|cfg| cfg.device.discovery.enabled = true).await;
    let watcher = json!({
        "name": "w", "serviceName": SERVICE, "adminState": "UNLOCKED", "labels": ["found"],
        "identifiers": { "Address": "sim-[0-9]+" },
        "blockingIdentifiers": { "Address": ["sim-9"] },
        "discoveredDevice": { "profileName": "P", "adminState": "UNLOCKED" }
    });
    assert_eq!(md.post("/provisionwatcher", &one("provisionWatcher", watcher)).await.item(0)["statusCode"], 201);
    let found = |name: &str, address: &str| {
        let mut props = oxedge_contracts::ProtocolProperties::new();
        props.insert("Address".into(), address.into());
        Discovered { name: name.into(), protocols: [("tcp".to_owned(), props)].into(), ..Default::default() }
    };
    *driver.0.found.lock().unwrap() =
        vec![found("sim-a", "sim-1"), found("blocked", "sim-9"), found("other", "10.0.0.1")];

    let answer = ds.post("/discovery", &json!({})).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(answer.body["statusCode"], 202);
    assert!(!answer.body["requestId"].as_str().unwrap().is_empty());
    wait_until("the discovered device is added", async || has(&driver, "add:sim-a")).await;
    assert_eq!(devices_of(&md, SERVICE).await, ["sim-a"]);
    let d = md.get("/device/name/sim-a").await;
    assert_eq!(d.body["device"]["labels"], json!(["found"]));
    assert_eq!(d.body["device"]["profileName"], "P");

    // The handle adds discovered devices the same way.
    let added = driver.0.sdk().add_discovered(vec![found("sim-b", "sim-2"), found("sim-a", "sim-1")]).await.unwrap();
    assert_eq!(added, 1);
    assert_eq!(devices_of(&md, SERVICE).await, ["sim-a", "sim-b"]);
    assert_eq!(ds.delete("/discovery/requestId/not-running").await.status, 404);
    ds.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_refuses_when_disabled_or_locked() {
    let (md, ds, _driver) = started(|_| {}).await;
    let answer = ds.post("/discovery", &json!({})).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.message().contains("device.discovery.enabled"), "{answer:?}");
    ds.stop().await.unwrap();

    let (md2, ds, _driver) = started(|cfg| cfg.device.discovery.enabled = true).await;
    let lock = json!([{ "apiVersion": "v3", "service": { "name": SERVICE, "adminState": "LOCKED" } }]);
    assert_eq!(md2.patch("/deviceservice", &lock).await.item(0)["statusCode"], 200);
    wait_until("the lock is seen", async || ds.post("/discovery", &json!({})).await.status == 423).await;
    drop(md);
    ds.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_pushed_through_the_handle_are_published_as_events() {
    let bus = bus();
    let md = core_metadata(bus.clone(), 0).await;
    assert_eq!(md.post("/deviceprofile", &one("profile", profile("P"))).await.item(0)["statusCode"], 201);
    let driver = TestDriver::default();
    let ds = start(SERVICE, config(md.port), driver.clone(), bus.clone());
    ds.wait_healthy().await;
    assert_eq!(md.post("/device", &one("device", device("d1", SERVICE, "P"))).await.item(0)["statusCode"], 201);
    wait_until("add:d1", async || has(&driver, "add:d1")).await;

    let filter = vec!["edgex/events/device/#".to_owned()];
    let mut events = bus.subscribe(&filter, Default::default()).await.unwrap();
    let values = vec![oxedge_device_sdk::CommandValue::new("Temperature", oxedge_device_sdk::Value::Float32(19.5))];
    driver.0.sdk().push("d1", "Temperature", values).await.unwrap();
    let delivery = tokio::time::timeout(std::time::Duration::from_secs(5), events.next()).await.unwrap().unwrap();
    assert_eq!(delivery.topic, format!("edgex/events/device/{SERVICE}/P/d1/Temperature"));
    let envelope = oxedge_bus::MessageEnvelope::from_bytes(&delivery.payload, &delivery.topic).unwrap();
    let request: oxedge_contracts::AddEventRequest = envelope.payload_as().unwrap();
    assert_eq!(request.event.readings[0].resource_name, "Temperature");

    let one_value =
        || vec![oxedge_device_sdk::CommandValue::new("Temperature", oxedge_device_sdk::Value::Float32(1.0))];
    let err = driver.0.sdk().push("nope", "Temperature", one_value()).await.unwrap_err();
    assert_eq!(err.status_code(), 404, "{err}");
    ds.stop().await.unwrap();
    let err = driver.0.sdk().push("d1", "Temperature", one_value()).await.unwrap_err();
    assert_eq!(err.status_code(), 503, "a stopped service: {err}");
}
