//! `DeviceService`: a service that owns devices, and its update form.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::common::{is_zero, AdminState};
use crate::validate::Validator;

/// A device service as core-metadata stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceService {
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
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Labels to search by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Where the service's REST API is reached, e.g. `http://device-virtual:59900`.
    pub base_address: String,
    /// Whether the service takes commands.
    pub admin_state: AdminState,
    /// Service-specific properties.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub properties: Map<String, Value>,
}

impl DeviceService {
    /// Checks the fields EdgeX checks, reporting under `prefix` (e.g. `service`).
    pub fn validate(&self, v: &mut Validator, prefix: &str) {
        v.service_name(&format!("{prefix}.name"), &self.name);
        v.labels(&format!("{prefix}.labels"), &self.labels);
        check_base_address(v, &format!("{prefix}.baseAddress"), &self.base_address);
    }
}

/// A base address must be an absolute URI with a scheme (`http://host:port`).
pub(crate) fn check_base_address(v: &mut Validator, field: &str, value: &str) {
    let ok = value.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) && !rest.is_empty()
    }) && !value.chars().any(char::is_whitespace);
    v.check(ok, field, "must be an absolute URI such as http://localhost:59900");
}

/// `UpdateDeviceService`: fields present are changed, absent ones kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDeviceService {
    /// Identifies the service (or `name`).
    pub id: Option<String>,
    /// Identifies the service (or `id`); with `id`, renames it.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New base address.
    pub base_address: Option<String>,
    /// New labels.
    pub labels: Option<Vec<String>>,
    /// New admin state.
    pub admin_state: Option<AdminState>,
    /// New properties.
    pub properties: Option<Map<String, Value>>,
}

impl UpdateDeviceService {
    /// Checks the fields present.
    pub fn validate(&self, v: &mut Validator, prefix: &str) {
        crate::validate::check_identity(v, prefix, self.id.as_deref(), self.name.as_deref());
        if let Some(n) = &self.name {
            v.service_name(&format!("{prefix}.name"), n);
        }
        if let Some(l) = &self.labels {
            v.labels(&format!("{prefix}.labels"), l);
        }
        if let Some(a) = &self.base_address {
            check_base_address(v, &format!("{prefix}.baseAddress"), a);
        }
    }

    /// Applies the fields present to `s`.
    pub fn apply(self, s: &mut DeviceService) {
        if let Some(n) = self.name {
            s.name = n;
        }
        if let Some(d) = self.description {
            s.description = d;
        }
        if let Some(a) = self.base_address {
            s.base_address = a;
        }
        if let Some(l) = self.labels {
            s.labels = l;
        }
        if let Some(a) = self.admin_state {
            s.admin_state = a;
        }
        if let Some(p) = self.properties {
            s.properties = p;
        }
    }
}
