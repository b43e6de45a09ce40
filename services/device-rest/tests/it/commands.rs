//! Commands to devices with an HTTP endpoint (protocol `REST`): GET reads each resource from
//! `http://{Host}:{Port}/{Path}/{resource}`, PUT writes it, against a small HTTP device served
//! in the test; a device that never answers is 504, one that is down or answers garbage 500,
//! each naming the device, and the other devices keep being served.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use serde_json::json;

use crate::common::*;

/// What the device serves per resource: status, content type and body.
type Table = Mutex<std::collections::HashMap<String, (u16, String, Vec<u8>)>>;

/// One request the device got: method, path, query, content type, body.
type Seen = (String, String, String, String, Vec<u8>);

#[derive(Default)]
struct Device {
    table: Table,
    seen: Mutex<Vec<Seen>>,
}

impl Device {
    fn serve(&self, resource: &str, status: u16, content_type: &str, body: &[u8]) {
        self.table.lock().unwrap().insert(resource.to_owned(), (status, content_type.to_owned(), body.to_vec()));
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn handle(device: web::Data<Arc<Device>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let resource = req.match_info().get("resource").unwrap_or_default().to_owned();
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    device.seen.lock().unwrap().push((
        req.method().to_string(),
        req.path().to_owned(),
        req.query_string().to_owned(),
        content_type.clone(),
        body.to_vec(),
    ));
    let mut table = device.table.lock().unwrap();
    if req.method() == "PUT" {
        table.insert(resource, (200, content_type, body.to_vec()));
        return HttpResponse::Ok().finish();
    }
    match table.get(&resource) {
        Some((status, ct, body)) => HttpResponse::build(actix_web::http::StatusCode::from_u16(*status).unwrap())
            .content_type(ct.as_str())
            .body(body.clone()),
        None => HttpResponse::NotFound().body("no such resource"),
    }
}

/// Serves `device` at `http://127.0.0.1:{port}/api/{resource}`; returns the port.
fn start_device(device: Arc<Device>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = web::Data::new(device);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().app_data(data.clone()).route("/api/{resource}", web::to(handle))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    port
}

/// A device that accepts connections and never answers; returns its port.
async fn start_silent_device() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn devices(up: u16, silent: u16, down: u16) -> String {
    format!(
        r#"
deviceList:
  - name: "rest-2way-01"
    profileName: "rest-2way"
    protocols: {{ REST: {{ Host: "127.0.0.1", Port: "{up}", Path: "api" }} }}
  - name: "rest-2way-silent"
    profileName: "rest-2way"
    protocols: {{ REST: {{ Host: "127.0.0.1", Port: {silent}, Path: "/api/" }} }}
  - name: "rest-2way-down"
    profileName: "rest-2way"
    protocols: {{ REST: {{ Host: "localhost", Port: "{down}", Path: "api" }} }}
  - name: "rest-sensor-01"
    profileName: "rest-sensor"
    protocols: {{ other: {{}} }}
"#
    )
}

async fn harness(device: Arc<Device>) -> Harness {
    let up = start_device(device);
    let silent = start_silent_device().await;
    let ready = ["rest-2way-01", "rest-2way-silent", "rest-2way-down", "rest-sensor-01"];
    start(&devices(up, silent, closed_port()), &ready, |cfg| {
        cfg.device.allowed_fails = 0;
        cfg.driver.insert("request_timeout".into(), json!("400ms"));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_reads_each_resource_from_the_device_endpoint() {
    let device = Arc::new(Device::default());
    device.serve("int8", 200, "text/plain", b"111");
    device.serve("uint32", 200, "text/plain; charset=utf-8", b"4000000000\n");
    device.serve("float64", 200, "text/plain", b"21.5");
    device.serve("string", 200, "text/plain", b"ready");
    device.serve("bool", 200, "application/json", b"true");
    device.serve("json", 200, "application/json", br#"{"mode": "eco", "levels": [1, 2]}"#);
    device.serve("int32s", 200, "application/json", b"[1, -2]");
    device.serve("jpeg", 200, "image/jpeg", &[0xFF, 0xD8, 0x00]);
    let h = harness(device.clone()).await;

    let cases = [
        ("int8", "Int8", json!("111")),
        ("uint32", "Uint32", json!("4000000000")),
        ("float64", "Float64", json!("2.15e+01")),
        ("string", "String", json!("ready")),
        ("bool", "Bool", json!("true")),
        ("int32s", "Int32Array", json!("[1, -2]")),
    ];
    for (resource, value_type, value) in cases {
        let a = h.get("rest-2way-01", resource, "").await;
        assert_eq!(a.status, 200, "{resource}: {:?}", a.body);
        let reading = &a.body["event"]["readings"][0];
        assert_eq!((reading["valueType"].as_str(), &reading["value"]), (Some(value_type), &value), "{resource}");
    }
    let a = h.get("rest-2way-01", "json", "").await;
    assert_eq!(a.body["event"]["readings"][0]["objectValue"], json!({"mode": "eco", "levels": [1, 2]}));
    let a = h.get("rest-2way-01", "jpeg", "").await;
    let reading = &a.body["event"]["readings"][0];
    assert_eq!(reading["binaryValue"], base64::engine::general_purpose::STANDARD.encode([0xFF, 0xD8, 0x00]));
    assert_eq!(reading["mediaType"], "image/jpeg");

    // A device command reads its resources one after the other; other query parameters reach
    // the device, the SDK's do not.
    let before = device.seen().len();
    let a = h.get("rest-2way-01", "status", "?unit=C&ds-pushevent=false").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let values: Vec<_> = a.body["event"]["readings"].as_array().unwrap().iter().map(|r| r["value"].clone()).collect();
    assert_eq!(values, [json!("2.15e+01"), json!("ready")]);
    let seen: Vec<_> = device.seen()[before..].iter().map(|s| (s.0.clone(), s.1.clone(), s.2.clone())).collect();
    assert_eq!(
        seen,
        [
            ("GET".to_owned(), "/api/float64".to_owned(), "unit=C".to_owned()),
            ("GET".to_owned(), "/api/string".to_owned(), "unit=C".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_writes_each_value_to_the_device_endpoint_as_text_or_json() {
    let device = Arc::new(Device::default());
    let h = harness(device.clone()).await;

    let writes = [
        ("int8", json!({"int8": 12}), "text/plain", b"12".to_vec()),
        ("float64", json!({"float64": "21.25"}), "text/plain", b"21.25".to_vec()),
        ("bool", json!({"bool": true}), "text/plain", b"true".to_vec()),
        ("string", json!({"string": "on air"}), "text/plain", b"on air".to_vec()),
        ("json", json!({"json": {"mode": "eco"}}), "application/json", br#"{"mode":"eco"}"#.to_vec()),
        ("int32s", json!({"int32s": [3, -4]}), "application/json", b"[3,-4]".to_vec()),
        ("reboot", json!({"reboot": "true"}), "text/plain", b"true".to_vec()),
    ];
    for (resource, body, content_type, sent) in writes {
        let before = device.seen().len();
        let a = h.put("rest-2way-01", resource, &body).await;
        assert_eq!(a.status, 200, "{resource}: {:?}", a.body);
        let seen = device.seen()[before..].to_vec();
        assert_eq!(seen.len(), 1, "{resource}: {seen:?}");
        let (method, path, _, ct, got) = &seen[0];
        assert_eq!((method.as_str(), path.as_str(), ct.as_str()), ("PUT", &*format!("/api/{resource}"), content_type));
        assert_eq!(got, &sent, "{resource}: {}", String::from_utf8_lossy(got));
    }
    // What was written reads back.
    let a = h.get("rest-2way-01", "float64", "").await;
    assert_eq!(a.body["event"]["readings"][0]["value"], "2.125e+01");

    // A command writes its resources one after the other.
    let before = device.seen().len();
    assert_eq!(h.put("rest-2way-01", "status", &json!({"float64": 1, "string": "x"})).await.status, 200);
    let paths: Vec<_> = device.seen()[before..].iter().map(|s| s.1.clone()).collect();
    assert_eq!(paths, ["/api/float64", "/api/string"]);

    // Values the profile refuses never reach the device.
    let before = device.seen().len();
    let a = h.put("rest-2way-01", "setpoint", &json!({"setpoint": 99})).await;
    assert_eq!(a.status, 400);
    assert!(a.message().contains("setpoint") && a.message().contains("maximum 30"), "{}", a.message());
    let a = h.put("rest-2way-01", "int8", &json!({"int8": "many"})).await;
    assert_eq!(a.status, 400);
    assert!(a.message().contains("int8") && a.message().contains("Int8"), "{}", a.message());
    assert_eq!(h.put("rest-2way-01", "jpeg", &json!({"jpeg": "AAA="})).await.status, 405, "read-only");
    assert_eq!(device.seen().len(), before);
}

/// Asserts an error answer with `status` whose message holds every one of `words`.
fn refused(a: &Answer, status: u16, words: &[&str]) {
    assert_eq!(a.status, status, "{:?}", a.body);
    assert_eq!(a.body["statusCode"], status, "{:?}", a.body);
    for w in words {
        assert!(a.message().contains(w), "{w:?} not in {:?}", a.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_down_failing_and_garbled_devices_are_named_and_the_others_keep_being_served() {
    let device = Arc::new(Device::default());
    device.serve("int8", 200, "text/plain", b"7");
    device.serve("uint32", 500, "text/plain", b"sensor fault");
    device.serve("string", 503, "text/plain", b"");
    device.serve("float64", 200, "text/plain", b"warm");
    device.serve("jpeg", 200, "image/png", b"\x89PNG");
    device.serve("json", 200, "application/json", b"[1]");
    let h = harness(device.clone()).await;

    let started = Instant::now();
    let a = h.get("rest-2way-silent", "int8", "").await;
    refused(&a, 504, &["rest-2way-silent", "GET http://127.0.0.1:", "/api/int8", "no answer within 400ms"]);
    assert!(started.elapsed() < Duration::from_secs(3), "the timeout held: {:?}", started.elapsed());
    let a = h.put("rest-2way-silent", "int8", &json!({"int8": 1})).await;
    refused(&a, 504, &["rest-2way-silent", "PUT http://127.0.0.1:", "no answer within"]);

    let a = h.get("rest-2way-down", "int8", "").await;
    refused(&a, 500, &["rest-2way-down", "GET http://localhost:", "/api/int8"]);
    let a = h.put("rest-2way-down", "string", &json!({"string": "x"})).await;
    refused(&a, 500, &["rest-2way-down", "PUT http://localhost:"]);

    refused(&h.get("rest-2way-01", "uint32", "").await, 500, &["rest-2way-01", "answered 500", "sensor fault"]);
    refused(&h.get("rest-2way-01", "string", "").await, 500, &["rest-2way-01", "answered 503"]);
    refused(&h.get("rest-2way-01", "bool", "").await, 400, &["rest-2way-01", "answered 404", "no such resource"]);
    refused(&h.get("rest-2way-01", "float64", "").await, 500, &["rest-2way-01", "float64", "Float64", "'warm'"]);
    refused(&h.get("rest-2way-01", "jpeg", "").await, 500, &["jpeg", "expected 'image/jpeg' but received 'image/png'"]);
    refused(&h.get("rest-2way-01", "json", "").await, 500, &["json", "Object"]);
    // A device that only pushes has no endpoint to command.
    refused(&h.get("rest-sensor-01", "int8", "").await, 400, &["rest-sensor-01", "no REST protocol properties"]);

    let a = h.get("rest-2way-01", "int8", "").await;
    assert_eq!(a.status, 200, "the device that answers is still served: {:?}", a.body);
    assert_eq!(a.body["event"]["readings"][0]["value"], "7");
    let mut events = h.events_of("rest-2way-silent").await;
    assert_eq!(h.post("rest-2way-silent", "int8", "text/plain", "5").await.status, 200, "it can still push");
    assert_eq!(next_event(&mut events).await["readings"][0]["value"], "5");
}
