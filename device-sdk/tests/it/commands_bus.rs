//! Command requests over the message bus, as EdgeX 4's core-command sends them: answers on
//! `edgex/response/{service}/{requestID}` in device-sdk-go's shape, errors as `errorCode` 1,
//! malformed requests answered or skipped without harm.

use std::time::Duration;

use oxedge_bus::{topic, Bus, Bytes, MessageEnvelope};
use oxedge_device_sdk::{CommandValue, Value};
use serde_json::{json, Value as Json};

use crate::commands_common::*;

fn devices() -> Vec<Json> {
    let mut locked = device("thermo-locked");
    locked["adminState"] = json!("LOCKED");
    vec![device("thermo-1"), device("Room 1 ä"), locked]
}

#[tokio::test]
async fn get_answers_an_event_response_and_pushes_when_asked() {
    let h = start(devices(), |_| {}).await;
    let mut events = h.subscribe("edgex/events/device/#").await;
    let answer =
        h.bus_request("thermo-1", "Climate", "get", &[("ds-pushevent", "true"), ("unit", "F")], Json::Null).await;
    assert_eq!(answer.error_code, 0);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(answer.api_version, "v3");
    let body: Json = answer.payload_as().unwrap();
    assert_eq!(body["requestId"], answer.request_id.as_str());
    assert_eq!(body["statusCode"], 200);
    assert_eq!(body["event"]["deviceName"], "thermo-1");
    assert_eq!(body["event"]["readings"].as_array().unwrap().len(), 2);
    let reads = h.driver.reads.lock().unwrap().clone();
    assert_eq!(reads.last().unwrap().1[0].attributes["urlRawQuery"], "unit=F");
    let published = events_within(&mut events, Duration::from_secs(2)).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["event"]["id"], body["event"]["id"]);

    let answer = h.bus_request("thermo-1", "Temperature", "get", &[("ds-returnevent", "false")], Json::Null).await;
    assert_eq!(answer.error_code, 0);
    assert_eq!(answer.payload.get(), "null", "no event asked back");
    assert!(events_within(&mut events, Duration::from_millis(300)).await.is_empty());

    // Names are percent-encoded in topics, as EdgeX does.
    let answer = h.bus_request("Room 1 ä", "Temperature", "get", &[], Json::Null).await;
    assert_eq!(answer.error_code, 0, "{:?}", answer.payload_bytes());
    let body: Json = answer.payload_as().unwrap();
    assert_eq!(body["event"]["deviceName"], "Room 1 ä");
}

#[tokio::test]
async fn set_writes_and_answers_an_empty_payload() {
    let h = start(devices(), |_| {}).await;
    let answer = h.bus_request("thermo-1", "Configure", "set", &[], json!({"SetPoint": "25", "Mode": "eco"})).await;
    assert_eq!(answer.error_code, 0, "{:?}", String::from_utf8_lossy(&answer.payload_bytes().unwrap()));
    assert_eq!(answer.payload.get(), "null");
    let (_, _, values) = h.driver.writes.lock().unwrap().last().cloned().unwrap();
    assert_eq!(values[0].value, Value::Int32(25));
    assert_eq!(values[1].value, Value::String("eco".into()));
}

#[tokio::test]
async fn errors_are_error_code_1_with_the_message() {
    let h = start(devices(), |_| {}).await;
    let text = |env: &MessageEnvelope| String::from_utf8(env.payload_bytes().unwrap()).unwrap();
    let cases = [
        (h.bus_request("nobody", "Climate", "get", &[], Json::Null).await, "device nobody not found"),
        (h.bus_request("thermo-locked", "Climate", "get", &[], Json::Null).await, "device thermo-locked locked"),
        (h.bus_request("thermo-1", "Climate", "set", &[], json!({"SetPoint": 1})).await, "read-only"),
        (h.bus_request("thermo-1", "SetPoint", "set", &[], json!({"SetPoint": 100})).await, "SetPoint"),
        (h.bus_request("thermo-1", "SetPoint", "set", &[], json!([1, 2])).await, "set command payload"),
        (h.bus_request("thermo-1", "Climate", "delete", &[], Json::Null).await, "only 'get' or 'set'"),
    ];
    for (answer, message) in cases {
        assert_eq!(answer.error_code, 1, "{message}");
        assert!(text(&answer).contains(message), "{} should contain {message}", text(&answer));
        assert!(!answer.request_id.is_empty());
    }
    assert!(h.driver.writes.lock().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_requests_are_answered_or_skipped_and_the_service_goes_on() {
    let h = start(devices(), |_| {}).await;
    let request = topic::command_request(SERVICE, "thermo-1", "Climate", "get");
    // Not JSON at all, no request id, a topic too short: skipped.
    h.bus.publish(&request, Bytes::from_static(b"\xff\xfe garbage")).await.unwrap();
    h.bus.publish(&request, Bytes::from_static(b"{\"payload\": null}")).await.unwrap();
    h.bus.publish("edgex/device/command/request/device-test", Bytes::from_static(b"{}")).await.unwrap();
    // A request id but no valid envelope: answered with an error.
    let mut answers = h.subscribe(&topic::response(SERVICE, "r-1")).await;
    h.bus.publish(&request, Bytes::from_static(b"{\"requestID\": \"r-1\", \"correlationID\": \"c-1\"}")).await.unwrap();
    let d = tokio::time::timeout(Duration::from_secs(5), answers.next()).await.expect("an answer").unwrap();
    let answer = MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap();
    assert_eq!((answer.error_code, answer.correlation_id.as_str()), (1, "c-1"));
    assert!(String::from_utf8(answer.payload_bytes().unwrap()).unwrap().contains("not a message envelope"));
    // Still serving.
    let answer = h.bus_request("thermo-1", "Climate", "get", &[], Json::Null).await;
    assert_eq!(answer.error_code, 0);
}

#[tokio::test]
async fn requests_run_concurrently_so_a_slow_device_holds_up_no_other() {
    let h = start(devices(), |cfg| cfg.device.command_timeout = "5s".into()).await;
    h.driver.slow(Duration::from_millis(800));
    let mut answers = h.subscribe(&format!("edgex/response/{SERVICE}/#")).await;
    let started = std::time::Instant::now();
    for i in 0..8 {
        let env = MessageEnvelope::json(&Json::Null, None).unwrap().with_request_id(format!("slow-{i}"));
        let request = topic::command_request(SERVICE, "thermo-1", "Temperature", "get");
        oxedge_bus::publish_envelope(h.bus.as_ref(), &request, &env).await.unwrap();
    }
    for _ in 0..8 {
        let d = tokio::time::timeout(Duration::from_secs(5), answers.next()).await.expect("an answer").unwrap();
        assert_eq!(MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap().error_code, 0);
    }
    assert!(started.elapsed() < Duration::from_millis(2500), "8 reads of 800 ms took {:?}", started.elapsed());
    assert!(h.driver.max_in_flight.load(std::sync::atomic::Ordering::SeqCst) > 1);
}

#[tokio::test]
async fn values_pushed_by_the_driver_are_published_as_events() {
    let h = start(devices(), |_| {}).await;
    let mut events = h.subscribe("edgex/events/device/#").await;
    let mut reading = CommandValue::new("Temperature", Value::Float64(19.25));
    reading.origin = 1_700_000_000_000_000_000;
    reading.tags.insert("via".into(), json!("interrupt"));
    let sdk = h.driver.sdk();
    sdk.push("thermo-1", "Temperature", vec![reading]).await.unwrap();
    let got = events_within(&mut events, Duration::from_secs(1)).await;
    assert_eq!(got.len(), 1);
    let event = &got[0]["event"];
    assert_eq!((event["deviceName"].as_str(), event["sourceName"].as_str()), (Some("thermo-1"), Some("Temperature")));
    assert_eq!(event["readings"][0]["origin"], 1_700_000_000_000_000_000i64, "the driver's origin is kept");
    assert_eq!(event["readings"][0]["tags"]["via"], "interrupt");

    let err = sdk.push("nobody", "Temperature", vec![CommandValue::new("Temperature", Value::Float64(1.0))]).await;
    assert_eq!(err.unwrap_err().status_code(), 404);
    let err = sdk.push("thermo-1", "Nope", vec![CommandValue::new("Nope", Value::Float64(1.0))]).await.unwrap_err();
    assert!(err.message.contains("Nope"), "{}", err.message);
    let err = sdk.push("thermo-1", "Temperature", vec![CommandValue::new("Temperature", Value::Bool(true))]).await;
    assert!(err.unwrap_err().message.contains("Temperature"));
    assert!(sdk.push("thermo-1", "Temperature", vec![]).await.is_err());
    assert!(events_within(&mut events, Duration::from_millis(200)).await.is_empty());
}
