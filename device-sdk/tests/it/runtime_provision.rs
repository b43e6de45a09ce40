//! Registration in core-metadata, first-start loading of the configured files (and no
//! reload on the next start), bad files, core-metadata down at start, clean stop.

use serde_json::json;

use crate::runtime_support::*;

const PROFILE: &str = r#"
name: "Test-Thermostat"
manufacturer: "Oxedge"
deviceResources:
  - name: "Temperature"
    properties: { valueType: "Float32", readWrite: "R", units: "C" }
deviceCommands:
  - name: "Climate"
    readWrite: "R"
    resourceOperations: [ { deviceResource: "Temperature" } ]
"#;

const DEVICES: &str = r#"
deviceList:
  - name: "thermo-1"
    profileName: "Test-Thermostat"
    description: "first"
    protocols: { other: { Address: "sim-1" } }
  - name: "thermo-bad"
    profileName: "Test-Thermostat"
    adminState: "SLEEPY"
    protocols: { other: { Address: "sim-x" } }
  - name: "thermo-2"
    profileName: "Test-Thermostat"
    protocols: { other: { Address: "sim-2" } }
    autoEvents: [ { interval: "1h", sourceName: "Temperature" } ]
"#;

const WATCHER: &str = r#"
name: "thermo-watcher"
identifiers: { Address: "sim-[0-9]+" }
discoveredDevice: { profileName: "Test-Thermostat" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_registers_and_loads_files_and_the_next_start_does_not_reload() {
    let bus = bus();
    let md = core_metadata(bus.clone(), 0).await;
    let dir = tempfile::tempdir().unwrap();
    let (profiles, devices, watchers) = (dir.path().join("p"), dir.path().join("d"), dir.path().join("w"));
    for d in [&profiles, &devices, &watchers] {
        std::fs::create_dir(d).unwrap();
    }
    write(&profiles, "thermostat.yaml", PROFILE);
    write(&profiles, "broken.yaml", "name: [unclosed\n");
    write(
        &profiles,
        "bad-type.json",
        r#"{"name":"Bad","deviceResources":[{"name":"r","properties":{"valueType":"Float99","readWrite":"R"}}]}"#,
    );
    write(&devices, "devices.yaml", DEVICES);
    write(
        &devices,
        "more.json",
        r#"[{"name":"thermo-3","profileName":"Test-Thermostat","protocols":{"other":{"Address":"sim-3"}}}]"#,
    );
    write(&watchers, "watcher.yml", WATCHER);
    let mut cfg = config(md.port);
    cfg.device.profiles_dir = profiles;
    cfg.device.devices_dir = devices;
    cfg.device.provision_watchers_dir = watchers;
    cfg.device.labels = vec!["test".into()];

    let driver = TestDriver::default();
    let ds = start("device-test", cfg.clone(), driver.clone(), bus.clone());
    ds.wait_healthy().await;

    let svc = md.get("/deviceservice/name/device-test").await;
    assert_eq!(svc.status, 200, "{svc:?}");
    assert_eq!(svc.body["service"]["baseAddress"], format!("http://127.0.0.1:{}", ds.port));
    assert_eq!(svc.body["service"]["adminState"], "UNLOCKED");
    assert_eq!(svc.body["service"]["labels"], json!(["test"]));
    assert_eq!(md.get("/deviceprofile/name/Test-Thermostat").await.status, 200);
    assert_eq!(md.get("/deviceprofile/name/Bad").await.status, 404, "a bad profile is not loaded");
    assert_eq!(devices_of(&md, "device-test").await, ["thermo-1", "thermo-2", "thermo-3"], "the bad device is skipped");
    let d2 = md.get("/device/name/thermo-2").await;
    assert_eq!(d2.body["device"]["autoEvents"][0]["sourceName"], "Temperature");
    assert_eq!(d2.body["device"]["operatingState"], "UP");
    let w = md.get("/provisionwatcher/name/thermo-watcher").await;
    assert_eq!(w.status, 200, "{w:?}");
    assert_eq!(w.body["provisionWatcher"]["serviceName"], "device-test");

    // The driver was initialized first, then told about every device; the SDK's cache has them.
    wait_until("the driver hears of the devices", async || driver.0.calls().len() >= 4).await;
    let calls = driver.0.calls();
    assert_eq!(calls[0], "initialize");
    let mut added: Vec<&String> = calls[1..].iter().collect();
    added.sort();
    assert_eq!(added, ["add:thermo-1", "add:thermo-2", "add:thermo-3"]);
    let sdk = driver.0.sdk();
    assert_eq!(sdk.service_name(), "device-test");
    assert_eq!(sdk.devices().len(), 3);
    assert_eq!(sdk.device("thermo-1").unwrap().description, "first");
    assert_eq!(sdk.profile("Test-Thermostat").unwrap().device_resources.len(), 1);

    // Clean stop: serve returns Ok and the driver is stopped last.
    ds.stop().await.unwrap();
    assert_eq!(driver.0.calls().last().unwrap(), "stop:false");
    assert!(sdk.device("thermo-1").is_none(), "the handle does not keep a stopped service alive");

    // A device deleted meanwhile is not brought back: the files load on the first start only.
    assert_eq!(md.delete("/device/name/thermo-1").await.status, 200);
    let again = TestDriver::default();
    let ds = start("device-test", cfg, again.clone(), bus.clone());
    ds.wait_healthy().await;
    assert_eq!(devices_of(&md, "device-test").await, ["thermo-2", "thermo-3"]);
    let svc = md.get("/deviceservice/name/device-test").await;
    assert_eq!(svc.body["service"]["baseAddress"], format!("http://127.0.0.1:{}", ds.port), "address updated");
    wait_until("the restarted driver hears of the devices", async || again.0.calls().len() >= 3).await;
    assert_eq!(again.0.sdk().devices().len(), 2);
    ds.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_service_stays_locked_across_restarts() {
    let bus = bus();
    let md = core_metadata(bus.clone(), 0).await;
    let body =
        one("service", json!({"name": "device-locked", "adminState": "LOCKED", "baseAddress": "http://old-host:1"}));
    assert_eq!(md.post("/deviceservice", &body).await.item(0)["statusCode"], 201);
    let ds = start("device-locked", config(md.port), TestDriver::default(), bus.clone());
    ds.wait_healthy().await;
    let svc = md.get("/deviceservice/name/device-locked").await;
    assert_eq!(svc.body["service"]["adminState"], "LOCKED");
    assert_eq!(svc.body["service"]["baseAddress"], format!("http://127.0.0.1:{}", ds.port));
    ds.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_metadata_down_at_start_is_waited_for_and_health_says_why() {
    let bus = bus();
    let port = free_port();
    let driver = TestDriver::default();
    let ds = start("device-late", config(port), driver.clone(), bus.clone());

    wait_until("the service answers", async || ds.get("/ping").await.status == 200).await;
    let health = ds.get("/health").await;
    assert_eq!(health.status, 503, "{health:?}");
    let why = health.body["checks"]["core-metadata"].as_str().unwrap();
    assert!(why.contains("core-metadata"), "{why}");
    assert_eq!(driver.0.calls(), ["initialize"], "the driver is initialized before core-metadata is up");

    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let md = core_metadata(bus.clone(), port).await;
    let body = one("profile", profile("P"));
    assert_eq!(md.post("/deviceprofile", &body).await.item(0)["statusCode"], 201);
    ds.wait_healthy().await;
    assert_eq!(md.get("/deviceservice/name/device-late").await.status, 200);

    // Once up, it follows core-metadata's changes.
    let body = one("device", device("late-1", "device-late", "P"));
    assert_eq!(md.post("/device", &body).await.item(0)["statusCode"], 201);
    wait_until("the driver hears of late-1", async || driver.0.calls().contains(&"add:late-1".to_owned())).await;
    ds.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_directory_is_reported_and_the_service_still_starts() {
    let bus = bus();
    let md = core_metadata(bus.clone(), 0).await;
    let mut cfg = config(md.port);
    cfg.device.profiles_dir = "/nonexistent/oxedge/profiles".into();
    let ds = start("device-nodir", cfg, TestDriver::default(), bus.clone());
    ds.wait_healthy().await;
    assert_eq!(md.get("/deviceservice/name/device-nodir").await.status, 200);
    ds.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_is_refused_naming_the_key() {
    let mut cfg = config(1);
    cfg.device.command_timeout = "0s".into();
    let ds = start("device-badcfg", cfg, TestDriver::default(), bus());
    let err = ds.task.await.unwrap().unwrap_err().to_string();
    assert!(err.contains("device.command_timeout"), "{err}");
}
