//! Devices, device profiles and device services read from core-metadata, kept so that a
//! command costs no metadata round trip — only while core-command follows core-metadata's
//! system events on the bus, which drop everything on any change, and for at most `ttl`.
//!
//! A read that started before a change never fills the cache after it: each fill carries the
//! generation it started in, and a change starts a new one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use oxedge_bus::{Bus, SubscribeOptions};
use oxedge_contracts::{Device, DeviceProfile, DeviceService, EdgeXError};
use tokio_util::sync::CancellationToken;

/// What core-metadata announces changes of.
pub const SYSTEM_EVENTS: &str = "edgex/system-events/core-metadata/#";

/// The most entries of one kind kept; beyond, that kind starts over.
const MAX_ENTRIES: usize = 10_000;

type Table<T> = HashMap<String, (Instant, Arc<T>)>;

#[derive(Default)]
struct State {
    generation: u64,
    devices: Table<Device>,
    profiles: Table<DeviceProfile>,
    services: Table<DeviceService>,
}

/// The cache; see the module documentation.
pub struct MetadataCache {
    bus: Arc<dyn Bus>,
    ttl: Duration,
    following: AtomicBool,
    state: Mutex<State>,
}

impl MetadataCache {
    /// A cache kept current by system events on `bus`, entries used for at most `ttl`.
    pub fn new(bus: Arc<dyn Bus>, ttl: Duration) -> Self {
        Self { bus, ttl, following: AtomicBool::new(false), state: Mutex::default() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets everything.
    pub fn clear(&self) {
        let mut s = self.state();
        s.generation += 1;
        s.devices.clear();
        s.profiles.clear();
        s.services.clear();
    }

    /// The device `name`, from the cache or `fetch`.
    pub async fn device(
        &self,
        name: &str,
        fetch: impl Future<Output = Result<Device, EdgeXError>>,
    ) -> Result<Arc<Device>, EdgeXError> {
        self.get(|s| &mut s.devices, name, fetch).await
    }

    /// The profile `name`, from the cache or `fetch`.
    pub async fn profile(
        &self,
        name: &str,
        fetch: impl Future<Output = Result<DeviceProfile, EdgeXError>>,
    ) -> Result<Arc<DeviceProfile>, EdgeXError> {
        self.get(|s| &mut s.profiles, name, fetch).await
    }

    /// The device service `name`, from the cache or `fetch`.
    pub async fn service(
        &self,
        name: &str,
        fetch: impl Future<Output = Result<DeviceService, EdgeXError>>,
    ) -> Result<Arc<DeviceService>, EdgeXError> {
        self.get(|s| &mut s.services, name, fetch).await
    }

    async fn get<T>(
        &self,
        table: fn(&mut State) -> &mut Table<T>,
        name: &str,
        fetch: impl Future<Output = Result<T, EdgeXError>>,
    ) -> Result<Arc<T>, EdgeXError> {
        let usable = self.following.load(Ordering::Acquire) && self.bus.is_connected();
        if !usable {
            return fetch.await.map(Arc::new);
        }
        let generation = {
            let mut s = self.state();
            if let Some((at, value)) = table(&mut s).get(name) {
                if at.elapsed() < self.ttl {
                    return Ok(value.clone());
                }
            }
            s.generation
        };
        let value = Arc::new(fetch.await?);
        let mut s = self.state();
        if s.generation == generation {
            let t = table(&mut s);
            if t.len() >= MAX_ENTRIES {
                t.clear();
            }
            t.insert(name.to_owned(), (Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// Follows core-metadata's system events until `shutdown`, dropping the cache on each; the
    /// cache is used only while this runs.
    pub async fn follow(self: Arc<Self>, shutdown: CancellationToken) {
        let filter = [SYSTEM_EVENTS.to_owned()];
        // Until subscribed, nothing is cached.
        let options = SubscribeOptions::default();
        let what = "core-metadata's changes (not caching meanwhile)";
        let Some(mut sub) = oxedge_runtime::subscribe_retrying(&*self.bus, &filter, options, what, &shutdown).await
        else {
            return;
        };
        self.clear();
        self.following.store(true, Ordering::Release);
        loop {
            let delivery = tokio::select! {
                _ = shutdown.cancelled() => break,
                d = sub.next() => match d { Some(d) => d, None => break },
            };
            self.clear();
            let _ = delivery.ack().await;
        }
        self.following.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxedge_bus::InProcessBus;

    fn service(name: &str) -> DeviceService {
        oxedge_contracts::from_json(
            serde_json::json!({"name": name, "adminState": "UNLOCKED", "baseAddress": "http://x"})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn entries_live_until_a_change_is_announced() {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let cache = Arc::new(MetadataCache::new(bus.clone(), Duration::from_secs(60)));
        let fetches = std::sync::atomic::AtomicUsize::new(0);
        let fetch = || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(service("ds"))
        };
        // Not following yet: every read fetches.
        cache.service("ds", fetch()).await.unwrap();
        cache.service("ds", fetch()).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);

        let token = CancellationToken::new();
        tokio::spawn(cache.clone().follow(token.clone()));
        while !cache.following.load(Ordering::Acquire) {
            tokio::task::yield_now().await;
        }
        cache.service("ds", fetch()).await.unwrap();
        cache.service("ds", fetch()).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 3);

        bus.publish("edgex/system-events/core-metadata/deviceservice/update/ds", "{}".into()).await.unwrap();
        while cache.state().generation < 2 {
            tokio::task::yield_now().await;
        }
        cache.service("ds", fetch()).await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 4);
        token.cancel();
    }

    #[tokio::test]
    async fn a_read_overtaken_by_a_change_is_not_kept() {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let cache = MetadataCache::new(bus, Duration::from_secs(60));
        cache.following.store(true, Ordering::Release);
        let stale = async {
            cache.clear();
            Ok(service("old"))
        };
        assert_eq!(cache.service("ds", stale).await.unwrap().name, "old");
        assert!(cache.state().services.is_empty());
        cache.service("ds", async { Ok(service("new")) }).await.unwrap();
        assert_eq!(cache.service("ds", async { Ok(service("other")) }).await.unwrap().name, "new");
    }
}
