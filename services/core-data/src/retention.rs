//! Retention: events older than `max_age` and beyond the newest `max_events` are deleted
//! periodically, and on request (`DELETE /event/age/…`, `DELETE /event/device/name/…`), as
//! indexed deletes of at most `batch` events per transaction with a yield between batches,
//! so ingestion never waits long behind a purge.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::config::RetentionSection;
use crate::store::{EventFilter, EventStore, StoreError};

/// Nanoseconds since the epoch, now.
pub fn now_nanos() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// Deletes every event matching `filter` (device and/or `end`), `batch` at a time; returns
/// how many were deleted.
pub async fn purge(store: &dyn EventStore, filter: &EventFilter, batch: usize) -> Result<u64, StoreError> {
    let mut total = 0u64;
    loop {
        let n = store.delete_events(filter, batch).await?;
        total += n as u64;
        if n < batch {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// Deletes the earliest-stored events beyond the newest `keep`, `batch` at a time.
pub async fn trim(store: &dyn EventStore, keep: u64, batch: usize) -> Result<u64, StoreError> {
    let mut total = 0u64;
    loop {
        let n = store.trim_events(keep, batch).await?;
        total += n as u64;
        if n < batch {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// Runs one retention pass: age first, then count.
pub async fn enforce(store: &dyn EventStore, cfg: &RetentionSection) -> Result<u64, StoreError> {
    let mut deleted = 0;
    if let Some(age) = cfg.max_age() {
        let end = now_nanos().saturating_sub(age.as_nanos().min(i64::MAX as u128) as i64);
        deleted += purge(store, &EventFilter { end: Some(end), ..Default::default() }, cfg.batch).await?;
    }
    if cfg.max_events > 0 {
        deleted += trim(store, cfg.max_events, cfg.batch).await?;
    }
    Ok(deleted)
}

/// Enforces retention every `interval` until `shutdown`; does nothing when no limit is set.
pub async fn run(store: Arc<dyn EventStore>, cfg: RetentionSection, shutdown: CancellationToken) {
    if !cfg.enabled() {
        return;
    }
    let mut tick = tokio::time::interval(cfg.interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let started = std::time::Instant::now();
        match enforce(&*store, &cfg).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, took = ?started.elapsed(), "Retention deleted old events."),
            Err(error) => tracing::warn!(%error, "Retention failed; trying again next interval."),
        }
    }
}
