//! Starts core-metadata in-process on loopback, over SQLite (in a temporary directory) or
//! Redis (under a unique key prefix), and talks to it over real HTTP.
#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::Arc;

use oxedge_contracts::SystemEvent;
use oxedge_core_metadata::store::redis::RedisStore;
use oxedge_core_metadata::store::sqlite::SqliteStore;
use oxedge_core_metadata::store::MetadataStore;
use oxedge_core_metadata::{load_uom, BroadcastHook, Metadata, MetadataConfig};
pub use oxedge_testkit::http::{Answer, Api};
use oxedge_testkit::redis::{test_redis, TestRedis};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// The body limit the test servers use (the default, 4 MiB).
pub const MAX_REQUEST_SIZE: usize = 4 * 1024 * 1024;

/// Which store a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Redis,
}

/// A running core-metadata; stops when dropped. Derefs to the HTTP client of its API.
pub struct Server {
    pub api: Api,
    /// The system events core-metadata announced.
    pub events: broadcast::Receiver<SystemEvent>,
    _guard: Guard,
}

impl std::ops::Deref for Server {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Cancels the server and cleans its store up when dropped.
pub struct Guard {
    token: CancellationToken,
    _dir: Option<tempfile::TempDir>,
    _redis: Option<TestRedis>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// core-metadata over SQLite.
pub async fn start() -> Server {
    start_on(Backend::Sqlite).await.expect("SQLite server")
}

/// core-metadata over `backend`; `None` for Redis when `OXEDGE_SKIP_REDIS=1`.
pub async fn start_on(backend: Backend) -> Option<Server> {
    let (store, guard): (Arc<dyn MetadataStore>, Guard) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let store = SqliteStore::open(&dir.path().join("metadata.db")).expect("open SQLite store");
            let guard = Guard { token: CancellationToken::new(), _dir: Some(dir), _redis: None };
            (Arc::new(store), guard)
        }
        Backend::Redis => {
            let redis = test_redis("oxedge:httptest").await?;
            let store = RedisStore::connect_with_prefix(&redis.url, &redis.prefix).await.expect("connect Redis store");
            let guard = Guard { token: CancellationToken::new(), _dir: None, _redis: Some(redis) };
            (Arc::new(store), guard)
        }
    };
    let (tx, events) = broadcast::channel(4096);
    let uom = load_uom(&Default::default()).expect("built-in units of measure");
    let md = Metadata::new(store, Arc::new(BroadcastHook(tx)), uom);
    let mut cfg = MetadataConfig::default();
    cfg.service.workers = 1;
    cfg.service.shutdown_grace = 1;
    cfg.service.max_request_size = MAX_REQUEST_SIZE;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}/api/v3", listener.local_addr().expect("address"));
    let token = guard.token.clone();
    tokio::spawn(async move {
        if let Err(e) = oxedge_core_metadata::serve(&cfg, md, listener, token).await {
            panic!("core-metadata failed: {e:#}");
        }
    });
    Some(Server { api: Api::new(base), events, _guard: guard })
}

impl Server {
    /// Sends raw bytes with `content_type`.
    pub async fn raw(&self, method: reqwest::Method, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        self.send(self.client.request(method, self.url(path)).header("content-type", content_type).body(body)).await
    }

    /// Uploads `file` as the `file` field of a multipart form.
    pub async fn upload(&self, method: reqwest::Method, path: &str, file: Vec<u8>) -> Answer {
        let part = reqwest::multipart::Part::bytes(file).file_name("profile.yaml");
        let form = reqwest::multipart::Form::new().part("file", part);
        self.send(self.client.request(method, self.url(path)).multipart(form)).await
    }

    /// The system events announced so far and not yet taken.
    pub fn take_events(&mut self) -> Vec<SystemEvent> {
        let mut out = Vec::new();
        while let Ok(ev) = self.events.try_recv() {
            out.push(ev);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Request builders

/// A batch of one item `{apiVersion, requestId, <field>: value}`.
pub fn one(field: &str, request_id: &str, value: Value) -> Value {
    serde_json::json!([{ "apiVersion": "v3", "requestId": request_id, field: value }])
}

pub fn service(name: &str) -> Value {
    serde_json::json!({ "name": name, "adminState": "UNLOCKED", "baseAddress": format!("http://{name}:59900") })
}

/// A small profile with a readable `Temperature`, a write-only `Reset` and a `Both` command.
pub fn profile(name: &str) -> Value {
    serde_json::json!({
        "name": name,
        "manufacturer": "Acme",
        "model": "T-1000",
        "labels": ["thermo"],
        "deviceResources": [
            { "name": "Temperature", "properties": { "valueType": "Float32", "readWrite": "R", "units": "C" } },
            { "name": "Reset", "properties": { "valueType": "Bool", "readWrite": "W" } }
        ],
        "deviceCommands": [
            { "name": "Both", "readWrite": "R",
              "resourceOperations": [ { "deviceResource": "Temperature" } ] }
        ]
    })
}

pub fn device(name: &str, service: &str, profile: &str) -> Value {
    serde_json::json!({
        "name": name,
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "serviceName": service,
        "profileName": profile,
        "protocols": { "other": { "Address": "10.0.0.1" } }
    })
}
