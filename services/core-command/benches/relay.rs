//! Command round trip through core-command: an HTTP client → core-command → device service
//! (an in-process HTTP peer, or a bus responder) → back, with core-metadata beside it, all on
//! loopback in one process. Requests are sent at a fixed rate (open loop), so a slow answer
//! does not slow the load down; p50, p99 and the slowest answer are printed per rate and
//! transport. With a message bus core-command reuses what it read from core-metadata until
//! core-metadata announces a change; `rest (no cache)` reads it for every command.
//!
//! `cargo bench -p oxedge-core-command --bench relay` (`OXEDGE_BENCH_SECS`, default 5, per run).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use oxedge_core_command::Transport;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let secs: u64 = std::env::var("OXEDGE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    println!(
        "{:<16} {:>7} {:>8} {:>9} {:>9} {:>9} {:>7}",
        "via", "req/s", "sent", "p50 ms", "p99 ms", "max ms", "errors"
    );
    let runs = [(Transport::Rest, "30s"), (Transport::Rest, "0"), (Transport::Bus, "30s")];
    for (transport, cache_ttl) in runs {
        let stack =
            common::start_with(transport, |cfg| cfg.command.cache_ttl = cache_ttl.parse().expect("a duration")).await;
        let via = format!("{transport:?}{}", if cache_ttl == "0" { " (no cache)" } else { "" }).to_lowercase();
        // Warm up: connections, the metadata cache, the device service's responses.
        for _ in 0..200 {
            stack.api.get("/device/name/Thermo-1/Temperature").await;
        }
        for rate in [100u64, 1000] {
            let (mut latencies, errors) = drive(&stack.api, rate, Duration::from_secs(secs)).await;
            latencies.sort();
            let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!(
                "{:<16} {:>7} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>7}",
                via,
                rate,
                latencies.len() + errors,
                ms(pct(0.50)),
                ms(pct(0.99)),
                ms(*latencies.last().unwrap()),
                errors
            );
        }
    }
}

/// Sends `GET /device/name/Thermo-1/Temperature` at `rate` per second for `duration`; the
/// latency of each success and the number of failures.
async fn drive(api: &common::Api, rate: u64, duration: Duration) -> (Vec<Duration>, usize) {
    let url = Arc::new(api.url("/device/name/Thermo-1/Temperature"));
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + duration;
    let mut tasks = Vec::new();
    while Instant::now() < end {
        tick.tick().await;
        let (client, url) = (api.client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let ok = match client.get(url.as_str()).send().await {
                Ok(res) => res.status() == 200 && res.bytes().await.is_ok(),
                Err(_) => false,
            };
            ok.then(|| started.elapsed())
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for t in tasks {
        match t.await {
            Ok(Some(latency)) => latencies.push(latency),
            _ => errors += 1,
        }
    }
    (latencies, errors)
}
