//! [`AppContext`]: what a service's `build` function gets to make its pipelines and exports.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxedge_runtime::SharedRegistry;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::AppServiceConfig;
use crate::forward::Forwarding;
use crate::secrets::Secrets;

/// What a service's `build` function gets: the configuration, the secrets, the metrics
/// registry, the service's name and data directory, and the shutdown of its exports.
/// Cheap to clone.
#[derive(Clone)]
pub struct AppContext {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    config: AppServiceConfig,
    secrets: Secrets,
    registry: SharedRegistry,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    forwarding: tokio::sync::OnceCell<Forwarding>,
}

impl std::fmt::Debug for AppContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppContext").field("name", &self.inner.name).finish()
    }
}

impl AppContext {
    /// A context for the service `name` (tests build one to make exports outside a service).
    pub fn new(name: impl Into<String>, config: AppServiceConfig, secrets: Secrets, registry: SharedRegistry) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                config,
                secrets,
                registry,
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                forwarding: tokio::sync::OnceCell::new(),
            }),
        }
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The service's configuration.
    pub fn config(&self) -> &AppServiceConfig {
        &self.inner.config
    }

    /// The service's secrets.
    pub fn secrets(&self) -> &Secrets {
        &self.inner.secrets
    }

    /// The registry `/metrics` serves; exports register their metrics here.
    pub fn registry(&self) -> &SharedRegistry {
        &self.inner.registry
    }

    /// The directory for the service's stores (`data_dir`).
    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    /// A file `name` in the data directory.
    pub fn data_file(&self, name: &str) -> PathBuf {
        self.inner.config.data_dir.join(name)
    }

    /// Cancelled once the pipelines have stopped: the trigger takes no more messages and the
    /// messages in flight are done (or the grace period ran out). Exports then write what
    /// they still hold to their store and stop.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Where exports spawn their background tasks: the service waits for them (up to its
    /// grace period) after [`shutdown`](Self::shutdown), before it returns.
    pub fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    /// The service's store-and-forward, shared by all its exports: opened on first use, as
    /// the section `store_and_forward` says.
    pub async fn forwarding(&self) -> anyhow::Result<Forwarding> {
        self.inner.forwarding.get_or_try_init(|| Forwarding::for_app(self)).await.cloned()
    }
}
