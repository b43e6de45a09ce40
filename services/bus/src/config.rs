//! The `bus` section of a service's configuration, and [`connect`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::mqtt::{MqttBus, MqttSettings};
use crate::nats::{JetStreamSettings, NatsAuth, NatsBus, NatsSettings};
use crate::tls::TlsFiles;
use crate::{Bus, BusError, InProcessBus};

/// Which backend a service talks on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BusType {
    /// An MQTT broker at `url`.
    Mqtt,
    /// A NATS server at `url` (JetStream unless disabled).
    Nats,
    /// The broker embedded in this process (the all-in-one), with the `embedded` settings;
    /// the process starts it and gives each service a local link.
    Embedded,
    /// Inside this process only, no broker (tests).
    InProcess,
}

/// How a service connects to the message bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// `mqtt`, `nats`, `embedded` or `in-process`.
    #[serde(rename = "type")]
    pub kind: BusType,
    /// The broker: `mqtt://host:1883`, `mqtts://host:8883`, `nats://host:4222`, `tls://host:4222`.
    pub url: String,
    /// Client id (MQTT) or connection name (NATS); the service name when empty.
    pub client_id: String,
    /// MQTT QoS of publishes and subscriptions: 0, 1 or 2.
    pub qos: u8,
    /// MQTT keep-alive interval, in seconds.
    pub keep_alive_secs: u64,
    /// User name, with the password from `password_file` (or given by the caller from the secret store).
    pub username: Option<String>,
    /// File holding the password (its first line).
    pub password_file: Option<PathBuf>,
    /// The password, from the secret store; never read from the configuration file.
    #[serde(skip)]
    pub password: Option<String>,
    /// File holding a NATS token (its first line).
    pub token_file: Option<PathBuf>,
    /// TLS files (used with `mqtts://` and `tls://` URLs).
    pub tls: TlsFiles,
    /// NATS: store messages in JetStream (publish acked on storage, durable subscriptions).
    pub jetstream_enabled: bool,
    /// NATS: the JetStream stream.
    pub jetstream: JetStreamSettings,
    /// `embedded`: the broker's settings.
    pub embedded: EmbeddedConfig,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            kind: BusType::Embedded,
            url: "mqtt://127.0.0.1:1883".to_owned(),
            client_id: String::new(),
            qos: 1,
            keep_alive_secs: 30,
            username: None,
            password_file: None,
            password: None,
            token_file: None,
            tls: TlsFiles::default(),
            jetstream_enabled: true,
            jetstream: JetStreamSettings::default(),
            embedded: EmbeddedConfig::default(),
        }
    }
}

/// Settings of the embedded broker (the all-in-one's; a build without the `embedded` feature
/// refuses `type: embedded`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// Where external MQTT clients connect (`127.0.0.1:1883`; `0.0.0.0:1883` to serve the network).
    pub listen: SocketAddr,
    /// Largest message accepted, in bytes.
    pub max_payload_size: usize,
    /// Most client connections (TCP and local links together).
    pub max_connections: usize,
    /// Unacknowledged messages a client may have in flight towards the broker.
    pub max_inflight: usize,
    /// Unacknowledged messages the broker sends one subscriber before waiting for its acks.
    pub max_outgoing_inflight: u64,
    /// Size of one segment of a filter's in-memory log, in bytes.
    pub max_segment_size: usize,
    /// Segments kept per filter; older messages are dropped.
    pub max_segment_count: usize,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            max_payload_size: 8 * 1024 * 1024,
            max_connections: 10_000,
            max_inflight: 1000,
            max_outgoing_inflight: 1000,
            max_segment_size: 16 * 1024 * 1024,
            max_segment_count: 4,
        }
    }
}

fn invalid(key: &str, why: impl std::fmt::Display) -> BusError {
    BusError::Refused(format!("bus configuration `{key}`: {why}"))
}

/// `scheme://host:port` split up, with the scheme's default port.
fn parse_url(url: &str) -> Result<(&str, &str, u16), BusError> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("url", format!("'{url}' has no scheme")))?;
    let default_port = match scheme {
        "mqtt" | "tcp" => 1883,
        "mqtts" | "ssl" => 8883,
        "nats" | "tls" => 4222,
        other => return Err(invalid("url", format!("unknown scheme '{other}' (mqtt, mqtts, nats, tls)"))),
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().map_err(|_| invalid("url", format!("bad port '{port}'")))?),
        None => (rest, default_port),
    };
    if host.is_empty() {
        return Err(invalid("url", format!("'{url}' has no host")));
    }
    Ok((scheme, host, port))
}

fn read_secret(key: &str, path: &Path) -> Result<String, BusError> {
    let text = std::fs::read_to_string(path).map_err(|e| invalid(key, format!("'{}': {e}", path.display())))?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

impl BusConfig {
    /// The client id to use: `client_id`, else `service_name`.
    pub fn client_id_or<'a>(&'a self, service_name: &'a str) -> &'a str {
        if self.client_id.is_empty() {
            service_name
        } else {
            &self.client_id
        }
    }

    fn password(&self) -> Result<Option<String>, BusError> {
        match (&self.password, &self.password_file) {
            (Some(p), _) => Ok(Some(p.clone())),
            (None, Some(path)) => read_secret("password_file", path).map(Some),
            (None, None) => Ok(None),
        }
    }

    fn credentials(&self) -> Result<Option<(String, String)>, BusError> {
        match (&self.username, self.password()?) {
            (Some(user), Some(password)) => Ok(Some((user.clone(), password))),
            (None, None) => Ok(None),
            _ => Err(invalid("username", "username and password must be either both provided or both missing")),
        }
    }
}

/// Connects `service_name` to the bus `cfg` describes; fails with a message naming the
/// configuration key when something in it is wrong. The `embedded` broker is not reached
/// this way: the process that runs it starts it ([`crate::EmbeddedBroker::start`]) and hands each
/// service its link ([`crate::EmbeddedBroker::bus`]).
pub async fn connect(cfg: &BusConfig, service_name: &str) -> Result<Arc<dyn Bus>, BusError> {
    let client_id = cfg.client_id_or(service_name);
    match cfg.kind {
        BusType::InProcess => Ok(Arc::new(InProcessBus::new())),
        BusType::Embedded => Err(invalid(
            "type",
            "`embedded` is the broker inside the process that starts it (oxedge run); \
             join it from another process with `type: mqtt`",
        )),
        BusType::Mqtt => {
            let (scheme, host, port) = parse_url(&cfg.url)?;
            if !matches!(scheme, "mqtt" | "tcp" | "mqtts" | "ssl") {
                return Err(invalid("url", format!("'{}' is not an MQTT URL (mqtt://, mqtts://)", cfg.url)));
            }
            if cfg.qos > 2 {
                return Err(invalid("qos", format!("must be 0, 1 or 2, not {}", cfg.qos)));
            }
            let mut settings = MqttSettings::new(host, port, client_id);
            settings.qos = cfg.qos;
            settings.keep_alive = Duration::from_secs(cfg.keep_alive_secs.max(1));
            settings.credentials = cfg.credentials()?;
            if matches!(scheme, "mqtts" | "ssl") {
                settings.tls = Some(cfg.tls.client_config().map_err(|e| invalid("tls", e))?);
            }
            Ok(Arc::new(MqttBus::connect(settings)?))
        }
        BusType::Nats => {
            let (scheme, _, _) = parse_url(&cfg.url)?;
            if !matches!(scheme, "nats" | "tls") {
                return Err(invalid("url", format!("'{}' is not a NATS URL (nats://, tls://)", cfg.url)));
            }
            let mut settings = NatsSettings::new(cfg.url.clone(), client_id);
            settings.auth = match (cfg.credentials()?, &cfg.token_file) {
                (Some(_), Some(_)) => return Err(invalid("token_file", "use either a token or a username, not both")),
                (Some((user, password)), None) => NatsAuth::UserPassword(user, password),
                (None, Some(path)) => NatsAuth::Token(read_secret("token_file", path)?),
                (None, None) => NatsAuth::None,
            };
            if scheme == "tls" || cfg.tls.ca_file.is_some() {
                settings.tls = Some(cfg.tls.client_config().map_err(|e| invalid("tls", e))?);
            }
            settings.jetstream = cfg.jetstream_enabled.then(|| cfg.jetstream.clone());
            Ok(Arc::new(NatsBus::connect(settings).await?))
        }
    }
}

/// Like [`connect`], but waits for the broker: a broker that cannot be reached yet is
/// retried with backoff (100 ms → 5 s), so services start in any order. A configuration
/// error is returned at once.
pub async fn connect_with_retry(cfg: &BusConfig, service_name: &str) -> Result<Arc<dyn Bus>, BusError> {
    let mut delay = Duration::from_millis(100);
    loop {
        match connect(cfg, service_name).await {
            Err(BusError::Connection(error)) => {
                tracing::warn!(%error, url = %cfg.url, "Message bus not reachable yet; retrying.");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serialize_and_parse_back() {
        let yaml = serde_norway::to_string(&BusConfig::default()).unwrap();
        let back: BusConfig = serde_norway::from_str(&yaml).unwrap();
        assert_eq!(back, BusConfig::default());
        let empty: BusConfig = serde_norway::from_str("{}").unwrap();
        assert_eq!(empty, BusConfig::default());
    }

    #[test]
    fn typos_and_plain_passwords_are_refused() {
        let err = serde_norway::from_str::<BusConfig>("type: mqtt\nurll: x\n").unwrap_err().to_string();
        assert!(err.contains("urll"), "{err}");
        let err = serde_norway::from_str::<BusConfig>("password: secret\n").unwrap_err().to_string();
        assert!(err.contains("password"), "{err}");
        let cfg: BusConfig = serde_norway::from_str("type: in-process\njetstream: {max_age_secs: 60}\n").unwrap();
        assert_eq!(
            (cfg.kind, cfg.jetstream.max_age_secs, cfg.jetstream.stream.as_str()),
            (BusType::InProcess, 60, "edgex")
        );
    }

    #[tokio::test]
    async fn bad_values_name_their_key() {
        let cases = [
            (BusConfig { kind: BusType::Mqtt, url: "http://x".into(), ..Default::default() }, "`url`"),
            (BusConfig { kind: BusType::Mqtt, url: "mqtt://x:port".into(), ..Default::default() }, "`url`"),
            (BusConfig { kind: BusType::Mqtt, qos: 3, ..Default::default() }, "`qos`"),
            (BusConfig { kind: BusType::Nats, url: "mqtt://x".into(), ..Default::default() }, "`url`"),
            (BusConfig { kind: BusType::Mqtt, username: Some("u".into()), ..Default::default() }, "`username`"),
            (
                BusConfig {
                    kind: BusType::Mqtt,
                    username: Some("u".into()),
                    password_file: Some("/nonexistent/pw".into()),
                    ..Default::default()
                },
                "`password_file`",
            ),
        ];
        for (cfg, key) in cases {
            let err = connect(&cfg, "svc").await.err().expect("refused").to_string();
            assert!(err.contains(key), "{key} not in: {err}");
        }
    }
}
