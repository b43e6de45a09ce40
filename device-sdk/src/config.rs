//! A device service's configuration: defaults in code, a YAML file, `OXEDGE_<SECTION>_<KEY>`
//! environment overrides (see [`oxedge_runtime::config::load`]).
//!
//! The sections follow EdgeX's device service configuration: `service`, `log`, `bus`,
//! `clients.core_metadata`, `device` (EdgeX's `Device` section) and `driver` (EdgeX's
//! `Driver` section: free-form settings of the protocol driver).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use oxedge_bus::config::{BusConfig, BusType};
use oxedge_contracts::GoDuration;
use oxedge_runtime::config::{ClientsSection, LogSection, ServiceSection};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// The whole configuration of a device service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceServiceConfig {
    /// HTTP listener and limits.
    pub service: ServiceSection,
    /// Logging.
    pub log: LogSection,
    /// The message bus.
    pub bus: BusConfig,
    /// The services this one calls.
    pub clients: ClientsSection,
    /// What the SDK does with devices (EdgeX's `Device` section).
    pub device: DeviceSection,
    /// The driver's own settings (EdgeX's `Driver` section), read with
    /// [`DeviceServiceConfig::driver_config`].
    pub driver: Map<String, Json>,
}

impl Default for DeviceServiceConfig {
    /// Defaults as EdgeX's: the bus is an MQTT broker on localhost (the all-in-one passes
    /// its own bus instead).
    fn default() -> Self {
        Self {
            service: ServiceSection::default(),
            log: LogSection::default(),
            bus: BusConfig { kind: BusType::Mqtt, ..BusConfig::default() },
            clients: ClientsSection::default(),
            device: DeviceSection::default(),
            driver: Map::new(),
        }
    }
}

/// What the SDK does with devices: EdgeX's `Device` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceSection {
    /// Directory of device profiles (one profile per `.yaml`, `.yml` or `.json` file) loaded
    /// into core-metadata on the service's first start; empty: none.
    pub profiles_dir: PathBuf,
    /// Directory of device files (YAML `deviceList: [...]` or a JSON array of devices)
    /// loaded into core-metadata on the service's first start; empty: none.
    pub devices_dir: PathBuf,
    /// Directory of provision watchers (one per `.yaml`, `.yml` or `.json` file) loaded into
    /// core-metadata on the service's first start; empty: none.
    pub provision_watchers_dir: PathBuf,
    /// Consecutive failed driver calls after which a device is set DOWN (EdgeX's
    /// `AllowedFails`); 0 never sets a device DOWN.
    pub allowed_fails: u32,
    /// How long a DOWN device is left alone before a command is tried on it again (EdgeX's
    /// `DeviceDownTimeout`; Go duration).
    pub device_down_timeout: GoDuration,
    /// How long one driver read or write may take before it is answered 504 (Go duration;
    /// more than zero).
    pub command_timeout: GoDuration,
    /// The host other services reach this one at: the service's `baseAddress` in
    /// core-metadata is `http://{advertise_host}:{port}`. Empty: `service.host`, or
    /// `localhost` when that binds every interface (set it to the container's name when
    /// running in containers).
    pub advertise_host: String,
    /// Labels the device service is registered with.
    pub labels: Vec<String>,
    /// Device discovery.
    pub discovery: DiscoverySection,
}

impl Default for DeviceSection {
    fn default() -> Self {
        Self {
            profiles_dir: PathBuf::new(),
            devices_dir: PathBuf::new(),
            provision_watchers_dir: PathBuf::new(),
            allowed_fails: 3,
            device_down_timeout: Duration::from_secs(30).into(),
            command_timeout: Duration::from_secs(10).into(),
            advertise_host: String::new(),
            labels: Vec::new(),
            discovery: DiscoverySection::default(),
        }
    }
}

impl DeviceSection {
    /// `device_down_timeout` as a duration.
    pub fn device_down_timeout(&self) -> Duration {
        self.device_down_timeout.get()
    }

    /// `command_timeout` as a duration.
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout.get()
    }
}

/// Device discovery (EdgeX's `Device.Discovery`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoverySection {
    /// Whether discovery runs at all (`POST /api/v3/discovery` answers 503 otherwise).
    pub enabled: bool,
    /// How often discovery runs on its own (Go duration); `0s`: only on request.
    pub interval: GoDuration,
}

impl Default for DiscoverySection {
    fn default() -> Self {
        Self { enabled: false, interval: GoDuration::ZERO }
    }
}

impl DiscoverySection {
    /// `interval` as a duration; `None` when discovery runs only on request.
    pub fn interval(&self) -> Option<Duration> {
        Some(self.interval.get()).filter(|d| !d.is_zero())
    }
}

impl DeviceServiceConfig {
    /// Loads the configuration: defaults, the YAML file at `path`, then `OXEDGE_*`
    /// variables; then [`validate`](Self::validate)s it.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let cfg: Self = oxedge_runtime::config::load(path, "OXEDGE")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what serde cannot, naming every bad key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut problems = self.clients.core_metadata.problems("clients.core_metadata");
        if self.device.command_timeout.is_zero() {
            problems.push("device.command_timeout: must be more than 0s".to_owned());
        }
        if self.device.advertise_host.contains(['/', ' ', ':']) && !self.device.advertise_host.starts_with('[') {
            problems.push(format!(
                "device.advertise_host: '{}' must be a host name or address, without scheme or port",
                self.device.advertise_host
            ));
        }
        oxedge_runtime::config::check_problems(problems)
    }

    /// The `driver` section as the driver's own settings type; the error names the key.
    ///
    /// ```
    /// # use oxedge_device_sdk::config::DeviceServiceConfig;
    /// #[derive(serde::Deserialize)]
    /// struct Settings { port: String }
    /// let mut cfg = DeviceServiceConfig::default();
    /// cfg.driver.insert("port".into(), "/dev/ttyUSB0".into());
    /// assert_eq!(cfg.driver_config::<Settings>().unwrap().port, "/dev/ttyUSB0");
    /// ```
    pub fn driver_config<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_path_to_error::deserialize(Json::Object(self.driver.clone())).map_err(|e| {
            let key = e.path().to_string();
            if key.is_empty() || key == "." {
                anyhow!("Invalid configuration at key `driver`: {}", e.inner())
            } else {
                anyhow!("Invalid configuration at key `driver.{key}`: {}", e.inner())
            }
        })
    }

    /// The host this service is reached at, for its `baseAddress` (IPv6 in brackets).
    pub fn advertised_host(&self) -> String {
        let host = match self.device.advertise_host.as_str() {
            "" => match self.service.host.as_str() {
                "" | "0.0.0.0" | "::" | "[::]" => "localhost",
                host => host,
            },
            host => host,
        };
        if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_round_trip_and_are_valid() {
        let cfg = DeviceServiceConfig::default();
        cfg.validate().unwrap();
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<DeviceServiceConfig>(&text).unwrap(), cfg);
        assert_eq!(cfg.clients.core_metadata.url, "http://localhost:59881");
        assert_eq!(cfg.device.discovery.interval(), None);
    }

    #[test]
    fn file_and_environment_set_device_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "device:\n  profiles_dir: res/profiles\n  discovery: { enabled: true }\ndriver:\n  speed: 9600\n",
        )
        .unwrap();
        let vars = env(&[("OXEDGE_DEVICE_ALLOWED_FAILS", "7"), ("OXEDGE_DEVICE_DISCOVERY_INTERVAL", "1m")]);
        let cfg: DeviceServiceConfig = oxedge_runtime::config::load_from(Some(&path), vars, "OXEDGE").unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.device.profiles_dir, PathBuf::from("res/profiles"));
        assert_eq!(cfg.device.allowed_fails, 7);
        assert!(cfg.device.discovery.enabled);
        assert_eq!(cfg.device.discovery.interval(), Some(Duration::from_secs(60)));
        #[derive(Deserialize)]
        struct Driver {
            speed: u32,
        }
        assert_eq!(cfg.driver_config::<Driver>().unwrap().speed, 9600);
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut cfg = DeviceServiceConfig::default();
        cfg.device.command_timeout = "0s".into();
        cfg.clients.core_metadata.url = "localhost:59881".into();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("device.command_timeout") && err.contains("clients.core_metadata.url"), "{err}");
        // A malformed duration is refused where the configuration is read, naming the key.
        let vars = [("OXEDGE_DEVICE_COMMAND_TIMEOUT".to_owned(), "soon".to_owned())];
        let err = oxedge_runtime::config::load_from::<DeviceServiceConfig>(None, vars, "OXEDGE").unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("device.command_timeout") && err.contains("'soon' is not a duration"), "{err}");

        cfg = DeviceServiceConfig::default();
        cfg.driver.insert("speed".into(), "fast".into());
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Driver {
            speed: u32,
        }
        let err = cfg.driver_config::<Driver>().unwrap_err().to_string();
        assert!(err.contains("`driver.speed`"), "{err}");

        let vars = env(&[("OXEDGE_DEVICE_ALLOWED_FAILS", "many")]);
        let err = oxedge_runtime::config::load_from::<DeviceServiceConfig>(None, vars, "OXEDGE").unwrap_err();
        assert!(format!("{err:#}").contains("device.allowed_fails"), "{err:#}");
    }

    #[test]
    fn advertised_host_falls_back_to_the_bound_host() {
        let mut cfg = DeviceServiceConfig::default();
        assert_eq!(cfg.advertised_host(), "127.0.0.1");
        cfg.service.host = "0.0.0.0".into();
        assert_eq!(cfg.advertised_host(), "localhost");
        cfg.service.host = "::1".into();
        assert_eq!(cfg.advertised_host(), "[::1]");
        cfg.device.advertise_host = "device-thermostat".into();
        assert_eq!(cfg.advertised_host(), "device-thermostat");
    }
}
