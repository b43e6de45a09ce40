//! What the device-mqtt tests share: the service served by `oxedge_device_sdk::run` next to
//! a real core-metadata (in-process, SQLite in a temporary directory) on an in-process bus,
//! its driver talking to a real Mosquitto; and the Python device simulator
//! (`tests/peers/mqtt_device.py`, paho-mqtt) driven over its stdin.
//!
//! Tests share one Mosquitto and run in parallel: each one's topics start with a prefix of
//! its own, and its clients have ids of their own.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxedge_bus::{Bus, InProcessBus, MessageEnvelope, SubscribeOptions, Subscription};
use oxedge_core_metadata::store::sqlite::SqliteStore;
use oxedge_core_metadata::{load_uom, BusHook, Metadata, MetadataConfig};
use oxedge_device_mqtt::{MqttDriver, SERVICE_NAME};
use oxedge_device_sdk::config::DeviceServiceConfig;
pub use oxedge_testkit::http::{Answer, Api};
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a device waits for an answer in these tests.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Waits until `cond` holds, polling; fails the test after `limit`.
pub async fn wait_until(what: &str, limit: Duration, cond: impl AsyncFn() -> bool) {
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A topic prefix of this test's own (`t1a2b3c4d/`).
pub fn unique_prefix() -> String {
    format!("t{}/", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// device-mqtt, served with its devices, and what a test looks at.
pub struct Harness {
    /// The service's API (`…/api/v3`); a new port after [`Harness::start_service`].
    pub api: Api,
    /// core-metadata's API.
    pub metadata: Api,
    /// Where the service publishes events.
    pub bus: Arc<dyn Bus>,
    /// The prefix of this test's topics.
    pub prefix: String,
    /// The service's configuration, kept for its next start.
    cfg: DeviceServiceConfig,
    /// The running service: what stops it, and its task.
    service: Option<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
    stop: CancellationToken,
    _tmp: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Harness {
    /// Starts core-metadata and device-mqtt with the profiles of `profiles/device-mqtt/` and
    /// the devices `(name, profile)`, whose command topics are `{prefix}command/{name}`; the
    /// driver's topics start with `prefix` and it talks to the broker at `broker_url`. Events
    /// go to an in-process bus.
    pub async fn start(broker_url: &str, prefix: &str, devices: &[(&str, &str)]) -> Self {
        Self::start_with(broker_url, prefix, devices, Arc::new(InProcessBus::new()), &json!({})).await
    }

    /// As [`Harness::start`], with the events on `bus` and the driver keys of `driver` (a
    /// JSON object) over the test's defaults.
    pub async fn start_with(
        broker_url: &str,
        prefix: &str,
        devices: &[(&str, &str)],
        bus: Arc<dyn Bus>,
        driver: &Json,
    ) -> Self {
        let stop = CancellationToken::new();
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

        let devices_dir = tmp.path().join("devices");
        std::fs::create_dir(&devices_dir).unwrap();
        let list: Vec<Json> = devices
            .iter()
            .map(|(name, profile)| {
                json!({"name": name, "profileName": profile,
                       "protocols": {"mqtt": {"CommandTopic": format!("{prefix}command/{name}")}}})
            })
            .collect();
        std::fs::write(devices_dir.join("devices.json"), serde_json::to_vec(&list).unwrap()).unwrap();

        let files = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles/device-mqtt");
        let mut cfg = DeviceServiceConfig::default();
        cfg.service.workers = 1;
        cfg.clients.core_metadata.url = format!("http://127.0.0.1:{md_port}");
        cfg.device.profiles_dir = files.join("profiles");
        cfg.device.devices_dir = devices_dir;
        cfg.device.command_timeout = "5s".into();
        cfg.device.allowed_fails = 0;
        let defaults = json!({
            "broker_url": broker_url,
            "client_id": format!("device-mqtt-{}", prefix.trim_end_matches('/')),
            "incoming_topic": format!("{prefix}incoming/data/#"),
            "response_topic": format!("{prefix}command/response/#"),
            "response_timeout": format!("{}ms", RESPONSE_TIMEOUT.as_millis()),
        });
        cfg.driver = defaults.as_object().unwrap().clone();

        let mut h = Self {
            api: Api::new("http://127.0.0.1:1/api/v3"),
            metadata: Api::new(format!("http://127.0.0.1:{md_port}/api/v3")),
            bus,
            prefix: prefix.to_owned(),
            cfg,
            service: None,
            stop,
            _tmp: tmp,
        };
        h.start_service(driver).await;
        let last = devices.last().map(|(name, _)| *name).unwrap_or_default().to_owned();
        wait_until("the service knows its devices", Duration::from_secs(20), async || {
            let answer = h.metadata.get(&format!("/device/name/{last}")).await;
            answer.status == 200
        })
        .await;
        h
    }

    /// Starts device-mqtt (again, after [`Harness::stop_service`]) on a new port, with the
    /// driver keys of `driver` over those it had; core-metadata and the bus stay as they are.
    pub async fn start_service(&mut self, driver: &Json) {
        assert!(self.service.is_none(), "device-mqtt is already running");
        for (key, value) in driver.as_object().expect("driver keys as a JSON object") {
            self.cfg.driver.insert(key.clone(), value.clone());
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        self.api = Api::new(format!("http://127.0.0.1:{}/api/v3", listener.local_addr().unwrap().port()));
        let token = self.stop.child_token();
        let driver = Arc::new(MqttDriver::new());
        let served = oxedge_device_sdk::run(
            oxedge_device_sdk::ServiceContext::standalone(SERVICE_NAME, self.bus.clone(), token.clone()),
            self.cfg.clone(),
            driver,
            listener,
        );
        self.service = Some((token, tokio::spawn(served)));
    }

    /// Stops device-mqtt as a shutdown does (HTTP, its tasks, then the driver), and waits
    /// until it has.
    pub async fn stop_service(&mut self) {
        let (token, task) = self.service.take().expect("device-mqtt is running");
        token.cancel();
        let served = tokio::time::timeout(Duration::from_secs(30), task).await;
        served.expect("device-mqtt stops within 30 s").expect("device-mqtt's task").expect("device-mqtt served");
    }

    /// Waits until `/api/v3/health` answers 200 (registered, broker connected, subscribed).
    pub async fn wait_healthy(&self) {
        wait_until("the service is healthy", Duration::from_secs(20), async || {
            self.api.get("/health").await.status == 200
        })
        .await;
    }

    /// Subscribes to the events the service publishes.
    pub async fn events(&self) -> Subscription {
        let filter = format!("edgex/events/device/{SERVICE_NAME}/#");
        self.bus.subscribe(&[filter], SubscribeOptions::default()).await.unwrap()
    }

    /// `GET /device/name/{device}/{command}`.
    pub async fn get(&self, device: &str, command: &str) -> Answer {
        self.api.get(&format!("/device/name/{device}/{command}")).await
    }

    /// `PUT /device/name/{device}/{command}` with `body`.
    pub async fn put(&self, device: &str, command: &str, body: &Json) -> Answer {
        self.api.put(&format!("/device/name/{device}/{command}"), body).await
    }

    /// The value of the sample `name` (with its labels) on `/metrics`; 0 when absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let url = self.api.url("").replace("/api/v3", "/metrics");
        let page = self.api.client.get(&url).send().await.unwrap().text().await.unwrap();
        page.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }
}

/// The next event on `events` (the `event` of the EdgeX event payload), within `limit`.
pub async fn next_event(events: &mut Subscription, limit: Duration) -> Json {
    let delivery = tokio::time::timeout(limit, events.next())
        .await
        .unwrap_or_else(|_| panic!("no event within {limit:?}"))
        .expect("the bus is open");
    let envelope = MessageEnvelope::from_bytes(&delivery.payload, &delivery.topic).unwrap();
    let payload: Json = envelope.payload_as().unwrap();
    payload["event"].clone()
}

/// The Python device simulator, for one device.
pub struct Simulator {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Simulator {
    /// Starts the simulator of `device` on the broker `host:port`, topics under `prefix`,
    /// with `state` (resource → value); returns once it has subscribed.
    pub async fn start(host: &str, port: u16, device: &str, prefix: &str, state: &Json) -> Self {
        let mut sim = Self::spawn(host, port, device, prefix, state);
        sim.expect("subscribed").await;
        sim
    }

    /// Starts the simulator without waiting for its broker.
    pub fn spawn(host: &str, port: u16, device: &str, prefix: &str, state: &Json) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/mqtt_device.py");
        let mut child = Command::new(oxedge_testkit::python::test_python())
            .arg(script)
            .args(["--host", host, "--port", &port.to_string(), "--device", device, "--prefix", prefix])
            .args(["--state", &state.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the device simulator");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, stdin, lines }
    }

    /// Sends one command line (see the script's doc).
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").and_then(|()| self.stdin.flush()).expect("the simulator runs");
    }

    /// Sends `line` and waits for the simulator to have done it.
    pub async fn run(&mut self, line: &str) {
        self.send(line);
        let command = line.split(' ').next().unwrap_or_default();
        self.expect(&format!("done {command}")).await;
    }

    /// The next line starting with `prefix`, skipping others; fails after 30 s.
    pub async fn expect(&mut self, prefix: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) if line.starts_with(prefix) => return line,
                Ok(Some(_)) => {}
                Ok(None) => panic!("the simulator exited while '{prefix}' was awaited"),
                Err(_) => panic!("the simulator did not say '{prefix}' within 30 s"),
            }
        }
    }
}
