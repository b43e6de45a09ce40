//! Pipelines on the in-process bus: topic matching, malformed messages, function errors,
//! the in-flight window, timed flushes and the HTTP trigger.

mod pipeline_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use oxedge_app_sdk::config::TriggerType;
use oxedge_app_sdk::{from_fn, AppServiceConfig, Context, Data, Function, FunctionError, Pipeline};
use oxedge_bus::{Bus, Bytes, InProcessBus, MessageEnvelope};
use pipeline_support::*;
use serde_json::json;
use tokio::sync::mpsc;

fn in_process() -> Arc<dyn Bus> {
    Arc::new(InProcessBus::new())
}

#[tokio::test]
async fn several_pipelines_take_the_topics_they_match_with_wildcards() {
    let bus = in_process();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let pipelines = vec![
        Pipeline::new("thermo", vec!["edgex/events/device/+/Thermo/#".into()], vec![report(tx.clone())]),
        Pipeline::new("dev-2", vec!["edgex/events/device/svc/+/dev-2/+".into()], vec![report(tx.clone())]),
        Pipeline::new("everything", vec![], vec![report(tx)]),
    ];
    let service = start(AppServiceConfig::default(), bus.clone(), pipelines).await;
    for (device, profile) in [("dev-1", "Thermo"), ("dev-2", "Thermo"), ("dev-3", "Meter")] {
        publish_event(&*bus, "svc", device, profile).await;
    }
    let mut seen = next_n(&mut rx, 6).await;
    nothing_more(&mut rx, Duration::from_millis(200)).await;
    seen.sort_by(|a, b| (&a.pipeline, &a.device).cmp(&(&b.pipeline, &b.device)));
    let got: Vec<(&str, &str)> = seen.iter().map(|s| (s.pipeline.as_str(), s.device.as_str())).collect();
    assert_eq!(
        got,
        [
            ("dev-2", "dev-2"),
            ("everything", "dev-1"),
            ("everything", "dev-2"),
            ("everything", "dev-3"),
            ("thermo", "dev-1"),
            ("thermo", "dev-2")
        ]
    );
    assert_eq!(seen[0].topic, "edgex/events/device/svc/Thermo/dev-2/temp");
    assert_eq!(service.metric("app_pipeline_messages_received_total{pipeline=\"thermo\"}").await, 2.0);
    service.shutdown().await;
}

#[tokio::test]
async fn malformed_messages_on_the_trigger_topic_are_counted_and_skipped() {
    let bus = in_process();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let service =
        start(AppServiceConfig::default(), bus.clone(), vec![Pipeline::new("p", vec![], vec![report(tx)])]).await;
    let topic = "edgex/events/device/svc/P/d/temp";
    bus.publish(topic, Bytes::from_static(b"\xff not json")).await.unwrap();
    let not_an_event = MessageEnvelope::json(&json!({"apiVersion": "v3", "event": {"id": 1}}), None).unwrap();
    oxedge_bus::publish_envelope(&*bus, topic, &not_an_event).await.unwrap();
    let cbor = MessageEnvelope::cbor(&json!({"apiVersion": "v3", "event": event("cbor-dev", "P")}), None).unwrap();
    oxedge_bus::publish_envelope(&*bus, topic, &cbor).await.unwrap();
    publish_event(&*bus, "svc", "good", "P").await;
    let seen = next_n(&mut rx, 2).await;
    assert_eq!((seen[0].device.as_str(), seen[1].device.as_str()), ("cbor-dev", "good"));
    assert_eq!(service.metric("app_trigger_messages_malformed_total").await, 2.0);
    service.shutdown().await;
}

/// Log lines written while a test runs (every test of this binary logs here).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_function_that_errors_stops_that_event_only_with_a_log_naming_it() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).try_init().unwrap();
    let bus = in_process();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let refuse_bad = Arc::new(from_fn("RefuseBad", |_ctx, data| async move {
        match &data {
            Data::Event(event) if event.device_name == "bad" => Err(FunctionError::new("deviceName: 'bad' refused")),
            _ => Ok(Some(data)),
        }
    }));
    let pipelines = vec![Pipeline::new("refusing", vec![], vec![refuse_bad, report(tx)])];
    let service = start(AppServiceConfig::default(), bus.clone(), pipelines).await;
    publish_event(&*bus, "svc", "first", "P").await;
    let bad =
        MessageEnvelope::json(&json!({"apiVersion": "v3", "event": event("bad", "P")}), Some("corr-bad-1")).unwrap();
    oxedge_bus::publish_envelope(&*bus, "edgex/events/device/svc/P/bad/temp", &bad).await.unwrap();
    publish_event(&*bus, "svc", "last", "P").await;
    let seen = next_n(&mut rx, 2).await;
    assert_eq!((seen[0].device.as_str(), seen[1].device.as_str()), ("first", "last"));
    assert_eq!(service.metric("app_pipeline_messages_failed_total{pipeline=\"refusing\"}").await, 1.0);
    let errors = "app_pipeline_function_errors_total{pipeline=\"refusing\",function=\"RefuseBad\"}";
    assert_eq!(service.metric(errors).await, 1.0);
    assert_eq!(service.metric("app_pipeline_messages_processed_total{pipeline=\"refusing\"}").await, 2.0);
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("corr-bad-1")).collect();
    assert_eq!(lines.len(), 1, "one log line for the failed message: {text}");
    for part in ["WARN", "pipeline=refusing", "function=RefuseBad", "deviceName: 'bad' refused"] {
        assert!(lines[0].contains(part), "{part} not in {}", lines[0]);
    }
    service.shutdown().await;
}

#[tokio::test]
async fn the_in_flight_window_stops_taking_messages_until_exports_confirm() {
    let bus = in_process();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut cfg = AppServiceConfig::default();
    cfg.trigger.max_in_flight = 3;
    cfg.trigger.capacity = 2;
    let service = start(cfg, bus.clone(), vec![Pipeline::new("p", vec![], vec![hold(tx)])]).await;
    let publisher = bus.clone();
    let published = tokio::spawn(async move {
        for i in 0..10 {
            publish_event(&*publisher, "svc", &format!("d{i}"), "P").await;
        }
    });
    let held = next_n(&mut rx, 3).await;
    nothing_more(&mut rx, Duration::from_millis(300)).await;
    assert_eq!(service.metric("app_trigger_in_flight").await, 3.0);
    assert!(!published.is_finished(), "the publisher must be held back by the full window");
    let mut devices: Vec<String> = Vec::new();
    for (device, confirm) in held {
        devices.push(device);
        confirm.send(Ok(())).unwrap();
    }
    while devices.len() < 10 {
        let (device, confirm) = next_n(&mut rx, 1).await.remove(0);
        devices.push(device);
        confirm.send(Ok(())).unwrap();
    }
    let expected: Vec<String> = (0..10).map(|i| format!("d{i}")).collect();
    assert_eq!(devices, expected, "one pipeline keeps the order of its messages");
    published.await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while service.metric("app_trigger_in_flight").await != 0.0 {
        assert!(tokio::time::Instant::now() < deadline, "the window never emptied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.shutdown().await;
}

/// Holds events and releases them together when flushed: a batch by time.
struct EveryTick {
    held: Mutex<(Vec<Data>, Vec<oxedge_bus::Delivery>)>,
}

#[async_trait]
impl Function for EveryTick {
    fn name(&self) -> &str {
        "EveryTick"
    }

    async fn call(&self, ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let mut held = self.held.lock().unwrap();
        held.0.push(data);
        held.1.extend(ctx.take_deliveries());
        Ok(None)
    }

    fn flush_every(&self) -> Option<Duration> {
        Some(Duration::from_millis(100))
    }

    async fn flush(&self, ctx: &Context) -> Result<Option<Data>, FunctionError> {
        let (items, deliveries) = std::mem::take(&mut *self.held.lock().unwrap());
        ctx.add_deliveries(deliveries);
        Ok((!items.is_empty()).then_some(Data::Batch(items)))
    }
}

#[tokio::test]
async fn functions_with_a_flush_interval_are_flushed_by_the_pipeline() {
    let bus = in_process();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let batch = Arc::new(EveryTick { held: Mutex::new((Vec::new(), Vec::new())) });
    let count = Arc::new(from_fn("CountBatch", move |_ctx, data| {
        let tx = tx.clone();
        async move {
            if let Data::Batch(items) = &data {
                let _ = tx.send(items.len());
            }
            Ok(Some(data))
        }
    }));
    let service =
        start(AppServiceConfig::default(), bus.clone(), vec![Pipeline::new("p", vec![], vec![batch, count])]).await;
    for i in 0..5 {
        publish_event(&*bus, "svc", &format!("d{i}"), "P").await;
    }
    let mut total = 0;
    while total < 5 {
        total += next_n(&mut rx, 1).await[0];
    }
    assert_eq!(total, 5);
    service.shutdown().await;
}

#[tokio::test]
async fn the_http_trigger_answers_with_the_response_data() {
    let mut cfg = AppServiceConfig::default();
    cfg.trigger.kind = TriggerType::Http;
    let respond = Arc::new(from_fn("SetResponseData", |ctx, data| async move {
        let Data::Event(event) = &data else { return Err(FunctionError::new("not an event")) };
        if event.device_name == "bad" {
            return Err(FunctionError::new("deviceName: 'bad' refused"));
        }
        let body =
            json!({"device": event.device_name, "pipeline": ctx.pipeline_id(), "readings": event.readings.len()});
        ctx.set_response(Bytes::from(body.to_string()), "application/json");
        Ok(Some(data))
    }));
    let service = start(cfg, in_process(), vec![Pipeline::new("http", vec!["#".into()], vec![respond])]).await;
    let api = oxedge_testkit::http::Api::new(service.url("/api/v3"));

    let answer = api.post("/trigger", &json!({"apiVersion": "v3", "event": event("dev-7", "P")})).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body, json!({"device": "dev-7", "pipeline": "http", "readings": 1}));
    assert_eq!(answer.content_type, "application/json");

    let answer = api.post_raw("/trigger", "application/json", "{\"deviceName\": 3}").await;
    assert_eq!(answer.status, 400);
    assert!(answer.message().contains("not an event"), "{}", answer.message());

    let answer = api.post("/trigger", &event("bad", "P")).await;
    assert_eq!(answer.status, 422);
    assert_eq!(answer.body["statusCode"], 422);
    assert!(answer.message().contains("pipeline http: function SetResponseData failed"), "{}", answer.message());

    let doc = api.get("/openapi.json").await;
    let trigger = &doc.body["paths"]["/api/v3/trigger"]["post"];
    for code in ["200", "400", "413", "422", "503"] {
        assert!(trigger["responses"][code].is_object(), "the document lists {code} for POST /trigger: {trigger}");
    }
    assert!(doc.body["components"]["schemas"]["TriggerRequest"].is_object(), "{}", doc.body);
    assert!(doc.body["paths"]["/api/v3/ping"].is_object(), "the common endpoints stay: {}", doc.body);
    service.shutdown().await;
}

#[tokio::test]
async fn bad_pipelines_are_refused_at_start_naming_the_pipeline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let pipelines = vec![Pipeline::new("twice", vec![], vec![]), Pipeline::new("twice", vec![], vec![])];
    let err = oxedge_app_sdk::run(
        oxedge_app_sdk::ServiceContext::standalone(
            "app-test",
            in_process(),
            tokio_util::sync::CancellationToken::new(),
        ),
        AppServiceConfig::default(),
        move |_app: &oxedge_app_sdk::AppContext| Ok(pipelines),
        listener,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("'twice'"), "{err}");
}

/// Events per second through the bus trigger and the runner (decode, context, two functions,
/// a confirmation per message, in-order acknowledgement), on the in-process bus. A
/// measurement, not a check: `cargo test -p oxedge-app-sdk --release --test
/// pipeline_inprocess -- --ignored --nocapture runner_throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run it on purpose"]
async fn runner_throughput() {
    const EVENTS: usize = 50_000;
    let bus = in_process();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let confirm = Arc::new(from_fn("ConfirmAtOnce", |ctx, data| async move {
        let (sender, confirmation) = tokio::sync::oneshot::channel();
        ctx.add_confirmation(confirmation);
        let _ = sender.send(Ok(()));
        Ok(Some(data))
    }));
    let count = Arc::new(from_fn("Count", move |_ctx, _data| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(());
            Ok(None)
        }
    }));
    let service =
        start(AppServiceConfig::default(), bus.clone(), vec![Pipeline::new("p", vec![], vec![confirm, count])]).await;
    let topic = oxedge_bus::topic::event("svc", "P", "d", "temp");
    let payload = MessageEnvelope::json(&json!({"apiVersion": "v3", "event": event("d", "P")}), None)
        .unwrap()
        .to_bytes()
        .unwrap();
    let started = std::time::Instant::now();
    let publisher = bus.clone();
    tokio::spawn(async move {
        for _ in 0..EVENTS {
            publisher.publish(&topic, payload.clone()).await.unwrap();
        }
    });
    next_n(&mut rx, EVENTS).await;
    let elapsed = started.elapsed();
    println!("{EVENTS} events in {elapsed:?}: {:.0} events/s", EVENTS as f64 / elapsed.as_secs_f64());
    service.shutdown().await;
}
