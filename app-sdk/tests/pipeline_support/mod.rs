//! What the pipeline tests share: a service started with `serve`, events to publish, and
//! functions that report what they see.

#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use oxedge_app_sdk::context::Confirmation;
use oxedge_app_sdk::{from_fn, AppContext, AppServiceConfig, Data, Function, Pipeline};
use oxedge_bus::{Bus, MessageEnvelope};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running app service.
pub struct Service {
    pub port: u16,
    pub stop: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
    pub http: reqwest::Client,
}

/// Starts `pipelines` with `cfg` on `bus`, and waits until its trigger is ready.
pub async fn start(mut cfg: AppServiceConfig, bus: Arc<dyn Bus>, pipelines: Vec<Pipeline>) -> Service {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    cfg.service.shutdown_grace = 1;
    let stop = CancellationToken::new();
    let task = tokio::spawn(oxedge_app_sdk::run(
        oxedge_app_sdk::ServiceContext::standalone("app-test", bus, stop.clone()),
        cfg,
        move |_app: &AppContext| Ok(pipelines),
        listener,
    ));
    let service = Service { port, stop, task, http: reqwest::Client::new() };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let health = service.http.get(service.url("/api/v3/health")).send().await;
        if health.is_ok_and(|r| r.status().is_success()) {
            return service;
        }
        assert!(tokio::time::Instant::now() < deadline, "the service did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Service {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The value of the metric line starting with `series` (name and labels), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
    }

    /// Stops the service and waits for it.
    pub async fn shutdown(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the service stopped in time")
            .unwrap()
            .unwrap();
    }
}

/// An EdgeX event of `device` (profile `profile`, source `temp`).
pub fn event(device: &str, profile: &str) -> Value {
    json!({
        "apiVersion": "v3", "id": uuid::Uuid::new_v4().to_string(), "deviceName": device,
        "profileName": profile, "sourceName": "temp", "origin": 1_700_000_000_000_000_000i64,
        "readings": [{"resourceName": "temp", "valueType": "Float64", "value": "21.5",
                      "deviceName": device, "profileName": profile, "origin": 1}]
    })
}

/// Publishes an event of `device` as a device service does.
pub async fn publish_event(bus: &dyn Bus, service: &str, device: &str, profile: &str) {
    let topic = oxedge_bus::topic::event(service, profile, device, "temp");
    let env = MessageEnvelope::json(&json!({"apiVersion": "v3", "event": event(device, profile)}), None).unwrap();
    oxedge_bus::publish_envelope(bus, &topic, &env).await.unwrap();
}

/// What [`report`] saw: the pipeline, the device and the `{receivedTopic}` context value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub pipeline: String,
    pub device: String,
    pub topic: String,
}

/// A function that reports each event it gets to `tx` and passes it on.
pub fn report(tx: mpsc::UnboundedSender<Seen>) -> Arc<dyn Function> {
    Arc::new(from_fn("Report", move |ctx, data| {
        let tx = tx.clone();
        async move {
            let device = match &data {
                Data::Event(event) => event.device_name.clone(),
                other => format!("{other:?}"),
            };
            let topic = ctx.apply_template("{receivedTopic}")?;
            let _ = tx.send(Seen { pipeline: ctx.pipeline_id().to_owned(), device, topic });
            Ok(Some(data))
        }
    }))
}

/// A function that holds each message's acknowledgement: it adds a confirmation and hands
/// its sender, with the device name, to the test.
pub fn hold(tx: mpsc::UnboundedSender<(String, oneshot::Sender<Result<(), String>>)>) -> Arc<dyn Function> {
    Arc::new(from_fn("Hold", move |ctx, data| {
        let tx = tx.clone();
        async move {
            let (confirm, confirmation): (_, Confirmation) = oneshot::channel();
            ctx.add_confirmation(confirmation);
            let device = match &data {
                Data::Event(event) => event.device_name.clone(),
                _ => String::new(),
            };
            let _ = tx.send((device, confirm));
            Ok(None)
        }
    }))
}

/// The next `n` items of `rx`, failing the test after 20 s.
pub async fn next_n<T>(rx: &mut mpsc::UnboundedReceiver<T>, n: usize) -> Vec<T> {
    let mut items = Vec::with_capacity(n);
    while items.len() < n {
        let item = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await;
        items.push(item.expect("timed out waiting").expect("channel closed"));
    }
    items
}

/// Asserts nothing more arrives on `rx` within `wait`.
pub async fn nothing_more<T: std::fmt::Debug>(rx: &mut mpsc::UnboundedReceiver<T>, wait: Duration) {
    if let Ok(Some(item)) = tokio::time::timeout(wait, rx.recv()).await {
        panic!("unexpected {item:?}");
    }
}

/// `prefix` with a random suffix, for names and topics no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Three runs of a service on the bus `connect` makes: a message its export never confirms
/// comes again after a restart; once confirmed, it does not.
pub async fn acknowledged_only_after_confirmation<F, Fut>(
    publisher: Arc<dyn Bus>,
    connect: F,
    mut cfg: AppServiceConfig,
) where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Bus>>,
{
    let service_name = unique("svc");
    cfg.trigger.durable_name = unique("app-ack");
    let topic = format!("edgex/events/device/{service_name}/#");

    // First run: the export never confirms; the service stops with the message unacknowledged.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let bus = connect(unique("app")).await;
    let service = start(cfg.clone(), bus, vec![Pipeline::new("p", vec![topic.clone()], vec![hold(tx)])]).await;
    publish_event(&*publisher, &service_name, "first", "P").await;
    let (device, unconfirmed) = next_n(&mut rx, 1).await.remove(0);
    assert_eq!(device, "first");
    service.shutdown().await;
    drop(unconfirmed);

    // Second run: the broker delivers it again; this time it is confirmed.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let bus = connect(unique("app")).await;
    let service = start(cfg.clone(), bus, vec![Pipeline::new("p", vec![topic.clone()], vec![hold(tx)])]).await;
    let (device, confirm) = next_n(&mut rx, 1).await.remove(0);
    assert_eq!(device, "first", "the unconfirmed message comes again");
    confirm.send(Ok(())).unwrap();
    publish_event(&*publisher, &service_name, "second", "P").await;
    let (device, confirm) = next_n(&mut rx, 1).await.remove(0);
    assert_eq!(device, "second");
    confirm.send(Ok(())).unwrap();
    // The acks reach the broker before the connection closes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    service.shutdown().await;

    // Third run: nothing comes again.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let bus = connect(unique("app")).await;
    let service = start(cfg, bus, vec![Pipeline::new("p", vec![topic], vec![hold(tx)])]).await;
    publish_event(&*publisher, &service_name, "third", "P").await;
    let (device, confirm) = next_n(&mut rx, 1).await.remove(0);
    assert_eq!(device, "third", "confirmed messages are not delivered again");
    confirm.send(Ok(())).unwrap();
    nothing_more(&mut rx, Duration::from_millis(1500)).await;
    service.shutdown().await;
}
