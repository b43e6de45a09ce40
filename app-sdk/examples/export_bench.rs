//! Export benchmark: events published on the message bus (MQTT) go through
//! FilterByDeviceName → Transform (JSON) → MQTTExport (QoS 1, store-and-forward on SQLite) to a
//! second, "cloud" broker, where a subscriber takes them. Measures events/s flat out and the
//! latency from bus publish to cloud receipt (p50/p99) at a paced rate, with one pipeline and
//! with three (each taking a third of the devices), and the process's memory.
//!
//! ```text
//! cargo run --release -p oxedge-app-sdk --example export_bench -- \
//!     [--pipelines 1,3] [--events 30000] [--rate 1000] [--seconds 10] \
//!     [--edge-url mqtt://127.0.0.1:1883] [--cloud-url mqtt://127.0.0.1:1884]
//! ```
//!
//! Without URLs it starts two Mosquitto processes of its own (`mosquitto` on the PATH).

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use futures_util::StreamExt;
use oxedge_app_sdk::export::mqtt::{MqttExport, MqttExportSettings};
use oxedge_app_sdk::functions::{Filter, FilterBy, FilterSettings, Transform};
use oxedge_app_sdk::{AppContext, AppServiceConfig, Function, Pipeline};
use oxedge_bus::{Bus, BusConfig, BusType, MessageEnvelope, SubscribeOptions};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Devices per pipeline's share; pipeline `k` keeps the devices named `line{k}-…`.
const DEVICES_PER_LINE: usize = 10;
const LINES: usize = 3;
const READINGS: usize = 10;
/// Distinct events made for the flat-out run.
const PREBUILT: usize = 1200;

struct Args {
    pipelines: Vec<usize>,
    events: usize,
    rate: u64,
    seconds: u64,
    edge_url: Option<String>,
    cloud_url: Option<String>,
}

fn args() -> anyhow::Result<Args> {
    let mut args =
        Args { pipelines: vec![1, 3], events: 30_000, rate: 1000, seconds: 10, edge_url: None, cloud_url: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--pipelines" => {
                args.pipelines = value()?
                    .split(',')
                    .map(|n| n.trim().parse().context("--pipelines: a list such as 1,3"))
                    .collect::<anyhow::Result<_>>()?;
                if args.pipelines.iter().any(|n| !(1..=LINES).contains(n)) {
                    bail!("--pipelines: each between 1 and {LINES}");
                }
            }
            "--events" => args.events = value()?.parse().context("--events")?,
            "--rate" => args.rate = value()?.parse().context("--rate")?,
            "--seconds" => args.seconds = value()?.parse().context("--seconds")?,
            "--edge-url" => args.edge_url = Some(value()?),
            "--cloud-url" => args.cloud_url = Some(value()?),
            other => bail!("unknown argument {other}"),
        }
    }
    if args.rate == 0 {
        bail!("--rate must be at least 1");
    }
    Ok(args)
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// `VmRSS` and `VmHWM` of this process, in MB.
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn bus(url: &str, client_id: &str) -> anyhow::Result<Arc<dyn Bus>> {
    let cfg =
        BusConfig { kind: BusType::Mqtt, url: url.to_owned(), client_id: client_id.to_owned(), ..Default::default() };
    Ok(oxedge_bus::connect(&cfg, client_id).await?)
}

/// An event of `device` with [`READINGS`] readings, its origin the time of the call.
fn envelope(device: &str, seq: usize) -> MessageEnvelope {
    let origin = now_ns();
    let readings: Vec<_> = (0..READINGS)
        .map(|r| {
            json!({"id": uuid::Uuid::new_v4().to_string(), "origin": origin, "deviceName": device,
                   "resourceName": format!("r{r}"), "profileName": "bench", "valueType": "Float64",
                   "value": format!("{}.{}", seq % 1000, r)})
        })
        .collect();
    let event = json!({"apiVersion": "v3", "id": uuid::Uuid::new_v4().to_string(), "deviceName": device,
                       "profileName": "bench", "sourceName": "all", "origin": origin, "readings": readings});
    MessageEnvelope::json(&json!({"apiVersion": "v3", "event": event}), None).expect("an event serializes")
}

fn device(i: usize) -> String {
    format!("line{}-dev{}", i % LINES, (i / LINES) % DEVICES_PER_LINE)
}

/// What the cloud subscriber saw.
#[derive(Default)]
struct Cloud {
    received: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

async fn watch_cloud(url: &str, tag: &str) -> anyhow::Result<Arc<Cloud>> {
    let bus = bus(url, &format!("bench-cloud-{tag}")).await?;
    let options = SubscribeOptions::default();
    let mut subscription = bus.subscribe(&[format!("bench/{tag}/#")], options).await?;
    let cloud = Arc::new(Cloud::default());
    let seen = cloud.clone();
    tokio::spawn(async move {
        let _bus = bus;
        while let Some(delivery) = subscription.next().await {
            let origin = serde_json::from_slice::<serde_json::Value>(&delivery.payload)
                .ok()
                .and_then(|event| event["origin"].as_i64());
            if let Some(origin) = origin {
                seen.latencies_us.lock().unwrap().push(((now_ns() - origin).max(0) / 1000) as u64);
            }
            seen.received.fetch_add(1, Ordering::Relaxed);
            let _ = delivery.ack().await;
        }
    });
    Ok(cloud)
}

/// Waits until the cloud has received `n` in all, for at most `within`.
async fn wait_received(cloud: &Cloud, n: u64, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while cloud.received.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            bail!("the cloud received {} of {n} within {within:?}", cloud.received.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// The service with `pipelines` pipelines; returns its stop token, task and HTTP port.
fn start_service(
    pipelines: usize,
    tag: &str,
    edge: Arc<dyn Bus>,
    cloud_url: &str,
    data_dir: &std::path::Path,
) -> anyhow::Result<(CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>, u16)> {
    let mut cfg = AppServiceConfig { data_dir: data_dir.to_owned(), ..Default::default() };
    cfg.store_and_forward.enabled = true;
    cfg.trigger.durable_name = format!("bench-durable-{tag}");
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let stop = CancellationToken::new();
    let topic = format!("edgex/events/device/bench-{tag}/#");
    let (tag, cloud_url) = (tag.to_owned(), cloud_url.to_owned());
    let build = move |app: &AppContext| {
        (0..pipelines)
            .map(|k| {
                // One pipeline keeps every line; three keep one line each.
                let names = if pipelines == 1 { vec!["^line".to_owned()] } else { vec![format!("^line{k}-")] };
                let filter = Filter::new(FilterBy::DeviceName, FilterSettings { names, filter_out: false })?;
                let mut settings = MqttExportSettings::new(cloud_url.clone(), format!("bench/{tag}/{{deviceName}}"));
                settings.client_id = format!("bench-export-{tag}-{k}");
                let export = MqttExport::new(settings, app)?;
                let functions: Vec<Arc<dyn Function>> = vec![
                    Arc::new(filter),
                    Arc::new(Transform::new(oxedge_app_sdk::functions::transform::TransformType::Json)),
                    Arc::new(export),
                ];
                Ok(Pipeline::new(format!("p{k}"), vec![topic.clone()], functions))
            })
            .collect()
    };
    let task = tokio::spawn(oxedge_app_sdk::run(
        oxedge_app_sdk::ServiceContext::standalone("export-bench", edge, stop.clone()),
        cfg,
        build,
        listener,
    ));
    Ok((stop, task, port))
}

async fn run(pipelines: usize, args: &Args, edge_url: &str, cloud_url: &str) -> anyhow::Result<()> {
    let tag = format!("{pipelines}p-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let dir = tempfile::tempdir()?;
    let cloud = watch_cloud(cloud_url, &tag).await?;
    let service_bus = bus(edge_url, &format!("bench-app-{tag}")).await?;
    let (stop, task, port) = start_service(pipelines, &tag, service_bus, cloud_url, dir.path())?;
    let publisher = bus(edge_url, &format!("bench-pub-{tag}")).await?;
    let service = format!("bench-{tag}");
    let publish = |i: usize| {
        let (publisher, service) = (publisher.clone(), service.clone());
        async move {
            let device = device(i);
            let topic = oxedge_bus::topic::event(&service, "bench", &device, "all");
            oxedge_bus::publish_envelope(&*publisher, &topic, &envelope(&device, i)).await
        }
    };

    // Warm-up until the whole chain answers (subscriptions made, exports connected); what was
    // published before that is lost (the trigger's durable session is new), so counting
    // starts from what the cloud has then.
    let mut tries = 0;
    while cloud.received.load(Ordering::Relaxed) == 0 {
        publish(tries).await?;
        tries += 1;
        if task.is_finished() {
            task.await??;
            bail!("the service stopped");
        }
        if tries > 100 {
            let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await?.text().await?;
            let app: Vec<&str> = metrics.lines().filter(|l| l.starts_with("app_")).collect();
            bail!("the pipeline does not deliver to the cloud broker; its metrics:\n{}", app.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut sent = cloud.received.load(Ordering::Relaxed);
    for i in 0..500 {
        publish(i).await?;
    }
    sent += 500;
    wait_received(&cloud, sent, Duration::from_secs(30)).await?;

    // Flat out, the events made beforehand (a set of them sent again and again, so that they
    // take little memory): what is measured is the chain, not the publisher's JSON work.
    let made: Vec<(String, bytes::Bytes)> = (0..PREBUILT)
        .map(|i| {
            let device = device(i);
            let topic = oxedge_bus::topic::event(&service, "bench", &device, "all");
            Ok((topic, envelope(&device, i).to_bytes()?))
        })
        .collect::<anyhow::Result<_>>()?;
    let events = (0..args.events).map(|i| made[i % PREBUILT].clone());
    let start = Instant::now();
    futures_util::stream::iter(events)
        .map(|(topic, payload)| {
            let publisher = publisher.clone();
            async move { publisher.publish(&topic, payload).await }
        })
        .buffer_unordered(256)
        .for_each(|r| async move { r.expect("publish to the bus") })
        .await;
    let published_in = start.elapsed();
    sent += args.events as u64;
    wait_received(&cloud, sent, Duration::from_secs(120)).await?;
    let flat = start.elapsed();
    let (rss_flat, _) = memory_mb();

    // Paced.
    cloud.latencies_us.lock().unwrap().clear();
    let total = (args.rate * args.seconds) as usize;
    let period = Duration::from_secs_f64(1.0 / args.rate as f64);
    let start = tokio::time::Instant::now();
    let mut publishes = tokio::task::JoinSet::new();
    for i in 0..total {
        tokio::time::sleep_until(start + period * i as u32).await;
        publishes.spawn(publish(i));
    }
    while let Some(result) = publishes.join_next().await {
        result??;
    }
    sent += total as u64;
    wait_received(&cloud, sent, Duration::from_secs(60)).await?;
    let mut latencies = std::mem::take(&mut *cloud.latencies_us.lock().unwrap());
    latencies.sort_unstable();
    let (rss_paced, _) = memory_mb();

    println!(
        "pipelines={pipelines} flat-out: {} events in {:.2} s = {:.0} events/s (published in {:.2} s); RSS {rss_flat:.1} MB",
        args.events,
        flat.as_secs_f64(),
        args.events as f64 / flat.as_secs_f64(),
        published_in.as_secs_f64()
    );
    println!(
        "pipelines={pipelines} paced {}/s for {} s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples); RSS {rss_paced:.1} MB",
        args.rate,
        args.seconds,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        latencies.len()
    );
    stop.cancel();
    task.await??;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    oxedge_runtime::tune_allocator();
    let args = args()?;
    let log = oxedge_runtime::config::LogSection { level: "warn".into(), ..Default::default() };
    oxedge_runtime::init_tracing(&log);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

/// The broker at `given`, else a Mosquitto started for the run (kept while the handle lives).
async fn broker(given: &Option<String>) -> anyhow::Result<(String, Option<oxedge_testkit::mosquitto::ServerProcess>)> {
    if let Some(url) = given {
        return Ok((url.clone(), None));
    }
    let broker =
        oxedge_testkit::mosquitto::private_mosquitto(false).await.context("Mosquitto is skipped (OXEDGE_SKIP_MQTT)")?;
    Ok((format!("mqtt://127.0.0.1:{}", broker.port()), Some(broker)))
}

async fn bench(args: Args) -> anyhow::Result<()> {
    // Brokers this process starts live until it ends.
    let (edge_url, _edge) = broker(&args.edge_url).await?;
    let (cloud_url, _cloud) = broker(&args.cloud_url).await?;
    println!(
        "export_bench: FilterByDeviceName → Transform json → MQTTExport (QoS 1, store-and-forward SQLite); \
         events of {READINGS} readings; bus {edge_url}, cloud {cloud_url}"
    );
    for pipelines in &args.pipelines {
        run(*pipelines, &args, &edge_url, &cloud_url).await?;
    }
    let (rss, peak) = memory_mb();
    println!("process memory: RSS {rss:.1} MB now, peak (VmHWM) {peak:.1} MB");
    Ok(())
}
