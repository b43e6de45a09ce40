//! The auto event load the SDK is sized for: 1,000 devices × 5 resources, each read every
//! second (5,000 reads and events per second). Measures the process's CPU and RSS over a
//! window; ignored by default, run with
//! `cargo test -p oxedge-device-sdk --release --test it -- commands_autoevent_scale:: --ignored --nocapture`.
//! The figures include the in-process core-metadata (idle once the devices are loaded) and
//! the test's own bus subscriber counting the events.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::commands_common::*;

const DEVICES: usize = 1000;
const RESOURCES: [&str; 5] = ["Temperature", "SetPoint", "Mode", "Power", "Counter"];

/// User plus system CPU time of this process.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which ends with ')'): utime is the 12th, stime the 13th.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / CLOCK_TICKS_PER_SECOND)
}

/// Linux's `_SC_CLK_TCK` (`USER_HZ`), 100 on every architecture Oxedge runs on.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// Resident set size of this process, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 40 s measurement of 1,000 devices; run by scripts/test.sh --soak, which CI uses"]
async fn thousand_devices_five_resources_at_one_second() {
    oxedge_runtime::tune_allocator();
    let per_device: usize = std::env::var("AUTO_EVENTS_PER_DEVICE").map_or(RESOURCES.len(), |v| v.parse().unwrap());
    let auto_events: Vec<_> =
        RESOURCES[..per_device].iter().map(|r| json!({"interval": "1s", "sourceName": r})).collect();
    let devices = (0..DEVICES)
        .map(|i| {
            let mut d = device(&format!("virtual-{i:04}"));
            d["autoEvents"] = json!(auto_events);
            d
        })
        .collect();
    let loading = Instant::now();
    let h = start(devices, |_| {}).await;
    h.driver.quiet.store(true, Ordering::Relaxed);
    println!("{DEVICES} devices loaded and cached in {:.1?}, RSS {:.1} MiB", loading.elapsed(), rss_mib());

    let events = Arc::new(AtomicU64::new(0));
    let mut sub = h.subscribe("edgex/events/device/#").await;
    let counter = events.clone();
    tokio::spawn(async move {
        while sub.next().await.is_some() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    // Warm up: every auto event started and the allocator settled.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let window = Duration::from_secs(30);
    let (cpu0, events0, t0) = (cpu_time(), events.load(Ordering::Relaxed), Instant::now());
    let mut peak_rss = rss_mib();
    while t0.elapsed() < window {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_rss = peak_rss.max(rss_mib());
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (cpu_time() - cpu0).as_secs_f64() / elapsed * 100.0;
    let rate = (events.load(Ordering::Relaxed) - events0) as f64 / elapsed;
    let expected = (DEVICES * per_device) as f64;
    println!(
        "auto events: {rate:.0} events/s (expected {expected:.0}), CPU {cpu:.1}% of one core, RSS {:.1} MiB (peak {peak_rss:.1} MiB)",
        rss_mib()
    );
    assert!(rate >= expected * 0.95, "{rate:.0} events/s of {expected:.0}");
}
