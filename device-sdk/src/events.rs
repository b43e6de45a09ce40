//! Filling the cache from core-metadata and keeping it current from core-metadata's system
//! events on the bus, calling the driver's add/update/remove callbacks.
//!
//! The subscription is made before the initial load, so no change made meanwhile is lost;
//! events older than what the load returned are recognised by the entity's id and
//! `modified` time and skipped.

use std::collections::HashMap;

use oxedge_bus::{Bus, MessageEnvelope, SubscribeOptions, Subscription};
use oxedge_contracts::{AdminState, Device, DeviceProfile, DeviceService, EdgeXError, SystemEvent};
use tokio_util::sync::CancellationToken;

use crate::service::Service;

/// The system events a device service follows: every device's (a device may move to or
/// from this service), every profile's, and this service's own.
fn filters(service: &str) -> Vec<String> {
    let base = "edgex/system-events/core-metadata";
    vec![format!("{base}/device/#"), format!("{base}/deviceprofile/#"), format!("{base}/deviceservice/+/{service}")]
}

/// Subscribes to the system events, retrying with backoff while the bus refuses; `None`
/// on shutdown.
pub(crate) async fn subscribe(bus: &dyn Bus, service: &str, shutdown: &CancellationToken) -> Option<Subscription> {
    // Roomy: the events of a first start's provisioning wait here until the cache is loaded.
    let options = SubscribeOptions { capacity: 16 * 1024, ..SubscribeOptions::default() };
    oxedge_runtime::subscribe_retrying(bus, &filters(service), options, "core-metadata's system events", shutdown).await
}

/// Fills the cache with the service's devices and their profiles from core-metadata, and
/// tells the driver about each device.
pub(crate) async fn load(svc: &Service) -> Result<(), EdgeXError> {
    let devices = svc.metadata.devices_of_service(&svc.name).await?;
    let mut profiles: HashMap<String, DeviceProfile> = HashMap::new();
    for device in &devices {
        if profiles.contains_key(&device.profile_name) {
            continue;
        }
        match svc.metadata.device_profile(&device.profile_name).await {
            Ok(profile) => {
                profiles.insert(device.profile_name.clone(), profile);
            }
            Err(e) if e.kind == oxedge_contracts::ErrorKind::EntityDoesNotExist => {
                tracing::error!(device = %device.name, profile = %device.profile_name, "The device's profile does not exist.");
            }
            Err(e) => return Err(e),
        }
    }
    svc.cache.replace_all(devices.clone(), profiles.into_values().collect());
    tracing::info!(devices = devices.len(), "Device cache loaded from core-metadata.");
    for device in &devices {
        if let Err(error) = svc.driver.add_device(device).await {
            tracing::warn!(device = %device.name, %error, "The driver failed to add the device.");
        }
    }
    Ok(())
}

/// Applies the system events of `sub` until shutdown or the end of the subscription.
pub(crate) async fn follow(svc: &Service, mut sub: Subscription, shutdown: &CancellationToken) {
    loop {
        let delivery = tokio::select! {
            _ = shutdown.cancelled() => return,
            d = sub.next() => match d {
                Some(d) => d,
                None => {
                    tracing::warn!("The system event subscription ended.");
                    return;
                }
            },
        };
        match MessageEnvelope::from_bytes(&delivery.payload, &delivery.topic)
            .and_then(|e| e.payload_as::<SystemEvent>())
        {
            Ok(event) => apply(svc, event).await,
            Err(error) => tracing::warn!(topic = %delivery.topic, %error, "Ignoring a malformed system event."),
        }
        if let Err(error) = delivery.ack().await {
            tracing::warn!(%error, "Acknowledging a system event failed.");
        }
    }
}

/// Applies one system event to the cache and the driver.
pub(crate) async fn apply(svc: &Service, event: SystemEvent) {
    let details = event.details;
    match (event.event_type.as_str(), event.action.as_str()) {
        ("device", "add" | "update") => match serde_json::from_value::<Device>(details) {
            Ok(device) => device_changed(svc, device).await,
            Err(error) => tracing::warn!(%error, "Ignoring a system event with a malformed device."),
        },
        ("device", "delete") => match serde_json::from_value::<Device>(details) {
            Ok(device) => {
                if svc.cache.device(&device.name).is_some_and(|d| d.id == device.id) {
                    remove(svc, &device.name).await;
                }
            }
            Err(error) => tracing::warn!(%error, "Ignoring a system event with a malformed device."),
        },
        ("deviceprofile", "add" | "update") => match serde_json::from_value::<DeviceProfile>(details) {
            Ok(profile) => {
                let name = &profile.info.name;
                let used = svc.cache.devices().iter().any(|d| &d.profile_name == name);
                let newer = svc.cache.profile(name).is_none_or(|p| p.modified <= profile.modified && *p != profile);
                if used && newer {
                    tracing::info!(profile = %name, "Device profile updated.");
                    svc.cache.upsert_profile(profile);
                }
            }
            Err(error) => tracing::warn!(%error, "Ignoring a system event with a malformed profile."),
        },
        ("deviceservice", "add" | "update") => match serde_json::from_value::<DeviceService>(details) {
            Ok(service) if service.name == svc.name => svc.set_locked(service.admin_state == AdminState::Locked),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "Ignoring a system event with a malformed device service."),
        },
        ("deviceservice", "delete") => {
            tracing::warn!(service = %svc.name, "This device service was deleted from core-metadata.");
        }
        _ => {}
    }
}

/// A device was added or changed: taken into the cache when it belongs to this service and
/// is newer than the cached one, dropped from it when it moved to another service.
async fn device_changed(svc: &Service, device: Device) {
    // A renamed device keeps its id: the old name goes.
    let renamed = svc.cache.devices().into_iter().find(|d| d.id == device.id && d.name != device.name);
    if let Some(old) = renamed {
        remove(svc, &old.name).await;
    }
    let cached = svc.cache.device(&device.name);
    if device.service_name != svc.name {
        if cached.is_some_and(|d| d.id == device.id) {
            remove(svc, &device.name).await;
        }
        return;
    }
    if cached.as_ref().is_some_and(|d| d.id == device.id && (d.modified > device.modified || **d == device)) {
        return;
    }
    if svc.cache.profile(&device.profile_name).is_none() {
        match svc.metadata.device_profile(&device.profile_name).await {
            Ok(profile) => svc.cache.upsert_profile(profile),
            Err(error) => tracing::error!(device = %device.name, profile = %device.profile_name, %error,
                "Cannot read the device's profile; its commands fail until it can be read."),
        }
    }
    let old = svc.cache.upsert_device(device.clone());
    let result = match old {
        None => {
            tracing::info!(device = %device.name, "Device added.");
            svc.driver.add_device(&device).await
        }
        Some(_) => {
            tracing::info!(device = %device.name, "Device updated.");
            svc.driver.update_device(&device).await
        }
    };
    if let Err(error) = result {
        tracing::warn!(device = %device.name, %error, "The driver failed to take the device change.");
    }
}

async fn remove(svc: &Service, name: &str) {
    if let Some(old) = svc.cache.remove_device(name) {
        tracing::info!(device = %name, "Device removed.");
        if let Err(error) = svc.driver.remove_device(&old).await {
            tracing::warn!(device = %name, %error, "The driver failed to remove the device.");
        }
    }
}
