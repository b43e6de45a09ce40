//! `SystemEvent`: what core-metadata announces when devices, profiles, services or
//! provision watchers change, as EdgeX publishes it on
//! `edgex/system-events/core-metadata/{type}/{action}/{owner}/{profile}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::envelope::API_VERSION;

/// One change to metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemEvent {
    /// Always `v3`.
    pub api_version: String,
    /// `device`, `deviceprofile`, `deviceservice` or `provisionwatcher`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `add`, `update` or `delete`.
    pub action: String,
    /// The announcing service (`core-metadata`).
    pub source: String,
    /// The device service concerned, when there is one.
    #[serde(default)]
    pub owner: String,
    /// Extra context.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub tags: Map<String, Value>,
    /// The entity as it is after the change (before it, for deletes).
    pub details: Value,
    /// When, nanoseconds since the epoch.
    pub timestamp: i64,
}

impl SystemEvent {
    /// A system event from `source` about `details`.
    pub fn new(source: &str, event_type: &str, action: &str, owner: &str, details: Value, timestamp: i64) -> Self {
        Self {
            api_version: API_VERSION.to_owned(),
            event_type: event_type.to_owned(),
            action: action.to_owned(),
            source: source.to_owned(),
            owner: owner.to_owned(),
            tags: Map::new(),
            details,
            timestamp,
        }
    }

    /// The bus topic EdgeX publishes this event on; `profile` is the profile concerned or empty.
    pub fn topic(&self, profile: &str) -> String {
        let mut t = format!("edgex/system-events/{}/{}/{}", self.source, self.event_type, self.action);
        if !self.owner.is_empty() {
            t.push('/');
            t.push_str(&self.owner);
            if !profile.is_empty() {
                t.push('/');
                t.push_str(profile);
            }
        }
        t
    }
}
