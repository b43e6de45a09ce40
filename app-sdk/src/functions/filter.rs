//! Filters by profile, device, source or resource name, as EdgeX's `FilterByProfileName`,
//! `FilterByDeviceName`, `FilterBySourceName` and `FilterByResourceName`: each value is a
//! regular expression matched anywhere in the name (Go's `MatchString`; anchor it with `^…$`
//! for an exact name); `FilterOut` turns "keep what matches" into "drop what matches"; no
//! values lets everything through.

use async_trait::async_trait;
use regex::Regex;
use serde::Deserialize;

use super::params::{de, ParameterError};
use crate::{Context, Data, Function, FunctionError};

/// What a [`Filter`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterBy {
    /// The event's `profileName` (`FilterByProfileName`, parameter `ProfileNames`).
    ProfileName,
    /// The event's `deviceName` (`FilterByDeviceName`, parameter `DeviceNames`).
    DeviceName,
    /// The event's `sourceName` (`FilterBySourceName`, parameter `SourceNames`).
    SourceName,
    /// Each reading's `resourceName` (`FilterByResourceName`, parameter `ResourceNames`):
    /// readings are kept or dropped, and the event goes on while one reading is left.
    ResourceName,
}

impl FilterBy {
    /// The function's EdgeX name.
    pub fn function_name(self) -> &'static str {
        match self {
            FilterBy::ProfileName => "FilterByProfileName",
            FilterBy::DeviceName => "FilterByDeviceName",
            FilterBy::SourceName => "FilterBySourceName",
            FilterBy::ResourceName => "FilterByResourceName",
        }
    }
}

/// A filter's settings, as EdgeX's parameters give them: the names (a comma-separated list in
/// `ProfileNames`, `DeviceNames`, `SourceNames` or `ResourceNames`, after the function) and
/// `FilterOut`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterSettings {
    /// Regular expressions, each matched anywhere in the name.
    pub names: Vec<String>,
    /// Drops what matches instead of keeping it.
    pub filter_out: bool,
}

macro_rules! filter_parameters {
    ($name:ident, $field:literal) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            #[serde(rename = $field, deserialize_with = "de::list")]
            names: Vec<String>,
            #[serde(rename = "FilterOut", default, deserialize_with = "de::flag")]
            filter_out: bool,
        }
    };
}

filter_parameters!(ProfileNames, "ProfileNames");
filter_parameters!(DeviceNames, "DeviceNames");
filter_parameters!(SourceNames, "SourceNames");
filter_parameters!(ResourceNames, "ResourceNames");

impl FilterSettings {
    /// Reads EdgeX's parameters for a filter by `by` (`DeviceNames` and `FilterOut` for
    /// [`FilterBy::DeviceName`]).
    pub fn from_parameters(
        by: FilterBy,
        parameters: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, ParameterError> {
        use super::params::from_parameters as read;
        let (names, filter_out) = match by {
            FilterBy::ProfileName => read::<ProfileNames>(parameters).map(|p| (p.names, p.filter_out))?,
            FilterBy::DeviceName => read::<DeviceNames>(parameters).map(|p| (p.names, p.filter_out))?,
            FilterBy::SourceName => read::<SourceNames>(parameters).map(|p| (p.names, p.filter_out))?,
            FilterBy::ResourceName => read::<ResourceNames>(parameters).map(|p| (p.names, p.filter_out))?,
        };
        Ok(Self { names, filter_out })
    }
}

/// Keeps (or, with `filter_out`, drops) events or readings whose name matches.
#[derive(Debug, Clone)]
pub struct Filter {
    by: FilterBy,
    patterns: Vec<Regex>,
    filter_out: bool,
}

impl Filter {
    /// A filter by `by`; a name that is not a valid regular expression is an error naming it.
    pub fn new(by: FilterBy, settings: FilterSettings) -> Result<Self, ParameterError> {
        let parameter = match by {
            FilterBy::ProfileName => "ProfileNames",
            FilterBy::DeviceName => "DeviceNames",
            FilterBy::SourceName => "SourceNames",
            FilterBy::ResourceName => "ResourceNames",
        };
        let patterns = settings
            .names
            .iter()
            .map(|name| {
                Regex::new(name).map_err(|e| {
                    ParameterError::new(parameter, format!("'{name}' is not a valid regular expression: {e}"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { by, patterns, filter_out: settings.filter_out })
    }

    /// Whether a thing named `name` goes on.
    fn accepts(&self, name: &str) -> bool {
        if self.patterns.is_empty() {
            return true;
        }
        self.patterns.iter().any(|pattern| pattern.is_match(name)) != self.filter_out
    }
}

#[async_trait]
impl Function for Filter {
    fn name(&self) -> &str {
        self.by.function_name()
    }

    async fn call(&self, _ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let Data::Event(mut event) = data else {
            return Err(FunctionError::new(format!("{}: expects an event, got {}", self.name(), super::kind(&data))));
        };
        let keep = match self.by {
            FilterBy::ProfileName => self.accepts(&event.profile_name),
            FilterBy::DeviceName => self.accepts(&event.device_name),
            FilterBy::SourceName => self.accepts(&event.source_name),
            FilterBy::ResourceName => {
                event.readings.retain(|reading| self.accepts(&reading.resource_name));
                !event.readings.is_empty()
            }
        };
        Ok(keep.then_some(Data::Event(event)))
    }
}
