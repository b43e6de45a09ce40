//! `oxedge bench autoevents`: the cost of auto events in a device service. device-virtual
//! runs as its own process (the binary beside `oxedge`) with its load generator's devices —
//! N devices, five resources each, read every second — against core-metadata, core-data and
//! the embedded broker of an all-in-one started in this process. Prints the device service's
//! CPU (share of one core) and RSS, and the events per second core-data stored.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::run::GatewayConfig;

/// Options of `oxedge bench autoevents`.
#[derive(Args)]
pub struct AutoEventsBench {
    /// Virtual devices, five resources each, read every second.
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Seconds measured once every device is reporting.
    #[arg(long, default_value_t = 30)]
    secs: u64,
    /// The device-virtual binary (default: beside this one).
    #[arg(long)]
    device_virtual: Option<PathBuf>,
}

/// The device service under test; stopped with SIGTERM (then killed) when dropped.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the benchmark and prints its figures.
pub async fn run(b: AutoEventsBench) -> anyhow::Result<()> {
    let binary = match b.device_virtual.clone() {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("device-virtual"),
    };
    if !binary.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p oxedge-device-virtual) or pass --device-virtual",
            binary.display()
        );
    }
    let dir = tempfile::tempdir()?;
    let mut cfg = GatewayConfig::default();
    cfg.log.level = "warn".to_owned();
    cfg.services.device_virtual = false;
    cfg.services.core_command = false;
    cfg.core_metadata.service.port = free_port()?;
    cfg.core_data.service.port = free_port()?;
    cfg.bus.embedded.listen = format!("127.0.0.1:{}", free_port()?).parse()?;
    let metadata = format!("http://127.0.0.1:{}", cfg.core_metadata.service.port);
    let data = format!("http://127.0.0.1:{}", cfg.core_data.service.port);
    let broker = format!("mqtt://{}", cfg.bus.embedded.listen);
    let shutdown = CancellationToken::new();
    let gateway = tokio::spawn(crate::run::serve(cfg, dir.path().join("gateway"), shutdown.clone()));

    let files = dir.path().join("device-virtual");
    oxedge_device_virtual::files::install(&files)?;
    let config = files.join("configuration.yaml");
    std::fs::write(
        &config,
        format!(
            "device:\n  profiles_dir: {p}/profiles\n  devices_dir: ''\n  provision_watchers_dir: {p}/provisionwatchers\ndriver:\n  load_devices: {n}\n",
            p = files.display(),
            n = b.devices
        ),
    )?;
    let service = Service(
        Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .env("OXEDGE_SERVICE_PORT", free_port()?.to_string())
            .env("OXEDGE_CLIENTS_CORE_METADATA_URL", &metadata)
            .env("OXEDGE_BUS_URL", &broker)
            .env("OXEDGE_LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("Failed to start {}", binary.display()))?,
    );
    let result = measure(&b, service.0.id(), &metadata, &data).await;
    drop(service);
    shutdown.cancel();
    gateway.await.context("the gateway task panicked")??;
    result
}

async fn measure(b: &AutoEventsBench, pid: u32, metadata: &str, data: &str) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await?.json::<Value>().await.map_err(anyhow::Error::from) }
    };
    let count_url = format!("{metadata}/api/v3/device/service/name/device-virtual?limit=1");
    let started = Instant::now();
    loop {
        let total = get(count_url.clone()).await.ok().and_then(|v| v["totalCount"].as_u64()).unwrap_or(0);
        if total as usize >= b.devices {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("only {total} of {} devices registered within 120 s", b.devices);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("{} devices registered in {:.1} s; settling for 5 s", b.devices, started.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(5)).await;

    let events_url = format!("{data}/api/v3/event/count");
    let events = |v: Value| v["count"].as_u64().unwrap_or(0);
    let (cpu0, events0, t0) = (cpu_ticks(pid)?, events(get(events_url.clone()).await?), Instant::now());
    let mut peak_rss = 0;
    while t0.elapsed() < Duration::from_secs(b.secs) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_rss = peak_rss.max(rss_kib(pid)?);
    }
    let (cpu1, events1, elapsed) = (cpu_ticks(pid)?, events(get(events_url).await?), t0.elapsed().as_secs_f64());
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (cpu1 - cpu0) as f64 / ticks_per_sec / elapsed * 100.0;
    let rate = (events1 - events0) as f64 / elapsed;
    println!("device-virtual, {} devices × 5 resources at 1 s, over {elapsed:.0} s:", b.devices);
    println!("  events stored by core-data: {rate:.0}/s ({:.0} readings/s)", rate * 5.0);
    println!("  CPU: {cpu:.1}% of one core");
    println!("  RSS: {:.1} MiB now, {:.1} MiB at most", rss_kib(pid)? as f64 / 1024.0, peak_rss as f64 / 1024.0);
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// User plus system CPU time of `pid`, in clock ticks (`/proc/{pid}/stat`).
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("the device service exited")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).context("unreadable /proc stat");
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the name and state.
    Ok(field(11)? + field(12)?)
}

/// Resident set size of `pid` in KiB (`/proc/{pid}/status`).
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("the device service exited")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS in /proc status")
}
