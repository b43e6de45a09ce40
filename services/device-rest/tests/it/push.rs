//! Devices pushing readings: `POST /api/v3/resource/{device}/{resource}` with every value type
//! as text, JSON, binary and objects becomes events on the bus; wrong names are 404, wrong
//! values 400 naming the resource and the type, oversized bodies 413, all in EdgeX's error body;
//! hostile bodies never break the service.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use crate::common::*;

const DEVICES: &str = r#"
deviceList:
  - { name: "sample-json", profileName: "sample-json", protocols: { other: {} } }
  - { name: "sample-numeric", profileName: "sample-numeric", protocols: { other: {} } }
  - { name: "rest-sensor-01", profileName: "rest-sensor", protocols: { other: {} } }
  - { name: "rest-camera-01", profileName: "rest-camera", protocols: { other: {} } }
  - name: "rest-bad-port"
    profileName: "rest-2way"
    protocols: { REST: { Host: "127.0.0.1", Port: "99999", Path: "api" } }
"#;

const READY: &[&str] = &["sample-json", "sample-numeric", "rest-sensor-01", "rest-camera-01"];

/// At most this many bytes per POST in these tests.
const LIMIT: usize = 64 * 1024;

async fn harness() -> Harness {
    start(DEVICES, READY, |cfg| cfg.service.max_request_size = LIMIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_value_type_pushed_as_text_or_json_becomes_an_event_on_the_bus() {
    let h = harness().await;
    let mut events = h.events_of("rest-sensor-01").await;
    let t = "text/plain";
    let j = "application/json";
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // resource, content type, body, valueType, reading value
        ("bool", t, "true", "Bool", "true"),
        ("bool", j, "false", "Bool", "false"),
        ("string", t, "hello world", "String", "hello world"),
        ("string", j, "\"quoted\"", "String", "quoted"),
        ("uint8", t, "255", "Uint8", "255"),
        ("uint16", j, "65535", "Uint16", "65535"),
        ("uint32", "", "4294967295", "Uint32", "4294967295"),
        ("uint64", t, "18446744073709551615", "Uint64", "18446744073709551615"),
        ("int8", t, "-128", "Int8", "-128"),
        ("int16", j, "-300", "Int16", "-300"),
        ("int32", "text/plain; charset=utf-8", " 2147483647\n", "Int32", "2147483647"),
        ("int64", t, "-9223372036854775808", "Int64", "-9223372036854775808"),
        ("float32", t, "12.5", "Float32", "1.25e+01"),
        ("float64", j, "500.568", "Float64", "5.00568e+02"),
        ("humidity", t, "55.5", "Float32", "5.55e+01"),
        ("temperature", t, "215", "Float64", "2.15e+01"),
        ("bools", j, "[true, false]", "BoolArray", "[true, false]"),
        ("strings", j, "[\"a\", \"b c\"]", "StringArray", "[\"a\",\"b c\"]"),
        ("int32s", t, "[1, -2, 3]", "Int32Array", "[1, -2, 3]"),
        ("float64s", j, "[1.5, -2]", "Float64Array", "[1.5e+00, -2e+00]"),
    ];
    for (resource, content_type, body, value_type, value) in cases {
        let a = h.post("rest-sensor-01", resource, content_type, body.to_string()).await;
        assert_eq!(a.status, 200, "{resource} {body:?}: {:?}", a.body);
        let event = next_event(&mut events).await;
        assert_eq!(event["deviceName"], "rest-sensor-01");
        assert_eq!(event["profileName"], "rest-sensor");
        assert_eq!(event["sourceName"], *resource, "the resource is the event's source");
        let reading = &event["readings"][0];
        assert_eq!(event["readings"].as_array().map(Vec::len), Some(1));
        assert_eq!(reading["resourceName"], *resource);
        assert_eq!(reading["valueType"], *value_type, "{resource}");
        assert_eq!(reading["value"], *value, "{resource} {body:?}");
    }

    // EdgeX's own sample profiles, as its README posts to them.
    let mut numeric = h.events_of("sample-numeric").await;
    assert_eq!(h.post("sample-numeric", "int", "text/plain", "1001").await.status, 200);
    assert_eq!(next_event(&mut numeric).await["readings"][0]["value"], "1001");
    assert_eq!(h.post("sample-numeric", "float", "text/plain", "500.568").await.status, 200);
    assert_eq!(next_event(&mut numeric).await["readings"][0]["value"], "5.00568e+02");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_bodies_and_objects_become_binary_and_object_readings() {
    let h = harness().await;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);

    let mut camera = h.events_of("rest-camera-01").await;
    let jpeg: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0].into_iter().chain((0..=255).collect::<Vec<u8>>()).collect();
    assert_eq!(h.post("rest-camera-01", "jpeg", "image/jpeg", jpeg.clone()).await.status, 200);
    let reading = next_event(&mut camera).await["readings"][0].clone();
    assert_eq!(reading["valueType"], "Binary");
    assert_eq!(reading["mediaType"], "image/jpeg");
    assert_eq!(reading["binaryValue"], b64(&jpeg));
    let png = vec![0x89, b'P', b'N', b'G', 0, 0xFF];
    assert_eq!(h.post("rest-camera-01", "png", "image/png", png.clone()).await.status, 200);
    assert_eq!(next_event(&mut camera).await["readings"][0]["binaryValue"], b64(&png));

    let mut sensor = h.events_of("rest-sensor-01").await;
    assert_eq!(h.post("rest-sensor-01", "blob", "application/octet-stream", vec![0, 255, 1]).await.status, 200);
    let reading = next_event(&mut sensor).await["readings"][0].clone();
    assert_eq!(
        (reading["binaryValue"].clone(), reading["mediaType"].clone()),
        (json!("AP8B"), json!("application/octet-stream"))
    );

    let records = json!([{ "id": 1, "ok": true }, { "id": 2, "tags": ["x"] }]);
    let a = h.post("rest-sensor-01", "records", "application/json", records.to_string()).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let reading = next_event(&mut sensor).await["readings"][0].clone();
    assert_eq!((reading["valueType"].clone(), reading["objectValue"].clone()), (json!("ObjectArray"), records));

    // EdgeX's sample-json device, with the value its README posts.
    let mut sample = h.events_of("sample-json").await;
    let object =
        json!({ "id": "1234", "name": "test data", "payload": "test payload", "nested": { "n": [1.5, null] } });
    let a = h.post("sample-json", "json", "application/json; charset=utf-8", object.to_string()).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let event = next_event(&mut sample).await;
    assert_eq!(event["readings"][0]["valueType"], "Object");
    assert_eq!(event["readings"][0]["objectValue"], object);
    assert_eq!(event["profileName"], "sample-json");
}

/// Asserts an EdgeX error answer with `status` whose message holds every one of `words`.
fn refused(a: &Answer, status: u16, words: &[&str]) {
    assert_eq!(a.status, status, "{:?}", a.body);
    assert_eq!(a.body["apiVersion"], "v3", "EdgeX's error body: {:?}", a.body);
    assert_eq!(a.body["statusCode"], status, "{:?}", a.body);
    for w in words {
        assert!(a.message().contains(w), "{w:?} not in {:?}", a.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_names_values_types_and_sizes_are_refused_naming_what_is_wrong_and_publish_nothing() {
    let h = harness().await;
    let mut events = h.all_events().await;
    let t = "text/plain";

    refused(&h.post("nope", "int", t, "1").await, 404, &["Device 'nope' not found"]);
    refused(&h.post("sample-numeric", "nope", t, "1").await, 404, &["Resource 'nope' not found", "sample-numeric"]);
    // A device command is not a resource: one reading per POST, as EdgeX.
    refused(&h.post("rest-sensor-01", "climate", t, "1").await, 404, &["Resource 'climate' not found"]);
    // The device with a bad Port was refused at load time, naming the property; the others serve.
    refused(&h.post("rest-bad-port", "int8", t, "1").await, 404, &["Device 'rest-bad-port' not found"]);
    refused(&h.post("rest-sensor-01", "calibrate", t, "true").await, 405, &["calibrate", "write-only"]);

    let bad: &[(&str, &str, &[u8], &[&str])] = &[
        ("int8", t, b"abc", &["DeviceResource int8", "rest-sensor-01", "Int8", "'abc'"]),
        ("uint8", t, b"256", &["uint8", "Uint8", "out of range"]),
        ("uint16", t, b"-1", &["uint16", "Uint16"]),
        ("int64", t, b"99999999999999999999999", &["int64", "Int64", "out of range"]),
        ("float64", t, b"1e400", &["float64", "Float64", "range"]),
        ("float32", "application/json", b"1e39", &["float32", "Float32", "range"]),
        ("bool", t, b"yes", &["bool", "Bool"]),
        ("humidity", t, b"100.5", &["humidity", "maximum 100"]),
        ("humidity", t, b"-1", &["humidity", "minimum 0"]),
        ("int32", t, b"", &["int32", "no request body provided"]),
        ("int32s", t, b"[1, \"x\"]", &["int32s", "Int32Array", "element 1"]),
        ("string", t, &[0x66, 0x6f, 0xff, 0xfe], &["string", "not UTF-8"]),
        ("blob", "image/png", b"x", &["blob", "expected 'application/octet-stream' but received 'image/png'"]),
        ("json", "text/plain", b"{}", &["json", "expected 'application/json'"]),
        ("json", "application/json", b"[1, 2]", &["json", "Object", "expected a JSON object"]),
        ("json", "application/json", b"{\"a\": ", &["json", "Object"]),
        ("records", "application/json", b"[1]", &["records", "ObjectArray"]),
    ];
    for (resource, content_type, body, words) in bad {
        let a = h.post("rest-sensor-01", resource, content_type, body.to_vec()).await;
        refused(&a, 400, words);
    }
    refused(&h.post("rest-camera-01", "jpeg", "image/png", vec![1u8, 2]).await, 400, &["jpeg", "'image/jpeg'"]);
    refused(&h.post("sample-json", "json", "", "{}").await, 400, &["json", "expected 'application/json'"]);

    // Over service.max_request_size: 413, in EdgeX's error body.
    let a = h.post("rest-camera-01", "jpeg", "image/jpeg", vec![0u8; LIMIT + 1]).await;
    refused(&a, 413, &[]);
    // The route takes POST only.
    let a = h.ds.get("/resource/rest-sensor-01/int8").await;
    refused(&a, 405, &[]);

    assert!(no_event_within(&mut events, Duration::from_millis(200)).await, "a refused reading was published");
    assert_eq!(h.post("rest-camera-01", "jpeg", "image/jpeg", vec![0u8; LIMIT - 1024]).await.status, 200);
    assert_eq!(next_event(&mut events).await["deviceName"], "rest-camera-01");
}

/// A small deterministic generator for hostile bodies.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_and_names_never_break_the_service() {
    let h = harness().await;
    let resources = [
        "bool",
        "string",
        "uint8",
        "uint64",
        "int8",
        "int64",
        "float32",
        "float64",
        "humidity",
        "temperature",
        "blob",
        "json",
        "records",
        "bools",
        "strings",
        "int32s",
        "float64s",
    ];
    let content_types = ["text/plain", "application/json", "application/octet-stream", ""];
    let deep_array = "[".repeat(50_000);
    let deep_object = "{\"a\":".repeat(10_000);
    let fixed: Vec<Vec<u8>> = vec![
        deep_array.into_bytes(),
        deep_object.into_bytes(),
        "9".repeat(60_000).into_bytes(),
        format!("1e{}", "9".repeat(1000)).into_bytes(),
        format!("[{}]", vec!["1e308"; 5000].join(",")).into_bytes(),
        b"NaN".to_vec(),
        b"-Inf".to_vec(),
        b"\0\0\0".to_vec(),
        vec![0xC0, 0x80, 0xED, 0xA0, 0x80],
        b"\"\\ud800\"".to_vec(),
        b"[\"\\u0000\"]".to_vec(),
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut bodies = fixed;
    for _ in 0..60 {
        let len = (rng.next() % 512) as usize;
        bodies.push((0..len).map(|_| rng.next() as u8).collect());
    }
    for (i, body) in bodies.iter().enumerate() {
        let resource = resources[i % resources.len()];
        for ct in content_types.iter().skip(i % 2).step_by(2) {
            let a = h.post("rest-sensor-01", resource, ct, body.clone()).await;
            assert!(a.status == 200 || a.status == 400, "{resource} {ct}: body {i} answered {} {:?}", a.status, a.body);
            if a.status == 400 {
                assert!(a.message().contains(resource), "{:?}", a.message());
            }
        }
    }
    // Names: long, odd, encoded.
    let long = "x".repeat(8_000);
    refused(&h.post(&long, "int", "text/plain", "1").await, 404, &["not found"]);
    refused(&h.post("rest-sensor-01", "../../ping", "text/plain", "1").await, 404, &["not found"]);
    refused(&h.post("rest-sensor-01", "int8\u{0}", "text/plain", "1").await, 404, &["not found"]);

    // Still serving, and still publishing.
    assert_eq!(h.ds.get("/ping").await.status, 200);
    let mut events = h.events_of("sample-numeric").await;
    assert_eq!(h.post("sample-numeric", "int", "text/plain", "7").await.status, 200);
    assert_eq!(next_event(&mut events).await["readings"][0]["value"], json!("7"));
}
