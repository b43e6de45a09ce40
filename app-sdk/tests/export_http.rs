//! HTTPExport against an HTTP endpoint served in the test: POST and PUT with their headers
//! and a secret header read from secret files; 5xx/408/429 retried until delivered, in order
//! per device; other 4xx dropped and counted; an endpoint down, then up, gets everything in
//! order; without a store, a full memory makes the pipeline wait instead of dropping.

mod export_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use export_support::{app, Endpoint, Request};
use oxedge_app_sdk::context::Confirmation;
use oxedge_app_sdk::export::http::{HttpExport, HttpExportSettings, Method};
use oxedge_app_sdk::secrets::{FileSecrets, Secrets};
use oxedge_app_sdk::{AppContext, Context, Data, Function};
use serde_json::json;

/// Runs the export on `data` for `device`, as a pipeline would, returning its confirmations.
async fn call(export: &HttpExport, device: &str, data: Data) -> Vec<Confirmation> {
    let ctx = Context::new(uuid::Uuid::new_v4().to_string(), "export-test", Secrets::default());
    ctx.set_value("deviceName", device);
    ctx.set_value("sourceName", "temperature");
    let out = export.call(&ctx, data).await.unwrap();
    assert!(out.is_none(), "HTTPExport ends the pipeline unless told to pass its input on");
    ctx.take_confirmations()
}

/// Event `seq` of `device` as JSON.
async fn send(export: &HttpExport, device: &str, seq: u64) -> Vec<Confirmation> {
    call(export, device, Data::Json(json!({ "device": device, "seq": seq }))).await
}

async fn results(confirmations: Vec<Confirmation>) -> Vec<Result<(), String>> {
    let mut out = Vec::new();
    for confirmation in confirmations {
        out.push(tokio::time::timeout(Duration::from_secs(30), confirmation).await.unwrap().unwrap());
    }
    out
}

/// The first arrival of each (device, seq), by device, in arrival order.
fn firsts(delivered: &[Request]) -> BTreeMap<String, Vec<u64>> {
    let mut seen = std::collections::HashSet::new();
    let mut by_device: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for request in delivered {
        let body = request.json();
        let (device, seq) = (body["device"].as_str().unwrap().to_owned(), body["seq"].as_u64().unwrap());
        assert_eq!(request.path, format!("/ingest/{device}"), "the URL template was filled from this message");
        if seen.insert((device.clone(), seq)) {
            by_device.entry(device).or_default().push(seq);
        }
    }
    by_device
}

fn export_name(export: &HttpExport) -> String {
    export.forwarder().expect("the export has started").name().to_owned()
}

async fn metrics(app: &AppContext) -> oxedge_app_sdk::forward::ExportMetrics {
    app.forwarding().await.unwrap().metrics().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_and_put_carry_the_payload_the_headers_and_the_secret_header() {
    let endpoint = Endpoint::start(Arc::new(|_: &mut Request| 200), Duration::ZERO).await;
    let secrets_dir = tempfile::tempdir().unwrap();
    std::fs::write(secrets_dir.path().join("cloud.json"), r#"{"token": "Bearer s3cret"}"#).unwrap();
    let secrets = Secrets::new(Arc::new(FileSecrets::new(secrets_dir.path())));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), secrets, |_| {});

    let mut settings = HttpExportSettings::new(endpoint.url("/ingest/{deviceName}/{sourceName}"));
    settings.header_name = "Authorization".to_owned();
    settings.secret_name = "cloud".to_owned();
    settings.secret_value_key = "token".to_owned();
    settings.http_request_headers = BTreeMap::from([("X-Site".to_owned(), "plant-1".to_owned())]);
    let post = HttpExport::new(settings, &app).unwrap();
    let confirmations = send(&post, "press-1", 7).await;
    assert_eq!(results(confirmations).await, [Ok(())]);

    let mut settings = HttpExportSettings::new(endpoint.url("/raw/{deviceName}"));
    settings.method = Method::Put;
    settings.mime_type = "text/plain".to_owned();
    let put = HttpExport::new(settings, &app).unwrap();
    let bytes = Data::Bytes { bytes: Bytes::from_static(b"21.5"), content_type: "application/octet-stream".into() };
    assert_eq!(results(call(&put, "oven-1", bytes).await).await, [Ok(())]);

    let requests = endpoint.wait_delivered(2, Duration::from_secs(10)).await;
    let post = &requests[0];
    assert_eq!((post.method.as_str(), post.path.as_str()), ("POST", "/ingest/press-1/temperature"));
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert_eq!(post.header("x-site"), Some("plant-1"));
    assert_eq!(post.header("authorization"), Some("Bearer s3cret"), "the secret header from the secret file");
    assert_eq!(post.json(), json!({"device": "press-1", "seq": 7}));
    let put = &requests[1];
    assert_eq!((put.method.as_str(), put.path.as_str()), ("PUT", "/raw/oven-1"));
    assert_eq!(put.header("content-type"), Some("text/plain"), "MimeType overrides the data's type");
    assert_eq!(put.header("authorization"), None);
    assert_eq!(put.body, b"21.5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_holds_the_messages_until_the_secret_file_appears() {
    let endpoint = Endpoint::start(Arc::new(|_: &mut Request| 200), Duration::ZERO).await;
    let secrets_dir = tempfile::tempdir().unwrap();
    let secrets = Secrets::new(Arc::new(FileSecrets::new(secrets_dir.path())));
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), secrets, |_| {});
    let mut settings = HttpExportSettings::new(endpoint.url("/ingest/{deviceName}"));
    settings.header_name = "X-Api-Key".to_owned();
    settings.secret_name = "cloud".to_owned();
    settings.secret_value_key = "key".to_owned();
    let export = HttpExport::new(settings, &app).unwrap();
    let mut confirmations = Vec::new();
    for seq in 0..5 {
        confirmations.extend(send(&export, "press-1", seq).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(endpoint.requests.lock().unwrap().is_empty(), "nothing is sent without its secret header");
    std::fs::create_dir(secrets_dir.path().join("cloud")).unwrap();
    std::fs::write(secrets_dir.path().join("cloud").join("key"), "k-123\n").unwrap();
    assert!(results(confirmations).await.iter().all(Result::is_ok));
    let delivered = endpoint.wait_delivered(5, Duration::from_secs(10)).await;
    assert_eq!(firsts(&delivered)["press-1"], (0..5).collect::<Vec<_>>());
    assert!(delivered.iter().all(|r| r.header("x-api-key") == Some("k-123")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_408_or_429_is_retried_until_delivered_in_order_per_device() {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    // The first requests fail as an overloaded or restarting endpoint fails them.
    let answer = Arc::new(move |_: &mut Request| match counter.fetch_add(1, Ordering::SeqCst) {
        0..=3 => 503,
        4 | 5 => 429,
        6 => 408,
        7 => 500,
        _ => 200,
    });
    let endpoint = Endpoint::start(answer, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), Secrets::default(), |_| {});
    let export = HttpExport::new(HttpExportSettings::new(endpoint.url("/ingest/{deviceName}")), &app).unwrap();
    let mut confirmations = Vec::new();
    for seq in 0..30 {
        for device in ["press-1", "press-2"] {
            confirmations.extend(send(&export, device, seq).await);
        }
    }
    assert!(results(confirmations).await.iter().all(Result::is_ok));
    let delivered = endpoint.wait_delivered(60, Duration::from_secs(20)).await;
    let expected: BTreeMap<String, Vec<u64>> =
        ["press-1", "press-2"].iter().map(|d| (d.to_string(), (0..30).collect())).collect();
    assert_eq!(firsts(&delivered), expected, "every message, in order per device");
    let metrics = metrics(&app).await;
    let name = export_name(&export);
    assert!(metrics.retried(&name) >= 8, "each failed send was retried: {}", metrics.retried(&name));
    assert_eq!(metrics.failed(&name), 0);
    assert!(metrics.sent(&name) >= 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_dropped_and_counted_while_the_others_go_on() {
    let answer =
        Arc::new(|r: &mut Request| if r.json()["seq"].as_u64().unwrap().is_multiple_of(5) { 400 } else { 200 });
    let endpoint = Endpoint::start(answer, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), Secrets::default(), |_| {});
    let export = HttpExport::new(HttpExportSettings::new(endpoint.url("/ingest/{deviceName}")), &app).unwrap();
    let mut confirmations = Vec::new();
    for seq in 0..20 {
        confirmations.extend(send(&export, "press-1", seq).await);
    }
    let results = results(confirmations).await;
    for (seq, result) in results.iter().enumerate() {
        if seq.is_multiple_of(5) {
            let error = result.as_ref().unwrap_err();
            assert!(error.contains("400"), "the rejection names the status: {error}");
        } else {
            assert_eq!(result, &Ok(()), "message {seq}");
        }
    }
    let delivered = endpoint.wait_delivered(16, Duration::from_secs(10)).await;
    let expected: Vec<u64> = (0..20u64).filter(|s| !s.is_multiple_of(5)).collect();
    assert_eq!(firsts(&delivered)["press-1"], expected);
    let rejected: Vec<u64> = endpoint
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.status == 400)
        .map(|r| r.json()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [0, 5, 10, 15], "a rejected message is sent once, never retried");
    let metrics = metrics(&app).await;
    let name = export_name(&export);
    assert_eq!(metrics.failed(&name), 4);
    assert_eq!(metrics.retried(&name), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_while_the_endpoint_is_down_arrive_in_order_once_it_is_up() {
    let port = oxedge_testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), Secrets::default(), |_| {});
    let url = format!("http://127.0.0.1:{port}/ingest/{{deviceName}}");
    let export = HttpExport::new(HttpExportSettings::new(url), &app).unwrap();
    let mut confirmations = Vec::new();
    for seq in 0..40 {
        for device in ["press-1", "oven-1"] {
            confirmations.extend(send(&export, device, seq).await);
        }
    }
    assert!(results(confirmations).await.iter().all(Result::is_ok), "stored while the endpoint is down");
    let metrics = metrics(&app).await;
    let name = export_name(&export);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(metrics.queued_in_store(&name), 80, "all 80 wait in the store");

    let endpoint = Endpoint::start_on(port, Arc::new(|_: &mut Request| 200), Duration::ZERO, Arc::default()).await;
    // More while the backlog drains: they go after it.
    let mut confirmations = Vec::new();
    for seq in 40..50 {
        for device in ["press-1", "oven-1"] {
            confirmations.extend(send(&export, device, seq).await);
        }
    }
    assert!(results(confirmations).await.iter().all(Result::is_ok));
    let delivered = endpoint.wait_delivered(100, Duration::from_secs(30)).await;
    let expected: BTreeMap<String, Vec<u64>> =
        ["oven-1", "press-1"].iter().map(|d| (d.to_string(), (0..50).collect())).collect();
    assert_eq!(firsts(&delivered), expected, "every message, in order per device");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while metrics.queued_in_store(&name) != 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(metrics.queued_in_store(&name), 0, "the store is empty once everything is delivered");
    assert!(metrics.retried(&name) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_a_full_memory_makes_the_pipeline_wait() {
    let port = oxedge_testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), Secrets::default(), |config| {
        config.store_and_forward.enabled = false;
        config.store_and_forward.memory_capacity = 5;
    });
    let url = format!("http://127.0.0.1:{port}/ingest/{{deviceName}}");
    let export = Arc::new(HttpExport::new(HttpExportSettings::new(url), &app).unwrap());
    let confirmations = Arc::new(Mutex::new(Vec::new()));
    let sender = {
        let (export, confirmations) = (export.clone(), confirmations.clone());
        tokio::spawn(async move {
            for seq in 0..20 {
                let sent = send(&export, "press-1", seq).await;
                confirmations.lock().unwrap().extend(sent);
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(confirmations.lock().unwrap().len(), 5, "the sixth message waits for room in memory");
    assert!(!sender.is_finished());

    let endpoint = Endpoint::start_on(port, Arc::new(|_: &mut Request| 200), Duration::ZERO, Arc::default()).await;
    tokio::time::timeout(Duration::from_secs(20), sender).await.unwrap().unwrap();
    let confirmations = std::mem::take(&mut *confirmations.lock().unwrap());
    assert!(results(confirmations).await.iter().all(Result::is_ok));
    let delivered = endpoint.wait_delivered(20, Duration::from_secs(10)).await;
    assert_eq!(firsts(&delivered)["press-1"], (0..20).collect::<Vec<_>>());
    assert_eq!(metrics(&app).await.dropped_by_policy(&export_name(&export)), 0);
}
