//! A real core-metadata (SQLite in a temporary directory), a real device service peer (an
//! HTTP server answering the device service command API, and a responder on the in-process
//! bus), and core-command between them, all in-process on loopback.
#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use oxedge_bus::{topic, Bus, InProcessBus, MessageEnvelope, SubscribeOptions};
use oxedge_core_command::{CommandConfig, Transport};
use oxedge_core_metadata::store::sqlite::SqliteStore;
use oxedge_core_metadata::{load_uom, BusHook, Metadata, MetadataConfig};
use oxedge_runtime::ServiceContext;
pub use oxedge_testkit::http::Api;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// How long core-command waits for a device service in these tests.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(600);

/// The device whose device service never answers.
pub const SLOW: &str = "Slow";

/// What the device service peer received: over HTTP (method, device, command, raw query,
/// correlation id, body) or over the bus (the same, from the envelope).
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub method: String,
    pub device: String,
    pub command: String,
    pub query: String,
    pub correlation_id: String,
    pub body: Value,
}

/// Everything running; stops when dropped.
pub struct Stack {
    /// core-command's API.
    pub api: Api,
    /// core-metadata's API.
    pub metadata: Api,
    /// The bus core-command and the device service peer share.
    pub bus: Arc<dyn Bus>,
    /// What the peer received, in order.
    pub received: Arc<Mutex<Vec<Received>>>,
    /// The peer's HTTP base address.
    pub peer: String,
    token: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

impl Stack {
    /// What the peer received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// core-metadata on SQLite, seeded with the devices the tests use, the peer, and
/// core-command routing over `transport`.
pub async fn start(transport: Transport) -> Stack {
    start_with(transport, |_| {}).await
}

/// As [`start`], with core-command's configuration changed by `tweak`.
pub async fn start_with(transport: Transport, tweak: impl FnOnce(&mut CommandConfig)) -> Stack {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    start_on(transport, bus.clone(), bus, tweak).await
}

/// As [`start_with`], core-metadata and core-command on `bus`, the device service peer on
/// `peer_bus` (two clients of one broker, or the same in-process bus).
pub async fn start_on(
    transport: Transport,
    bus: Arc<dyn Bus>,
    peer_bus: Arc<dyn Bus>,
    tweak: impl FnOnce(&mut CommandConfig),
) -> Stack {
    let token = CancellationToken::new();
    let dir = tempfile::tempdir().expect("temporary directory");
    let metadata = start_metadata(&dir, bus.clone(), token.clone());
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let peer = start_http_peer(received.clone());
    start_bus_peer(peer_bus, received.clone()).await;
    seed(&metadata, &peer).await;

    let mut cfg = CommandConfig::default();
    cfg.service.workers = 1;
    cfg.service.shutdown_grace = 1;
    cfg.clients.core_metadata.url = metadata.base.trim_end_matches("/api/v3").to_owned();
    cfg.command.transport = transport;
    cfg.command.timeout = COMMAND_TIMEOUT.into();
    tweak(&mut cfg);
    let api = start_command(cfg, bus.clone(), token.clone());
    Stack { api, metadata, bus, received, peer, token, _dir: dir }
}

/// Starts core-command with `cfg` on `bus` and an ephemeral port; its API.
pub fn start_command(cfg: CommandConfig, bus: Arc<dyn Bus>, token: CancellationToken) -> Api {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}/api/v3", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let ctx = ServiceContext::standalone("core-command", bus, token);
        if let Err(e) = oxedge_core_command::run(ctx, cfg, listener).await {
            panic!("core-command failed: {e:#}");
        }
    });
    Api::new(base)
}

/// core-metadata announcing its changes on `bus`, as it does when run.
fn start_metadata(dir: &tempfile::TempDir, bus: Arc<dyn Bus>, token: CancellationToken) -> Api {
    let store = SqliteStore::open(&dir.path().join("metadata.db")).expect("open SQLite store");
    let uom = load_uom(&Default::default()).expect("built-in units of measure");
    let md = Metadata::new(Arc::new(store), Arc::new(BusHook::new(bus, token.clone())), uom);
    let mut cfg = MetadataConfig::default();
    cfg.service.workers = 1;
    cfg.service.shutdown_grace = 1;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}/api/v3", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        if let Err(e) = oxedge_core_metadata::serve(&cfg, md, listener, token).await {
            panic!("core-metadata failed: {e:#}");
        }
    });
    Api::new(base)
}

/// The event a device service returns for a read of `command` on `device`.
pub fn event_response(device: &str, command: &str) -> Value {
    json!({"apiVersion": "v3", "statusCode": 200, "event": {
        "apiVersion": "v3", "id": "6a4f6c1e-0e5f-4b8a-9d59-7c0c3e1b2a10", "deviceName": device,
        "profileName": "Thermostat", "sourceName": command, "origin": 1700000000000000000i64,
        "readings": [{"id": "1d6c2b6f-4c7e-4a3b-8b0a-2f3e4d5c6b7a", "origin": 1700000000000000000i64,
            "deviceName": device, "resourceName": "Temperature", "profileName": "Thermostat",
            "valueType": "Float32", "value": "21.5"}]}})
}

/// The device service command API: records each request; `Slow` never answers in time,
/// `Broken` fails as a driver error does, `ds-returnevent=false` gets no body.
fn start_http_peer(received: Arc<Mutex<Vec<Received>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let received = web::Data::new(received);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(received.clone())
            .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
            .route("/api/v3/device/name/{name}/{command}", web::route().to(peer_command))
    })
    .workers(2)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    tokio::spawn(server);
    address
}

async fn peer_command(
    received: web::Data<Arc<Mutex<Vec<Received>>>>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (device, command) = path.into_inner();
    let correlation_id =
        req.headers().get("x-correlation-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    received.lock().unwrap().push(Received {
        method: req.method().to_string(),
        device: device.clone(),
        command: command.clone(),
        query: req.query_string().to_owned(),
        correlation_id,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    if device == SLOW {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    if command == "Broken" {
        return HttpResponse::InternalServerError()
            .json(json!({"apiVersion": "v3", "statusCode": 500, "message": "error reading Broken: driver failed"}));
    }
    if req.method() == actix_web::http::Method::PUT {
        return HttpResponse::Ok().json(json!({"apiVersion": "v3", "statusCode": 200}));
    }
    if req.query_string().contains("ds-returnevent=false") {
        return HttpResponse::Ok().finish();
    }
    HttpResponse::Ok().json(event_response(&device, &command))
}

/// Answers command requests on the bus as a device service does (EdgeX 4's device SDK):
/// on `edgex/response/{service}/{requestId}`, the event or nothing as payload, an error
/// envelope for `Broken`, nothing at all for `Slow`.
async fn start_bus_peer(bus: Arc<dyn Bus>, received: Arc<Mutex<Vec<Received>>>) {
    let mut requests = bus
        .subscribe(&["edgex/device/command/request/#".to_owned()], SubscribeOptions::default())
        .await
        .expect("subscribe");
    tokio::spawn(async move {
        while let Some(d) = requests.next().await {
            let req = MessageEnvelope::from_bytes(&d.payload, &d.topic).expect("a request envelope");
            let levels: Vec<String> = d.topic.split('/').map(topic::decode).collect();
            let [_, _, _, _, service, device, command, method] = levels.as_slice() else { panic!("topic {}", d.topic) };
            received.lock().unwrap().push(Received {
                method: method.clone(),
                device: device.clone(),
                command: command.clone(),
                query: serde_json::to_string(&req.query_params).unwrap(),
                correlation_id: req.correlation_id.clone(),
                body: req.payload_as().unwrap_or(Value::Null),
            });
            if device == SLOW {
                continue;
            }
            let reply = if command == "Broken" {
                MessageEnvelope::error(&req.request_id, &req.correlation_id, "error reading Broken: driver failed")
            } else if method == "get" && req.query_params.get("ds-returnevent").map(String::as_str) != Some("false") {
                MessageEnvelope::json(&event_response(device, command), Some(&req.correlation_id))
                    .unwrap()
                    .with_request_id(req.request_id.clone())
            } else {
                MessageEnvelope::json(&Value::Null, Some(&req.correlation_id))
                    .unwrap()
                    .with_request_id(req.request_id.clone())
            };
            let topic = topic::response(service, &req.request_id);
            bus.publish(&topic, reply.to_bytes().unwrap()).await.expect("publish reply");
        }
    });
}

/// A profile with a readable `Temperature`, a read-write `SetPoint`, a write-only `Reset`, a
/// `Broken` resource, a hidden one, and a `Config` command writing `SetPoint` and `Mode`.
pub fn profile() -> Value {
    json!({
        "name": "Thermostat",
        "deviceResources": [
            {"name": "Temperature", "properties": {"valueType": "Float32", "readWrite": "R", "units": "C"}},
            {"name": "SetPoint", "properties": {"valueType": "Int16", "readWrite": "RW"}},
            {"name": "Mode", "properties": {"valueType": "String", "readWrite": "RW", "defaultValue": "auto"}},
            {"name": "Reset", "properties": {"valueType": "Bool", "readWrite": "W"}},
            {"name": "Broken", "properties": {"valueType": "Int8", "readWrite": "R"}},
            {"name": "Internal", "isHidden": true, "properties": {"valueType": "Int8", "readWrite": "R"}}
        ],
        "deviceCommands": [
            {"name": "Config", "readWrite": "RW", "resourceOperations": [
                {"deviceResource": "SetPoint"}, {"deviceResource": "Mode"}]}
        ]
    })
}

/// The name of a device whose name needs percent-encoding in paths and topics.
pub const HOSTILE: &str = "Hostile ?&%é";

async fn seed(md: &Api, peer: &str) {
    let one = |field: &str, value: Value| json!([{"apiVersion": "v3", field: value}]);
    let services = [
        json!({"name": "ds-peer", "adminState": "UNLOCKED", "baseAddress": peer}),
        json!({"name": "ds-locked", "adminState": "LOCKED", "baseAddress": peer}),
        json!({"name": "ds-gone", "adminState": "UNLOCKED", "baseAddress": format!("http://{}", closed_port())}),
    ];
    for s in services {
        let a = md.post("/deviceservice", &one("service", s)).await;
        assert_eq!(a.item(0)["statusCode"], 201, "{:?}", a.body);
    }
    let a = md.post("/deviceprofile", &one("profile", profile())).await;
    assert_eq!(a.item(0)["statusCode"], 201, "{:?}", a.body);
    let devices = [
        ("Thermo-1", "ds-peer", "UNLOCKED", "UP", "floor1"),
        (HOSTILE, "ds-peer", "UNLOCKED", "UP", "floor2"),
        (SLOW, "ds-peer", "UNLOCKED", "UP", "floor2"),
        ("Locked", "ds-peer", "LOCKED", "UP", "floor2"),
        ("Down", "ds-peer", "UNLOCKED", "DOWN", "floor2"),
        ("Orphan", "ds-locked", "UNLOCKED", "UP", "floor2"),
        ("Gone", "ds-gone", "UNLOCKED", "UP", "floor2"),
    ];
    for (name, service, admin, op, label) in devices {
        let device = json!({"name": name, "adminState": admin, "operatingState": op, "serviceName": service,
            "profileName": "Thermostat", "labels": [label], "protocols": {"other": {"Address": "1"}}});
        let a = md.post("/device", &one("device", device)).await;
        assert_eq!(a.item(0)["statusCode"], 201, "{:?}", a.body);
    }
}

/// A loopback port nothing listens on.
pub fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let address = l.local_addr().expect("address").to_string();
    drop(l);
    address
}

/// A path segment percent-encoded.
pub fn enc(name: &str) -> String {
    topic::encode(name)
}
