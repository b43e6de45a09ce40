//! `ProvisionWatcher`: turns devices found by discovery into devices.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auto_event::{validate_all, AutoEvent};
use crate::common::{is_zero, AdminState};
use crate::validate::Validator;

/// What a discovered device becomes (`discoveredDevice`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredDevice {
    /// Profile of the new device; may be empty.
    #[serde(default)]
    pub profile_name: String,
    /// Admin state of the new device.
    pub admin_state: AdminState,
    /// Auto events of the new device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_events: Vec<AutoEvent>,
    /// Properties of the new device.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

/// A provision watcher as core-metadata stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionWatcher {
    /// Creation time, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub created: i64,
    /// Last change, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub modified: i64,
    /// Unique id (UUID), set by core-metadata.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The device service that runs discovery.
    pub service_name: String,
    /// Labels to search by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Regular expressions a discovered device's protocol properties must match.
    pub identifiers: BTreeMap<String, String>,
    /// Values that exclude a discovered device. EdgeX (Go) matches keys case-insensitively and
    /// its own examples send `blockingidentifiers`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", alias = "blockingidentifiers")]
    pub blocking_identifiers: BTreeMap<String, Vec<String>>,
    /// Whether the watcher is active.
    pub admin_state: AdminState,
    /// What a matching device becomes.
    pub discovered_device: DiscoveredDevice,
}

impl ProvisionWatcher {
    /// Checks the fields EdgeX checks.
    pub fn validate(&self, v: &mut Validator, prefix: &str) {
        v.name(&format!("{prefix}.name"), &self.name);
        v.service_name(&format!("{prefix}.serviceName"), &self.service_name);
        v.labels(&format!("{prefix}.labels"), &self.labels);
        validate_identifiers(v, &format!("{prefix}.identifiers"), &self.identifiers);
        self.discovered_device.validate(v, &format!("{prefix}.discoveredDevice"));
    }
}

impl DiscoveredDevice {
    fn validate(&self, v: &mut Validator, prefix: &str) {
        v.optional_name(&format!("{prefix}.profileName"), &self.profile_name);
        validate_all(v, &format!("{prefix}.autoEvents"), &self.auto_events);
    }
}

fn validate_identifiers(v: &mut Validator, field: &str, ids: &BTreeMap<String, String>) {
    v.check(!ids.is_empty(), field, "must hold at least one identifier");
    for (k, val) in ids {
        v.check(!k.is_empty() && !val.is_empty(), field, "keys and values must not be empty");
    }
}

/// `UpdateDiscoveredDevice`: fields present are changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDiscoveredDevice {
    /// New profile.
    pub profile_name: Option<String>,
    /// New admin state.
    pub admin_state: Option<AdminState>,
    /// New auto events.
    pub auto_events: Option<Vec<AutoEvent>>,
    /// New properties.
    pub properties: Option<Map<String, Value>>,
}

/// `UpdateProvisionWatcher`: fields present are changed, absent ones kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProvisionWatcher {
    /// Identifies the watcher (or `name`).
    pub id: Option<String>,
    /// Identifies the watcher (or `id`); with `id`, renames it.
    pub name: Option<String>,
    /// New service.
    pub service_name: Option<String>,
    /// New labels.
    pub labels: Option<Vec<String>>,
    /// New identifiers.
    pub identifiers: Option<BTreeMap<String, String>>,
    /// New blocking identifiers.
    #[serde(alias = "blockingidentifiers")]
    pub blocking_identifiers: Option<BTreeMap<String, Vec<String>>>,
    /// New admin state.
    pub admin_state: Option<AdminState>,
    /// Changes to what matching devices become.
    pub discovered_device: Option<UpdateDiscoveredDevice>,
}

impl UpdateProvisionWatcher {
    /// Checks the fields present.
    pub fn validate(&self, v: &mut Validator, prefix: &str) {
        crate::validate::check_identity(v, prefix, self.id.as_deref(), self.name.as_deref());
        if let Some(n) = &self.name {
            v.name(&format!("{prefix}.name"), n);
        }
        if let Some(s) = &self.service_name {
            v.service_name(&format!("{prefix}.serviceName"), s);
        }
        if let Some(l) = &self.labels {
            v.labels(&format!("{prefix}.labels"), l);
        }
        if let Some(i) = &self.identifiers {
            validate_identifiers(v, &format!("{prefix}.identifiers"), i);
        }
        if let Some(d) = &self.discovered_device {
            if let Some(p) = &d.profile_name {
                v.optional_name(&format!("{prefix}.discoveredDevice.profileName"), p);
            }
            if let Some(a) = &d.auto_events {
                validate_all(v, &format!("{prefix}.discoveredDevice.autoEvents"), a);
            }
        }
    }

    /// Applies the fields present to `w`.
    pub fn apply(self, w: &mut ProvisionWatcher) {
        macro_rules! set {
            ($($f:ident),*) => { $(if let Some(x) = self.$f { w.$f = x; })* };
        }
        set!(name, service_name, labels, identifiers, blocking_identifiers, admin_state);
        if let Some(d) = self.discovered_device {
            let dd = &mut w.discovered_device;
            if let Some(p) = d.profile_name {
                dd.profile_name = p;
            }
            if let Some(a) = d.admin_state {
                dd.admin_state = a;
            }
            if let Some(a) = d.auto_events {
                dd.auto_events = a;
            }
            if let Some(p) = d.properties {
                dd.properties = p;
            }
        }
    }
}
