//! Auto events: reads at their interval, onChange (with a threshold), re-synced when devices
//! change in core-metadata, and no pile-up behind a slow device.

use std::sync::atomic::Ordering;
use std::time::Duration;

use oxedge_device_sdk::Value;
use serde_json::{json, Value as Json};

use crate::commands_common::*;

fn with_auto_events(name: &str, auto_events: Json) -> Json {
    let mut d = device(name);
    d["autoEvents"] = auto_events;
    d
}

fn events_of(device: &str) -> String {
    format!("edgex/events/device/{SERVICE}/Thermostat/{device}/#")
}

#[tokio::test]
async fn interval_auto_events_publish_at_their_interval() {
    let h = start(
        vec![
            with_auto_events("auto-1", json!([{"interval": "200ms", "sourceName": "Temperature"}])),
            with_auto_events("auto-cmd", json!([{"interval": "250ms", "sourceName": "Climate"}])),
        ],
        |_| {},
    )
    .await;
    let mut events = h.subscribe(&events_of("auto-1")).await;
    let got = events_within(&mut events, Duration::from_millis(1100)).await;
    assert!((4..=7).contains(&got.len()), "{} events in 1.1 s at 200 ms", got.len());
    let event = &got[0]["event"];
    assert_eq!((event["deviceName"].as_str(), event["sourceName"].as_str()), (Some("auto-1"), Some("Temperature")));
    let origins: Vec<i64> = got.iter().map(|e| e["event"]["origin"].as_i64().unwrap()).collect();
    assert!(origins.windows(2).all(|w| w[1] - w[0] > 100_000_000), "about 200 ms apart: {origins:?}");

    let mut events = h.subscribe(&events_of("auto-cmd")).await;
    let got = events_within(&mut events, Duration::from_millis(600)).await;
    assert!(!got.is_empty());
    assert_eq!(got[0]["event"]["sourceName"], "Climate", "a command as source");
    assert_eq!(got[0]["event"]["readings"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn on_change_publishes_only_changes_beyond_the_threshold() {
    let h = start(
        vec![
            with_auto_events("counter", json!([{"interval": "50ms", "onChange": true, "sourceName": "Counter"}])),
            with_auto_events(
                "temp",
                json!([{"interval": "50ms", "onChange": true, "onChangeThreshold": 1.0, "sourceName": "Temperature"}]),
            ),
        ],
        |_| {},
    )
    .await;
    let mut counter = h.subscribe(&events_of("counter")).await;
    let mut temp = h.subscribe(&events_of("temp")).await;
    // Whatever was published before the subscriptions, a change now is seen.
    h.driver.set("Counter", Value::Uint32(100));
    h.driver.set("Temperature", Value::Float64(30.0));
    let got = events_within(&mut counter, Duration::from_millis(300)).await;
    assert_eq!(got.last().unwrap()["event"]["readings"][0]["value"], "100");
    let reads = h.driver.reads_of("counter");
    assert!(events_within(&mut counter, Duration::from_millis(500)).await.is_empty(), "no change, no event");
    assert!(h.driver.reads_of("counter") >= reads + 5, "read at every interval all the same");
    h.driver.set("Counter", Value::Uint32(8));
    let next = events_within(&mut counter, Duration::from_millis(500)).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0]["event"]["readings"][0]["value"], "8");

    let got = events_within(&mut temp, Duration::from_millis(100)).await;
    assert_eq!(got.last().unwrap()["event"]["readings"][0]["value"], "3e+01");
    h.driver.set("Temperature", Value::Float64(30.5));
    assert!(events_within(&mut temp, Duration::from_millis(300)).await.is_empty(), "0.5 is within the threshold");
    h.driver.set("Temperature", Value::Float64(30.8));
    assert!(events_within(&mut temp, Duration::from_millis(300)).await.is_empty(), "0.8 from the last published");
    h.driver.set("Temperature", Value::Float64(31.2));
    assert_eq!(events_within(&mut temp, Duration::from_millis(300)).await.len(), 1, "1.2 from the last published");
}

#[tokio::test]
async fn auto_events_follow_devices_changed_in_core_metadata() {
    let h = start(
        vec![with_auto_events("auto-1", json!([{"interval": "100ms", "sourceName": "Temperature"}])), device("plain")],
        |_| {},
    )
    .await;
    let mut auto1 = h.subscribe(&events_of("auto-1")).await;
    assert!(!events_within(&mut auto1, Duration::from_millis(400)).await.is_empty());

    // Locked: no more reads.
    h.patch_device("auto-1", json!({"adminState": "LOCKED"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = events_within(&mut auto1, Duration::from_millis(10)).await;
    assert!(events_within(&mut auto1, Duration::from_millis(400)).await.is_empty(), "a locked device is not read");
    h.patch_device("auto-1", json!({"adminState": "UNLOCKED"})).await;
    assert!(!events_within(&mut auto1, Duration::from_millis(600)).await.is_empty(), "unlocked: read again");

    // A new auto event on another device starts; a deleted device stops.
    let mut plain = h.subscribe(&events_of("plain")).await;
    h.patch_device("plain", json!({"autoEvents": [{"interval": "100ms", "sourceName": "Mode"}]})).await;
    let got = events_within(&mut plain, Duration::from_millis(600)).await;
    assert!(!got.is_empty());
    assert_eq!(got[0]["event"]["sourceName"], "Mode");
    assert_eq!(h.metadata.delete("/device/name/auto-1").await.status, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = events_within(&mut auto1, Duration::from_millis(10)).await;
    assert!(events_within(&mut auto1, Duration::from_millis(400)).await.is_empty(), "a removed device is not read");
}

#[tokio::test]
async fn a_slow_read_skips_ticks_instead_of_queueing_them() {
    let h =
        start(vec![with_auto_events("slow", json!([{"interval": "50ms", "sourceName": "Temperature"}]))], |_| {}).await;
    h.driver.slow(Duration::from_millis(400));
    let before = h.driver.reads_of("slow");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let reads = h.driver.reads_of("slow") - before;
    assert!((3..=7).contains(&reads), "{reads} reads of 400 ms in 2 s at a 50 ms interval");
    assert_eq!(h.driver.max_in_flight.load(Ordering::SeqCst), 1, "never two reads of one auto event at once");
    // Back to fast: no burst of queued ticks, just the interval again.
    h.driver.slow(Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = h.driver.reads_of("slow");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reads = h.driver.reads_of("slow") - before;
    assert!((7..=13).contains(&reads), "{reads} reads in 500 ms at 50 ms");
}
