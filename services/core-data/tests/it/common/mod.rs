//! Starts core-data in-process on loopback over a SQLite file in a temporary directory
//! and an in-process bus, and talks to it over real HTTP.
#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxedge_bus::{Bus, InProcessBus, MessageEnvelope};
use oxedge_core_data::store::sqlite::SqliteStore;
use oxedge_core_data::store::EventStore;
use oxedge_core_data::DataConfig;
use oxedge_runtime::ServiceContext;
use oxedge_testkit::http::Api;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// A running core-data; stops when dropped.
pub struct Server {
    pub api: Api,
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn EventStore>,
    token: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl std::ops::Deref for Server {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// A configuration for tests: one worker, short grace, short batch wait.
pub fn config() -> DataConfig {
    let mut cfg = DataConfig::default();
    cfg.service.workers = 1;
    cfg.service.shutdown_grace = 1;
    cfg.ingest.batch_wait = "2ms".into();
    cfg
}

/// core-data with the default test configuration.
pub async fn start() -> Server {
    start_with(config()).await
}

/// core-data with `cfg`, over a fresh SQLite file and a fresh in-process bus.
pub async fn start_with(cfg: DataConfig) -> Server {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&dir.path().join("data.db")).expect("open store"));
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let api = Api::new(format!("http://{}/api/v3", listener.local_addr().expect("address")));
    let token = CancellationToken::new();
    let (s, ctx) = (store.clone(), ServiceContext::standalone("core-data", bus.clone(), token.clone()));
    tokio::spawn(async move {
        if let Err(e) = oxedge_core_data::serve(ctx, cfg, s, listener).await {
            panic!("core-data failed: {e:#}");
        }
    });
    let server = Server { api, bus, store, token, _dir: dir };
    server.wait_for(async |s: &Server| s.get("/ping").await.status == 200).await;
    server
}

/// Nanoseconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
}

/// An event of `device` (profile `p-{device}`, source `s`) at `origin` with `n` Int32 readings
/// `r0…` valued 0…n-1.
pub fn event(device: &str, origin: i64, n: usize) -> Value {
    let readings: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": uuid::Uuid::new_v4().to_string(), "origin": origin, "deviceName": device,
                   "resourceName": format!("r{i}"), "profileName": format!("p-{device}"),
                   "valueType": "Int32", "value": i.to_string()})
        })
        .collect();
    json!({"apiVersion": "v3", "id": uuid::Uuid::new_v4().to_string(), "deviceName": device,
           "profileName": format!("p-{device}"), "sourceName": "s", "origin": origin, "readings": readings})
}

/// The `AddEventRequest` body for `event`.
pub fn add_request(event: &Value) -> Value {
    json!({"apiVersion": "v3", "requestId": uuid::Uuid::new_v4().to_string(), "event": event})
}

/// The REST path events of `event` are posted to.
pub fn post_path(event: &Value) -> String {
    format!(
        "/event/device-test/{}/{}/{}",
        event["profileName"].as_str().unwrap(),
        event["deviceName"].as_str().unwrap(),
        event["sourceName"].as_str().unwrap()
    )
}

impl Server {
    /// Posts `event` over REST, expecting 201.
    pub async fn add(&self, event: &Value) {
        let a = self.post(&post_path(event), &add_request(event)).await;
        assert_eq!(a.status, 201, "{:?}", a.body);
    }

    /// Publishes `event` on the bus as a device service would.
    pub async fn publish(&self, event: &Value) {
        let topic = oxedge_bus::topic::event(
            "device-test",
            event["profileName"].as_str().unwrap(),
            event["deviceName"].as_str().unwrap(),
            "s",
        );
        let env = MessageEnvelope::json(&add_request(event), None).unwrap();
        self.bus.publish(&topic, env.to_bytes().unwrap()).await.expect("publish");
    }

    /// Waits up to 10 s until `cond` holds.
    pub async fn wait_for(&self, cond: impl AsyncFn(&Server) -> bool) {
        let start = Instant::now();
        while !cond(self).await {
            assert!(start.elapsed() < Duration::from_secs(10), "condition not met within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET /event/count`.
    pub async fn event_count(&self) -> u64 {
        self.get("/event/count").await.body["count"].as_u64().unwrap()
    }
}
