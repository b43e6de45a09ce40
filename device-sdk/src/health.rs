//! Devices' operating state: DOWN after repeated driver failures, UP again on success.
//!
//! As EdgeX's device-sdk-go does (`DeviceRequestFailed`/`DeviceRequestSucceeded`): after
//! `device.allowed_fails` consecutive failed driver calls on a device (0: never) the device
//! is set DOWN in core-metadata and in the cache; the next successful call sets it UP again.
//! Commands to a DOWN device are refused with 423, except when the SDK itself set it DOWN
//! and `device.device_down_timeout` is not zero: then commands still go through, and every
//! `device_down_timeout` the SDK tries one read of the device ([`run_returns`]) so that a
//! device that came back is UP again without waiting for a caller. Invalid requests
//! ([`DriverError::Invalid`]) say nothing about the device and do not count; a refusal
//! ([`DriverError::Refused`], the device answered "no") shows the device is reachable and
//! counts as an answer, where EdgeX counts every error towards DOWN.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oxedge_contracts::{Device, OperatingState, UpdateDevice};
use tokio_util::sync::CancellationToken;

use crate::driver::DriverError;
use crate::service::Service;

/// Consecutive driver failures per device.
#[derive(Debug, Default)]
pub(crate) struct Health {
    fails: Mutex<HashMap<String, u32>>,
    /// Held while an operating state is changed, so that changes reach core-metadata in
    /// the order they were decided.
    changing: tokio::sync::Mutex<()>,
}

impl Health {
    /// No failures known.
    pub fn new() -> Self {
        Self::default()
    }

    fn fails_of(&self, device: &str) -> u32 {
        self.fails.lock().unwrap_or_else(|e| e.into_inner()).get(device).copied().unwrap_or(0)
    }

    /// Whether a command may go to `device` in its operating state: any device not DOWN,
    /// and a DOWN device only when the SDK set it DOWN and retries it (EdgeX's "device
    /// return attempt").
    pub fn admits(&self, svc: &Service, device: &Device) -> bool {
        if device.operating_state != OperatingState::Down {
            return true;
        }
        let allowed = svc.config.device.allowed_fails;
        allowed > 0 && !svc.config.device.device_down_timeout().is_zero() && self.fails_of(&device.name) >= allowed
    }

    /// Records the outcome of one driver call on `device`, and sets the device DOWN or UP
    /// when that changes its state.
    pub async fn record(&self, svc: &Service, device: &str, outcome: Result<(), &DriverError>) {
        match outcome {
            Err(DriverError::Invalid(_)) => {}
            Err(e) if e.counts_as_failure() => {
                svc.metrics.driver_error();
                let allowed = svc.config.device.allowed_fails;
                let fails = {
                    let mut map = self.fails.lock().unwrap_or_else(|e| e.into_inner());
                    let n = map.entry(device.to_owned()).or_insert(0);
                    *n = n.saturating_add(1);
                    *n
                };
                if allowed > 0 && fails >= allowed {
                    self.change(svc, device, OperatingState::Down).await;
                }
            }
            // The device answered: a success, or a refusal (counted as a driver error).
            answered => {
                if answered.is_err() {
                    svc.metrics.driver_error();
                }
                let had_failed = self.fails.lock().unwrap_or_else(|e| e.into_inner()).remove(device).is_some();
                if had_failed {
                    self.change(svc, device, OperatingState::Up).await;
                }
            }
        }
    }

    /// A reading of `device` did not equal its resource's `assertion`: as EdgeX does, the
    /// device is set DOWN (and stays DOWN until set UP in core-metadata).
    pub async fn assertion_failed(&self, svc: &Service, device: &str) {
        let _order = self.changing.lock().await;
        self.set(svc, device, OperatingState::Down, 0).await;
    }

    /// Sets `device` to `wanted` in core-metadata then in the cache, unless the failures
    /// recorded meanwhile say otherwise or the device is in that state already.
    async fn change(&self, svc: &Service, device: &str, wanted: OperatingState) {
        let _order = self.changing.lock().await;
        let allowed = svc.config.device.allowed_fails;
        let fails = self.fails_of(device);
        let still_wanted = match wanted {
            OperatingState::Down => allowed > 0 && fails >= allowed,
            _ => fails == 0,
        };
        if still_wanted {
            self.set(svc, device, wanted, fails).await;
        }
    }

    /// Sets `device` to `wanted` in core-metadata then in the cache, unless it is in that
    /// state already.
    async fn set(&self, svc: &Service, device: &str, wanted: OperatingState, fails: u32) {
        let Some(current) = svc.cache.device(device) else { return };
        if current.operating_state == wanted {
            return;
        }
        let update =
            UpdateDevice { name: Some(device.to_owned()), operating_state: Some(wanted), ..Default::default() };
        match svc.metadata.update_device(update).await {
            Ok(()) => {
                svc.cache.set_operating_state(device, wanted);
                match wanted {
                    OperatingState::Down if fails == 0 => {
                        tracing::warn!(device, "A reading of the device failed its assertion; marked DOWN.")
                    }
                    OperatingState::Down => {
                        tracing::warn!(device, fails, "Device failed {fails} times in a row; marked DOWN.")
                    }
                    _ => tracing::info!(device, "Device answers again; marked UP."),
                }
            }
            Err(error) => {
                tracing::warn!(device, %error, state = ?wanted, "Cannot set the device's operating state in core-metadata.")
            }
        }
    }

    /// Forgets the failures of devices no longer in the cache, so that a device removed and
    /// added again starts afresh.
    pub fn forget_removed(&self, svc: &Service) {
        self.fails.lock().unwrap_or_else(|e| e.into_inner()).retain(|name, _| svc.cache.device(name).is_some());
    }

    /// The devices the SDK set DOWN that are still DOWN.
    fn down_by_failures(&self, svc: &Service) -> Vec<Arc<Device>> {
        let allowed = svc.config.device.allowed_fails;
        let names: Vec<String> = {
            let map = self.fails.lock().unwrap_or_else(|e| e.into_inner());
            map.iter().filter(|(_, &n)| allowed > 0 && n >= allowed).map(|(d, _)| d.clone()).collect()
        };
        names.iter().filter_map(|n| svc.cache.device(n)).filter(|d| d.operating_state == OperatingState::Down).collect()
    }
}

/// Every `device.device_down_timeout`, tries one read of each device the SDK set DOWN (its
/// first readable resource), which sets it UP again when the driver answers; until
/// `shutdown`. Does nothing when the timeout or `allowed_fails` is zero.
pub(crate) async fn run_returns(svc: Arc<Service>, shutdown: CancellationToken) {
    let period = svc.config.device.device_down_timeout();
    if period.is_zero() || svc.config.device.allowed_fails == 0 {
        return;
    }
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        for device in svc.health.down_by_failures(&svc) {
            let Some(profile) = svc.cache.profile(&device.profile_name) else { continue };
            let readable = profile.device_resources.iter().find(|r| r.properties.read_write.readable());
            let Some(resource) = readable else {
                // Nothing to try: EdgeX sets such a device UP without checking.
                svc.health.fails.lock().unwrap_or_else(|e| e.into_inner()).remove(&device.name);
                svc.health.change(&svc, &device.name, OperatingState::Up).await;
                continue;
            };
            tracing::info!(device = %device.name, resource = %resource.name, "Checking whether a DOWN device answers again.");
            if let Err(error) = crate::command::read(&svc, &device.name, &resource.name, "").await {
                tracing::info!(device = %device.name, %error, "Device still does not answer.");
            }
        }
    }
}
