//! device-virtual as a device service: the SDK with a real core-metadata (in-process, SQLite in
//! a temporary directory) on an in-process bus, loading `profiles/device-virtual/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxedge_bus::{Bus, InProcessBus, SubscribeOptions};
use oxedge_core_metadata::store::sqlite::SqliteStore;
use oxedge_core_metadata::{load_uom, BusHook, Metadata, MetadataConfig};
use oxedge_device_sdk::config::DeviceServiceConfig;
use oxedge_device_virtual::VirtualDriver;
use oxedge_testkit::http::Api;
use serde_json::{json, Value as Json};
use tokio_util::sync::CancellationToken;

async fn wait_until(what: &str, limit: Duration, cond: impl AsyncFn() -> bool) {
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_load_answer_commands_and_the_load_generator_provisions_its_devices() {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();

    // core-metadata
    let tmp = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&tmp.path().join("metadata.db")).unwrap();
    let md = Metadata::new(
        Arc::new(store),
        Arc::new(BusHook::new(bus.clone(), stop.clone())),
        load_uom(&Default::default()).unwrap(),
    );
    let mut md_cfg = MetadataConfig::default();
    md_cfg.service.workers = 1;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let md_port = listener.local_addr().unwrap().port();
    let token = stop.clone();
    tokio::spawn(async move { oxedge_core_metadata::serve(&md_cfg, md, listener, token).await });
    let metadata = Api::new(format!("http://127.0.0.1:{md_port}/api/v3"));

    // device-virtual with three load devices
    let files = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles/device-virtual");
    let mut cfg = DeviceServiceConfig::default();
    cfg.service.workers = 1;
    cfg.clients.core_metadata.url = format!("http://127.0.0.1:{md_port}");
    cfg.device.profiles_dir = files.join("profiles");
    cfg.device.devices_dir = files.join("devices");
    cfg.device.provision_watchers_dir = files.join("provisionwatchers");
    cfg.driver.insert("load_devices".into(), json!(3));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = Api::new(format!("http://127.0.0.1:{}/api/v3", listener.local_addr().unwrap().port()));
    let mut events = bus
        .subscribe(&["edgex/events/device/device-virtual/Virtual-Load/#".to_owned()], SubscribeOptions::default())
        .await
        .unwrap();
    let driver = Arc::new(VirtualDriver::default());
    tokio::spawn(oxedge_device_sdk::run(
        oxedge_device_sdk::ServiceContext::standalone("device-virtual", bus.clone(), stop.clone()),
        cfg,
        driver,
        listener,
    ));

    wait_until("the file devices and the load devices are in core-metadata", Duration::from_secs(20), async || {
        let answer = metadata.get("/device/service/name/device-virtual?limit=100").await;
        answer.status == 200 && answer.body["totalCount"] == json!(12)
    })
    .await;
    wait_until("the service has its devices", Duration::from_secs(10), async || {
        api.get("/device/name/load-0003/Load").await.status == 200
    })
    .await;

    let answer = api.get("/device/name/load-0002/Load").await;
    let readings = answer.body["event"]["readings"].as_array().unwrap();
    assert_eq!(readings.len(), 5);

    // EdgeX's write command: the value and its randomization switch together.
    let answer = api.put("/device/name/Random-Integer-Device/WriteInt8Value", &json!({ "Int8": "42" })).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    for _ in 0..3 {
        let answer = api.get("/device/name/Random-Integer-Device/Int8").await;
        assert_eq!(answer.body["event"]["readings"][0]["value"], json!("42"));
    }
    let answer = api.put("/device/name/Virtual-Simulation-Device/SetPoint", &json!({ "SetPoint": "99" })).await;
    assert_eq!(answer.status, 400);
    assert!(answer.message().contains("SetPoint") && answer.message().contains("maximum 35"), "{}", answer.message());

    // The watcher's auto event reads every load device every second.
    let mut sources = std::collections::BTreeSet::new();
    let started = Instant::now();
    while sources.len() < 3 {
        assert!(started.elapsed() < Duration::from_secs(5), "auto events only from {sources:?}");
        let delivery = tokio::time::timeout(Duration::from_secs(5), events.next()).await.unwrap().unwrap();
        let envelope: Json = serde_json::from_slice(&delivery.payload).unwrap();
        let payload = envelope.get("payload").cloned().unwrap_or(envelope);
        let event = match payload {
            Json::String(b64) => {
                use base64::Engine as _;
                serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
            }
            other => other,
        };
        let event = event.get("event").cloned().unwrap_or(event);
        assert_eq!(event["readings"].as_array().map(Vec::len), Some(5), "{event}");
        sources.insert(event["deviceName"].as_str().unwrap().to_owned());
    }
}
