//! `Device`: one device, the service that owns it and the profile that describes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auto_event::{validate_all, AutoEvent};
use crate::common::{is_zero, AdminState, OperatingState};
use crate::validate::Validator;

/// Properties of one protocol, e.g. `{"Address": "10.0.0.5", "Port": "502"}`.
pub type ProtocolProperties = BTreeMap<String, Value>;

/// A device as core-metadata stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Device {
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
    /// Name of the parent device, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Whether the device takes commands.
    pub admin_state: AdminState,
    /// Whether the device is reachable.
    pub operating_state: OperatingState,
    /// Labels to search by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Where the device is; any JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Value>,
    /// The device service that owns the device.
    pub service_name: String,
    /// The profile that describes the device.
    pub profile_name: String,
    /// Readings the service takes on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_events: Vec<AutoEvent>,
    /// How to reach the device, per protocol.
    #[schema(value_type = BTreeMap<String, Object>)]
    pub protocols: BTreeMap<String, ProtocolProperties>,
    /// Tags added to the device's events.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub tags: Map<String, Value>,
    /// Device-specific properties.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

impl Device {
    /// Checks the fields EdgeX checks, reporting under `prefix` (e.g. `device`).
    pub fn validate(&self, v: &mut Validator, prefix: &str) {
        v.name(&format!("{prefix}.name"), &self.name);
        v.optional_name(&format!("{prefix}.parent"), &self.parent);
        v.check(self.parent != self.name, &format!("{prefix}.parent"), "a device cannot be its own parent");
        v.service_name(&format!("{prefix}.serviceName"), &self.service_name);
        v.name(&format!("{prefix}.profileName"), &self.profile_name);
        v.labels(&format!("{prefix}.labels"), &self.labels);
        validate_protocols(v, &format!("{prefix}.protocols"), &self.protocols);
        validate_all(v, &format!("{prefix}.autoEvents"), &self.auto_events);
    }
}

fn validate_protocols(v: &mut Validator, field: &str, protocols: &BTreeMap<String, ProtocolProperties>) {
    v.check(!protocols.is_empty(), field, "must name at least one protocol");
    for name in protocols.keys() {
        v.check(!name.trim().is_empty(), field, "protocol names must not be empty");
    }
}

/// `UpdateDevice`: fields present are changed, absent ones kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDevice {
    /// Identifies the device (or `name`).
    pub id: Option<String>,
    /// Identifies the device (or `id`); with `id`, renames it.
    pub name: Option<String>,
    /// New parent.
    pub parent: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New admin state.
    pub admin_state: Option<AdminState>,
    /// New operating state.
    pub operating_state: Option<OperatingState>,
    /// New owning service.
    pub service_name: Option<String>,
    /// New profile.
    pub profile_name: Option<String>,
    /// New labels.
    pub labels: Option<Vec<String>>,
    /// New location.
    pub location: Option<Value>,
    /// New tags.
    pub tags: Option<Map<String, Value>>,
    /// New auto events.
    pub auto_events: Option<Vec<AutoEvent>>,
    /// New protocols.
    #[schema(value_type = Option<BTreeMap<String, Object>>)]
    pub protocols: Option<BTreeMap<String, ProtocolProperties>>,
    /// New properties.
    pub properties: Option<Map<String, Value>>,
}

impl UpdateDevice {
    /// Checks the fields present.
    pub fn validate(&self, v: &mut Validator, prefix: &str) {
        crate::validate::check_identity(v, prefix, self.id.as_deref(), self.name.as_deref());
        if let Some(n) = &self.name {
            v.name(&format!("{prefix}.name"), n);
        }
        if let Some(p) = &self.parent {
            v.optional_name(&format!("{prefix}.parent"), p);
        }
        if let Some(s) = &self.service_name {
            v.service_name(&format!("{prefix}.serviceName"), s);
        }
        if let Some(p) = &self.profile_name {
            v.name(&format!("{prefix}.profileName"), p);
        }
        if let Some(l) = &self.labels {
            v.labels(&format!("{prefix}.labels"), l);
        }
        if let Some(p) = &self.protocols {
            validate_protocols(v, &format!("{prefix}.protocols"), p);
        }
        if let Some(a) = &self.auto_events {
            validate_all(v, &format!("{prefix}.autoEvents"), a);
        }
    }

    /// Applies the fields present to `d`.
    pub fn apply(self, d: &mut Device) {
        macro_rules! set {
            ($($f:ident),*) => { $(if let Some(x) = self.$f { d.$f = x; })* };
        }
        set!(name, parent, description, admin_state, operating_state, service_name, profile_name);
        set!(labels, tags, auto_events, protocols, properties);
        if let Some(l) = self.location {
            d.location = Some(l);
        }
    }
}
