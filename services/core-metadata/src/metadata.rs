//! The core-metadata domain: typed operations over the store, the rules EdgeX applies
//! between devices, profiles and services, and the system events announced on change.

use std::sync::Arc;

use oxedge_contracts::{Device, DeviceProfile, EdgeXError, ErrorKind, SystemEvent, UnitsOfMeasure, Validator};
use serde::Serialize;

use crate::entity::Entity;
use crate::store::{Filter, Kind, MetadataStore, Page, StoreError};

/// The service name core-metadata announces itself as.
pub const SERVICE_NAME: &str = "core-metadata";

/// Receives every change to metadata. The message bus publishes them as EdgeX system
/// events; tests and the all-in-one may listen in-process.
pub trait SystemEventHook: Send + Sync + 'static {
    /// Called after each successful change; `profile` is the profile concerned or empty.
    fn announce(&self, event: SystemEvent, profile: &str);
}

/// A hook that forwards system events to in-process subscribers.
#[derive(Clone)]
pub struct BroadcastHook(pub tokio::sync::broadcast::Sender<SystemEvent>);

impl SystemEventHook for BroadcastHook {
    fn announce(&self, event: SystemEvent, _profile: &str) {
        // No subscriber is fine: nobody listens yet.
        let _ = self.0.send(event);
    }
}

/// The core-metadata domain, shared by all request handlers.
#[derive(Clone)]
pub struct Metadata {
    store: Arc<dyn MetadataStore>,
    hook: Arc<dyn SystemEventHook>,
    uom: Arc<UnitsOfMeasure>,
    validate_units: bool,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    now_ns() / 1_000_000
}

fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or_default()
}

/// Maps a store failure to the API error EdgeX answers with.
pub fn store_error(e: StoreError) -> EdgeXError {
    let kind = match &e {
        StoreError::NotFound { .. } => ErrorKind::EntityDoesNotExist,
        StoreError::Duplicate { .. } => ErrorKind::DuplicateName,
        StoreError::InUse { .. } => ErrorKind::StatusConflict,
        StoreError::Backend(_) => ErrorKind::ServerError,
    };
    EdgeXError::new(kind, e.to_string())
}

fn event_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Service => "deviceservice",
        Kind::Profile => "deviceprofile",
        Kind::Device => "device",
        Kind::Watcher => "provisionwatcher",
    }
}

/// Owner (device service) and profile of an entity, for system event topics.
fn owner_and_profile<T: Entity>(e: &T) -> (String, String) {
    let v = serde_json::to_value(e).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_owned();
    match T::KIND {
        Kind::Service => (s("name"), String::new()),
        Kind::Profile => (String::new(), s("name")),
        Kind::Device => (s("serviceName"), s("profileName")),
        Kind::Watcher => (
            s("serviceName"),
            v.pointer("/discoveredDevice/profileName").and_then(|x| x.as_str()).unwrap_or_default().to_owned(),
        ),
    }
}

impl Metadata {
    /// A domain over `store`, announcing changes to `hook`.
    pub fn new(store: Arc<dyn MetadataStore>, hook: Arc<dyn SystemEventHook>, uom: UnitsOfMeasure) -> Self {
        Self { store, hook, uom: Arc::new(uom), validate_units: false }
    }

    /// Rejects profiles whose resources use units not listed in the units of measure.
    pub fn with_unit_validation(mut self, on: bool) -> Self {
        self.validate_units = on;
        self
    }

    /// The units of measure.
    pub fn uom(&self) -> &UnitsOfMeasure {
        &self.uom
    }

    /// The store, for health checks.
    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    fn announce<T: Entity>(&self, e: &T, action: &str) {
        let (owner, profile) = owner_and_profile(e);
        let details = serde_json::to_value(e).unwrap_or_default();
        let ev = SystemEvent::new(SERVICE_NAME, event_type(T::KIND), action, &owner, details, now_ns());
        self.hook.announce(ev, &profile);
    }

    /// Adds `e`, keeping a given id or making one; returns the id.
    pub async fn add<T: Entity>(&self, mut e: T) -> Result<String, EdgeXError> {
        if !e.id().is_empty() && uuid::Uuid::parse_str(e.id()).is_err() {
            return Err(EdgeXError::invalid(format!("{}.id: must be a UUID", event_type(T::KIND))));
        }
        let id = if e.id().is_empty() { uuid::Uuid::new_v4().to_string() } else { e.id().to_owned() };
        let now = now_ms();
        e.stamp(id.clone(), now, now);
        e.strip_computed();
        let rec = e.to_record()?;
        self.store.insert(T::KIND, rec, e.requires()).await.map_err(store_error)?;
        self.announce(&e, "add");
        Ok(id)
    }

    /// Stores `e` over the existing record with the same id.
    pub async fn replace<T: Entity>(&self, mut e: T) -> Result<(), EdgeXError> {
        e.touch(now_ms());
        e.strip_computed();
        let rec = e.to_record()?;
        self.store.update(T::KIND, rec, e.requires()).await.map_err(store_error)?;
        self.announce(&e, "update");
        Ok(())
    }

    /// The entity named `name`, or 404.
    pub async fn get<T: Entity>(&self, name: &str) -> Result<T, EdgeXError> {
        match self.store.get_by_name(T::KIND, name).await.map_err(store_error)? {
            Some(rec) => T::from_record(&rec),
            None => Err(EdgeXError::not_found(T::KIND.label(), name)),
        }
    }

    /// The entity with id `id`, or 404.
    pub async fn get_by_id<T: Entity>(&self, id: &str) -> Result<T, EdgeXError> {
        match self.store.get_by_id(T::KIND, id).await.map_err(store_error)? {
            Some(rec) => T::from_record(&rec),
            None => Err(EdgeXError::new(
                ErrorKind::EntityDoesNotExist,
                format!("{} with id '{id}' does not exist", T::KIND.label()),
            )),
        }
    }

    /// The target of an update: by id when given, else by name.
    pub async fn find<T: Entity>(&self, id: Option<&str>, name: Option<&str>) -> Result<T, EdgeXError> {
        match (id.filter(|s| !s.is_empty()), name) {
            (Some(id), _) => self.get_by_id(id).await,
            (None, Some(name)) => self.get(name).await,
            (None, None) => Err(EdgeXError::invalid("id or name is required")),
        }
    }

    /// Deletes the entity named `name`; 404 if absent, 409 if in use.
    pub async fn delete<T: Entity>(&self, name: &str) -> Result<T, EdgeXError> {
        let rec = self.store.delete_by_name(T::KIND, name).await.map_err(store_error)?;
        let e = T::from_record(&rec)?;
        self.announce(&e, "delete");
        Ok(e)
    }

    /// Deletes the entity with id `id`; 404 if absent, 409 if in use.
    pub async fn delete_by_id<T: Entity>(&self, id: &str) -> Result<T, EdgeXError> {
        let rec = self.store.delete_by_id(T::KIND, id).await.map_err(store_error)?;
        let e = T::from_record(&rec)?;
        self.announce(&e, "delete");
        Ok(e)
    }

    /// A page of entities matching `filter`, and how many match in all.
    pub async fn list<T: Entity>(&self, filter: &Filter, page: Page) -> Result<(Vec<T>, u64), EdgeXError> {
        let (recs, total) = self.store.query(T::KIND, filter, page).await.map_err(store_error)?;
        let items = recs.iter().map(T::from_record).collect::<Result<Vec<_>, _>>()?;
        Ok((items, total))
    }

    /// Every entity matching `filter`.
    pub async fn all<T: Entity>(&self, filter: &Filter) -> Result<Vec<T>, EdgeXError> {
        Ok(self.list(filter, Page { offset: 0, limit: None }).await?.0)
    }

    /// Sets each profile's `linkedDeviceCount`: how many devices use it.
    pub async fn count_linked_devices(&self, profiles: &mut [DeviceProfile]) -> Result<(), EdgeXError> {
        for p in profiles {
            let filter = Filter { profile: Some(p.info.name.clone()), ..Default::default() };
            let (_, total) = self
                .store
                .query(Kind::Device, &filter, Page { offset: 0, limit: Some(0) })
                .await
                .map_err(store_error)?;
            p.info.linked_device_count = Some(total);
        }
        Ok(())
    }

    /// Checks a profile's units against the units of measure, when that is configured.
    pub fn check_units(&self, p: &DeviceProfile, v: &mut Validator, prefix: &str) {
        if !self.validate_units {
            return;
        }
        for (i, r) in p.device_resources.iter().enumerate() {
            let u = &r.properties.units;
            if !u.is_empty() && !self.uom.contains(u) {
                v.fail(
                    &format!("{prefix}.deviceResources[{i}].properties.units"),
                    format!("'{u}' is not a known unit"),
                );
            }
        }
    }

    /// Checks that a device's auto events name readable sources of its profile (400 otherwise).
    pub async fn check_device_fits_profile(&self, d: &Device, prefix: &str) -> Result<(), EdgeXError> {
        if d.auto_events.is_empty() {
            return Ok(());
        }
        let profile: DeviceProfile = self.get(&d.profile_name).await?;
        let mut v = Validator::new();
        device_fits_profile(d, &profile, &mut v, prefix);
        v.finish()
    }

    /// Rejects a parent that is the device itself or one of its descendants (400): a cycle
    /// would make the devices undeletable and `descendantsOf` endless.
    pub async fn check_parent(&self, d: &Device, prefix: &str) -> Result<(), EdgeXError> {
        let mut seen = std::collections::HashSet::new();
        let mut ancestor = d.parent.clone();
        while !ancestor.is_empty() && seen.insert(ancestor.clone()) {
            if ancestor == d.name {
                return Err(EdgeXError::invalid(format!(
                    "{prefix}.parent: '{}' is '{}' or one of its descendants; devices cannot form a cycle",
                    d.parent, d.name
                )));
            }
            ancestor = match self.get::<Device>(&ancestor).await {
                Ok(parent) => parent.parent,
                // A missing parent is the store's 404 to report.
                Err(e) if e.kind == ErrorKind::EntityDoesNotExist => break,
                Err(e) => return Err(e),
            };
        }
        Ok(())
    }

    /// Devices using `profile` that would no longer fit its new version: 409 naming them.
    pub async fn check_profile_change(&self, profile: &DeviceProfile) -> Result<(), EdgeXError> {
        let filter = Filter { profile: Some(profile.info.name.clone()), ..Default::default() };
        let devices: Vec<Device> = self.all(&filter).await?;
        for d in &devices {
            let mut v = Validator::new();
            device_fits_profile(d, profile, &mut v, &format!("device '{}'", d.name));
            if let Err(e) = v.finish() {
                return Err(EdgeXError::conflict(format!(
                    "the change breaks devices using the profile: {}",
                    e.message
                )));
            }
        }
        Ok(())
    }
}

/// Records a problem for each auto event naming no readable resource or command of `p`.
pub fn device_fits_profile(d: &Device, p: &DeviceProfile, v: &mut Validator, prefix: &str) {
    for (i, ae) in d.auto_events.iter().enumerate() {
        let field = format!("{prefix}.autoEvents[{i}].sourceName");
        let readable = match (p.resource(&ae.source_name), p.command(&ae.source_name)) {
            (Some(r), _) => Some(r.properties.read_write.readable()),
            (None, Some(c)) => Some(c.read_write.readable()),
            (None, None) => None,
        };
        match readable {
            None => v.fail(
                &field,
                format!("'{}' is neither a resource nor a command of profile '{}'", ae.source_name, p.info.name),
            ),
            Some(false) => v.fail(&field, format!("'{}' cannot be read", ae.source_name)),
            Some(true) => {}
        }
    }
}

/// Serializes for a response; DTOs always serialize.
pub fn to_value<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}
