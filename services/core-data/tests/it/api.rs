//! core-data's REST API over real HTTP: the JSON EdgeX clients send and expect.

use oxedge_bus::SubscribeOptions;
use serde_json::{json, Value};

use crate::common::{self, add_request, event, now, post_path, start, start_with, Server};

#[tokio::test]
async fn an_event_posted_is_stored_and_read_back_as_sent() {
    let s = start().await;
    let mut ev = event("dev-1", now(), 2);
    ev["tags"] = json!({"Gateway": "HoustonStore-000123", "Latitude": {"degrees": 25.0}});
    ev["readings"][1] = json!({"origin": ev["origin"], "deviceName": "dev-1", "resourceName": "img",
        "profileName": "p-dev-1", "valueType": "Binary", "binaryValue": "AAEC", "mediaType": "image/png"});
    let a = s.post(&post_path(&ev), &add_request(&ev)).await;
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.body["id"], ev["id"]);

    let got = s.get(&format!("/event/id/{}", ev["id"].as_str().unwrap())).await;
    assert_eq!(got.status, 200);
    let back = &got.body["event"];
    assert_eq!(back["tags"], ev["tags"]);
    assert_eq!(back["readings"][1]["binaryValue"], "AAEC");
    assert_eq!(back["readings"][1]["mediaType"], "image/png");
    assert_eq!(back["readings"][0]["value"], "0");
    assert_eq!(back["origin"], ev["origin"]);
}

#[tokio::test]
async fn a_duplicate_event_id_is_a_409_and_is_not_stored_twice() {
    let s = start().await;
    let ev = event("dev-1", now(), 1);
    s.add(&ev).await;
    let again = s.post(&post_path(&ev), &add_request(&ev)).await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(s.event_count().await, 1);
}

#[tokio::test]
async fn bad_events_are_400s_that_name_the_field() {
    let s = start().await;
    let ev = event("dev-1", now(), 1);
    let mismatch = s.post("/event/svc/p-dev-1/other-device/s", &add_request(&ev)).await;
    assert_eq!(mismatch.status, 400);
    assert!(mismatch.message().contains("event.deviceName"), "{}", mismatch.message());

    let mut wrong_type = ev.clone();
    wrong_type["readings"][0]["value"] = json!("not a number");
    let a = s.post(&post_path(&ev), &add_request(&wrong_type)).await;
    assert_eq!(a.status, 400);
    assert!(a.message().contains("event.readings[0].value"), "{}", a.message());

    let mut unknown_type = ev.clone();
    unknown_type["readings"][0]["valueType"] = json!("Int128");
    let a = s.post(&post_path(&ev), &add_request(&unknown_type)).await;
    assert_eq!(a.status, 400);
    assert!(a.message().contains("valueType"), "{}", a.message());

    let a = s.post_raw(&post_path(&ev), "application/json", "{\"event\": [").await;
    assert_eq!(a.status, 400);
    let a = s.post(&post_path(&ev), &json!({"apiVersion": "v3", "event": {"id": "x"}})).await;
    assert_eq!(a.status, 400);
    assert_eq!(s.event_count().await, 0, "nothing half-written");
}

#[tokio::test]
async fn events_are_paged_newest_first_with_a_total_count() {
    let s = start().await;
    let t0 = now();
    for i in 0..5 {
        s.add(&event("dev-a", t0 + i, 1)).await;
    }
    s.add(&event("dev-b", t0 + 10, 3)).await;

    let all = s.get("/event/all?offset=1&limit=2").await;
    assert_eq!(all.status, 200);
    assert_eq!(all.body["totalCount"], 6);
    let origins: Vec<i64> =
        all.body["events"].as_array().unwrap().iter().map(|e| e["origin"].as_i64().unwrap()).collect();
    assert_eq!(origins, [t0 + 4, t0 + 3]);

    let by_device = s.get("/event/device/name/dev-a?limit=-1").await;
    assert_eq!(by_device.body["totalCount"], 5);
    assert_eq!(by_device.body["events"].as_array().unwrap().len(), 5);

    let range = s.get(&format!("/event/start/{}/end/{}", t0 + 1, t0 + 3)).await;
    assert_eq!(range.body["totalCount"], 3);

    assert_eq!(s.get("/event/count/device/name/dev-b").await.body["count"], 1);
    assert_eq!(s.get("/event/all?offset=7").await.status, 416);
    assert_eq!(s.get("/event/all?limit=-2").await.status, 400);
    assert_eq!(s.get(&format!("/event/start/{}/end/{}", t0 + 3, t0)).await.status, 400);
    assert_eq!(s.get("/event/start/yesterday/end/1").await.status, 400);
}

#[tokio::test]
async fn readings_are_queried_by_device_resource_and_time() {
    let s = start().await;
    let t0 = now();
    s.add(&event("dev-a", t0, 3)).await;
    s.add(&event("dev-a", t0 + 5, 3)).await;
    s.add(&event("dev-b", t0 + 7, 2)).await;

    assert_eq!(s.get("/reading/count").await.body["count"], 8);
    assert_eq!(s.get("/reading/count/device/name/dev-a").await.body["count"], 6);
    assert_eq!(s.get("/reading/device/name/dev-b").await.body["totalCount"], 2);
    assert_eq!(s.get("/reading/resourceName/r2").await.body["totalCount"], 2);
    assert_eq!(s.get("/reading/device/name/dev-a/resourceName/r0").await.body["totalCount"], 2);
    let timed = s.get(&format!("/reading/start/{}/end/{}", t0 + 1, t0 + 7)).await;
    assert_eq!(timed.body["totalCount"], 5);
    let r = s.get(&format!("/reading/resourceName/r1/start/{t0}/end/{}", t0 + 5)).await;
    assert_eq!(r.body["totalCount"], 2);
    let r = s.get(&format!("/reading/device/name/dev-a/resourceName/r1/start/{}/end/{}", t0 + 1, t0 + 5)).await;
    assert_eq!(r.body["totalCount"], 1);

    let path = format!("/reading/device/name/dev-a/start/{t0}/end/{}", t0 + 10);
    let body = json!({"resourceNames": ["r0", "r2"]});
    let r = s.send(s.client.get(s.url(&path)).json(&body)).await;
    assert_eq!(r.body["totalCount"], 4, "{:?}", r.body);
    assert_eq!(s.get(&path).await.body["totalCount"], 6, "no body: every resource");
}

#[tokio::test]
async fn numeric_renders_numbers_and_aggregates_follow_edgex() {
    let s = start().await;
    let t0 = now();
    s.add(&event("dev-a", t0, 3)).await;
    s.add(&event("dev-a", t0 + 1, 3)).await;

    let r = s.get("/reading/device/name/dev-a/resourceName/r2?numeric=true").await;
    assert_eq!(r.body["readings"][0]["value"], json!(2));
    let plain = s.get("/reading/device/name/dev-a/resourceName/r2").await;
    assert_eq!(plain.body["readings"][0]["value"], json!("2"));
    let ev = s.get("/event/all?numeric=true&limit=1").await;
    assert_eq!(ev.body["events"][0]["readings"][1]["value"], json!(1));

    let sum = s.get("/reading/device/name/dev-a?aggregateFunc=SUM").await;
    assert_eq!(sum.status, 200, "{:?}", sum.body);
    assert_eq!(sum.body["aggregateFunc"], "SUM");
    let rows = sum.body["readings"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[2],
        json!({"deviceName": "dev-a", "resourceName": "r2", "profileName": "p-dev-a", "valueType": "Int64", "value": 4})
    );
    let avg = s.get("/reading/resourceName/r1?aggregateFunc=avg").await;
    assert_eq!(avg.body["readings"][0]["value"], json!(1.0));
    assert_eq!(avg.body["readings"][0]["valueType"], "Float64");
    let bad = s.get("/reading/all?aggregateFunc=MEDIAN").await;
    assert_eq!(bad.status, 400);
    assert!(bad.message().contains("aggregateFunc"));
}

#[tokio::test]
async fn deletes_by_id_device_and_age_remove_events_and_their_readings() {
    let s = start().await;
    let t0 = now();
    let old = event("dev-a", t0 - 3_600_000_000_000, 2);
    let keep = event("dev-a", t0, 2);
    let other = event("dev-b", t0, 2);
    for e in [&old, &keep, &other] {
        s.add(e).await;
    }
    let id = keep["id"].as_str().unwrap();
    assert_eq!(s.delete(&format!("/event/id/{id}")).await.status, 200);
    assert_eq!(s.delete(&format!("/event/id/{id}")).await.status, 404);
    assert_eq!(s.get(&format!("/event/id/{id}")).await.status, 404);

    let a = s.delete("/event/age/60000000000").await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    s.wait_for(async |s: &Server| s.event_count().await == 1).await;
    assert_eq!(s.get("/reading/count").await.body["count"], 2);

    assert_eq!(s.delete("/event/device/name/dev-b").await.status, 202);
    s.wait_for(async |s: &Server| s.event_count().await == 0).await;
    assert_eq!(s.get("/reading/count").await.body["count"], 0);
    assert_eq!(s.delete("/event/age/-5").await.status, 400);
}

#[tokio::test]
async fn events_published_on_the_bus_are_persisted_and_malformed_ones_skipped() {
    let s = start().await;
    let topic = "edgex/events/device/device-test/p/d/s";
    for junk in [
        &b"not json"[..],
        b"{\"payload\": {\"event\": 5}}",
        b"{\"apiVersion\":\"v3\",\"payload\":{\"apiVersion\":\"v3\",\"event\":{\"id\":\"x\"}}}",
    ] {
        s.bus.publish(topic, junk.to_vec().into()).await.unwrap();
    }
    let mut unknown_type = event("dev-bus", now(), 1);
    unknown_type["readings"][0]["valueType"] = json!("Int128");
    s.publish(&unknown_type).await;
    let events: Vec<Value> = (0..50).map(|i| event("dev-bus", now() + i, 10)).collect();
    for e in &events {
        s.publish(e).await;
    }
    s.wait_for(async |s: &Server| s.event_count().await == 50).await;
    assert_eq!(s.get("/reading/count").await.body["count"], 500);
    for e in &events {
        s.publish(e).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(s.event_count().await, 50, "redelivered events are stored once");
    let metrics = s.client.get(s.url("").replace("/api/v3", "/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("core_data_messages_rejected_total"), "{metrics}");
}

#[tokio::test]
async fn with_persist_data_off_events_are_forwarded_not_stored() {
    let mut cfg = common::config();
    cfg.ingest.persist_data = false;
    let s = start_with(cfg).await;
    let mut forwarded = s.bus.subscribe(&["edgex/events/core/#".into()], SubscribeOptions::default()).await.unwrap();
    let ev = event("dev-1", now(), 1);
    s.add(&ev).await;
    let d = forwarded.next().await.unwrap();
    assert_eq!(d.topic, "edgex/events/core/device-test/p-dev-1/dev-1/s");
    let env = oxedge_bus::MessageEnvelope::from_bytes(&d.payload, &d.topic).unwrap();
    let req: Value = env.payload_as().unwrap();
    assert_eq!(req["event"]["id"], ev["id"]);
    assert_eq!(s.event_count().await, 0);
}

#[tokio::test]
async fn retention_keeps_the_newest_events_within_count_and_age() {
    let mut cfg = common::config();
    cfg.retention.max_events = 10;
    cfg.retention.max_age = "1h".into();
    cfg.retention.interval = "50ms".into();
    cfg.retention.batch = 3;
    let s = start_with(cfg).await;
    let t0 = now();
    s.add(&event("dev-a", t0 - 2 * 3_600_000_000_000, 1)).await;
    for i in 0..25 {
        s.add(&event("dev-a", t0 + i, 1)).await;
    }
    s.wait_for(async |s: &Server| s.event_count().await == 10).await;
    let newest = s.get("/event/all?limit=-1").await;
    let origins: Vec<i64> =
        newest.body["events"].as_array().unwrap().iter().map(|e| e["origin"].as_i64().unwrap()).collect();
    assert_eq!(origins, (15..25).rev().map(|i| t0 + i).collect::<Vec<_>>());
}

#[tokio::test]
async fn events_of_a_device_deleted_in_core_metadata_are_deleted_when_so_configured() {
    let mut cfg = common::config();
    cfg.ingest.on_device_delete = oxedge_core_data::config::OnDeviceDelete::Delete;
    let s = start_with(cfg).await;
    s.add(&event("gone", now(), 2)).await;
    s.add(&event("stays", now(), 2)).await;
    let ev = oxedge_contracts::SystemEvent::new(
        "core-metadata",
        "device",
        "delete",
        "device-test",
        json!({"name": "gone"}),
        now(),
    );
    let env = oxedge_bus::MessageEnvelope::json(&ev, None).unwrap();
    // The subscription starts with the service; give it a moment on a fresh bus.
    s.wait_for(async |s: &Server| {
        s.bus.publish(&ev.topic("p-gone"), env.to_bytes().unwrap()).await.unwrap();
        s.get("/event/count/device/name/gone").await.body["count"] == 0
    })
    .await;
    assert_eq!(s.get("/event/count/device/name/stays").await.body["count"], 1);
}
