//! `AutoEvent`: a reading a device service takes on its own, on a timer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validate::Validator;

/// Retention policy for the events of one auto event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// Keep at most this many events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cap: Option<i64>,
    /// Keep at least this many events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_cap: Option<i64>,
    /// Keep events this long (`1h`, `2h45m`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub duration: String,
}

impl Retention {
    fn is_empty(&self) -> bool {
        self.max_cap.is_none() && self.min_cap.is_none() && self.duration.is_empty()
    }
}

/// One periodic reading of a resource or command (`autoEvents[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoEvent {
    /// How often, as a duration (`10s`).
    pub interval: String,
    /// Only publish when the value changed. Always emitted, as EdgeX does (no `omitempty`).
    #[serde(default)]
    pub on_change: bool,
    /// Minimal numeric change that counts as a change. Always emitted, as EdgeX does.
    #[serde(default, serialize_with = "crate::common::go_float")]
    pub on_change_threshold: f64,
    /// The resource or command to read.
    pub source_name: String,
    /// How long to keep its events.
    #[serde(default, skip_serializing_if = "Retention::is_empty")]
    pub retention: Retention,
}

impl AutoEvent {
    /// Checks the interval, source name and retention.
    pub fn validate(&self, v: &mut Validator, prefix: &str) {
        v.duration(&format!("{prefix}.interval"), &self.interval);
        if crate::validate::parse_duration(&self.interval).is_some_and(|d| d.is_zero()) {
            v.fail(&format!("{prefix}.interval"), "must be greater than zero");
        }
        v.name(&format!("{prefix}.sourceName"), &self.source_name);
        v.check(self.on_change_threshold >= 0.0, &format!("{prefix}.onChangeThreshold"), "must not be negative");
        if !self.retention.duration.is_empty() {
            v.duration(&format!("{prefix}.retention.duration"), &self.retention.duration);
        }
    }
}

/// Checks a list of auto events under `prefix` (e.g. `device.autoEvents`).
pub(crate) fn validate_all(v: &mut Validator, prefix: &str, events: &[AutoEvent]) {
    for (i, e) in events.iter().enumerate() {
        e.validate(v, &format!("{prefix}[{i}]"));
    }
}
