//! What device-modbus's tests share: a real Modbus server (pymodbus, `peers/modbus_server.py`)
//! with its request log, and requests built from JSON.

#![allow(dead_code)] // not every helper is used by a test (e.g. `start_serial`)

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxedge_bus::{Bus, InProcessBus, SubscribeOptions};
use oxedge_contracts::ValueType;
use oxedge_core_metadata::store::sqlite::SqliteStore;
use oxedge_core_metadata::{load_uom, BusHook, Metadata, MetadataConfig};
use oxedge_device_modbus::{ModbusDriver, SERVICE_NAME};
use oxedge_device_sdk::config::DeviceServiceConfig;
use oxedge_device_sdk::{CommandRequest, Protocols};
use oxedge_testkit::http::Api;
use serde_json::{json, Value as Json};
use tokio_util::sync::CancellationToken;

/// One request as the server logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub unit: u8,
    pub function: u8,
    pub address: u16,
    pub count: u16,
}

/// A pymodbus server on loopback (or a serial line), killed when dropped.
pub struct ModbusServer {
    child: Option<Child>,
    args: Vec<String>,
    pub port: u16,
    log: Arc<Mutex<Vec<Logged>>>,
}

impl ModbusServer {
    /// Starts `peers/modbus_server.py` on a free port with `args` (`--units`, `--init`…).
    pub fn start(args: &[&str]) -> Self {
        let port = oxedge_testkit::free_port();
        let mut server =
            Self { child: None, args: args.iter().map(|s| s.to_string()).collect(), port, log: Arc::default() };
        server.spawn();
        server
    }

    /// Starts the script with `args` as given (e.g. `--serial PATH`), with no TCP port.
    pub fn start_serial(args: &[&str]) -> Self {
        let mut server =
            Self { child: None, args: args.iter().map(|s| s.to_string()).collect(), port: 0, log: Arc::default() };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/modbus_server.py");
        let mut cmd = Command::new(oxedge_testkit::python::test_python());
        cmd.arg(script);
        if self.port != 0 {
            cmd.args(["--port", &self.port.to_string()]);
        }
        let mut child = cmd.args(&self.args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("python");
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "READY" {
                    let _ = ready_tx.send(());
                } else if let Some(rest) = line.strip_prefix("REQ ") {
                    let f: Vec<u32> = rest.split(' ').filter_map(|x| x.parse().ok()).collect();
                    if let [unit, function, address, count] = f[..] {
                        log.lock().unwrap().push(Logged {
                            unit: unit as u8,
                            function: function as u8,
                            address: address as u16,
                            count: count as u16,
                        });
                    }
                }
            }
        });
        ready_rx.recv_timeout(Duration::from_secs(20)).expect("the Modbus server did not start");
        self.child = Some(child);
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The requests logged so far, and forgets them.
    pub fn take_log(&self) -> Vec<Logged> {
        settle();
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    /// The requests logged so far.
    pub fn log(&self) -> Vec<Logged> {
        settle();
        self.log.lock().unwrap().clone()
    }

    /// Kills the server (its connections drop).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same arguments (and fresh registers).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The port may linger for a moment; the script exits at once if it cannot bind.
            let script_ok = std::net::TcpListener::bind(("127.0.0.1", self.port)).is_ok();
            if script_ok || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.spawn();
    }

    /// `modbus-tcp` protocol properties of `unit` on this server, as EdgeX writes them.
    pub fn protocols(&self, unit: u8) -> Protocols {
        tcp_protocols(self.port, unit, "2")
    }
}

/// Lets the thread reading the server's output catch up: the server logs a request before it
/// answers, so a moment after the answer the line has been read.
fn settle() {
    std::thread::sleep(Duration::from_millis(100));
}

impl Drop for ModbusServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `modbus-tcp` protocol properties for `127.0.0.1:port`, unit `unit`, `Timeout` as given.
pub fn tcp_protocols(port: u16, unit: u8, timeout: &str) -> Protocols {
    serde_json::from_value(json!({"modbus-tcp": {
        "Address": "127.0.0.1", "Port": port.to_string(), "UnitID": unit.to_string(),
        "Timeout": timeout, "IdleTimeout": "5"
    }}))
    .unwrap()
}

/// A request for resource `name` of `value_type` with `attributes`.
pub fn req(name: &str, value_type: ValueType, attributes: Json) -> CommandRequest {
    let Json::Object(attributes) = attributes else { panic!("attributes must be an object") };
    CommandRequest { resource_name: name.to_owned(), attributes, value_type }
}

/// core-metadata and device-modbus, stopped when dropped.
pub struct Stack {
    pub api: Api,
    pub metadata: Api,
    /// Events received, by device name.
    pub events: Arc<Mutex<HashMap<String, usize>>>,
    _stop: tokio_util::sync::DropGuard,
    _tmp: tempfile::TempDir,
}

impl Stack {
    /// Starts both with `profiles` (default: the shipped profiles) and `devices` (YAML) as the
    /// devices file.
    pub async fn start(
        profiles: Option<PathBuf>,
        devices: &str,
        tweak: impl FnOnce(&mut DeviceServiceConfig),
    ) -> Stack {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
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
        std::fs::write(devices_dir.join("devices.yaml"), devices).unwrap();
        let mut cfg = DeviceServiceConfig::default();
        cfg.service.workers = 1;
        cfg.clients.core_metadata.url = format!("http://127.0.0.1:{md_port}");
        cfg.device.profiles_dir = profiles
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles/device-modbus/profiles"));
        cfg.device.devices_dir = devices_dir;
        tweak(&mut cfg);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let api = Api::new(format!("http://127.0.0.1:{}/api/v3", listener.local_addr().unwrap().port()));

        let mut sub = bus
            .subscribe(&[format!("edgex/events/device/{SERVICE_NAME}/#")], SubscribeOptions::default())
            .await
            .unwrap();
        let events: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let counts = events.clone();
        tokio::spawn(async move {
            while let Some(delivery) = sub.next().await {
                // edgex/events/device/{service}/{profile}/{device}/{source}
                if let Some(device) = delivery.topic.split('/').nth(5) {
                    *counts.lock().unwrap().entry(device.to_owned()).or_default() += 1;
                }
            }
        });
        let driver = Arc::new(ModbusDriver::default());
        tokio::spawn(oxedge_device_sdk::run(
            oxedge_device_sdk::ServiceContext::standalone(SERVICE_NAME, bus, stop.clone()),
            cfg,
            driver,
            listener,
        ));
        let metadata = Api::new(format!("http://127.0.0.1:{md_port}/api/v3"));
        Stack { api, metadata, events, _stop: stop.drop_guard(), _tmp: tmp }
    }

    pub async fn wait_until(&self, what: &str, limit: Duration, cond: impl AsyncFn() -> bool) {
        let start = Instant::now();
        while !cond().await {
            assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn operating_state(&self, device: &str) -> String {
        let answer = self.metadata.get(&format!("/device/name/{device}")).await;
        answer.body["device"]["operatingState"].as_str().unwrap_or_default().to_owned()
    }

    pub fn events_of(&self, device: &str) -> usize {
        self.events.lock().unwrap().get(device).copied().unwrap_or(0)
    }

    /// The readings of `GET /device/name/{device}/{command}`, value by resource name.
    pub async fn read(&self, device: &str, command: &str) -> HashMap<String, String> {
        let answer = self.api.get(&format!("/device/name/{device}/{command}")).await;
        assert_eq!(answer.status, 200, "{device}/{command}: {}", answer.body);
        answer.body["event"]["readings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["resourceName"].as_str().unwrap().to_owned(), r["value"].as_str().unwrap().to_owned()))
            .collect()
    }
}

pub fn device(name: &str, profile: &str, port: u16, unit: u8, auto_events: Json) -> Json {
    json!({
        "name": name, "profileName": profile, "adminState": "UNLOCKED", "operatingState": "UP",
        "protocols": {"modbus-tcp": {
            "Address": "127.0.0.1", "Port": port.to_string(), "UnitID": unit.to_string(), "Timeout": "1", "IdleTimeout": "5"
        }},
        "autoEvents": auto_events
    })
}

pub fn devices_yaml(devices: &[Json]) -> String {
    // JSON is YAML.
    json!({ "deviceList": devices }).to_string()
}
