//! Each profile end to end with real Mosquitto: events published on the message bus go
//! through the profile's pipeline to a second Mosquitto acting as the cloud broker, to an
//! HTTP endpoint, or back onto the bus for a rules engine.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use oxedge_app_sdk::config::TriggerType;
use oxedge_app_sdk::AppServiceConfig;
use oxedge_app_service_configurable::{build_pipelines, profile};
use oxedge_bus::config::{BusConfig, BusType};
use oxedge_bus::{Bus, Delivery, InProcessBus, MessageEnvelope, SubscribeOptions, Subscription};
use oxedge_runtime::ServiceContext;
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A name no other test uses (topics, durable sessions).
fn unique(tag: &str) -> String {
    format!("{tag}-{}-{}", std::process::id(), oxedge_testkit::free_port())
}

async fn connect(url: &str, client: &str) -> Arc<dyn Bus> {
    let cfg =
        BusConfig { kind: BusType::Mqtt, url: url.to_owned(), client_id: client.to_owned(), ..BusConfig::default() };
    oxedge_bus::config::connect(&cfg, client).await.unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// The profile `name` set up for a test: its bus is `bus_url`, it takes the events of the
/// device service `svc` only, its stores are in `dir`.
fn config(name: &str, bus_url: &str, svc: &str, dir: &std::path::Path) -> AppServiceConfig {
    let mut cfg = profile(name).unwrap().load().unwrap();
    cfg.bus.url = bus_url.to_owned();
    cfg.bus.client_id = unique(name);
    cfg.trigger.subscribe_topics = vec![format!("edgex/events/device/{svc}/#")];
    cfg.trigger.durable_name = unique(name);
    cfg.data_dir = dir.to_owned();
    cfg
}

struct Service {
    url: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Service {
    /// Starts `cfg` and waits until its trigger is subscribed.
    async fn start(name: &'static str, cfg: AppServiceConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let bus = match cfg.trigger.kind {
            TriggerType::EdgexMessagebus => connect(&cfg.bus.url, &cfg.bus.client_id).await,
            _ => Arc::new(InProcessBus::new()),
        };
        let ctx = ServiceContext::standalone(name, bus, stop.clone());
        let task = tokio::spawn(oxedge_app_sdk::run(ctx, cfg, build_pipelines, listener));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let health = reqwest::get(format!("{url}/api/v3/health")).await;
            if health.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(!task.is_finished(), "the service stopped while starting");
            assert!(Instant::now() < deadline, "the service did not become healthy within 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { url, stop, task }
    }

    async fn shutdown(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

fn event(device: &str, source: &str, value: i64) -> Json {
    json!({
        "apiVersion": "v3", "id": uuid(), "deviceName": device, "profileName": "Sensor", "sourceName": source,
        "origin": 1_700_000_000_000_000_000i64 + value,
        "readings": [{"id": uuid(), "origin": 1_700_000_000_000_000_000i64 + value, "deviceName": device,
                      "resourceName": source, "profileName": "Sensor", "valueType": "Int64", "value": value.to_string()}]
    })
}

fn uuid() -> String {
    let n = oxedge_testkit::free_port() as u128 * 7919 + Instant::now().elapsed().as_nanos();
    format!("{:08x}-0000-4000-8000-{:012x}", (n >> 16) as u32, n as u64 & 0xffff_ffff_ffff)
}

async fn publish(bus: &dyn Bus, svc: &str, event: &Json) {
    let topic = format!(
        "edgex/events/device/{svc}/Sensor/{}/{}",
        event["deviceName"].as_str().unwrap(),
        event["sourceName"].as_str().unwrap()
    );
    let envelope = MessageEnvelope::json(&json!({"apiVersion": "v3", "event": event}), None).unwrap();
    oxedge_bus::publish_envelope(bus, &topic, &envelope).await.unwrap();
}

async fn next(subscription: &mut Subscription) -> Delivery {
    let delivery = tokio::time::timeout(Duration::from_secs(20), subscription.next())
        .await
        .expect("nothing arrived within 20 s")
        .expect("the subscription ended");
    delivery
}

async fn nothing_more(subscription: &mut Subscription) {
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(500), subscription.next()).await {
        panic!("unexpected message on {}: {:?}", extra.topic, String::from_utf8_lossy(&extra.payload));
    }
}

#[tokio::test]
async fn mqtt_export_sends_exactly_the_filtered_events_to_the_cloud_broker() {
    let Some(bus_broker) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let Some(cloud) = oxedge_testkit::mosquitto::private_mosquitto(false).await else { return };
    let cloud_url = format!("mqtt://127.0.0.1:{}", cloud.port());
    let dir = tempfile::tempdir().unwrap();
    let svc = unique("svc");
    let mut cfg = config("mqtt-export", &bus_broker.url, &svc, dir.path());
    let pipelines = &mut cfg.pipelines;
    pipelines["execution_order"] = json!("FilterByDeviceName, AddTags, Transform, MQTTExport");
    let functions = pipelines["functions"].as_object_mut().unwrap();
    functions["FilterByDeviceName"]["parameters"]["DeviceNames"] = json!("^keep-");
    functions["AddTags"]["parameters"]["Tags"] = json!("site:houston, line:3");
    let export = &mut functions["MQTTExport"]["parameters"];
    export["BrokerAddress"] = json!(format!("tcp://127.0.0.1:{}", cloud.port()));
    export["Topic"] = json!("cloud/{deviceName}/{sourceName}");
    export["ClientId"] = json!(unique("export"));

    let listener = connect(&cloud_url, &unique("cloud-sub")).await;
    let mut received = listener.subscribe(&["cloud/#".to_owned()], SubscribeOptions::default()).await.unwrap();
    let service = Service::start("app-mqtt-export", cfg).await;
    let bus = connect(&bus_broker.url, &unique("publisher")).await;
    for (i, device) in ["keep-1", "drop-1", "keep-2", "drop-2", "keep-3"].iter().enumerate() {
        publish(&*bus, &svc, &event(device, "temp", i as i64)).await;
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        let delivery = next(&mut received).await;
        let body: Json = serde_json::from_slice(&delivery.payload).unwrap();
        assert_eq!(body["tags"], json!({"site": "houston", "line": "3"}));
        got.push((
            delivery.topic,
            body["deviceName"].as_str().unwrap().to_owned(),
            body["readings"][0]["value"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    nothing_more(&mut received).await;
    got.sort();
    assert_eq!(
        got,
        [
            ("cloud/keep-1/temp".to_owned(), "keep-1".to_owned(), "0".to_owned()),
            ("cloud/keep-2/temp".to_owned(), "keep-2".to_owned(), "2".to_owned()),
            ("cloud/keep-3/temp".to_owned(), "keep-3".to_owned(), "4".to_owned()),
        ]
    );
    let metrics = reqwest::get(format!("{}/metrics", service.url)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("app_pipeline_messages_received_total"), "{metrics}");
    service.shutdown().await;
}

#[tokio::test]
async fn http_export_posts_each_event_to_the_endpoint_its_template_gives() {
    let Some(bus_broker) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, String, Json)>();
    let endpoint = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint_port = endpoint.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let tx = tx.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let tx = tx.clone();
            async move {
                let json = serde_json::from_slice(&body).unwrap_or(Json::Null);
                let content_type =
                    req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let _ = tx.send((format!("{} {}", req.method(), req.path()), content_type, json));
                HttpResponse::Ok().finish()
            }
        }))
    })
    .workers(1)
    .listen(endpoint)
    .unwrap()
    .run();
    let server_handle = server.handle();
    tokio::spawn(server);

    let dir = tempfile::tempdir().unwrap();
    let svc = unique("svc");
    let mut cfg = config("http-export", &bus_broker.url, &svc, dir.path());
    let functions = cfg.pipelines["functions"].as_object_mut().unwrap();
    functions["HTTPExport"]["parameters"]["Url"] =
        json!(format!("http://127.0.0.1:{endpoint_port}/api/events/{{deviceName}}"));
    let service = Service::start("app-http-export", cfg).await;
    let bus = connect(&bus_broker.url, &unique("publisher")).await;
    for i in 0..3 {
        publish(&*bus, &svc, &event(&format!("dev-{i}"), "humidity", i)).await;
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        let (request, content_type, body) =
            tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("no request within 20 s").unwrap();
        assert_eq!(content_type, "application/json");
        assert_eq!(body["sourceName"], "humidity");
        got.push((request, body["deviceName"].as_str().unwrap().to_owned()));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("POST /api/events/dev-0".to_owned(), "dev-0".to_owned()),
            ("POST /api/events/dev-1".to_owned(), "dev-1".to_owned()),
            ("POST /api/events/dev-2".to_owned(), "dev-2".to_owned()),
        ]
    );
    service.shutdown().await;
    server_handle.stop(true).await;
}

#[tokio::test]
async fn rules_forwarder_republishes_events_for_the_rules_engine() {
    let Some(bus_broker) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let svc = unique("svc");
    let mut cfg = config("rules-forwarder", &bus_broker.url, &svc, dir.path());
    assert_eq!(cfg.trigger.publish_topic, "edgex/rules-events");
    // This test's own topic under the profile's, as other tests share the broker.
    let topic = format!("edgex/rules-events/{svc}");
    cfg.trigger.publish_topic = topic.clone();
    let bus = connect(&bus_broker.url, &unique("rules")).await;
    let mut rules = bus.subscribe(std::slice::from_ref(&topic), SubscribeOptions::default()).await.unwrap();
    let service = Service::start("app-rules-engine", cfg).await;
    publish(&*bus, &svc, &event("boiler", "pressure", 42)).await;
    let delivery = next(&mut rules).await;
    assert_eq!(delivery.topic, topic);
    let envelope = MessageEnvelope::from_bytes(&delivery.payload, &delivery.topic).unwrap();
    let forwarded: Json = envelope.payload_as().unwrap();
    assert_eq!(forwarded["deviceName"], "boiler");
    assert_eq!(forwarded["readings"][0]["value"], "42");
    service.shutdown().await;
}

#[tokio::test]
async fn a_batch_by_time_and_count_exports_arrays_released_by_count_and_by_timer() {
    let Some(bus_broker) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let Some(cloud) = oxedge_testkit::mosquitto::private_mosquitto(false).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let svc = unique("svc");
    let mut cfg = config("mqtt-export", &bus_broker.url, &svc, dir.path());
    cfg.pipelines["execution_order"] = json!("Batch, MQTTExport");
    let functions = cfg.pipelines["functions"].as_object_mut().unwrap();
    functions["Batch"]["parameters"] =
        json!({"Mode": "bytimecount", "BatchThreshold": "2", "TimeInterval": "700ms", "MergeOnSend": "true"});
    let export = &mut functions["MQTTExport"]["parameters"];
    export["BrokerAddress"] = json!(format!("tcp://127.0.0.1:{}", cloud.port()));
    export["Topic"] = json!("batches");
    export["ClientId"] = json!(unique("export"));

    let listener = connect(&format!("mqtt://127.0.0.1:{}", cloud.port()), &unique("cloud-sub")).await;
    let mut received = listener.subscribe(&["batches".to_owned()], SubscribeOptions::default()).await.unwrap();
    let service = Service::start("app-mqtt-export", cfg).await;
    let bus = connect(&bus_broker.url, &unique("publisher")).await;
    for i in 0..5 {
        publish(&*bus, &svc, &event(&format!("dev-{i}"), "temp", i)).await;
    }
    // Batches of two by count; the fifth event comes alone when the timer fires (a tick may
    // also fall between two events of a pair: the timer flushes what is held at its interval).
    let mut sizes = Vec::new();
    let mut devices = Vec::new();
    while devices.len() < 5 {
        let batch: Vec<Json> = serde_json::from_slice(&next(&mut received).await.payload).unwrap();
        sizes.push(batch.len());
        devices.extend(batch.iter().map(|e| e["deviceName"].as_str().unwrap().to_owned()));
    }
    nothing_more(&mut received).await;
    assert!(sizes.iter().all(|n| (1..=2).contains(n)), "{sizes:?}");
    assert!(sizes.contains(&2), "no batch released by count: {sizes:?}");
    devices.sort();
    assert_eq!(devices, ["dev-0", "dev-1", "dev-2", "dev-3", "dev-4"]);
    service.shutdown().await;
}

/// A TCP relay to `127.0.0.1:upstream` that counts the connections it relays and can be cut
/// off silently: once frozen it forwards nothing more but keeps every socket open, as a
/// network that stopped carrying packets does.
struct Relay {
    port: u16,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    frozen: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: u16) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        async fn pump(
            mut from: tokio::net::tcp::OwnedReadHalf,
            mut to: tokio::net::tcp::OwnedWriteHalf,
            frozen: Arc<std::sync::atomic::AtomicBool>,
        ) {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match from.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if frozen.load(Ordering::SeqCst) {
                    // Carry nothing, and never return: both sockets stay open.
                    std::future::pending::<()>().await;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (count, cut) = (accepted.clone(), frozen.clone());
        let task = tokio::spawn(async move {
            let mut pumps = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
                let ((client_rx, client_tx), (server_rx, server_tx)) = (client.into_split(), server.into_split());
                pumps.spawn(pump(client_rx, server_tx, cut.clone()));
                pumps.spawn(pump(server_rx, client_tx, cut.clone()));
            }
        });
        Self { port, accepted, frozen, task }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn freeze(&self) {
        self.frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An EdgeX-shaped configuration file for app-service-configurable, as users write it:
/// `ExecutionOrder`, `Functions`, `Parameters` with EdgeX's names and string values.
fn edgex_yaml(bus_url: &str, svc: &str, dir: &std::path::Path, functions: &str, order: &str) -> AppServiceConfig {
    let yaml = format!(
        r#"service: {{ host: 127.0.0.1, port: 0 }}
bus: {{ type: mqtt, url: "{bus_url}", client_id: "{client}" }}
trigger:
  type: edgex-messagebus
  subscribe_topics: ["edgex/events/device/{svc}/#"]
  durable_name: "{durable}"
data_dir: "{dir}"
pipelines:
  ExecutionOrder: "{order}"
  Functions:
{functions}"#,
        client = unique("app"),
        durable = unique("app"),
        dir = dir.display(),
    );
    let file = dir.join("configuration.yaml");
    std::fs::write(&file, yaml).unwrap();
    oxedge_app_service_configurable::load_config(None, Some(&file)).unwrap().1
}

fn int_event(device: &str, value: i64, origin: i64) -> Json {
    json!({
        "apiVersion": "v3", "id": uuid(), "deviceName": device, "profileName": "Sensor", "sourceName": "temp",
        "origin": origin,
        "readings": [{"id": uuid(), "origin": origin, "deviceName": device, "resourceName": "temp",
                      "profileName": "Sensor", "valueType": "Int64", "value": value.to_string()}]
    })
}

/// JSONLogic lets through exactly the events its rule holds on, ToLineProtocol turns them into
/// InfluxDB lines, MQTTExport connects at start (`PreConnect`) with a last will that the
/// cloud broker publishes once the export's connection goes silent past its keep-alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonlogic_line_protocol_and_an_mqtt_export_with_a_last_will_from_edgex_yaml() {
    let Some(bus_broker) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let Some(cloud) = oxedge_testkit::mosquitto::private_mosquitto(false).await else { return };
    let relay = Relay::start(cloud.port()).await;
    let dir = tempfile::tempdir().unwrap();
    let svc = unique("svc");
    let will_topic = unique("wills");
    let functions = format!(
        r#"    JSONLogic:
      Parameters:
        Rule: '{{"and": [{{">": [{{"var": "readings.0.value"}}, 10]}}, {{"in": [{{"var": "deviceName"}}, ["keep-1", "keep-2"]]}}]}}'
    ToLineProtocol:
      Parameters:
        Tags: "site:houston 3"
    MQTTExport:
      Parameters:
        BrokerAddress: "tcp://127.0.0.1:{relay}"
        Topic: "lines/{{deviceName}}"
        ClientId: "{client}"
        QOS: "1"
        KeepAlive: "2s"
        PreConnect: "true"
        WillEnabled: "true"
        WillTopic: "{will_topic}"
        WillPayload: "app down"
        WillQos: "1"
        WillRetained: "false"
        MaxReconnectInterval: "1s"
"#,
        relay = relay.port,
        client = unique("export"),
    );
    let cfg = edgex_yaml(&bus_broker.url, &svc, dir.path(), &functions, "JSONLogic, ToLineProtocol, MQTTExport");

    let cloud_bus = connect(&format!("mqtt://127.0.0.1:{}", cloud.port()), &unique("cloud-sub")).await;
    let mut lines = cloud_bus.subscribe(&["lines/#".to_owned()], SubscribeOptions::default()).await.unwrap();
    let mut wills = cloud_bus.subscribe(std::slice::from_ref(&will_topic), SubscribeOptions::default()).await.unwrap();
    let service = Service::start("app-lines", cfg).await;
    // PreConnect: the export's connection exists before any event.
    let deadline = Instant::now() + Duration::from_secs(10);
    while relay.accepted() == 0 {
        assert!(Instant::now() < deadline, "MQTTExport did not connect at start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let bus = connect(&bus_broker.url, &unique("publisher")).await;
    let origin = 1_700_000_000_000_000_000_i64;
    for (i, (device, value)) in [("keep-1", 5), ("keep-1", 20), ("drop-1", 50), ("keep-2", 30)].iter().enumerate() {
        publish(&*bus, &svc, &int_event(device, *value, origin + i as i64)).await;
    }
    let mut got = Vec::new();
    for _ in 0..2 {
        let delivery = next(&mut lines).await;
        got.push((delivery.topic, String::from_utf8(delivery.payload.to_vec()).unwrap()));
    }
    nothing_more(&mut lines).await;
    got.sort();
    let line = |device: &str, value: i64, i: i64| {
        format!(
            "temp,deviceName={device},profileName=Sensor,site=houston\\ 3,sourceName=temp value={value}i {}\n",
            origin + i
        )
    };
    assert_eq!(
        got,
        [("lines/keep-1".to_owned(), line("keep-1", 20, 1)), ("lines/keep-2".to_owned(), line("keep-2", 30, 3))]
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), wills.next()).await.is_err(),
        "no will while the export is connected"
    );

    // The network goes silent: the broker hears no ping within 1.5 × 2 s and publishes the will.
    relay.freeze();
    let will = tokio::time::timeout(Duration::from_secs(15), wills.next())
        .await
        .expect("the will within 15 s of the connection going silent")
        .expect("subscription open");
    assert_eq!(&will.payload[..], b"app down");
    service.shutdown().await;
}

/// Without `PreConnect` (EdgeX's default) the export connects at its first message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pre_connect_the_export_connects_at_the_first_message() {
    let Some(bus_broker) = oxedge_testkit::mosquitto::test_mqtt().await else { return };
    let Some(cloud) = oxedge_testkit::mosquitto::private_mosquitto(false).await else { return };
    let relay = Relay::start(cloud.port()).await;
    let dir = tempfile::tempdir().unwrap();
    let svc = unique("svc");
    let functions = format!(
        r#"    MQTTExport:
      Parameters: {{ BrokerAddress: "tcp://127.0.0.1:{}", Topic: "late/{{deviceName}}", ClientId: "{}", QOS: "1" }}
"#,
        relay.port,
        unique("export"),
    );
    let cfg = edgex_yaml(&bus_broker.url, &svc, dir.path(), &functions, "MQTTExport");
    let cloud_bus = connect(&format!("mqtt://127.0.0.1:{}", cloud.port()), &unique("cloud-sub")).await;
    let mut received = cloud_bus.subscribe(&["late/#".to_owned()], SubscribeOptions::default()).await.unwrap();
    let service = Service::start("app-late", cfg).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(relay.accepted(), 0, "connected before any export");

    let bus = connect(&bus_broker.url, &unique("publisher")).await;
    publish(&*bus, &svc, &int_event("late-1", 1, 1_700_000_000_000_000_000)).await;
    let delivery = next(&mut received).await;
    assert_eq!(delivery.topic, "late/late-1");
    assert_eq!(relay.accepted(), 1);
    service.shutdown().await;
}
