//! Auto events: timed reads of a device's sources, published as events (interval and onChange).
//!
//! One task per (device, auto event), started, stopped or restarted whenever the cache
//! changes (devices added, removed, changed, LOCKED or UNLOCKED). Each task reads its
//! source (a device command or resource) every `interval` and publishes the event; with
//! `onChange` only when a reading differs from the last one published (numeric readings by
//! more than `onChangeThreshold`). A read slower than the interval skips ticks rather than
//! queueing them. Tasks start spread over their first interval, so that a thousand devices
//! do not all read in the same millisecond.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use oxedge_contracts::validate::parse_duration;
use oxedge_contracts::{AdminState, AutoEvent, DeviceProfile, Event, Reading};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::command::{self, ReadPlan};
use crate::service::Service;

/// Runs the auto events of every device, re-synced on cache changes, until `shutdown`.
pub(crate) async fn run(svc: Arc<Service>, shutdown: CancellationToken) {
    let mut changes = svc.cache.changes();
    let mut tasks: HashMap<(String, usize), Running> = HashMap::new();
    loop {
        changes.mark_unchanged();
        sync(&svc, &mut tasks, &shutdown);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = changes.changed() => if changed.is_err() { break },
        }
    }
    for (_, task) in tasks.drain() {
        task.stop.cancel();
        let _ = task.handle.await;
    }
}

/// One running auto event.
struct Running {
    config: AutoEvent,
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

/// Starts the auto events the cache asks for and stops those it no longer does.
fn sync(svc: &Arc<Service>, tasks: &mut HashMap<(String, usize), Running>, shutdown: &CancellationToken) {
    svc.health.forget_removed(svc);
    let mut wanted: HashMap<(String, usize), (AutoEvent, Duration)> = HashMap::new();
    for device in svc.cache.devices() {
        if device.admin_state == AdminState::Locked {
            continue;
        }
        for (i, ae) in device.auto_events.iter().enumerate() {
            match parse_duration(&ae.interval).filter(|d| !d.is_zero()) {
                Some(period) => {
                    wanted.insert((device.name.clone(), i), (ae.clone(), period));
                }
                None => tracing::warn!(
                    device = %device.name, source = %ae.source_name, interval = %ae.interval,
                    "Auto event interval is not a positive duration; auto event skipped."
                ),
            }
        }
    }
    tasks.retain(|key, task| {
        let keep = wanted.get(key).is_some_and(|(ae, _)| *ae == task.config) && !task.handle.is_finished();
        if !keep {
            task.stop.cancel();
        }
        keep
    });
    for (key, (ae, period)) in wanted {
        if tasks.contains_key(&key) {
            continue;
        }
        let stop = shutdown.child_token();
        let first = Instant::now() + spread(&key, period);
        let handle = tokio::spawn(tick(svc.clone(), key.0.clone(), ae.clone(), period, first, stop.clone()));
        tasks.insert(key, Running { config: ae, stop, handle });
    }
}

/// Where in its first interval an auto event starts: fixed per (device, index), spread
/// evenly over devices.
fn spread(key: &(String, usize), period: Duration) -> Duration {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    let nanos = period.as_nanos().max(1);
    Duration::from_nanos((u128::from(h.finish()) % nanos) as u64)
}

/// Reads `ae.source_name` of `device` every `period` from `first` on, until `stop`.
async fn tick(
    svc: Arc<Service>,
    device: String,
    ae: AutoEvent,
    period: Duration,
    first: Instant,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval_at(first, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut plan: Option<(Arc<DeviceProfile>, ReadPlan)> = None;
    let mut last = LastReadings::default();
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // Boxed: a waiting task then holds only its own state, not room for a whole read
        // (thousands of auto events wait at any time, one read runs at a time each).
        let result = Box::pin(once(&svc, &device, &ae, &mut plan)).await;
        match result {
            Ok(event) => {
                failing = false;
                if ae.on_change && !last.changed(&event.readings, ae.on_change_threshold) {
                    continue;
                }
                if let Err(error) = Box::pin(command::publish(&svc, &event)).await {
                    tracing::warn!(%device, source = %ae.source_name, %error, "Auto event not published.");
                }
            }
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%device, source = %ae.source_name, %error, "Auto event read failed; retrying at each interval.");
            }
            Err(error) => tracing::debug!(%device, source = %ae.source_name, %error, "Auto event read failed."),
        }
    }
}

/// One read: the plan is worked out again only when the device's profile changed.
async fn once(
    svc: &Service,
    device: &str,
    ae: &AutoEvent,
    plan: &mut Option<(Arc<DeviceProfile>, ReadPlan)>,
) -> Result<Event, oxedge_contracts::EdgeXError> {
    let target = command::target(svc, device)?;
    let current = match plan.take() {
        Some((profile, p)) if Arc::ptr_eq(&profile, &target.profile) => (profile, p),
        _ => (target.profile.clone(), command::plan_read(&target, &ae.source_name, "")?),
    };
    let result = command::execute_read(svc, &target, &current.1).await;
    *plan = Some(current);
    result
}

/// The readings last published, by resource (onChange).
#[derive(Default)]
struct LastReadings(HashMap<String, Reading>);

impl LastReadings {
    /// Whether `readings` differ from those last published; remembers those that do. A
    /// numeric reading differs when it moved by more than `threshold` from the value last
    /// published.
    fn changed(&mut self, readings: &[Reading], threshold: f64) -> bool {
        let mut changed = readings.len() != self.0.len();
        for r in readings {
            let differs = match self.0.get(&r.resource_name) {
                None => true,
                Some(old) => differs(old, r, threshold),
            };
            if differs {
                self.0.insert(r.resource_name.clone(), r.clone());
                changed = true;
            }
        }
        changed
    }
}

fn differs(old: &Reading, new: &Reading, threshold: f64) -> bool {
    if threshold > 0.0 {
        let number = |r: &Reading| r.value.as_deref().and_then(|v| v.trim().parse::<f64>().ok());
        if let (Some(a), Some(b)) = (number(old), number(new)) {
            return (a - b).abs() > threshold;
        }
    }
    old.value != new.value || old.binary_value != new.binary_value || old.object_value != new.object_value
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxedge_contracts::ValueType;

    fn reading(resource: &str, value: &str) -> Reading {
        Reading {
            id: String::new(),
            origin: 1,
            device_name: "d".into(),
            resource_name: resource.into(),
            profile_name: "p".into(),
            value_type: ValueType::Float64,
            units: String::new(),
            tags: Default::default(),
            value: Some(value.into()),
            binary_value: None,
            media_type: String::new(),
            object_value: None,
        }
    }

    #[test]
    fn on_change_compares_values_and_thresholds() {
        let mut last = LastReadings::default();
        assert!(last.changed(&[reading("t", "20.0")], 0.0), "the first reading is a change");
        assert!(!last.changed(&[reading("t", "20.0")], 0.0));
        assert!(last.changed(&[reading("t", "20.5")], 0.0));
        // With a threshold, small moves are not changes, and the baseline stays where it was
        // last published so that a slow drift is still seen.
        assert!(!last.changed(&[reading("t", "21.0")], 1.0));
        assert!(!last.changed(&[reading("t", "21.5")], 1.0));
        assert!(last.changed(&[reading("t", "21.6")], 1.0));
        assert!(last.changed(&[reading("t", "21.6"), reading("u", "1")], 1.0), "a new resource is a change");
    }

    #[test]
    fn starts_are_spread_within_the_interval() {
        let period = Duration::from_secs(1);
        let offsets: Vec<Duration> = (0..100).map(|i| spread(&(format!("dev-{i}"), 0), period)).collect();
        assert!(offsets.iter().all(|o| *o < period));
        let early = offsets.iter().filter(|o| **o < period / 2).count();
        assert!((25..=75).contains(&early), "{early} of 100 in the first half");
    }
}
