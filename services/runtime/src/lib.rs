//! What every Oxedge service shares: configuration loading, logging, the common endpoints
//! (`/api/v3/ping`, `version`, `config`, `health`, `openapi.json` and `/metrics`), errors in
//! EdgeX's shape, HTTP metrics and graceful shutdown.
//!
//! A service builds a [`Common`], then runs [`serve`] with its routes:
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use oxedge_runtime::{config, serve, shutdown_on_signals, Common};
//! let section = config::ServiceSection { port: 59881, ..Default::default() };
//! let common = Common::new("core-metadata", serde_json::json!({ "service": section }));
//! serve(common, &section, section.bind()?, shutdown_on_signals(), |_cfg| {}).await
//! # }
//! ```

mod bootstrap;
pub mod config;
mod context;
mod error;
mod extract;
mod metrics;
mod middleware;
pub mod openapi;
pub mod reply;
mod retry;
mod server;
mod shutdown;
mod starting;
mod supervisor;

pub use bootstrap::{
    join_bus, main, open_store_waiting, run_service, start_embedded_broker, Binary, EmbeddedBroker, ServiceConfig,
};
pub use context::ServiceContext;
pub use error::{json, ApiError, ApiResult};
pub use extract::{parse_query, Query};
pub use metrics::SharedRegistry;
pub use middleware::{correlation_id, CORRELATION_ID};
pub use oxedge_bus::BusConfig;
pub use retry::{retry_until_ok, subscribe_retrying, Backoff};
pub use server::{serve, Common, ConfigResponse, HealthResponse, PingResponse, VersionResponse};
pub use shutdown::shutdown_on_signals;
pub use starting::serve_while_starting;
pub use supervisor::{Stopped, Supervisor};

/// Caps glibc's malloc arenas at two. By default glibc gives busy threads (tokio workers,
/// HTTP workers, blocking storage threads) up to eight arenas per core, each keeping its
/// freed memory, so a burst leaves the process larger than its working set (core-data's
/// flood test, debug build: peak 68 MB with glibc's default, 60 MB with two arenas). Call
/// first thing in `main`, before any thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator; it is called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Starts logging to stdout: the filter from `RUST_LOG` if set, else `log.level`; one JSON
/// object per line when `log.json`. A second call does nothing.
pub fn init_tracing(log: &config::LogSection) {
    use tracing_subscriber::EnvFilter;

    let (filter, bad_level) = match EnvFilter::try_from_default_env() {
        Ok(filter) => (filter, None),
        Err(_) => match EnvFilter::try_new(&log.level) {
            Ok(filter) => (filter, None),
            Err(err) => (EnvFilter::new("info"), Some(err)),
        },
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // Fails only when a subscriber is set already, which is what a second call should do.
    let _ = if log.json { builder.json().try_init() } else { builder.try_init() };
    if let Some(error) = bad_level {
        tracing::warn!(level = %log.level, %error, "Invalid log level; logging at info.");
    }
}
