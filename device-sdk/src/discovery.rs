//! Device discovery: `POST /api/v3/discovery` (answered 202, run in the background),
//! `DELETE /api/v3/discovery[/requestId/{id}]`, periodic discovery, and turning discovered
//! devices into devices through the service's provision watchers, as EdgeX does.
//!
//! Profile scanning (`POST /api/v3/profilescan`, `DELETE /api/v3/profilescan/device/name/{name}`)
//! is answered 501 as EdgeX answers it for a driver without profile scanning: no driver here
//! has it.
//!
//! A discovered device becomes a device when an UNLOCKED provision watcher of the service
//! matches it: every `identifiers` regular expression (unanchored, as in EdgeX) matches the value of its key (looked
//! up in the device's protocols, then its properties), and no `blockingIdentifiers` value
//! equals it. The first matching watcher (by name) gives the profile, admin state, auto
//! events and properties; labels of both are kept.

use std::sync::{Arc, Mutex};

use actix_web::{web, HttpResponse};
use oxedge_contracts::{AdminState, BaseResponse, Device, EdgeXError, ErrorKind, OperatingState, ProvisionWatcher};
use oxedge_runtime::{json, ApiResult};
use regex::Regex;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use crate::driver::Discovered;
use crate::service::Service;

/// The discovery run in progress, if any.
#[derive(Default)]
pub(crate) struct Discovery {
    running: Mutex<Option<(String, CancellationToken)>>,
}

impl Discovery {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(String, CancellationToken)>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Mounts the discovery routes.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/discovery").post(start).delete(stop_any))
        .service(web::resource("/discovery/requestId/{requestId}").delete(stop_one))
        .service(web::resource("/profilescan").post(profile_scan))
        .service(web::resource("/profilescan/device/name/{name}").delete(profile_scan));
}

/// Profile scanning and stopping it: 501, as EdgeX answers when the driver has no profile scan.
async fn profile_scan() -> HttpResponse {
    let mut answer = BaseResponse::new("", 501);
    answer.message = "Profile scan is not implemented".to_owned();
    json(501, &answer)
}

/// Starts a discovery run in the background; 202 with its request id.
async fn start(svc: web::Data<Arc<Service>>) -> ApiResult {
    let svc = svc.get_ref().clone();
    let request_id = begin(&svc)?;
    let mut answer = BaseResponse::new(request_id, 202);
    answer.message = "Device Discovery is triggered".to_owned();
    Ok(json(202, &answer))
}

/// Cancels the discovery run in progress, if any.
async fn stop_any(svc: web::Data<Arc<Service>>) -> HttpResponse {
    if let Some((id, token)) = svc.get_ref().discovery.lock().take() {
        tracing::info!(request_id = %id, "Discovery cancelled.");
        token.cancel();
    }
    json(200, &BaseResponse::new("", 200))
}

/// Cancels the discovery run `requestId`; 404 when that is not the run in progress.
async fn stop_one(svc: web::Data<Arc<Service>>, path: web::Path<String>) -> ApiResult {
    let wanted = path.into_inner();
    let mut running = svc.get_ref().discovery.lock();
    match running.as_ref() {
        Some((id, token)) if *id == wanted => {
            token.cancel();
            *running = None;
            tracing::info!(request_id = %wanted, "Discovery cancelled.");
            Ok(json(200, &BaseResponse::new("", 200)))
        }
        _ => Err(EdgeXError::not_found("discovery request", &wanted).into()),
    }
}

/// Checks that discovery may run and starts it as a task; returns its request id.
pub(crate) fn begin(svc: &Arc<Service>) -> Result<String, EdgeXError> {
    if !svc.config.device.discovery.enabled {
        return Err(EdgeXError::new(
            ErrorKind::ServiceUnavailable,
            "device discovery is disabled (device.discovery.enabled)",
        ));
    }
    if svc.is_locked() {
        return Err(EdgeXError::new(ErrorKind::ServiceLocked, format!("device service '{}' is locked", svc.name)));
    }
    let mut running = svc.discovery.lock();
    if let Some((id, _)) = running.as_ref() {
        return Err(EdgeXError::new(
            ErrorKind::ServiceUnavailable,
            format!("device discovery {id} is already running"),
        ));
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let token = CancellationToken::new();
    *running = Some((request_id.clone(), token.clone()));
    drop(running);
    let svc = svc.clone();
    let id = request_id.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = token.cancelled() => {}
            _ = run(&svc, &id) => {}
        }
        let mut running = svc.discovery.lock();
        if running.as_ref().is_some_and(|(current, _)| *current == id) {
            *running = None;
        }
    });
    Ok(request_id)
}

/// One discovery run: asks the driver, then provisions what the watchers take.
async fn run(svc: &Service, request_id: &str) {
    tracing::info!(%request_id, "Discovery started.");
    match svc.driver.discover().await {
        Ok(found) => match provision(svc, found).await {
            Ok(added) => tracing::info!(%request_id, added, "Discovery finished."),
            Err(error) => tracing::warn!(%request_id, %error, "Discovered devices could not be provisioned."),
        },
        Err(error) => tracing::warn!(%request_id, %error, "The driver's discovery failed."),
    }
}

/// Runs discovery every `device.discovery.interval` until shutdown, when enabled.
pub(crate) async fn periodic(svc: Arc<Service>, shutdown: CancellationToken) {
    let Some(interval) = svc.config.device.discovery.interval().filter(|_| svc.config.device.discovery.enabled) else {
        return;
    };
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if let Err(error) = begin(&svc) {
            tracing::debug!(%error, "Periodic discovery skipped.");
        }
    }
}

/// Adds the devices of `found` that a provision watcher of the service takes; returns how
/// many were added. Fails only when core-metadata cannot be asked for the watchers.
pub(crate) async fn provision(svc: &Service, found: Vec<Discovered>) -> Result<usize, EdgeXError> {
    let mut watchers = svc.metadata.provision_watchers_of_service(&svc.name).await?;
    watchers.retain(|w| w.admin_state == AdminState::Unlocked);
    watchers.sort_by(|a, b| a.name.cmp(&b.name));
    let matchers: Vec<Matcher> = watchers.iter().filter_map(Matcher::new).collect();
    let mut added = 0;
    for discovered in found {
        if svc.cache.device(&discovered.name).is_some() {
            continue;
        }
        let Some(m) = matchers.iter().find(|m| m.takes(&discovered)) else {
            tracing::debug!(device = %discovered.name, "No provision watcher takes the discovered device.");
            continue;
        };
        let device = m.device(&svc.name, discovered);
        if let Err(error) = svc.driver.validate_device(&device).await {
            tracing::warn!(device = %device.name, %error, "The driver rejected a discovered device.");
            continue;
        }
        let name = device.name.clone();
        match svc.metadata.add_device(device).await {
            Ok(_) => {
                added += 1;
                tracing::info!(device = %name, watcher = %m.watcher.name, "Discovered device added.");
            }
            Err(e) if e.kind == ErrorKind::DuplicateName => {}
            Err(error) => tracing::warn!(device = %name, %error, "Adding a discovered device failed."),
        }
    }
    Ok(added)
}

/// A provision watcher with its identifiers compiled.
struct Matcher<'a> {
    watcher: &'a ProvisionWatcher,
    identifiers: Vec<(&'a str, Regex)>,
}

impl<'a> Matcher<'a> {
    /// `None` (logged) when an identifier is not a valid regular expression or the watcher
    /// names no profile.
    fn new(watcher: &'a ProvisionWatcher) -> Option<Self> {
        if watcher.discovered_device.profile_name.is_empty() {
            tracing::warn!(watcher = %watcher.name, "Provision watcher names no profile (discoveredDevice.profileName); skipped.");
            return None;
        }
        let mut identifiers = Vec::new();
        for (key, pattern) in &watcher.identifiers {
            // Unanchored, as EdgeX's Go `regexp.MatchString`: `^…$` in the pattern anchors it.
            match Regex::new(pattern) {
                Ok(re) => identifiers.push((key.as_str(), re)),
                Err(error) => {
                    tracing::warn!(watcher = %watcher.name, identifier = %key, %error,
                        "Provision watcher identifier is not a valid regular expression; watcher skipped.");
                    return None;
                }
            }
        }
        Some(Self { watcher, identifiers })
    }

    fn takes(&self, d: &Discovered) -> bool {
        let identified = self.identifiers.iter().all(|(key, re)| values(d, key).iter().any(|v| re.is_match(v)));
        let blocked = self
            .watcher
            .blocking_identifiers
            .iter()
            .any(|(key, blocked)| values(d, key).iter().any(|v| blocked.iter().any(|b| b == v)));
        identified && !blocked
    }

    fn device(&self, service: &str, d: Discovered) -> Device {
        let dd = &self.watcher.discovered_device;
        let mut labels = d.labels;
        labels.extend(self.watcher.labels.iter().filter(|l| !labels.contains(l)).cloned().collect::<Vec<_>>());
        let mut properties = dd.properties.clone();
        properties.extend(d.properties);
        Device {
            created: 0,
            modified: 0,
            id: String::new(),
            name: d.name,
            parent: String::new(),
            description: d.description,
            admin_state: dd.admin_state,
            operating_state: OperatingState::Up,
            labels,
            location: None,
            service_name: service.to_owned(),
            profile_name: dd.profile_name.clone(),
            auto_events: dd.auto_events.clone(),
            protocols: d.protocols,
            tags: Default::default(),
            properties,
        }
    }
}

/// The values a discovered device has for `key`, in its protocols then its properties, as text.
fn values(d: &Discovered, key: &str) -> Vec<String> {
    let text = |v: &Json| match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    d.protocols.values().filter_map(|p| p.get(key)).chain(d.properties.get(key)).map(text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher() -> ProvisionWatcher {
        serde_json::from_value(serde_json::json!({
            "name": "w", "serviceName": "s", "adminState": "UNLOCKED", "labels": ["found"],
            "identifiers": {"Address": "sim[0-9]+", "Port": "3[0-9]{2}"},
            "blockingIdentifiers": {"Port": ["399"]},
            "discoveredDevice": {"profileName": "P", "adminState": "LOCKED",
                "autoEvents": [{"interval": "1s", "sourceName": "Temperature"}]}
        }))
        .unwrap()
    }

    fn discovered(address: &str, port: &str) -> Discovered {
        let mut props = oxedge_contracts::ProtocolProperties::new();
        props.insert("Address".into(), address.into());
        props.insert("Port".into(), port.into());
        Discovered {
            name: format!("{address}-{port}"),
            protocols: [("tcp".to_owned(), props)].into(),
            ..Default::default()
        }
    }

    #[test]
    fn watchers_match_identifiers_and_honour_blocking_ones() {
        let w = watcher();
        let m = Matcher::new(&w).unwrap();
        assert!(m.takes(&discovered("sim1", "300")));
        assert!(!m.takes(&discovered("sim1", "399")), "blocked");
        assert!(!m.takes(&discovered("other1", "300")), "address does not match");
        assert!(m.takes(&discovered("xsim1", "300")), "unanchored, as in EdgeX");
        let d = m.device("s", discovered("sim7", "301"));
        assert_eq!((d.profile_name.as_str(), d.admin_state, d.service_name.as_str()), ("P", AdminState::Locked, "s"));
        assert_eq!(d.auto_events.len(), 1);
        assert_eq!(d.labels, ["found"]);
    }

    #[test]
    fn a_bad_pattern_disables_the_watcher() {
        let mut w = watcher();
        w.identifiers.insert("Address".into(), "sim[".into());
        assert!(Matcher::new(&w).is_none());
    }
}
