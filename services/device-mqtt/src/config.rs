//! The driver's settings: the `driver` section of the service's configuration, EdgeX's
//! `MQTTBrokerInfo` in snake case, and the broker connection they describe.
//!
//! Differences from EdgeX, on purpose:
//! - the broker is one URL (`mqtt://host:1883`, `mqtts://host:8883`; EdgeX's `tcp://` and
//!   `ssl://` are accepted) instead of `Schema`, `Host` and `Port`;
//! - the connection is retried for ever with backoff (100 ms doubling to 5 s), also after a
//!   loss, while the service keeps serving; EdgeX gives up after `ConnEstablishingRetry`
//!   attempts and stops, so a broker that starts late stops the stack;
//! - a device's answer is awaited up to `response_timeout` (EdgeX polls 5 times every
//!   `Writable.ResponseFetchInterval`);
//! - the incoming readings are subscribed with a persistent session (`persistent_session`),
//!   so the broker keeps what devices publish while the service restarts or is cut off;
//!   EdgeX subscribes with a clean session and loses those readings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oxedge_bus::tls::TlsFiles;
use oxedge_bus::{topic, BusConfig, BusType};
use oxedge_contracts::validate::parse_duration;
use serde::{Deserialize, Serialize};

/// How the driver authenticates to the broker (EdgeX's `AuthMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Anonymous.
    #[default]
    None,
    /// User name and password, from the secret `credentials_name` or from `username` and
    /// `password_file`.
    UsernamePassword,
}

/// The `driver` section. Defaults are EdgeX's, but for QoS (1 here: EdgeX's 0 loses readings
/// whenever the broker or the service is busy) and the persistent session of the readings
/// (EdgeX's clean session loses those published while the service is away).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The broker the devices talk to: `mqtt://host:1883` or `mqtts://host:8883`.
    pub broker_url: String,
    /// The MQTT client id; the subscriptions add a suffix of their own.
    pub client_id: String,
    /// QoS of the subscriptions and of the commands published: 0, 1 or 2.
    pub qos: u8,
    /// Seconds between pings while the connection is idle (EdgeX's `KeepAlive`).
    pub keep_alive: u64,
    /// `none` or `usernamepassword`.
    pub auth_mode: AuthMode,
    /// With `usernamepassword`: the secret holding the keys `username` and `password`, read
    /// from the files `{secrets_dir}/{credentials_name}/username` and `…/password` (the layout
    /// of Kubernetes and Compose secret mounts).
    pub credentials_name: String,
    /// Where secrets are mounted.
    pub secrets_dir: PathBuf,
    /// With `usernamepassword`, instead of a secret: the user name…
    pub username: String,
    /// …and the file whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// TLS files, used with `mqtts://`.
    pub tls: TlsFiles,
    /// Where devices publish readings: `…/{device-name}/{source-name}` below this filter.
    pub incoming_topic: String,
    /// Where devices answer commands: `…/{uuid}` below this filter.
    pub response_topic: String,
    /// How long a command waits for the device's answer (Go duration); keep it below the
    /// SDK's `device.command_timeout`.
    pub response_timeout: String,
    /// Readings handled at once, each device's in the order they arrived.
    pub workers: usize,
    /// Whether the broker keeps the readings devices publish (QoS 1 or 2) while the service
    /// is away: the incoming subscription then has a persistent session of its own, named
    /// after `client_id` ([`Settings::incoming_durable_name`]). `false`: a clean session, as
    /// EdgeX; readings published meanwhile are lost.
    pub persistent_session: bool,
    /// How long an event the service's message bus refuses (too large, no JetStream stream
    /// takes its topic) is offered again before it is dropped and counted (Go duration);
    /// the readings behind it wait meanwhile. A bus that is down is waited for without limit.
    pub refused_retry: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            broker_url: "mqtt://127.0.0.1:1883".to_owned(),
            client_id: "device-mqtt".to_owned(),
            qos: 1,
            keep_alive: 3600,
            auth_mode: AuthMode::None,
            credentials_name: "credentials".to_owned(),
            secrets_dir: PathBuf::from("/run/secrets"),
            username: String::new(),
            password_file: None,
            tls: TlsFiles::default(),
            incoming_topic: "incoming/data/#".to_owned(),
            response_topic: "command/response/#".to_owned(),
            response_timeout: "5s".to_owned(),
            workers: 4,
            persistent_session: true,
            refused_retry: "30s".to_owned(),
        }
    }
}

impl Settings {
    /// Checks what serde cannot; the error names every bad key.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.qos > 2 {
            problems.push(format!("driver.qos: must be 0, 1 or 2, not {}", self.qos));
        }
        for (key, filter) in [("incoming_topic", &self.incoming_topic), ("response_topic", &self.response_topic)] {
            if !topic::is_valid_filter(filter) {
                problems.push(format!("driver.{key}: '{filter}' is not an MQTT topic filter"));
            }
        }
        if self.response_timeout().is_none() {
            problems.push(format!(
                "driver.response_timeout: '{}' is not a duration such as 500ms or 5s",
                self.response_timeout
            ));
        }
        if self.refused_retry().is_none() {
            problems.push(format!(
                "driver.refused_retry: '{}' is not a duration such as 0s, 500ms or 30s",
                self.refused_retry
            ));
        }
        if self.workers == 0 {
            problems.push("driver.workers: must be at least 1".to_owned());
        }
        if self.client_id.is_empty() {
            problems.push("driver.client_id: must not be empty".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("Invalid configuration: {}", problems.join("; ")))
        }
    }

    /// `response_timeout` as a duration (not zero).
    pub fn response_timeout(&self) -> Option<Duration> {
        parse_duration(&self.response_timeout).filter(|d| !d.is_zero())
    }

    /// `refused_retry` as a duration (zero: a refused event is dropped at once).
    pub fn refused_retry(&self) -> Option<Duration> {
        parse_duration(&self.refused_retry)
    }

    /// The durable name of the incoming subscription, `{client_id}-incoming` (the bus makes its
    /// MQTT client id `{client_id}-incoming-durable`), or `None` without `persistent_session`.
    /// Two services with different client ids never share a session.
    pub fn incoming_durable_name(&self) -> Option<String> {
        self.persistent_session.then(|| format!("{}-incoming", self.client_id))
    }

    /// The broker connection as a message bus configuration, credentials read; the error
    /// names the key.
    pub fn broker(&self) -> Result<BusConfig, String> {
        let (username, password) = match self.auth_mode {
            AuthMode::None => (None, None),
            AuthMode::UsernamePassword => {
                let (user, password) = self.credentials()?;
                (Some(user), Some(password))
            }
        };
        Ok(BusConfig {
            kind: BusType::Mqtt,
            url: self.broker_url.clone(),
            client_id: self.client_id.clone(),
            qos: self.qos,
            keep_alive_secs: self.keep_alive.max(1),
            username,
            password,
            tls: self.tls.clone(),
            ..BusConfig::default()
        })
    }

    fn credentials(&self) -> Result<(String, String), String> {
        if let Some(file) = &self.password_file {
            if self.username.is_empty() {
                return Err("driver.username: required with driver.password_file".to_owned());
            }
            return Ok((self.username.clone(), first_line("driver.password_file", file)?));
        }
        if self.credentials_name.is_empty() {
            return Err("driver.credentials_name: required with auth_mode usernamepassword".to_owned());
        }
        let dir = self.secrets_dir.join(&self.credentials_name);
        let key = "driver.credentials_name";
        Ok((first_line(key, &dir.join("username"))?, first_line(key, &dir.join("password"))?))
    }
}

/// The first line of the file `path`; the error names `key` and the file.
fn first_line(key: &str, path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{key}: cannot read '{}': {e}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_and_are_valid() {
        let defaults = Settings::default();
        defaults.validate().unwrap();
        let text = serde_json::to_string(&defaults).unwrap();
        assert_eq!(serde_json::from_str::<Settings>(&text).unwrap(), defaults);
        assert_eq!(serde_json::from_str::<Settings>("{}").unwrap(), defaults);
        let broker = defaults.broker().unwrap();
        assert_eq!((broker.kind, broker.qos, broker.username), (BusType::Mqtt, 1, None));
    }

    #[test]
    fn the_sample_configuration_is_valid() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/device-mqtt/configuration.yaml");
        let cfg = oxedge_device_sdk::DeviceServiceConfig::load(Some(&path)).unwrap();
        let settings: Settings = cfg.driver_config().unwrap();
        settings.validate().unwrap();
        assert_eq!(settings, Settings::default(), "the sample shows the defaults");
    }

    #[test]
    fn the_incoming_session_is_named_after_the_client_id_unless_turned_off() {
        let settings = Settings { client_id: "gateway-7".into(), ..Settings::default() };
        assert_eq!(settings.incoming_durable_name().as_deref(), Some("gateway-7-incoming"));
        assert_eq!(Settings { persistent_session: false, ..settings }.incoming_durable_name(), None);
        assert_eq!(Settings::default().refused_retry(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn bad_values_name_their_key() {
        let bad = Settings {
            qos: 3,
            incoming_topic: "incoming/#/data".into(),
            response_timeout: "soon".into(),
            refused_retry: "a while".into(),
            workers: 0,
            ..Settings::default()
        };
        let err = bad.validate().unwrap_err();
        let keys = [
            "driver.qos",
            "driver.incoming_topic",
            "driver.response_timeout",
            "driver.refused_retry",
            "driver.workers",
        ];
        for key in keys {
            assert!(err.contains(key), "{key} not in {err}");
        }
        let err = serde_json::from_str::<Settings>(r#"{"password": "plain"}"#).unwrap_err().to_string();
        assert!(err.contains("password"), "{err}");
        let err = serde_json::from_str::<Settings>(r#"{"auth_mode": "token"}"#).unwrap_err().to_string();
        assert!(err.contains("token"), "{err}");
    }

    #[test]
    fn credentials_come_from_the_secret_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mqtt")).unwrap();
        std::fs::write(dir.path().join("mqtt/username"), "edge\n").unwrap();
        std::fs::write(dir.path().join("mqtt/password"), "s3cret\nignored\n").unwrap();
        let secret = Settings {
            auth_mode: AuthMode::UsernamePassword,
            credentials_name: "mqtt".into(),
            secrets_dir: dir.path().to_owned(),
            ..Settings::default()
        };
        let broker = secret.broker().unwrap();
        assert_eq!((broker.username.as_deref(), broker.password.as_deref()), (Some("edge"), Some("s3cret")));

        let file = Settings {
            username: "other".into(),
            password_file: Some(dir.path().join("mqtt/password")),
            ..secret.clone()
        };
        assert_eq!(file.broker().unwrap().username.as_deref(), Some("other"));

        let missing = Settings { credentials_name: "nope".into(), ..secret };
        let err = missing.broker().unwrap_err();
        assert!(err.contains("driver.credentials_name") && err.contains("nope/username"), "{err}");
    }
}
