//! core-command's configuration: defaults in code, YAML file, `OXEDGE_*` overrides
//! (`OXEDGE_COMMAND_TRANSPORT=bus`, `OXEDGE_CLIENTS_CORE_METADATA_URL=http://…`).

use std::time::Duration;

use oxedge_bus::config::{BusConfig, BusType};
use oxedge_contracts::GoDuration;
use oxedge_runtime::config::{ClientsSection, LogSection, ServiceSection};
use serde::{Deserialize, Serialize};

/// The default port, EdgeX's.
pub const DEFAULT_PORT: u16 = 59882;

/// How commands reach the device service that owns the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// HTTP to the device service's `baseAddress` from core-metadata (EdgeX's default).
    Rest,
    /// Request/reply on the message bus: `edgex/device/command/request/{service}/{device}/{command}/{get|set}`,
    /// answered on `edgex/response/{service}/{requestId}`.
    Bus,
}

/// How commands are routed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommandSection {
    /// `rest` or `bus`.
    pub transport: Transport,
    /// How long a device service may take to answer a command, as a Go duration (more than
    /// zero); then 504.
    pub timeout: GoDuration,
    /// The base URL announced in each command's `url`; empty: `http://` + the address
    /// core-command listens on.
    pub public_url: String,
    /// How long devices, profiles and device services read from core-metadata are reused, as
    /// a Go duration; `0` reads them for every command. Used only with a message bus, while
    /// core-command follows core-metadata's system events, which drop them on any change.
    pub cache_ttl: GoDuration,
}

impl Default for CommandSection {
    fn default() -> Self {
        Self {
            transport: Transport::Rest,
            timeout: Duration::from_secs(5).into(),
            public_url: String::new(),
            cache_ttl: Duration::from_secs(30).into(),
        }
    }
}

/// The whole configuration of core-command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommandConfig {
    /// HTTP listener and limits.
    pub service: ServiceSection,
    /// Logging.
    pub log: LogSection,
    /// The message bus: commands with `command.transport: bus`, and the bus requests of
    /// external clients (`edgex/core/command/request/#`) in any case.
    pub bus: BusConfig,
    /// The services core-command calls.
    pub clients: ClientsSection,
    /// How commands are routed.
    pub command: CommandSection,
}

impl Default for CommandConfig {
    fn default() -> Self {
        Self {
            service: ServiceSection { port: DEFAULT_PORT, ..Default::default() },
            log: LogSection::default(),
            bus: BusConfig { kind: BusType::Mqtt, ..BusConfig::default() },
            clients: ClientsSection::default(),
            command: CommandSection::default(),
        }
    }
}

impl CommandSection {
    /// `timeout` as a duration.
    pub fn timeout(&self) -> Duration {
        self.timeout.get()
    }

    /// `cache_ttl` as a duration; zero when metadata is not cached.
    pub fn cache_ttl(&self) -> Duration {
        self.cache_ttl.get()
    }
}

impl CommandConfig {
    /// Checks what serde cannot, naming every bad key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut problems = self.clients.core_metadata.problems("clients.core_metadata");
        if self.command.timeout.is_zero() {
            problems.push("command.timeout: must be more than 0s".to_owned());
        }
        let public_url = &self.command.public_url;
        if !(public_url.is_empty() || public_url.starts_with("http://") || public_url.starts_with("https://")) {
            problems.push(format!("command.public_url: '{public_url}' is not an http:// or https:// URL"));
        }
        oxedge_runtime::config::check_problems(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_are_valid() {
        let cfg = CommandConfig::default();
        cfg.validate().unwrap();
        assert_eq!(cfg.command.transport, Transport::Rest);
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<CommandConfig>(&json).unwrap(), cfg);
    }

    #[test]
    fn environment_reaches_every_section() {
        let env = [
            ("OXEDGE_COMMAND_TRANSPORT", "bus"),
            ("OXEDGE_COMMAND_TIMEOUT", "250ms"),
            ("OXEDGE_CLIENTS_CORE_METADATA_URL", "http://md:59881"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let cfg: CommandConfig = oxedge_runtime::config::load_from(None, env, "OXEDGE").unwrap();
        assert_eq!(cfg.command.transport, Transport::Bus);
        assert_eq!(cfg.command.timeout(), Duration::from_millis(250));
        assert_eq!(cfg.clients.core_metadata.url, "http://md:59881");
    }

    #[test]
    fn bad_values_are_named() {
        let mut cfg = CommandConfig::default();
        cfg.command.timeout = "0s".into();
        cfg.clients.core_metadata.url = "md:59881".into();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("command.timeout") && err.contains("clients.core_metadata.url"), "{err}");
        let yaml = "command: {cache_ttl: soon}\n";
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), yaml).unwrap();
        let err = oxedge_runtime::config::load_from::<CommandConfig>(Some(file.path()), [], "OXEDGE").unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("command.cache_ttl") && err.contains("'soon' is not a duration"), "{err}");
    }
}
