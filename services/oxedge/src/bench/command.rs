//! `oxedge bench command`: the command round trip a user makes — HTTP client → core-command
//! → device-virtual (over REST or the bus) → its driver → back — on the all-in-one gateway
//! started in this process. Requests go out at a fixed rate (open loop), so a slow answer
//! does not slow the load down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use oxedge_core_command::Transport;
use tokio_util::sync::CancellationToken;

use super::peak_rss_kib;
use crate::run::GatewayConfig;

/// How core-command reaches the device service.
#[derive(Clone, Copy, ValueEnum)]
enum Via {
    Rest,
    Bus,
}

/// Options of `oxedge bench command`.
#[derive(Args)]
pub struct CommandBench {
    /// Transports to measure, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "rest,bus")]
    via: Vec<Via>,
    /// Request rates per second, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    rates: Vec<u64>,
    /// Seconds of load per rate.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// The virtual device to read.
    #[arg(long, default_value = "Random-Integer-Device")]
    device: String,
    /// The command to GET.
    #[arg(long, default_value = "Int16")]
    command: String,
}

/// Runs the benchmark and prints its figures.
pub async fn run(b: CommandBench) -> anyhow::Result<()> {
    println!(
        "GET core-command → device-virtual → back, open loop, {} s per rate, {} cores",
        b.secs,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "{:<6} {:>7} {:>8} {:>9} {:>9} {:>9} {:>7}",
        "via", "req/s", "sent", "p50 ms", "p99 ms", "max ms", "errors"
    );
    for &via in &b.via {
        let dir = tempfile::tempdir()?;
        let (cfg, command_url) = gateway(via)?;
        let shutdown = CancellationToken::new();
        let gateway = tokio::spawn(crate::run::serve(cfg, dir.path().to_owned(), shutdown.clone()));
        let http = reqwest::Client::new();
        let url = Arc::new(format!("{command_url}/api/v3/device/name/{}/{}", b.device, b.command));
        let ready = wait_ready(&http, &url).await;
        if let Err(e) = ready {
            shutdown.cancel();
            let _ = gateway.await;
            return Err(e);
        }
        for _ in 0..200 {
            http.get(url.as_str()).send().await?.bytes().await?;
        }
        let name = match via {
            Via::Rest => "rest",
            Via::Bus => "bus",
        };
        for &rate in &b.rates {
            let (h, errors) = drive(&http, &url, rate, Duration::from_secs(b.secs)).await?;
            let ms = |us: u64| us as f64 / 1000.0;
            println!(
                "{name:<6} {rate:>7} {:>8} {:>9.2} {:>9.2} {:>9.2} {errors:>7}",
                h.len() + errors as u64,
                ms(h.value_at_quantile(0.5)),
                ms(h.value_at_quantile(0.99)),
                ms(h.max())
            );
        }
        shutdown.cancel();
        gateway.await.context("the gateway task panicked")??;
    }
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS of this process (client and every service): {:.1} MiB", kib as f64 / 1024.0);
    }
    Ok(())
}

/// The all-in-one on free loopback ports, core-command relaying `via`; and core-command's URL.
fn gateway(via: Via) -> anyhow::Result<(GatewayConfig, String)> {
    let mut cfg = GatewayConfig::default();
    cfg.log.level = "warn".to_owned();
    cfg.core_metadata.service.port = free_port()?;
    cfg.core_data.service.port = free_port()?;
    cfg.core_command.service.port = free_port()?;
    cfg.device_virtual.service.port = free_port()?;
    cfg.bus.embedded.listen = format!("127.0.0.1:{}", free_port()?).parse()?;
    cfg.core_command.command.transport = match via {
        Via::Rest => Transport::Rest,
        Via::Bus => Transport::Bus,
    };
    let url = format!("http://127.0.0.1:{}", cfg.core_command.service.port);
    Ok((cfg, url))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until a GET of `url` answers 200: the device service is registered and its
/// devices are known to core-command.
async fn wait_ready(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(answer) = http.get(url).send().await {
            if answer.status() == 200 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer 200 within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GETs `url` at `rate` per second for `duration`; the latencies of the successes (µs) and
/// the number of failures.
async fn drive(
    http: &reqwest::Client,
    url: &Arc<String>,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<(Histogram<u64>, usize)> {
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let end = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    while Instant::now() < end {
        tick.tick().await;
        let (http, url) = (http.clone(), url.clone());
        tasks.spawn(async move {
            let started = Instant::now();
            let answer = http.get(url.as_str()).send().await.ok()?;
            let ok = answer.status() == 200 && answer.bytes().await.is_ok();
            ok.then(|| started.elapsed())
        });
    }
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Some(latency)) => h.record(latency.as_micros().max(1) as u64)?,
            _ => errors += 1,
        }
    }
    Ok((h, errors))
}
