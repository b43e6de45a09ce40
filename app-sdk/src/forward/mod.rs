//! Store-and-forward: a bounded in-memory queue in front of a sink, spilling to a persistent
//! store (SQLite or Redis) while the sink is unreachable and replaying in order as soon as
//! it is back.
//!
//! One [`Forwarding`] per service holds the configuration (section `store_and_forward`,
//! [`ForwardConfig`]), the store and the metrics; each export gets its own [`Forwarder`] from
//! it, a task in front of the export's sink. What a forwarder promises:
//!
//! - **Bounded memory.** At most `memory_capacity` messages and `memory_max_bytes` bytes wait
//!   in memory. With store-and-forward enabled, what does not fit goes to the store; without
//!   it, [`Forwarder::submit`] waits for room: the pipeline slows down (backpressure) and the
//!   bus keeps the rest, unacknowledged.
//! - **Confirmations.** Each submitted message gets a [`Confirmation`] that resolves `Ok` once
//!   the sink has it or the store holds it durably, and `Err` when the message is given up:
//!   refused by the drop policy, older than `max_age`, or rejected by the destination for
//!   good. A confirmation whose sender is dropped (the service is stopping) means the
//!   message was not taken: its bus delivery must stay unacknowledged.
//! - **Order per key.** Messages with the same [`Outgoing::key`] (the device) are delivered
//!   in the order they were submitted; stored messages go before newer ones, also after a
//!   restart. Sinks that keep order over a connection (MQTT) get many messages in flight at
//!   once; others (HTTP) get one per key at a time.
//! - **Retry.** A sink that is unavailable is retried with exponential backoff
//!   (`retry_interval` doubling up to `max_retry_interval`), and at once when the sink
//!   reports its connection back.
//! - **Bounds of the store.** `max_items`, `max_bytes` and `max_age`; when the store is full
//!   the `drop_policy` drops the oldest stored messages or refuses the newest, and each
//!   message dropped is counted in `app_export_dropped_total{reason="policy"}` (or
//!   `reason="age"`).
//!
//! Delivery is at least once: a message sent when the connection broke may arrive twice.

mod forwarder;
mod metrics;
pub mod redis;
pub mod sqlite;
mod store;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use oxedge_contracts::validate::parse_duration;
use oxedge_runtime::SharedRegistry;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use forwarder::Forwarder;
pub use metrics::ExportMetrics;
pub use store::{QueueStats, Record, Store, StoreError, StoredMessage};

pub use crate::context::Confirmation;

/// What a full store does with one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropPolicy {
    /// Drops the oldest stored messages (not yet being sent) to make room: the newest data wins.
    #[default]
    DropOldest,
    /// Refuses the new message: its confirmation resolves `Err`; what is stored is kept.
    RefuseNewest,
}

/// Which persistent store holds messages that could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreType {
    /// An SQLite file (`path`).
    #[default]
    Sqlite,
    /// A Redis server (`url`).
    Redis,
}

/// Section `store_and_forward` of an app service's configuration (EdgeX's
/// `Writable.StoreAndForward`, with bounds EdgeX lacks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardConfig {
    /// Whether exports whose `PersistOnError` is true keep what they cannot send in the
    /// store. Without it, they retry from memory and slow the pipeline down meanwhile.
    pub enabled: bool,
    /// `sqlite` or `redis`.
    pub store: StoreType,
    /// The SQLite file; empty: `store-and-forward.db` in the service's data directory.
    pub path: PathBuf,
    /// The Redis server, e.g. `redis://127.0.0.1:6379`.
    pub url: String,
    /// Messages each export holds in memory at most (queued and in flight).
    pub memory_capacity: usize,
    /// Bytes of payload each export holds in memory at most.
    pub memory_max_bytes: usize,
    /// Messages each export keeps in the store at most.
    pub max_items: u64,
    /// Bytes each export keeps in the store at most.
    pub max_bytes: u64,
    /// How old a message may get before it is dropped unsent (Go duration; `0`: no limit).
    pub max_age: String,
    /// Wait before the first retry of an unavailable sink (Go duration); doubles up to
    /// `max_retry_interval`. A sink reporting its connection back is retried at once.
    pub retry_interval: String,
    /// The longest wait between retries (Go duration).
    pub max_retry_interval: String,
    /// What a full store does: `drop-oldest` or `refuse-newest`.
    pub drop_policy: DropPolicy,
    /// Messages each export has in flight at once (sent, not yet acknowledged).
    pub max_in_flight: usize,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            store: StoreType::Sqlite,
            path: PathBuf::new(),
            url: "redis://127.0.0.1:6379".to_owned(),
            memory_capacity: 1000,
            memory_max_bytes: 8 * 1024 * 1024,
            max_items: 1_000_000,
            max_bytes: 1024 * 1024 * 1024,
            max_age: "24h".to_owned(),
            retry_interval: "1s".to_owned(),
            max_retry_interval: "30s".to_owned(),
            drop_policy: DropPolicy::DropOldest,
            max_in_flight: 256,
        }
    }
}

/// [`ForwardConfig`] checked, durations parsed.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) memory_capacity: usize,
    pub(crate) memory_max_bytes: usize,
    pub(crate) max_items: u64,
    pub(crate) max_bytes: u64,
    pub(crate) max_age: Option<Duration>,
    pub(crate) retry_interval: Duration,
    pub(crate) max_retry_interval: Duration,
    pub(crate) drop_policy: DropPolicy,
    pub(crate) max_in_flight: usize,
}

impl ForwardConfig {
    /// Checks every bound, returning all problems at once, each naming its key.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.limits().map(|_| ())
    }

    pub(crate) fn limits(&self) -> anyhow::Result<Limits> {
        let mut problems = Vec::new();
        let mut duration = |key: &str, value: &str| match parse_duration(value) {
            Some(d) => d,
            None => {
                problems.push(format!("store_and_forward.{key}: {value:?} is not a duration such as 30s or 5m"));
                Duration::ZERO
            }
        };
        let max_age = duration("max_age", &self.max_age);
        let retry_interval = duration("retry_interval", &self.retry_interval);
        let max_retry_interval = duration("max_retry_interval", &self.max_retry_interval);
        for (key, value) in [
            ("memory_capacity", self.memory_capacity as u64),
            ("memory_max_bytes", self.memory_max_bytes as u64),
            ("max_items", self.max_items),
            ("max_bytes", self.max_bytes),
            ("max_in_flight", self.max_in_flight as u64),
        ] {
            if value == 0 {
                problems.push(format!("store_and_forward.{key} must be at least 1"));
            }
        }
        if self.memory_max_bytes > u32::MAX as usize {
            problems.push(format!("store_and_forward.memory_max_bytes must be at most {}", u32::MAX));
        }
        if self.enabled && self.store == StoreType::Redis {
            if self.url.trim().is_empty() {
                problems.push("store_and_forward.url: a Redis URL is needed with store: redis".to_owned());
            } else if let Err(error) = oxedge_redis::check_url(&self.url) {
                problems.push(format!("store_and_forward.url: {error}"));
            }
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("; "));
        }
        Ok(Limits {
            memory_capacity: self.memory_capacity,
            memory_max_bytes: self.memory_max_bytes,
            max_items: self.max_items,
            max_bytes: self.max_bytes,
            max_age: (!max_age.is_zero()).then_some(max_age),
            retry_interval: retry_interval.max(Duration::from_millis(10)),
            max_retry_interval: max_retry_interval.max(retry_interval),
            drop_policy: self.drop_policy,
            max_in_flight: self.max_in_flight,
        })
    }
}

/// Store-and-forward for one service: its configuration, store and metrics; hands each export
/// its [`Forwarder`]. Cheap to clone.
#[derive(Clone)]
pub struct Forwarding {
    limits: Limits,
    store: Option<Arc<dyn Store>>,
    metrics: ExportMetrics,
    names: Arc<Mutex<HashSet<String>>>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl std::fmt::Debug for Forwarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarding")
            .field("store", &self.store.as_ref().map(|s| s.describe()))
            .field("limits", &self.limits)
            .finish()
    }
}

impl Forwarding {
    /// Opens the store-and-forward of the service `app`, as its configuration says (section
    /// `store_and_forward`); its forwarders write what they hold to the store and stop when
    /// `app` shuts down. [`AppContext::forwarding`](crate::AppContext::forwarding) opens it
    /// once and shares it among the service's exports.
    pub(crate) async fn for_app(app: &crate::app::AppContext) -> anyhow::Result<Self> {
        let mut forwarding =
            Self::open(&app.config().store_and_forward, app.name(), app.data_dir(), app.registry()).await?;
        forwarding.stop = app.shutdown().clone();
        forwarding.tasks = app.tasks().clone();
        Ok(forwarding)
    }

    /// Opens the store `config` names (when enabled; the SQLite file defaults to
    /// `data_dir/store-and-forward.db`, Redis keys go under `oxedge:forward:{service}`) and
    /// registers the export metrics in `registry`.
    pub async fn open(
        config: &ForwardConfig,
        service: &str,
        data_dir: &Path,
        registry: &SharedRegistry,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let store: Option<Arc<dyn Store>> = match (config.enabled, config.store) {
            (false, _) => None,
            (true, StoreType::Sqlite) => {
                let path = if config.path.as_os_str().is_empty() {
                    data_dir.join("store-and-forward.db")
                } else {
                    config.path.clone()
                };
                let store = sqlite::SqliteStore::open(&path)
                    .await
                    .with_context(|| format!("store_and_forward.path {}", path.display()))?;
                Some(Arc::new(store))
            }
            (true, StoreType::Redis) => {
                let prefix = format!("oxedge:forward:{service}");
                let store = redis::RedisStore::connect(&config.url, &prefix)
                    .await
                    .with_context(|| format!("store_and_forward.url {}", config.url))?;
                Some(Arc::new(store))
            }
        };
        Self::with_store(config, store, registry)
    }

    /// Store-and-forward over `store` (`None`: in memory only, whatever `config.enabled` says).
    pub fn with_store(
        config: &ForwardConfig,
        store: Option<Arc<dyn Store>>,
        registry: &SharedRegistry,
    ) -> anyhow::Result<Self> {
        let limits = config.limits()?;
        let metrics = ExportMetrics::register(&mut registry.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(Self {
            limits,
            store,
            metrics,
            names: Arc::default(),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    /// The store, if store-and-forward is enabled.
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.store.as_ref()
    }

    /// The export metrics.
    pub fn metrics(&self) -> &ExportMetrics {
        &self.metrics
    }

    /// Starts the forwarder of the export `name` in front of `sink`; with `persist` (EdgeX's
    /// `PersistOnError`) and a store, what cannot be sent is stored under `name` and messages
    /// stored there by an earlier run are sent first. A second export with the same name gets
    /// `name#2`, so names stay stable across restarts when exports are built in the same order.
    pub async fn forwarder(
        &self,
        name: &str,
        sink: Arc<dyn crate::export::Sink>,
        persist: bool,
    ) -> anyhow::Result<Forwarder> {
        let name = {
            let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
            let mut unique = name.to_owned();
            let mut n = 1;
            while !names.insert(unique.clone()) {
                n += 1;
                unique = format!("{name}#{n}");
            }
            unique
        };
        let store = if persist { self.store.clone() } else { None };
        let (stop, tasks) = (self.stop.clone(), &self.tasks);
        Forwarder::start(name, sink, store, self.limits.clone(), self.metrics.clone(), stop, tasks)
            .await
            .map_err(|e| anyhow!("export store: {e}"))
    }
}
