//! What device-rest's tests share: device-rest served by `oxedge_device_sdk::run` with the
//! profiles of `profiles/device-rest/`, next to a real core-metadata (in-process, SQLite in a
//! temporary directory), both on an in-process bus, on loopback ports.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxedge_bus::{Bus, InProcessBus, MessageEnvelope, SubscribeOptions, Subscription};
use oxedge_core_metadata::store::sqlite::SqliteStore;
use oxedge_core_metadata::{load_uom, BusHook, Metadata, MetadataConfig};
use oxedge_device_rest::RestDriver;
use oxedge_device_sdk::config::DeviceServiceConfig;
pub use oxedge_testkit::http::{Answer, Api};
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

/// The service's name.
pub const SERVICE: &str = oxedge_device_rest::SERVICE_NAME;

/// device-rest and the core-metadata it registered with; both stop when dropped.
pub struct Harness {
    /// device-rest's API (`…/api/v3`).
    pub ds: Api,
    /// core-metadata's API (`…/api/v3`).
    pub metadata: Api,
    /// The bus both are on.
    pub bus: Arc<dyn Bus>,
    token: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// `profiles/device-rest/` in the repository.
pub fn files() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles/device-rest")
}

fn loopback() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    (listener, base)
}

/// Starts core-metadata and device-rest with the repository's profiles and the device file
/// `devices` (YAML), the configuration changed by `tune`, on an in-process bus; returns once
/// the devices `ready` are served.
pub async fn start(devices: &str, ready: &[&str], tune: impl FnOnce(&mut DeviceServiceConfig)) -> Harness {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    start_on(bus.clone(), bus, devices, ready, tune).await
}

/// As [`start`], core-metadata on `md_bus` and device-rest on `bus` (two connections to one
/// broker).
pub async fn start_on(
    md_bus: Arc<dyn Bus>,
    bus: Arc<dyn Bus>,
    devices: &str,
    ready: &[&str],
    tune: impl FnOnce(&mut DeviceServiceConfig),
) -> Harness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let token = CancellationToken::new();

    let store = SqliteStore::open(&dir.path().join("metadata.db")).expect("open SQLite store");
    let hook = BusHook::new(md_bus, token.clone());
    let md = Metadata::new(Arc::new(store), Arc::new(hook), load_uom(&Default::default()).expect("units"));
    let mut md_cfg = MetadataConfig::default();
    md_cfg.service.workers = 1;
    md_cfg.service.shutdown_grace = 1;
    let (md_listener, md_base) = loopback();
    let md_token = token.clone();
    tokio::spawn(async move { oxedge_core_metadata::serve(&md_cfg, md, md_listener, md_token).await });

    let device_files = dir.path().join("devices");
    std::fs::create_dir_all(&device_files).unwrap();
    std::fs::write(device_files.join("devices.yaml"), devices).unwrap();
    let mut cfg = DeviceServiceConfig::default();
    cfg.service.workers = 2;
    cfg.service.shutdown_grace = 1;
    cfg.clients.core_metadata.url = md_base.clone();
    cfg.device.profiles_dir = files().join("profiles");
    cfg.device.devices_dir = device_files;
    tune(&mut cfg);
    let (listener, base) = loopback();
    let (b, t) = (bus.clone(), token.clone());
    tokio::spawn(async move {
        let driver = Arc::new(RestDriver::default());
        if let Err(e) =
            oxedge_device_sdk::run(oxedge_device_sdk::ServiceContext::standalone(SERVICE, b, t), cfg, driver, listener)
                .await
        {
            panic!("device-rest failed: {e:#}");
        }
    });

    let h = Harness {
        ds: Api::new(format!("{base}/api/v3")),
        metadata: Api::new(format!("{md_base}/api/v3")),
        bus,
        token,
        _dir: dir,
    };
    wait_until("device-rest serves its devices", || async {
        if h.ds.get("/health").await.status != 200 {
            return false;
        }
        for name in ready {
            let a = h.post(name, "no-such-resource", "text/plain", "1").await;
            if a.message().contains("Device '") {
                return false;
            }
        }
        true
    })
    .await;
    h
}

/// Polls `check` until it holds, for up to 15 s.
pub async fn wait_until<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
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
    /// `POST /resource/{device}/{resource}` with `body` as `content_type` (none when empty).
    pub async fn post(
        &self,
        device: &str,
        resource: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let url = self.ds.url(&format!("/resource/{}/{}", enc(device), enc(resource)));
        let mut req = self.ds.client.post(url).body(body);
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        self.ds.send(req).await
    }

    /// `GET /device/name/{device}/{command}{query}`, as core-command sends it.
    pub async fn get(&self, device: &str, command: &str, query: &str) -> Answer {
        self.ds.get(&format!("/device/name/{}/{}{query}", enc(device), enc(command))).await
    }

    /// `PUT /device/name/{device}/{command}` with `body`.
    pub async fn put(&self, device: &str, command: &str, body: &Json) -> Answer {
        self.ds.put(&format!("/device/name/{}/{}", enc(device), enc(command)), body).await
    }

    /// Subscribes to the events of every device of the service.
    pub async fn all_events(&self) -> Subscription {
        let filter = format!("edgex/events/device/{SERVICE}/#");
        self.bus.subscribe(&[filter], SubscribeOptions::default()).await.expect("subscribe")
    }

    /// Subscribes to the events of `device`.
    pub async fn events_of(&self, device: &str) -> Subscription {
        let filter = format!("edgex/events/device/{SERVICE}/+/{device}/#");
        self.bus.subscribe(&[filter], SubscribeOptions::default()).await.expect("subscribe")
    }
}

/// The next event on `sub` (the `event` of the `AddEventRequest` published), within 5 s.
pub async fn next_event(sub: &mut Subscription) -> Json {
    let d = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.expect("an event in time").expect("open");
    let env = MessageEnvelope::from_bytes(&d.payload, &d.topic).expect("an envelope");
    let payload: Json = env.payload_as().expect("a JSON payload");
    payload["event"].clone()
}

/// Whether an event arrives on `sub` within `wait`.
pub async fn no_event_within(sub: &mut Subscription, wait: Duration) -> bool {
    tokio::time::timeout(wait, sub.next()).await.is_err()
}
