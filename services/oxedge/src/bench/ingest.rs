//! `oxedge bench ingest`: events published on the bus until core-data has persisted them,
//! for each combination of bus and store.
//!
//! Publishers stamp each event's `origin` with the time of publishing; the store core-data
//! writes to is wrapped so that the moment a batch is committed is recorded against each
//! event's origin: publish → persisted latency. Only this run's events are counted (their
//! device names carry a run id), so messages left on a broker by earlier runs do not skew it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use async_trait::async_trait;
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use oxedge_bus::{topic, Bus, MessageEnvelope};
use oxedge_contracts::{AddEventRequest, BaseRequest, Event, Reading, ValueType};
use oxedge_core_data::config::IngestSection;
use oxedge_core_data::ingest::{self, IngestMetrics};
use oxedge_core_data::store::{self as st, EventStore, StoreError};
use tokio_util::sync::CancellationToken;

use super::peak_rss_kib;

/// A bus and a store to measure.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Combo {
    /// The embedded MQTT broker and SQLite: the all-in-one.
    EmbeddedSqlite,
    /// An external MQTT broker (`--mqtt-url`) and Redis.
    MqttRedis,
    /// NATS with JetStream (`--nats-url`) and Redis.
    NatsRedis,
    /// All three.
    All,
}

/// Options of `oxedge bench ingest`.
#[derive(Args)]
pub struct IngestBench {
    /// The combination(s) to run.
    #[arg(long, value_enum, default_value = "all")]
    combo: Combo,
    /// Events to publish per combination.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Readings per event.
    #[arg(long, default_value_t = 10)]
    readings: usize,
    /// Publish rate in events per second, spread over the publishers; 0 publishes flat out.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Concurrent publishers (each its own bus connection).
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// The most events core-data writes in one transaction (its queue holds twice as many,
    /// as core-data's defaults do).
    #[arg(long, default_value_t = 250)]
    batch_size: usize,
    /// How long a batch waits for more events once none are waiting (core-data's
    /// `ingest.batch_wait`, a Go duration); its default when not given.
    #[arg(long)]
    batch_wait: Option<String>,
    /// MQTT broker for `mqtt-redis`.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    mqtt_url: String,
    /// NATS server for `nats-redis`.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Redis server for the Redis combinations (keys under a fresh prefix).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Port of the embedded broker for `embedded-sqlite` (0: a free port).
    #[arg(long, default_value_t = 0)]
    embedded_port: u16,
    /// Measure a `core-data` process already running instead of one in this process: its
    /// REST base URL (`http://127.0.0.1:59880`). Events go to the bus of `--combo`
    /// (`mqtt-redis` or `nats-redis`; the store is the one core-data was started with) and
    /// are counted through its API; no latency figures.
    #[arg(long)]
    core_data_url: Option<String>,
}

/// Runs the benchmark and prints its figures.
pub async fn run(b: IngestBench) -> anyhow::Result<()> {
    println!(
        "core-data ingest: {} events x {} readings, {} publishers, rate {}, batch {}, {} cores",
        b.events,
        b.readings,
        b.publishers,
        if b.rate == 0 { "flat out".to_owned() } else { format!("{} events/s", b.rate) },
        b.batch_size,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "{:<16} {:>10} {:>12} {:>9} {:>9} {:>9} {:>6}",
        "bus + store", "events/s", "readings/s", "p50 ms", "p99 ms", "max ms", "lost"
    );
    let combos = match b.combo {
        Combo::All => vec![Combo::EmbeddedSqlite, Combo::MqttRedis, Combo::NatsRedis],
        c => vec![c],
    };
    if b.core_data_url.is_some() && combos.contains(&Combo::EmbeddedSqlite) {
        bail!(
            "--core-data-url needs --combo mqtt-redis or nats-redis: an external core-data joins the broker over TCP"
        );
    }
    for combo in combos {
        let external = b.core_data_url.is_some();
        let name = match combo {
            Combo::EmbeddedSqlite => "embedded+sqlite",
            Combo::MqttRedis if external => "mqtt+core-data",
            Combo::MqttRedis => "mqtt+redis",
            Combo::NatsRedis if external => "nats+core-data",
            Combo::NatsRedis => "nats+redis",
            Combo::All => unreachable!("expanded above"),
        };
        let r = match &b.core_data_url {
            Some(url) => measure_external(combo, &b, url).await,
            None => measure(combo, &b).await,
        }
        .with_context(|| format!("{name} failed"))?;
        println!(
            "{name:<16} {:>10.0} {:>12.0} {:>9} {:>9} {:>9} {:>6}",
            r.events_per_s,
            r.readings_per_s,
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
            r.lost
        );
    }
    if let Some(kib) = peak_rss_kib() {
        println!(
            "peak RSS of this process (broker, core-data and publishers together): {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
    Ok(())
}

/// Milliseconds with two decimals; `-` when not measured.
fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".to_owned()
    } else {
        format!("{v:.2}")
    }
}

struct Figures {
    events_per_s: f64,
    readings_per_s: f64,
    p50: f64,
    p99: f64,
    max: f64,
    lost: usize,
}

/// Nanoseconds since the epoch.
fn now_nanos() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// A store that records, for this run's events, the time from origin to commit.
struct TimingStore {
    inner: Arc<dyn EventStore>,
    run_id: String,
    seen: Mutex<(usize, Histogram<u64>)>,
}

#[async_trait]
impl EventStore for TimingStore {
    async fn add_events(&self, events: &[Event]) -> Result<st::AddOutcome, StoreError> {
        let outcome = self.inner.add_events(events).await?;
        let now = now_nanos();
        let mut seen = self.seen.lock().expect("histogram poisoned");
        for e in events.iter().filter(|e| e.device_name.starts_with(&self.run_id)) {
            if !outcome.duplicates.contains(&e.id) {
                seen.0 += 1;
                let _ = seen.1.record(((now - e.origin) / 1000).max(1) as u64);
            }
        }
        Ok(outcome)
    }
    async fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        self.inner.event(id).await
    }
    async fn events(&self, f: &st::EventFilter, p: st::Page) -> Result<(Vec<Event>, u64), StoreError> {
        self.inner.events(f, p).await
    }
    async fn count_events(&self, f: &st::EventFilter) -> Result<u64, StoreError> {
        self.inner.count_events(f).await
    }
    async fn readings(&self, f: &st::ReadingFilter, p: st::Page) -> Result<(Vec<Reading>, u64), StoreError> {
        self.inner.readings(f, p).await
    }
    async fn count_readings(&self, f: &st::ReadingFilter) -> Result<u64, StoreError> {
        self.inner.count_readings(f).await
    }
    async fn aggregate(
        &self,
        f: &st::ReadingFilter,
        func: st::AggregateFunc,
    ) -> Result<Vec<st::AggregateRow>, StoreError> {
        self.inner.aggregate(f, func).await
    }
    async fn delete_event(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.delete_event(id).await
    }
    async fn delete_events(&self, f: &st::EventFilter, max: usize) -> Result<usize, StoreError> {
        self.inner.delete_events(f, max).await
    }
    async fn trim_events(&self, keep: u64, max: usize) -> Result<usize, StoreError> {
        self.inner.trim_events(keep, max).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

/// One event of `device` with `n` Float64 readings, stamped now.
fn make_event(device: &str, n: usize, seq: usize) -> AddEventRequest {
    let origin = now_nanos();
    let readings = (0..n)
        .map(|i| Reading {
            id: uuid::Uuid::new_v4().to_string(),
            origin,
            device_name: device.to_owned(),
            resource_name: format!("Sensor{i}"),
            profile_name: "bench-profile".to_owned(),
            value_type: ValueType::Float64,
            units: String::new(),
            tags: Default::default(),
            value: Some(format!("{}.5", seq + i)),
            binary_value: None,
            media_type: String::new(),
            object_value: None,
        })
        .collect();
    AddEventRequest {
        base: BaseRequest { api_version: "v3".to_owned(), request_id: uuid::Uuid::new_v4().to_string() },
        event: Event {
            api_version: "v3".to_owned(),
            id: uuid::Uuid::new_v4().to_string(),
            device_name: device.to_owned(),
            profile_name: "bench-profile".to_owned(),
            source_name: "Sensors".to_owned(),
            origin,
            readings,
            tags: Default::default(),
        },
    }
}

/// Publishes `count` events of `device` on `bus`, `rate` per second at most (0: no limit).
async fn publish(bus: Arc<dyn Bus>, device: String, count: usize, readings: usize, rate: f64) -> anyhow::Result<()> {
    let topic = topic::event("bench-service", "bench-profile", &device, "Sensors");
    let start = Instant::now();
    for seq in 0..count {
        if rate > 0.0 {
            let due = start + Duration::from_secs_f64(seq as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let env = MessageEnvelope::json(&make_event(&device, readings, seq), None)?;
        bus.publish(&topic, env.to_bytes()?).await?;
    }
    Ok(())
}

async fn measure(combo: Combo, b: &IngestBench) -> anyhow::Result<Figures> {
    let run_id = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let dir = tempfile::tempdir()?;
    let rig = Rig::start(combo, b, dir.path(), true).await?;
    let store = rig.store.clone().context("the rig has a store")?;
    let timing = Arc::new(TimingStore {
        inner: store,
        run_id: run_id.clone(),
        seen: Mutex::new((0, Histogram::new_with_bounds(1, 600_000_000, 3)?)),
    });
    let shutdown = CancellationToken::new();
    let mut cfg = IngestSection { batch_size: b.batch_size, queue_capacity: b.batch_size * 2, ..Default::default() };
    if let Some(wait) = &b.batch_wait {
        cfg.batch_wait = wait.parse().map_err(|e| anyhow::anyhow!("--batch-wait: {e}"))?;
    }
    let ingest = tokio::spawn(ingest::run(
        rig.core_data_bus.clone().context("the rig has a core-data connection")?,
        timing.clone(),
        cfg,
        IngestMetrics::default(),
        shutdown.clone(),
    ));

    // Warm up: one event through, so the subscription exists before the clock starts.
    let warm = format!("{run_id}-warmup");
    let seen = || timing.seen.lock().expect("histogram poisoned").0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen() == 0 {
        publish(rig.publisher_buses[0].clone(), warm.clone(), 1, b.readings, 0.0).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if Instant::now() > deadline {
            bail!("core-data persisted nothing within 30 s");
        }
    }
    let warmed = seen();
    timing.seen.lock().expect("histogram poisoned").1.reset();

    let start = Instant::now();
    let total = publish_all(&rig, b, &run_id).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen() < warmed + total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = ingest.await;
    let (count, hist) = {
        let s = timing.seen.lock().expect("histogram poisoned");
        (s.0 - warmed, s.1.clone())
    };
    rig.clean_up().await;
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(Figures {
        events_per_s: count as f64 / elapsed,
        readings_per_s: (count * b.readings) as f64 / elapsed,
        p50: ms(hist.value_at_quantile(0.5)),
        p99: ms(hist.value_at_quantile(0.99)),
        max: ms(hist.max()),
        lost: total.saturating_sub(count),
    })
}

/// Publishes `--events` events spread over the publishers (as whole shares); returns how many.
async fn publish_all(rig: &Rig, b: &IngestBench, run_id: &str) -> anyhow::Result<usize> {
    let per = b.events / b.publishers.max(1);
    let rate = b.rate as f64 / b.publishers.max(1) as f64;
    let pubs: Vec<_> = (0..b.publishers.max(1))
        .map(|p| {
            let bus = rig.publisher_buses[p % rig.publisher_buses.len()].clone();
            tokio::spawn(publish(bus, format!("{run_id}-{p}"), per, b.readings, rate))
        })
        .collect();
    for p in pubs {
        p.await??;
    }
    Ok(per * b.publishers.max(1))
}

/// Like [`measure`], against a `core-data` process at `url`, counting stored events through
/// its API (`GET /api/v3/event/count`).
async fn measure_external(combo: Combo, b: &IngestBench, url: &str) -> anyhow::Result<Figures> {
    let run_id = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let dir = tempfile::tempdir()?;
    let rig = Rig::start(combo, b, dir.path(), false).await?;
    let client = reqwest::Client::new();
    let count_url = format!("{}/api/v3/event/count", url.trim_end_matches('/'));
    let count = || async {
        let body: serde_json::Value = client.get(&count_url).send().await?.error_for_status()?.json().await?;
        body["count"].as_u64().with_context(|| format!("no count in the answer of {count_url}: {body}"))
    };
    let before = count().await.with_context(|| format!("core-data does not answer at {url}"))?;
    // Warm up: one event through, so core-data's subscription exists before the clock starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while count().await? == before {
        publish(rig.publisher_buses[0].clone(), format!("{run_id}-warmup"), 1, b.readings, 0.0).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if Instant::now() > deadline {
            bail!("core-data at {url} persisted nothing within 30 s");
        }
    }
    let warmed = count().await?;
    let start = Instant::now();
    let total = publish_all(&rig, b, &run_id).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stored = count().await?.saturating_sub(warmed);
    while (stored as usize) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        stored = count().await?.saturating_sub(warmed);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let stored = (stored as usize).min(total);
    Ok(Figures {
        events_per_s: stored as f64 / elapsed,
        readings_per_s: (stored * b.readings) as f64 / elapsed,
        p50: f64::NAN,
        p99: f64::NAN,
        max: f64::NAN,
        lost: total - stored,
    })
}

/// The bus connections and the store of one combination.
struct Rig {
    /// How an in-process core-data joins the bus (a local link for the embedded broker).
    core_data_bus: Option<Arc<dyn Bus>>,
    /// One connection per publisher, over TCP as device services join.
    publisher_buses: Vec<Arc<dyn Bus>>,
    /// The store core-data writes to; `None` when core-data runs elsewhere.
    store: Option<Arc<dyn EventStore>>,
}

/// `host` and `port` of a `scheme://host:port` URL.
fn host_port(url: &str, scheme: &str, default_port: u16) -> anyhow::Result<(String, u16)> {
    let rest =
        url.strip_prefix(&format!("{scheme}://")).with_context(|| format!("'{url}' is not a {scheme}:// URL"))?;
    Ok(match rest.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().with_context(|| format!("bad port in '{url}'"))?),
        None => (rest.to_owned(), default_port),
    })
}

fn mqtt(host: &str, port: u16, client_id: &str) -> anyhow::Result<Arc<dyn Bus>> {
    Ok(Arc::new(oxedge_bus::MqttBus::connect(oxedge_bus::MqttSettings::new(host, port, client_id))?))
}

impl Rig {
    /// The rig of `combo`; with `with_store`, also the store an in-process core-data writes to.
    async fn start(combo: Combo, b: &IngestBench, dir: &std::path::Path, with_store: bool) -> anyhow::Result<Self> {
        let publishers = b.publishers.max(1);
        let store: Option<Arc<dyn EventStore>> = match combo {
            _ if !with_store => None,
            Combo::EmbeddedSqlite => Some(Arc::new(st::sqlite::SqliteStore::open(&dir.join("bench.db"))?)),
            _ => {
                let prefix = format!("oxedge:bench:{}", uuid::Uuid::new_v4().simple());
                Some(Arc::new(st::redis::RedisStore::connect_with_prefix(&b.redis_url, &prefix).await.with_context(
                    || format!("Redis at {} is needed for this combination (--redis-url)", b.redis_url),
                )?))
            }
        };
        let (core_data_bus, publisher_buses) = match combo {
            Combo::EmbeddedSqlite => {
                let port = match b.embedded_port {
                    0 => std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(),
                    p => p,
                };
                let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                let broker = oxedge_bus::embedded::EmbeddedBroker::start(oxedge_bus::EmbeddedConfig {
                    listen,
                    ..Default::default()
                })?;
                let pubs = (0..publishers)
                    .map(|p| mqtt("127.0.0.1", port, &format!("bench-publisher-{p}")))
                    .collect::<anyhow::Result<_>>()?;
                (Some(broker.bus("core-data")?), pubs)
            }
            Combo::MqttRedis => {
                let (host, port) = host_port(&b.mqtt_url, "mqtt", 1883)?;
                let pubs = (0..publishers)
                    .map(|p| mqtt(&host, port, &format!("bench-publisher-{p}")))
                    .collect::<anyhow::Result<_>>()?;
                (with_store.then(|| mqtt(&host, port, "core-data")).transpose()?, pubs)
            }
            Combo::NatsRedis => {
                let mut pubs = Vec::new();
                for p in 0..publishers {
                    pubs.push(nats(&b.nats_url, &format!("bench-publisher-{p}")).await?);
                }
                let core_data = if with_store { Some(nats(&b.nats_url, "core-data").await?) } else { None };
                (core_data, pubs)
            }
            Combo::All => unreachable!("expanded by run"),
        };
        Ok(Self { core_data_bus, publisher_buses, store })
    }

    /// Deletes what the run stored (Redis keeps it otherwise; SQLite goes with its directory).
    async fn clean_up(self) {
        let Some(store) = self.store else { return };
        let all = st::EventFilter::default();
        if let Err(error) = oxedge_core_data::retention::purge(&*store, &all, 5000).await {
            eprintln!("cleaning up the bench's events failed: {error}");
        }
    }
}

async fn nats(url: &str, client_name: &str) -> anyhow::Result<Arc<dyn Bus>> {
    let settings = oxedge_bus::nats::NatsSettings::new(url, client_name);
    Ok(Arc::new(oxedge_bus::nats::NatsBus::connect(settings).await?))
}
