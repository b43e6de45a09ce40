//! Event store throughput and latency, for both backends.
//!
//! `cargo bench -p oxedge-core-data --bench store [-- --events=N --batch=N --readings=N]`
//! (or `OXEDGE_BENCH_EVENTS`, `OXEDGE_BENCH_BATCH`, `OXEDGE_BENCH_READINGS`). Defaults:
//! 20,000 events of 10 readings in batches of 500 events, from 100 devices.
//!
//! For each backend it prints: `add_events` throughput in readings/s, storage per reading,
//! the latency of a page of 20 readings by device, and the throughput of deletes by age and
//! of trimming. SQLite runs in a temporary file; Redis runs against `OXEDGE_TEST_REDIS_URL`
//! under a fresh key prefix (removed afterwards), and is skipped with a message when that is
//! not set.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxedge_contracts::{Event, Reading, ValueType};
use oxedge_core_data::store::redis::RedisStore;
use oxedge_core_data::store::sqlite::SqliteStore;
use oxedge_core_data::store::{EventFilter, EventStore, Page, ReadingFilter};

const DEVICES: usize = 100;
const ORIGIN0: i64 = 1_700_000_000_000_000_000;

/// What to run, from `--name=value` arguments or `OXEDGE_BENCH_NAME`.
struct Params {
    events: usize,
    batch: usize,
    readings: usize,
}

fn param(name: &str, default: usize) -> usize {
    let flag = format!("--{name}=");
    let text = std::env::args()
        .find_map(|a| a.strip_prefix(&flag).map(str::to_owned))
        .or_else(|| std::env::var(format!("OXEDGE_BENCH_{}", name.to_uppercase())).ok());
    match text {
        Some(t) => t.parse().unwrap_or_else(|_| panic!("{name} must be a positive number, not '{t}'")),
        None => default,
    }
}

fn events(p: &Params) -> Vec<Event> {
    (0..p.events)
        .map(|i| {
            let device = format!("device-{:03}", i % DEVICES);
            let origin = ORIGIN0 + i as i64 * 1_000_000;
            let readings = (0..p.readings)
                .map(|j| Reading {
                    id: uuid::Uuid::new_v4().to_string(),
                    origin,
                    device_name: device.clone(),
                    resource_name: format!("resource-{j}"),
                    profile_name: "bench-profile".into(),
                    value_type: ValueType::Float64,
                    units: String::new(),
                    tags: Default::default(),
                    value: Some(format!("{}.{}", i % 1000, j)),
                    binary_value: None,
                    media_type: String::new(),
                    object_value: None,
                })
                .collect();
            Event {
                api_version: "v3".into(),
                id: uuid::Uuid::now_v7().to_string(),
                device_name: device,
                profile_name: "bench-profile".into(),
                source_name: "all".into(),
                origin,
                readings,
                tags: Default::default(),
            }
        })
        .collect()
}

fn per_second(n: usize, d: Duration) -> String {
    let rate = n as f64 / d.as_secs_f64();
    format!("{rate:>12.0}/s ({n} in {:.2} s)", d.as_secs_f64())
}

/// Runs the measurements on `store`; `size` answers how many bytes the store uses.
async fn run<F, Fut>(name: &str, store: Arc<dyn EventStore>, p: &Params, size: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let all = events(p);
    let readings = p.events * p.readings;
    println!("\n{name}: {} events × {} readings in batches of {}", p.events, p.readings, p.batch);

    let before = size().await;
    let started = Instant::now();
    for batch in all.chunks(p.batch) {
        let outcome = store.add_events(batch).await.expect("add events");
        assert_eq!(outcome.added, batch.len(), "events added");
    }
    println!("  add_events            {} readings", per_second(readings, started.elapsed()));
    let bytes = size().await.saturating_sub(before);
    println!("  storage               {:>12.0} bytes/reading", bytes as f64 / readings as f64);

    let again = store.add_events(&all[..p.batch.min(all.len())]).await.expect("add duplicates");
    assert_eq!(again.added, 0, "redelivered events are skipped");

    let mut latencies = Vec::new();
    for i in 0..1000 {
        let filter = ReadingFilter { device: Some(format!("device-{:03}", i % DEVICES)), ..Default::default() };
        let started = Instant::now();
        let (page, _) = store.readings(&filter, Page { offset: 0, limit: 20 }).await.expect("readings");
        latencies.push(started.elapsed());
        assert_eq!(page.len(), 20.min(readings / DEVICES));
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    println!("  20 readings by device  p50 {:>8.0} µs   p99 {:>8.0} µs", at(0.5), at(0.99));

    // Delete the older half by age, then trim the rest, 1,000 events per call.
    let half = EventFilter { end: Some(ORIGIN0 + (p.events as i64 / 2) * 1_000_000), ..Default::default() };
    let started = Instant::now();
    let mut deleted = 0;
    loop {
        let n = store.delete_events(&half, 1000).await.expect("delete by age");
        deleted += n;
        if n < 1000 {
            break;
        }
    }
    println!("  delete by age         {} readings", per_second(deleted * p.readings, started.elapsed()));
    let started = Instant::now();
    let mut trimmed = 0;
    loop {
        let n = store.trim_events(0, 1000).await.expect("trim");
        trimmed += n;
        if n < 1000 {
            break;
        }
    }
    println!("  trim                  {} readings", per_second(trimmed * p.readings, started.elapsed()));
    assert_eq!(deleted + trimmed, p.events, "every event deleted");
}

/// The size of the database file once its WAL is checkpointed into it.
fn file_size(path: &Path) -> u64 {
    let conn = rusqlite::Connection::open(path).expect("open the database");
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).expect("checkpoint");
    std::fs::metadata(path).map_or(0, |m| m.len())
}

async fn used_memory(client: &redis::Client) -> u64 {
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect to Redis");
    let info: String = redis::cmd("INFO").arg("memory").query_async(&mut conn).await.expect("INFO memory");
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let p = Params { events: param("events", 20_000), batch: param("batch", 500), readings: param("readings", 10) };
    assert!(p.events > 0 && p.batch > 0 && p.readings > 0, "events, batch and readings must be positive");

    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).expect("open SQLite store");
    run("SQLite", Arc::new(store), &p, || async { file_size(&path) }).await;

    match std::env::var("OXEDGE_TEST_REDIS_URL") {
        Err(_) => println!("\nRedis: skipped, set OXEDGE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to measure it"),
        Ok(url) => {
            let prefix = format!("oxedge:bench:{}", uuid::Uuid::new_v4().simple());
            let store = RedisStore::connect_with_prefix(&url, &prefix).await.expect("connect Redis store");
            let client = redis::Client::open(url.as_str()).expect("Redis URL");
            run("Redis", Arc::new(store), &p, || used_memory(&client)).await;
            let mut conn = client.get_multiplexed_async_connection().await.expect("connect to Redis");
            let left: Vec<String> =
                redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut conn).await.expect("KEYS");
            println!("  keys left             {:?}", left.iter().map(|k| &k[prefix.len()..]).collect::<Vec<_>>());
            let _: () = redis::cmd("DEL").arg(format!("{prefix}:seq")).query_async(&mut conn).await.expect("clean up");
        }
    }
}
