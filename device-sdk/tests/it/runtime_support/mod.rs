//! What the runtime tests share: a real core-metadata in-process on loopback (SQLite in a
//! temporary directory) publishing its system events on an in-process bus, a device service
//! run with [`oxedge_device_sdk::run`] on the same bus, and a driver that records the
//! SDK's callbacks.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use oxedge_bus::{Bus, InProcessBus};
use oxedge_contracts::Device;
use oxedge_core_metadata::store::sqlite::SqliteStore;
use oxedge_core_metadata::{load_uom, BusHook, Metadata, MetadataConfig};
use oxedge_device_sdk::config::DeviceServiceConfig;
use oxedge_device_sdk::WriteCommand;
use oxedge_device_sdk::{
    CommandRequest, CommandValue, Discovered, DriverResult, ProtocolDriver, Protocols, Sdk, Value,
};
pub use oxedge_testkit::http::Api;
use serde_json::{json, Value as Json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running core-metadata; stops when dropped.
pub struct CoreMetadata {
    pub api: Api,
    pub port: u16,
    token: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for CoreMetadata {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl std::ops::Deref for CoreMetadata {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// core-metadata on `port` (0: any), announcing its changes on `bus`.
pub async fn core_metadata(bus: Arc<dyn Bus>, port: u16) -> CoreMetadata {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("metadata.db")).unwrap();
    let token = CancellationToken::new();
    let hook = Arc::new(BusHook::new(bus, token.clone()));
    let md = Metadata::new(Arc::new(store), hook, load_uom(&Default::default()).unwrap());
    let mut cfg = MetadataConfig::default();
    cfg.service.workers = 1;
    cfg.service.shutdown_grace = 1;
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = token.clone();
    tokio::spawn(async move { oxedge_core_metadata::serve(&cfg, md, listener, t).await.unwrap() });
    let api = Api::new(format!("http://127.0.0.1:{port}/api/v3"));
    let server = CoreMetadata { api, port, token, _dir: dir };
    wait_until("core-metadata answers", async || server.get("/ping").await.status == 200).await;
    server
}

/// The SDK's calls into the driver, in order (`add:d1`, `update:d1`, `remove:d1`, `stop`).
#[derive(Default)]
pub struct Recorder {
    pub calls: Mutex<Vec<String>>,
    pub sdk: Mutex<Option<Sdk>>,
    /// What `discover` answers.
    pub found: Mutex<Vec<Discovered>>,
}

impl Recorder {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    pub fn sdk(&self) -> Sdk {
        self.sdk.lock().unwrap().clone().expect("initialize was called")
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

/// A driver that records its calls and reads 21.5 from every resource.
#[derive(Clone, Default)]
pub struct TestDriver(pub Arc<Recorder>);

#[async_trait]
impl ProtocolDriver for TestDriver {
    async fn initialize(&self, sdk: Sdk) -> DriverResult<()> {
        *self.0.sdk.lock().unwrap() = Some(sdk);
        self.0.record("initialize".into());
        Ok(())
    }

    async fn handle_read_commands(
        &self,
        _device: &str,
        _protocols: &Protocols,
        requests: &[CommandRequest],
    ) -> DriverResult<Vec<CommandValue>> {
        Ok(requests.iter().map(|r| CommandValue::new(&r.resource_name, Value::Float32(21.5))).collect())
    }

    async fn handle_write_commands(
        &self,
        _device: &str,
        _protocols: &Protocols,
        _writes: &[WriteCommand],
    ) -> DriverResult<()> {
        Ok(())
    }

    async fn add_device(&self, device: &Device) -> DriverResult<()> {
        self.0.record(format!("add:{}", device.name));
        Ok(())
    }

    async fn update_device(&self, device: &Device) -> DriverResult<()> {
        self.0.record(format!("update:{}", device.name));
        Ok(())
    }

    async fn remove_device(&self, device: &Device) -> DriverResult<()> {
        self.0.record(format!("remove:{}", device.name));
        Ok(())
    }

    async fn discover(&self) -> DriverResult<Vec<Discovered>> {
        Ok(self.0.found.lock().unwrap().clone())
    }

    async fn stop(&self, force: bool) {
        self.0.record(format!("stop:{force}"));
    }
}

/// A running device service.
pub struct DeviceService {
    pub api: Api,
    pub port: u16,
    pub token: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl std::ops::Deref for DeviceService {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl DeviceService {
    /// Cancels the service and returns what `serve` returned, within 10 s.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.token.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("the service stops within 10 s").unwrap()
    }

    /// Waits until `/api/v3/health` answers 200.
    pub async fn wait_healthy(&self) {
        wait_until("the device service is healthy", async || self.get("/health").await.status == 200).await;
    }
}

/// A test configuration for a device service using core-metadata on `metadata_port`.
pub fn config(metadata_port: u16) -> DeviceServiceConfig {
    let mut cfg = DeviceServiceConfig::default();
    cfg.service.workers = 1;
    cfg.service.shutdown_grace = 1;
    cfg.clients.core_metadata.url = format!("http://127.0.0.1:{metadata_port}");
    cfg.clients.core_metadata.timeout = "2s".into();
    cfg
}

/// Starts the device service `name` with `cfg` and `driver` on `bus`.
pub fn start(name: &'static str, cfg: DeviceServiceConfig, driver: TestDriver, bus: Arc<dyn Bus>) -> DeviceService {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let token = CancellationToken::new();
    let task = tokio::spawn(oxedge_device_sdk::run(
        oxedge_device_sdk::ServiceContext::standalone(name, bus, token.clone()),
        cfg,
        Arc::new(driver),
        listener,
    ));
    DeviceService { api: Api::new(format!("http://127.0.0.1:{port}/api/v3")), port, token, task }
}

/// A fresh in-process bus.
pub fn bus() -> Arc<dyn Bus> {
    Arc::new(InProcessBus::new())
}

/// Waits up to 10 s for `cond`.
pub async fn wait_until(what: &str, cond: impl AsyncFn() -> bool) {
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < Duration::from_secs(10), "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A batch of one item `{apiVersion, <field>: value}`.
pub fn one(field: &str, value: Json) -> Json {
    json!([{ "apiVersion": "v3", field: value }])
}

/// A thermostat profile named `name`.
pub fn profile(name: &str) -> Json {
    json!({
        "name": name,
        "manufacturer": "Oxedge",
        "deviceResources": [
            { "name": "Temperature", "properties": { "valueType": "Float32", "readWrite": "R", "units": "C" } }
        ]
    })
}

/// A device of `service` using `profile`.
pub fn device(name: &str, service: &str, profile: &str) -> Json {
    json!({
        "name": name, "adminState": "UNLOCKED", "operatingState": "UP",
        "serviceName": service, "profileName": profile,
        "protocols": { "other": { "Address": "10.0.0.1" } }
    })
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// The names of the devices of `service` in core-metadata, sorted.
pub async fn devices_of(md: &Api, service: &str) -> Vec<String> {
    let answer = md.get(&format!("/device/service/name/{service}?limit=-1")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let mut names: Vec<String> =
        answer.body["devices"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}
