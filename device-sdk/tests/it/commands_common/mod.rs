//! What the command tests share: a recording test driver, and a device service served by
//! `oxedge_device_sdk::run` next to a real core-metadata (in-process, SQLite in a temporary
//! directory), both on the in-process bus, on loopback ports.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use oxedge_bus::{Bus, InProcessBus, MessageEnvelope, SubscribeOptions, Subscription};
use oxedge_core_metadata::store::sqlite::SqliteStore;
use oxedge_core_metadata::{load_uom, BusHook, Metadata, MetadataConfig};
use oxedge_device_sdk::config::DeviceServiceConfig;
use oxedge_device_sdk::WriteCommand;
use oxedge_device_sdk::{
    CommandRequest, CommandValue, DriverError, DriverResult, ProtocolDriver, Protocols, Sdk, Value,
};
pub use oxedge_testkit::http::{Answer, Api};
use serde_json::{json, Value as Json};
use tokio_util::sync::CancellationToken;

/// The device service's name.
pub const SERVICE: &str = "device-test";

/// One write the driver got: device, requests and values.
pub type Write = (String, Vec<CommandRequest>, Vec<CommandValue>);

/// A driver that answers reads from a table of values, records every call, and fails or
/// dawdles on demand.
#[derive(Default)]
pub struct TestDriver {
    /// Values returned by reads, by resource; writes store theirs here.
    pub values: Mutex<HashMap<String, Value>>,
    /// Every read: device and requests.
    pub reads: Mutex<Vec<(String, Vec<CommandRequest>)>>,
    /// Every write: device, requests and values.
    pub writes: Mutex<Vec<Write>>,
    /// When set, every call fails with this error.
    pub fail: Mutex<Option<DriverError>>,
    /// How long every call takes.
    pub delay: Mutex<Duration>,
    /// The handle the SDK gave at initialization.
    pub sdk: Mutex<Option<Sdk>>,
    /// When set, calls are not recorded (load tests).
    pub quiet: AtomicBool,
    in_flight: AtomicUsize,
    /// The most calls seen in flight at once.
    pub max_in_flight: AtomicUsize,
}

impl TestDriver {
    /// Sets the value reads of `resource` return.
    pub fn set(&self, resource: &str, value: Value) {
        self.values.lock().unwrap().insert(resource.to_owned(), value);
    }

    /// Makes every call fail with `error` (or succeed again with `None`).
    pub fn fail_with(&self, error: Option<DriverError>) {
        *self.fail.lock().unwrap() = error;
    }

    /// Makes every call take `delay`.
    pub fn slow(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    /// The SDK's handle.
    pub fn sdk(&self) -> Sdk {
        self.sdk.lock().unwrap().clone().expect("initialized")
    }

    /// How many reads of `device` the driver got.
    pub fn reads_of(&self, device: &str) -> usize {
        self.reads.lock().unwrap().iter().filter(|(d, _)| d == device).count()
    }

    async fn call(&self) -> DriverResult<()> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        match self.fail.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl ProtocolDriver for TestDriver {
    async fn initialize(&self, sdk: Sdk) -> DriverResult<()> {
        *self.sdk.lock().unwrap() = Some(sdk);
        Ok(())
    }

    async fn handle_read_commands(
        &self,
        device: &str,
        _protocols: &Protocols,
        requests: &[CommandRequest],
    ) -> DriverResult<Vec<CommandValue>> {
        if !self.quiet.load(Ordering::Relaxed) {
            self.reads.lock().unwrap().push((device.to_owned(), requests.to_vec()));
        }
        self.call().await?;
        let values = self.values.lock().unwrap();
        requests
            .iter()
            .map(|r| match values.get(&r.resource_name) {
                Some(v) => Ok(CommandValue::new(r.resource_name.clone(), v.clone())),
                None => Err(DriverError::Failed(format!("no value for {}", r.resource_name))),
            })
            .collect()
    }

    async fn handle_write_commands(
        &self,
        device: &str,
        _protocols: &Protocols,
        writes: &[WriteCommand],
    ) -> DriverResult<()> {
        let (requests, values) = writes.iter().map(|w| (w.request.clone(), w.value.clone())).unzip();
        self.writes.lock().unwrap().push((device.to_owned(), requests, values));
        self.call().await?;
        let mut table = self.values.lock().unwrap();
        for WriteCommand { value, .. } in writes {
            table.insert(value.resource_name.clone(), value.value.clone());
        }
        Ok(())
    }
}

/// The profile every test uses: reads, writes, defaults, mappings, a hidden resource.
pub fn profile() -> Json {
    json!({
        "name": "Thermostat",
        "manufacturer": "Oxedge",
        "deviceResources": [
            {"name": "Temperature", "properties": {"valueType": "Float64", "readWrite": "R", "units": "C"},
             "attributes": {"register": 30001}, "tags": {"kind": "sensor"}},
            {"name": "SetPoint", "properties": {"valueType": "Int32", "readWrite": "RW", "minimum": 5, "maximum": 30,
             "defaultValue": "20"}, "attributes": {"register": 40001}},
            {"name": "Mode", "properties": {"valueType": "String", "readWrite": "RW"}},
            {"name": "Power", "properties": {"valueType": "Uint8", "readWrite": "RW"}},
            {"name": "Counter", "properties": {"valueType": "Uint32", "readWrite": "R"}},
            {"name": "Serial", "isHidden": true, "properties": {"valueType": "String", "readWrite": "R"}},
            {"name": "Reset", "properties": {"valueType": "Bool", "readWrite": "W", "defaultValue": "true"}},
            {"name": "Status", "properties": {"valueType": "String", "readWrite": "R", "assertion": "OK"}}
        ],
        "deviceCommands": [
            {"name": "Climate", "readWrite": "R", "tags": {"group": "climate"},
             "resourceOperations": [{"deviceResource": "Temperature"}, {"deviceResource": "SetPoint"}]},
            {"name": "Configure", "readWrite": "RW",
             "resourceOperations": [{"deviceResource": "SetPoint"}, {"deviceResource": "Mode", "defaultValue": "auto"}]},
            {"name": "Switch", "readWrite": "RW",
             "resourceOperations": [{"deviceResource": "Power", "mappings": {"0": "off", "1": "on"}}]},
            {"name": "ResetAll", "readWrite": "W", "resourceOperations": [{"deviceResource": "Reset"}]}
        ]
    })
}

/// A device of the test profile.
pub fn device(name: &str) -> Json {
    json!({
        "name": name, "adminState": "UNLOCKED", "operatingState": "UP", "profileName": "Thermostat",
        "serviceName": SERVICE, "protocols": {"other": {"Address": name}}, "tags": {"site": "lab"}
    })
}

/// Sets the values the test profile's resources read.
pub fn default_values(driver: &TestDriver) {
    driver.set("Temperature", Value::Float64(21.5));
    driver.set("SetPoint", Value::Int32(20));
    driver.set("Mode", Value::String("auto".into()));
    driver.set("Power", Value::Uint8(1));
    driver.set("Counter", Value::Uint32(7));
    driver.set("Serial", Value::String("SN-1".into()));
    driver.set("Status", Value::String("OK".into()));
}

/// A device service and the core-metadata it registered with; both stop when dropped.
pub struct Harness {
    /// The device service's API (`…/api/v3`).
    pub ds: Api,
    /// core-metadata's API (`…/api/v3`).
    pub metadata: Api,
    /// The bus both are on.
    pub bus: Arc<InProcessBus>,
    /// The driver.
    pub driver: Arc<TestDriver>,
    token: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

fn loopback() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    (listener, base)
}

/// Starts core-metadata and a device service whose device files hold `devices` (and the test
/// profile), with the configuration `tune` changes; returns once the service is registered
/// and its devices cached.
pub async fn start(devices: Vec<Json>, tune: impl FnOnce(&mut DeviceServiceConfig)) -> Harness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let token = CancellationToken::new();
    let bus = Arc::new(InProcessBus::new());

    let store = SqliteStore::open(&dir.path().join("metadata.db")).expect("open SQLite store");
    let hook = BusHook::new(bus.clone(), token.clone());
    let md = Metadata::new(Arc::new(store), Arc::new(hook), load_uom(&Default::default()).expect("units"));
    let mut md_cfg = MetadataConfig::default();
    md_cfg.service.workers = 1;
    md_cfg.service.shutdown_grace = 1;
    let (md_listener, md_base) = loopback();
    let md_token = token.clone();
    tokio::spawn(async move { oxedge_core_metadata::serve(&md_cfg, md, md_listener, md_token).await });

    let profiles = dir.path().join("profiles");
    let device_files = dir.path().join("devices");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::create_dir_all(&device_files).unwrap();
    std::fs::write(profiles.join("thermostat.json"), profile().to_string()).unwrap();
    std::fs::write(device_files.join("devices.json"), Json::Array(devices.clone()).to_string()).unwrap();

    let mut cfg = DeviceServiceConfig::default();
    cfg.service.workers = 1;
    cfg.service.shutdown_grace = 1;
    cfg.clients.core_metadata.url = md_base.clone();
    cfg.device.profiles_dir = profiles;
    cfg.device.devices_dir = device_files;
    cfg.device.command_timeout = "2s".into();
    tune(&mut cfg);
    let driver = Arc::new(TestDriver::default());
    default_values(&driver);
    let (listener, base) = loopback();
    let (d, b, t) = (driver.clone() as Arc<dyn ProtocolDriver>, bus.clone() as Arc<dyn Bus>, token.clone());
    tokio::spawn(async move {
        if let Err(e) =
            oxedge_device_sdk::run(oxedge_device_sdk::ServiceContext::standalone(SERVICE, b, t), cfg, d, listener).await
        {
            panic!("device service failed: {e:#}");
        }
    });

    let h = Harness {
        ds: Api::new(format!("{base}/api/v3")),
        metadata: Api::new(format!("{md_base}/api/v3")),
        bus,
        driver,
        token,
        _dir: dir,
    };
    let names: Vec<String> = devices.iter().map(|d| d["name"].as_str().unwrap().to_owned()).collect();
    h.wait_until("the service is ready and its devices known", || async {
        if h.ds.get("/health").await.status != 200 {
            return false;
        }
        for n in &names {
            // A known device answers anything but 404 (the command does not exist: 404 too,
            // but with another message).
            let a = h.ds.get(&format!("/device/name/{}/nothing", enc(n))).await;
            if a.message().contains(&format!("device {n} not found")) {
                return false;
            }
        }
        true
    })
    .await;
    h
}

/// Percent-encodes a path segment.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Harness {
    /// Polls `check` until it holds, for up to 10 s.
    pub async fn wait_until<F, Fut>(&self, what: &str, check: F)
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check().await {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Subscribes to `filter` on the bus.
    pub async fn subscribe(&self, filter: &str) -> Subscription {
        self.bus.subscribe(&[filter.to_owned()], SubscribeOptions::default()).await.expect("subscribe")
    }

    /// `GET /device/name/{device}/{command}{query}`.
    pub async fn get(&self, device: &str, command: &str, query: &str) -> Answer {
        self.ds.get(&format!("/device/name/{}/{}{query}", enc(device), enc(command))).await
    }

    /// `PUT /device/name/{device}/{command}` with `body`.
    pub async fn put(&self, device: &str, command: &str, body: &Json) -> Answer {
        self.ds.put(&format!("/device/name/{}/{}", enc(device), enc(command)), body).await
    }

    /// The device as core-metadata has it.
    pub async fn metadata_device(&self, name: &str) -> Json {
        let a = self.metadata.get(&format!("/device/name/{}", enc(name))).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        a.body["device"].clone()
    }

    /// PATCHes `fields` of device `name` in core-metadata.
    pub async fn patch_device(&self, name: &str, mut fields: Json) {
        fields["name"] = json!(name);
        let a = self.metadata.patch("/device", &json!([{"apiVersion": "v3", "device": fields}])).await;
        assert_eq!(a.item(0)["statusCode"], 200, "{:?}", a.body);
    }

    /// Sends a command request on the bus as core-command does and waits for the answer.
    pub async fn bus_request(
        &self,
        device: &str,
        command: &str,
        method: &str,
        query: &[(&str, &str)],
        payload: Json,
    ) -> MessageEnvelope {
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut answers = self.subscribe(&oxedge_bus::topic::response(SERVICE, &request_id)).await;
        let params: BTreeMap<String, String> = query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let env = MessageEnvelope::json(&payload, None).unwrap().with_request_id(request_id).with_query_params(params);
        let topic = oxedge_bus::topic::command_request(SERVICE, device, command, method);
        oxedge_bus::publish_envelope(self.bus.as_ref(), &topic, &env).await.unwrap();
        let d = tokio::time::timeout(Duration::from_secs(10), answers.next()).await.expect("an answer").unwrap();
        MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap()
    }
}

/// The event payloads received on `sub` within `wait`.
pub async fn events_within(sub: &mut Subscription, wait: Duration) -> Vec<Json> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    while let Ok(Some(d)) = tokio::time::timeout_at(deadline, sub.next()).await {
        let env = MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap();
        out.push(env.payload_as::<Json>().unwrap());
    }
    out
}
