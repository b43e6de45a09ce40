//! An export target slower than the input: an HTTP endpoint taking 20 ms per request while
//! messages come at 400/s. The export's memory stays within its bound (the rest waits in the
//! store), the process does not grow with the backlog, and everything arrives, in order per
//! device, once the endpoint catches up. Alone in its test binary, so that the process's
//! memory is this test's.

mod export_support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use export_support::{app, Endpoint, Request};
use oxedge_app_sdk::export::http::{HttpExport, HttpExportSettings};
use oxedge_app_sdk::secrets::Secrets;
use oxedge_app_sdk::{Context, Data, Function};
use serde_json::json;

const DEVICES: [&str; 4] = ["press-1", "press-2", "oven-1", "oven-2"];
const MEMORY_CAPACITY: usize = 100;
/// Payload of each message: large enough that holding the backlog in memory would show.
const PAYLOAD: usize = 16 * 1024;

/// The resident set of this process, in bytes (`/proc/self/statm`).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_target_keeps_memory_bounded_and_loses_nothing_within_the_store() {
    // The endpoint keeps the device and seq of each body, not the padding: the test's own
    // records must not count as the process's growth.
    let answer = Arc::new(|request: &mut Request| {
        let body = request.json();
        request.body = serde_json::to_vec(&json!({"device": body["device"], "seq": body["seq"]})).unwrap();
        200
    });
    let endpoint = Endpoint::start(answer, Duration::from_millis(20)).await;
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path(), Secrets::default(), |config| {
        config.store_and_forward.memory_capacity = MEMORY_CAPACITY;
        config.store_and_forward.max_items = 5000;
    });
    let export = HttpExport::new(HttpExportSettings::new(endpoint.url("/ingest/{deviceName}")), &app).unwrap();
    let metrics = app.forwarding().await.unwrap().metrics().clone();
    let padding = "x".repeat(PAYLOAD);

    // Warm up (client, store, allocator) before taking the process's size.
    let ctx = Context::new("warm", "slow", Secrets::default());
    ctx.set_value("deviceName", "warm-up");
    export.call(&ctx, Data::Json(json!({"device": "warm-up", "seq": 0, "pad": padding}))).await.unwrap();
    for confirmation in ctx.take_confirmations() {
        confirmation.await.unwrap().unwrap();
    }
    endpoint.wait_delivered(1, Duration::from_secs(10)).await;
    let name = export.forwarder().unwrap().name().to_owned();
    let before = resident_bytes();

    // The export's memory gauge, sampled while the backlog builds and drains.
    let peak = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (metrics, name, peak) = (metrics.clone(), name.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                peak.fetch_max(metrics.queued_in_memory(&name), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    // 400 messages/s for 5 s; the endpoint takes 4 × 50/s (one request in flight per device).
    let per_device = 500u64;
    // The process and the backlog once the export's memory budget has filled (after 1 s).
    let mut at_one_second = (0, 0);
    let start = tokio::time::Instant::now();
    let mut confirmations = Vec::new();
    let mut peak_store = 0;
    for seq in 0..per_device {
        for device in DEVICES {
            let ctx = Context::new(format!("{device}-{seq}"), "slow", Secrets::default());
            ctx.set_value("deviceName", device);
            let data = Data::Json(json!({"device": device, "seq": seq, "pad": padding}));
            assert!(export.call(&ctx, data).await.unwrap().is_none());
            confirmations.extend(ctx.take_confirmations());
        }
        peak_store = peak_store.max(metrics.queued_in_store(&name));
        if seq == 100 {
            at_one_second = (resident_bytes(), metrics.queued_in_store(&name));
        }
        tokio::time::sleep_until(start + Duration::from_millis(10) * (seq as u32 + 1)).await;
    }
    let input_took = start.elapsed();
    let at_end_of_input = (resident_bytes(), metrics.queued_in_store(&name));
    for confirmation in confirmations {
        let result = tokio::time::timeout(Duration::from_secs(30), confirmation).await.unwrap().unwrap();
        assert_eq!(result, Ok(()), "every message delivered or stored");
    }

    let total = per_device as usize * DEVICES.len();
    let delivered = endpoint.wait_delivered(total + 1, Duration::from_secs(60)).await;
    sampler.abort();
    let mut by_device: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for request in &delivered[1..] {
        let body = request.json();
        let (device, seq) = (body["device"].as_str().unwrap().to_owned(), body["seq"].as_u64().unwrap());
        if seen.insert((device.clone(), seq)) {
            by_device.entry(device).or_default().push(seq);
        }
    }
    let expected: BTreeMap<String, Vec<u64>> =
        DEVICES.iter().map(|d| (d.to_string(), (0..per_device).collect())).collect();
    assert_eq!(by_device, expected, "every message, in order per device");
    assert_eq!(metrics.dropped_by_policy(&name), 0);
    assert_eq!(metrics.dropped_by_age(&name), 0);

    let peak = peak.load(Ordering::Relaxed) as usize;
    let grown_after_one_second = at_end_of_input.0.saturating_sub(at_one_second.0);
    let backlog_growth = (at_end_of_input.1 - at_one_second.1).max(0) as u64 * PAYLOAD as u64;
    println!(
        "input {total} messages of {} KB in {input_took:?}; peak in memory {peak} (capacity {MEMORY_CAPACITY}), \
         peak in store {peak_store}; process: +{:.1} MB in the first second (budget filling), then +{:.1} MB \
         while the backlog grew by {:.1} MB",
        PAYLOAD / 1024,
        at_one_second.0.saturating_sub(before) as f64 / 1e6,
        grown_after_one_second as f64 / 1e6,
        backlog_growth as f64 / 1e6,
    );
    assert!(peak_store > 500, "the target was slower than the input: a backlog built up ({peak_store})");
    assert!(peak <= MEMORY_CAPACITY, "the export held {peak} messages in memory, more than its {MEMORY_CAPACITY}");
    // Held in memory, the backlog would show as the process's growth.
    assert!(
        grown_after_one_second < backlog_growth / 4,
        "the process grew {grown_after_one_second} bytes while the backlog grew {backlog_growth} bytes"
    );
}
