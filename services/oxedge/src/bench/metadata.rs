//! `oxedge bench metadata`: core-metadata's device create and get-by-name over real HTTP.

use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Args, ValueEnum};
use oxedge_core_metadata::config::Backend;
use oxedge_core_metadata::store::{redis::RedisStore, sqlite::SqliteStore, MetadataStore};
use oxedge_core_metadata::{load_uom, BroadcastHook, Metadata, MetadataConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{load, peak_rss_kib, Stats};

/// Which stores to measure.
#[derive(Clone, Copy, ValueEnum)]
enum Stores {
    Sqlite,
    Redis,
    Both,
}

/// Options of `oxedge bench metadata`.
#[derive(Args)]
pub struct MetadataBench {
    /// The store(s) to run against.
    #[arg(long, value_enum, default_value = "both")]
    store: Stores,
    /// Redis server for the Redis run (keys go under a fresh prefix and are left for inspection).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Devices to create (one POST each).
    #[arg(long, default_value_t = 2000)]
    devices: usize,
    /// GET /device/name/{name} requests.
    #[arg(long, default_value_t = 50_000)]
    gets: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP worker threads of the service.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// Runs the benchmark and prints its figures.
pub async fn run(b: MetadataBench) -> anyhow::Result<()> {
    println!(
        "core-metadata over HTTP: {} device creates, {} get-by-name, {} clients, {} server workers, {} cores",
        b.devices,
        b.gets,
        b.concurrency,
        b.workers,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!("{:<8} {:<14} {:>10} {:>9} {:>9} {:>9}", "store", "operation", "req/s", "p50 ms", "p99 ms", "max ms");
    let backends: &[Backend] = match b.store {
        Stores::Sqlite => &[Backend::Sqlite],
        Stores::Redis => &[Backend::Redis],
        Stores::Both => &[Backend::Sqlite, Backend::Redis],
    };
    for &backend in backends {
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn MetadataStore> = match backend {
            Backend::Sqlite => Arc::new(SqliteStore::open(&dir.path().join("bench.db"))?),
            Backend::Redis => {
                let prefix = format!("oxedge:bench:{}", uuid::Uuid::new_v4());
                Arc::new(RedisStore::connect_with_prefix(&b.redis_url, &prefix).await.with_context(|| {
                    format!("Redis at {} is needed for the Redis run (or pass --store sqlite).", b.redis_url)
                })?)
            }
        };
        let name = match backend {
            Backend::Sqlite => "sqlite",
            Backend::Redis => "redis",
        };
        for (op, s) in metadata_on(store, &b).await? {
            println!("{name:<8} {op:<14} {:>10.0} {:>9.2} {:>9.2} {:>9.2}", s.rate, s.p50, s.p99, s.max);
        }
    }
    if let Some(kib) = peak_rss_kib() {
        println!("peak RSS of this process (service and clients together): {:.1} MiB", kib as f64 / 1024.0);
    }
    Ok(())
}

async fn metadata_on(store: Arc<dyn MetadataStore>, b: &MetadataBench) -> anyhow::Result<Vec<(&'static str, Stats)>> {
    let mut cfg = MetadataConfig::default();
    cfg.service.workers = b.workers;
    cfg.service.max_result_count = 100_000;
    let (events, _) = tokio::sync::broadcast::channel(16);
    let md = Metadata::new(store, Arc::new(BroadcastHook(events)), load_uom(&cfg.uom)?);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}/api/v3", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { oxedge_core_metadata::serve(&cfg, md, listener, shutdown).await }
    });
    let client = reqwest::Client::builder().pool_max_idle_per_host(b.concurrency).build()?;
    setup(&client, &base).await?;

    let create = load(b.devices, b.concurrency, |i| {
        let req = client.post(format!("{base}/device")).json(&json!([{
            "apiVersion": "v3",
            "device": {
                "name": format!("bench-device-{i}"), "serviceName": "bench-service", "profileName": "bench-profile",
                "adminState": "UNLOCKED", "operatingState": "UP", "labels": ["bench"],
                "protocols": {"other": {"Address": format!("10.0.0.{}", i % 250)}},
                "autoEvents": [{"interval": "1s", "sourceName": "Temperature"}]
            }
        }]));
        async move {
            let body: serde_json::Value = req.send().await?.json().await?;
            if body[0]["statusCode"] != 201 {
                bail!("device create failed: {body}");
            }
            Ok(())
        }
    })
    .await?;
    let devices = b.devices;
    let get = load(b.gets, b.concurrency, |i| {
        let req = client.get(format!("{base}/device/name/bench-device-{}", (i * 7919) % devices));
        async move {
            let resp = req.send().await?;
            if resp.status() != 200 {
                bail!("get failed: {}", resp.status());
            }
            resp.bytes().await?;
            Ok(())
        }
    })
    .await?;
    shutdown.cancel();
    server.await??;
    Ok(vec![("device create", create), ("get by name", get)])
}

async fn setup(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let service = json!([{"apiVersion": "v3", "service": {
        "name": "bench-service", "baseAddress": "http://127.0.0.1:59999", "adminState": "UNLOCKED"}}]);
    let profile = json!([{"apiVersion": "v3", "profile": {
        "name": "bench-profile", "manufacturer": "Oxedge", "model": "bench",
        "deviceResources": [{"name": "Temperature", "properties": {"valueType": "Float32", "readWrite": "R"}}]}}]);
    for (path, body) in [("deviceservice", service), ("deviceprofile", profile)] {
        let answer: serde_json::Value = client.post(format!("{base}/{path}")).json(&body).send().await?.json().await?;
        if answer[0]["statusCode"] != 201 {
            bail!("setting up the {path} failed: {answer}");
        }
    }
    Ok(())
}
