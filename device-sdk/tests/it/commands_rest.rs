//! GET and PUT of device commands and resources over REST, through `serve`, against a real
//! core-metadata: events, query parameters, flags, every error EdgeX answers, bad bodies
//! and hostile names.

use std::time::Duration;

use oxedge_device_sdk::{DriverError, Value};
use serde_json::json;

use crate::commands_common::*;

fn devices() -> Vec<serde_json::Value> {
    let mut locked = device("thermo-locked");
    locked["adminState"] = json!("LOCKED");
    let mut down = device("thermo-down");
    down["operatingState"] = json!("DOWN");
    vec![device("thermo-1"), locked, down]
}

#[tokio::test]
async fn get_returns_the_event_and_passes_attributes_and_query_to_the_driver() {
    let h = start(devices(), |_| {}).await;
    let mut events = h.subscribe("edgex/events/device/#").await;
    let a = h.get("thermo-1", "Climate", "?unit=F&jsonObject=e30%3D&ds-pushevent=true").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!((a.body["apiVersion"].as_str(), a.body["statusCode"].as_u64()), (Some("v3"), Some(200)));
    let event = &a.body["event"];
    assert_eq!(event["deviceName"], "thermo-1");
    assert_eq!(event["profileName"], "Thermostat");
    assert_eq!(event["sourceName"], "Climate");
    assert!(uuid::Uuid::parse_str(event["id"].as_str().unwrap()).is_ok());
    assert!(event["origin"].as_i64().unwrap() > 0);
    assert_eq!(event["tags"], json!({"site": "lab", "group": "climate"}), "device and command tags");
    let readings = event["readings"].as_array().unwrap();
    assert_eq!(readings.len(), 2);
    assert_eq!(readings[0]["resourceName"], "Temperature");
    assert_eq!(readings[0]["valueType"], "Float64");
    assert_eq!(readings[0]["units"], "C");
    assert_eq!(readings[0]["tags"], json!({"kind": "sensor"}), "resource tags on the reading");
    assert_eq!(readings[1]["value"], "20");

    let reads = h.driver.reads.lock().unwrap().clone();
    let (dev, reqs) = reads.last().unwrap();
    assert_eq!(dev, "thermo-1");
    assert_eq!(reqs.iter().map(|r| r.resource_name.as_str()).collect::<Vec<_>>(), ["Temperature", "SetPoint"]);
    assert_eq!(reqs[0].attributes["register"], 30001);
    assert_eq!(reqs[0].attributes["urlRawQuery"], "jsonObject=e30%3D&unit=F", "ds- parameters are the SDK's");

    let published = events_within(&mut events, Duration::from_secs(2)).await;
    assert_eq!(published.len(), 1, "ds-pushevent=true publishes the event once");
    assert_eq!(published[0]["event"], *event);
    assert_eq!(published[0]["apiVersion"], "v3");
}

#[tokio::test]
async fn flags_decide_whether_the_event_is_returned_and_published() {
    let h = start(devices(), |_| {}).await;
    let mut events = h.subscribe("edgex/events/device/#").await;
    let a = h.get("thermo-1", "Temperature", "").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["event"]["sourceName"], "Temperature", "a resource is read directly");
    assert!(a.body["event"]["readings"][0]["value"].as_str().unwrap().starts_with("2.15"));

    let res = h.ds.client.get(h.ds.url("/device/name/thermo-1/Temperature?ds-returnevent=false")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/json"), "EdgeX's SDK sets it on the empty answer too");
    assert!(res.bytes().await.unwrap().is_empty(), "ds-returnevent=false: 200 with an empty body");
    assert!(events_within(&mut events, Duration::from_millis(300)).await.is_empty(), "not pushed by default");

    let a = h.get("thermo-1", "Serial", "?ds-returnevent=false&ds-pushevent=true").await;
    assert_eq!(a.status, 200, "hidden resources are served by the device service");
    let published = events_within(&mut events, Duration::from_secs(2)).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["event"]["readings"][0]["value"], "SN-1");

    let a = h.get("thermo-1", "Temperature", "?ds-pushevent=maybe").await;
    assert_eq!(a.status, 400);
    assert!(a.message().contains("ds-pushevent"), "{}", a.message());
}

#[tokio::test]
async fn errors_are_answered_with_edgex_status_codes_before_the_driver_is_called() {
    let h = start(devices(), |_| {}).await;
    let cases = [
        (h.get("nobody", "Climate", "").await, 404, "device nobody not found"),
        (h.get("thermo-1", "Nothing", "").await, 404, "Nothing not found"),
        (h.get("thermo-locked", "Climate", "").await, 423, "device thermo-locked locked"),
        (h.get("thermo-down", "Climate", "").await, 423, "device thermo-down OperatingState is DOWN"),
        (h.get("thermo-1", "Reset", "").await, 405, "DeviceResource Reset is marked as write-only"),
        (h.get("thermo-1", "ResetAll", "").await, 405, "DeviceCommand ResetAll is marked as write-only"),
        (
            h.put("thermo-1", "Temperature", &json!({"Temperature": 1})).await,
            405,
            "DeviceResource Temperature is marked as read-only",
        ),
        (
            h.put("thermo-1", "Climate", &json!({"SetPoint": 21})).await,
            405,
            "DeviceCommand Climate is marked as read-only",
        ),
        (h.put("thermo-locked", "SetPoint", &json!({"SetPoint": 21})).await, 423, "locked"),
    ];
    for (a, status, message) in cases {
        assert_eq!(a.status, status, "{:?}", a.body);
        assert_eq!(a.body["statusCode"], status);
        assert!(a.message().contains(message), "{} should contain {message}", a.message());
    }
    assert!(h.driver.reads.lock().unwrap().is_empty());
    assert!(h.driver.writes.lock().unwrap().is_empty());
}

#[tokio::test]
async fn put_writes_checked_values_with_defaults_and_mappings() {
    let h = start(devices(), |_| {}).await;
    let mut events = h.subscribe("edgex/events/device/#").await;
    let a = h.put("thermo-1", "Configure", &json!({"SetPoint": 22})).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body, json!({"apiVersion": "v3", "statusCode": 200}));
    let (dev, reqs, values) = h.driver.writes.lock().unwrap().last().cloned().unwrap();
    assert_eq!(dev, "thermo-1");
    assert_eq!(reqs[0].attributes["register"], 40001);
    assert_eq!(values[0].value, Value::Int32(22));
    assert_eq!(values[1].value, Value::String("auto".into()), "the resource operation's defaultValue");
    // As EdgeX 4 does, the values written are published (the command is not write-only).
    let published = events_within(&mut events, Duration::from_secs(2)).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["event"]["sourceName"], "Configure");

    // A resource: the body's value as text works too; the resource's defaultValue fills in.
    assert_eq!(h.put("thermo-1", "SetPoint", &json!({"SetPoint": "21"})).await.status, 200);
    assert_eq!(h.driver.writes.lock().unwrap().last().unwrap().2[0].value, Value::Int32(21));
    assert_eq!(h.put("thermo-1", "SetPoint", &json!({})).await.status, 200);
    assert_eq!(h.driver.writes.lock().unwrap().last().unwrap().2[0].value, Value::Int32(20));
    assert_eq!(h.put("thermo-1", "ResetAll", &json!({})).await.status, 200);
    assert_eq!(h.driver.writes.lock().unwrap().last().unwrap().2[0].value, Value::Bool(true));

    // Mappings: "on" is written as 1, and 1 reads back as "on".
    assert_eq!(h.put("thermo-1", "Switch", &json!({"Power": "on"})).await.status, 200);
    assert_eq!(h.driver.writes.lock().unwrap().last().unwrap().2[0].value, Value::Uint8(1));
    let a = h.get("thermo-1", "Switch", "").await;
    assert_eq!(a.body["event"]["readings"][0]["value"], "on");
    assert_eq!(a.body["event"]["readings"][0]["valueType"], "String");
    h.driver.set("Power", Value::Uint8(0));
    assert_eq!(h.get("thermo-1", "Switch", "").await.body["event"]["readings"][0]["value"], "off");
}

#[tokio::test]
async fn bad_bodies_get_a_400_naming_the_problem_and_reach_no_driver() {
    let h = start(devices(), |cfg| cfg.service.max_request_size = 1024).await;
    let raw = |body: &'static str| {
        h.ds.client
            .put(h.ds.url("/device/name/thermo-1/Configure"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let res = raw("{\"SetPoint\": ").await.unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("EOF"), "{body}");
    let res = raw("[1, 2]").await.unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("JSON object"), "{body}");

    let cases = [
        (json!({"SetPoint": 22, "Bogus": 1, "Other": 2}), "'Bogus', 'Other'"),
        (json!({"SetPoint": 99}), "SetPoint"),
        (json!({"SetPoint": "warm"}), "SetPoint"),
        (json!({"SetPoint": 2.5}), "SetPoint"),
    ];
    for (body, named) in cases {
        let a = h.put("thermo-1", "Configure", &body).await;
        assert_eq!(a.status, 400, "{body}: {:?}", a.body);
        assert!(a.message().contains(named), "{body}: {}", a.message());
    }
    let a = h.put("thermo-1", "Mode", &json!({})).await;
    assert_eq!(a.status, 400);
    assert!(a.message().contains("Mode not found in request body and no default value"), "{}", a.message());

    let big = json!({"Mode": "x".repeat(4096)});
    let a = h.put("thermo-1", "Mode", &big).await;
    assert_eq!(a.status, 413, "{:?}", a.body);
    assert!(h.driver.writes.lock().unwrap().is_empty());
}

#[tokio::test]
async fn driver_failures_are_500_timeouts_504_and_invalid_requests_400() {
    let h = start(devices(), |cfg| cfg.device.command_timeout = "300ms".into()).await;
    h.driver.fail_with(Some(DriverError::Failed("bus error on port 1".into())));
    let a = h.get("thermo-1", "Climate", "").await;
    assert_eq!(a.status, 500);
    assert!(
        a.message().contains("error reading DeviceCommand Climate for thermo-1: bus error on port 1"),
        "{}",
        a.message()
    );
    h.driver.fail_with(Some(DriverError::Invalid("register 40001 is not mapped".into())));
    let a = h.put("thermo-1", "SetPoint", &json!({"SetPoint": 10})).await;
    assert_eq!(a.status, 400);
    assert!(a.message().contains("register 40001 is not mapped"), "{}", a.message());
    h.driver.fail_with(None);
    h.driver.slow(Duration::from_secs(2));
    let started = std::time::Instant::now();
    let a = h.get("thermo-1", "Temperature", "").await;
    assert_eq!(a.status, 504, "{:?}", a.body);
    assert!(started.elapsed() < Duration::from_millis(1500), "answered at the command timeout");
    h.driver.slow(Duration::ZERO);
    h.driver.values.lock().unwrap().remove("Counter");
    assert_eq!(h.get("thermo-1", "Counter", "").await.status, 500, "a driver returning an error value");
}

#[tokio::test]
async fn hostile_names_are_plain_404s() {
    let h = start(devices(), |_| {}).await;
    for name in ["../../etc/passwd", "a/b", "%00", "ä€😀", "' OR 1=1 --", &"x".repeat(5000)] {
        let a = h.get(name, "Climate", "").await;
        assert_eq!(a.status, 404, "{name:?}: {:?}", a.body);
        let a = h.get("thermo-1", name, "").await;
        assert_eq!(a.status, 404, "{name:?}: {:?}", a.body);
        let a = h.put("thermo-1", name, &json!({})).await;
        assert_eq!(a.status, 404, "{name:?}: {:?}", a.body);
    }
    let a = h.ds.get("/device/name/thermo-1/Climate?%ff%fe=%00&ds-returnevent=%zz").await;
    assert!(a.status == 200 || a.status == 400, "{:?}", a.body);
    assert_eq!(h.get("thermo-1", "Climate", "").await.status, 200, "the service keeps serving");
}

/// The value of the sample `name` (with its labels) in a Prometheus text page; 0 if absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_count_readings_events_latency_and_driver_errors() {
    let h = start(devices(), |_| {}).await;
    let url = h.ds.url("").replace("/api/v3", "/metrics");
    let page = || async { h.ds.client.get(&url).send().await.unwrap().text().await.unwrap() };
    let before = page().await;
    assert_eq!(h.get("thermo-1", "Climate", "?ds-pushevent=true").await.status, 200);
    h.driver.fail_with(Some(DriverError::Failed("gone".into())));
    assert_eq!(h.get("thermo-1", "Climate", "").await.status, 500);
    let after = page().await;
    let delta = |name: &str| sample(&after, name) - sample(&before, name);
    assert_eq!(delta("device_readings_total"), 2.0, "{after}");
    assert_eq!(delta("device_events_published_total"), 1.0, "{after}");
    assert_eq!(delta("device_command_duration_seconds_count{method=\"GET\"}"), 2.0, "{after}");
    assert_eq!(delta("device_driver_errors_total"), 1.0, "{after}");
}

#[tokio::test]
async fn a_driver_adds_metrics_of_its_own() {
    let h = start(devices(), |_| {}).await;
    let counter = prometheus_client::metrics::counter::Counter::<u64>::default();
    h.driver.sdk().register_metric("device_test_dropped", "Messages the test driver dropped", counter.clone());
    counter.inc_by(3);
    let url = h.ds.url("").replace("/api/v3", "/metrics");
    let page = h.ds.client.get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(sample(&page, "device_test_dropped_total"), 3.0, "{page}");
    assert!(page.contains("# HELP device_test_dropped Messages the test driver dropped"), "{page}");
    assert!(page.contains("device_readings_total"), "the SDK's own metrics stay: {page}");
}

#[tokio::test]
async fn a_locked_service_refuses_commands() {
    let h = start(devices(), |_| {}).await;
    let a = h
        .metadata
        .patch("/deviceservice", &json!([{"apiVersion": "v3", "service": {"name": SERVICE, "adminState": "LOCKED"}}]))
        .await;
    assert_eq!(a.item(0)["statusCode"], 200, "{:?}", a.body);
    h.wait_until("the service knows it is locked", || async { h.get("thermo-1", "Climate", "").await.status == 423 })
        .await;
    assert_eq!(h.get("thermo-1", "Climate", "").await.message(), "service locked");
    assert_eq!(h.put("thermo-1", "SetPoint", &json!({"SetPoint": 10})).await.status, 423);
}
