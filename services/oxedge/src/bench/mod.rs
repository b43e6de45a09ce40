//! `oxedge bench`: throughput and latency of the services, and what they share.

mod autoevents;
mod command;
mod ingest;
mod metadata;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Subcommand;
use hdrhistogram::Histogram;

/// What to measure.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// core-metadata: device create and device get-by-name over HTTP.
    Metadata(metadata::MetadataBench),
    /// core-data: events published on the bus until persisted, per bus and store.
    Ingest(ingest::IngestBench),
    /// core-command: command round trips to device-virtual at fixed rates, over REST and the bus.
    Command(command::CommandBench),
    /// device-virtual as its own process: CPU and RSS with N devices reporting every second.
    Autoevents(autoevents::AutoEventsBench),
}

/// Runs a benchmark and prints its figures.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    oxedge_runtime::init_tracing(&oxedge_runtime::config::LogSection { level: "warn".into(), json: false });
    match cmd {
        BenchCommand::Metadata(b) => metadata::run(b).await,
        BenchCommand::Ingest(b) => ingest::run(b).await,
        BenchCommand::Command(b) => command::run(b).await,
        BenchCommand::Autoevents(b) => autoevents::run(b).await,
    }
}

/// The process's peak resident set size, from `/proc/self/status` (Linux).
pub(crate) fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) struct Stats {
    pub rate: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Runs `count` requests made by `make` on `concurrency` tasks; returns rate and latency.
pub(crate) async fn load<F, Fut>(count: usize, concurrency: usize, make: F) -> anyhow::Result<Stats>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    let worker = || async {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                return anyhow::Ok(h);
            }
            let t = Instant::now();
            make(i).await?;
            h.record(t.elapsed().as_micros().max(1) as u64)?;
        }
    };
    let results = futures_util::future::join_all((0..concurrency.max(1)).map(|_| worker())).await;
    let elapsed = start.elapsed().max(Duration::from_micros(1));
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for h in results {
        all.add(h?)?;
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(Stats {
        rate: count as f64 / elapsed.as_secs_f64(),
        p50: ms(all.value_at_quantile(0.5)),
        p99: ms(all.value_at_quantile(0.99)),
        max: ms(all.max()),
    })
}
