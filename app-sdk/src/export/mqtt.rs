//! `MQTTExport`: publishes to an MQTT broker (EdgeX's `MQTTExport` and `MQTTSecretSender`).
//!
//! The sink is an [`oxedge_bus::MqttBus`] connection: a publish resolves on the broker's
//! `PUBACK` (QoS 1) or `PUBCOMP` (QoS 2), many are in flight at once (matched by packet id),
//! and the connection reconnects by itself. Credentials and certificates come from the secret
//! `SecretName` (EdgeX's keys `username`, `password`, `clientcert`, `clientkey`, `cacert`),
//! never from the configuration.
//!
//! As in EdgeX, the connection is opened at the first export unless `PreConnect` opens it
//! when the pipeline starts (then a connection still missing after `PreConnectRetryCount` ×
//! `PreConnectRetryInterval` is logged as an error, and attempts go on). With `WillEnabled`
//! the broker holds a last will for the connection (`WillTopic`, `WillPayload`, `WillQos`,
//! `WillRetained`), which it publishes when the connection ends without a DISCONNECT: the
//! network or the broker's keep-alive check cut it, the service was killed or stopped (the
//! export closes its socket on shutdown without a DISCONNECT, so that subscribers learn it is
//! gone). Reconnection attempts back off from 100 ms to `MaxReconnectInterval` (default 5 s).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use async_trait::async_trait;
use oxedge_bus::tls::TlsPart;
use oxedge_bus::{Bus as _, BusError, MqttBus, MqttLastWill, MqttSettings};
use serde::Deserialize;

use super::{LazyForwarder, Outgoing, Sink, SinkError};
use crate::app::AppContext;
use crate::forward::Forwarder;
use crate::functions::params::de;
use crate::secrets::Secrets;
use crate::{Context, Data, Function, FunctionError};

/// How long the export waits for its first connection before taking messages (it keeps
/// connecting in the background after that; what cannot be sent meanwhile is stored).
const FIRST_CONNECTION: Duration = Duration::from_secs(5);
/// How often a publish in flight looks at the connection.
const WATCH: Duration = Duration::from_millis(20);

/// How the export authenticates to the broker (EdgeX's `AuthMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Anonymous.
    #[default]
    None,
    /// `username` and `password` from the secret.
    UsernamePassword,
    /// TLS with the client certificate `clientcert` and key `clientkey` from the secret (and
    /// `cacert` if present).
    ClientCert,
    /// TLS checking the broker against `cacert` from the secret.
    CaCert,
}

/// `MQTTExport`'s parameters, with EdgeX's names (any case through
/// [`from_parameters`](crate::functions::params::from_parameters)).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttExportSettings {
    /// `tcp://host:1883` (also `mqtt://`); TLS with `ssl://`, `tls://`, `tcps://` or `mqtts://`.
    #[serde(rename = "BrokerAddress", deserialize_with = "de::text")]
    pub broker_address: String,
    /// The topic, a template filled from the context: `factory/{deviceName}/{sourceName}`.
    #[serde(rename = "Topic", deserialize_with = "de::text")]
    pub topic: String,
    /// The MQTT client id; empty: `{service}-mqtt-export`.
    #[serde(rename = "ClientId", default, deserialize_with = "de::text")]
    pub client_id: String,
    /// 0, 1 or 2. EdgeX's default is 0; delivery is confirmed (and nothing lost) only with 1 or 2.
    #[serde(rename = "QOS", default, deserialize_with = "de::number")]
    pub qos: u8,
    /// Publishes with the retain flag.
    #[serde(rename = "Retain", default, deserialize_with = "de::flag")]
    pub retain: bool,
    /// Accepted for EdgeX compatibility: the connection always reconnects (EdgeX, too,
    /// connects again at the next export when it is off).
    #[serde(rename = "AutoReconnect", default, deserialize_with = "de::flag")]
    pub auto_reconnect: bool,
    /// Accepts any broker certificate (tests only: it defeats TLS).
    #[serde(rename = "SkipVerify", default, deserialize_with = "de::flag")]
    pub skip_verify: bool,
    /// `none`, `usernamepassword`, `clientcert` or `cacert`.
    #[serde(rename = "AuthMode", default)]
    pub auth_mode: AuthMode,
    /// The secret holding credentials or certificates (required unless `AuthMode` is `none`).
    #[serde(rename = "SecretName", default, deserialize_with = "de::text")]
    pub secret_name: String,
    /// Keeps what cannot be published in the store-and-forward store (when enabled).
    #[serde(rename = "PersistOnError", default, deserialize_with = "de::flag")]
    pub persist_on_error: bool,
    /// MQTT keep-alive (Go duration; default 30s).
    #[serde(rename = "KeepAlive", default, deserialize_with = "de::optional_duration")]
    pub keep_alive: Option<Duration>,
    /// How long one connection attempt may take (Go duration, whole seconds; default 5s).
    /// `ConnectionTimeout`, as EdgeX's sample configuration spells it, is read too.
    #[serde(
        rename = "ConnectTimeout",
        alias = "ConnectionTimeout",
        default,
        deserialize_with = "de::optional_duration"
    )]
    pub connect_timeout: Option<Duration>,
    /// How long a publish may wait for the broker's acknowledgement (default 10s).
    #[serde(rename = "PublishTimeout", default, deserialize_with = "de::optional_duration")]
    pub publish_timeout: Option<Duration>,
    /// Sets a last will on the connection (then `WillTopic` and `WillPayload` are required).
    #[serde(rename = "WillEnabled", default, deserialize_with = "de::flag")]
    pub will_enabled: bool,
    /// The topic of the last will.
    #[serde(rename = "WillTopic", default, deserialize_with = "de::text")]
    pub will_topic: String,
    /// The payload of the last will.
    #[serde(rename = "WillPayload", default, deserialize_with = "de::text")]
    pub will_payload: String,
    /// The QoS of the last will: 0 (default), 1 or 2.
    #[serde(rename = "WillQos", default, deserialize_with = "de::number")]
    pub will_qos: u8,
    /// Whether the broker retains the last will.
    #[serde(rename = "WillRetained", default, deserialize_with = "de::flag")]
    pub will_retained: bool,
    /// Connects when the pipeline starts rather than at the first export.
    #[serde(rename = "PreConnect", default, deserialize_with = "de::flag")]
    pub pre_connect: bool,
    /// With `PreConnect`: attempts (of `PreConnectRetryInterval` each) before a missing
    /// connection is logged as an error (default 6).
    #[serde(rename = "PreConnectRetryCount", default, deserialize_with = "de::optional_number")]
    pub pre_connect_retry_count: Option<u32>,
    /// With `PreConnect`: the time per attempt (Go duration, default 10s).
    #[serde(rename = "PreConnectRetryInterval", default, deserialize_with = "de::optional_duration")]
    pub pre_connect_retry_interval: Option<Duration>,
    /// The longest wait between two connection attempts (Go duration, default 5s).
    #[serde(rename = "MaxReconnectInterval", default, deserialize_with = "de::optional_duration")]
    pub max_reconnect_interval: Option<Duration>,
}

impl MqttExportSettings {
    /// Settings publishing on `topic` at `broker_address` with QoS 1, no authentication,
    /// connecting at once.
    pub fn new(broker_address: impl Into<String>, topic: impl Into<String>) -> Self {
        Self {
            broker_address: broker_address.into(),
            topic: topic.into(),
            client_id: String::new(),
            qos: 1,
            retain: false,
            auto_reconnect: true,
            skip_verify: false,
            auth_mode: AuthMode::None,
            secret_name: String::new(),
            persist_on_error: true,
            keep_alive: None,
            connect_timeout: None,
            publish_timeout: None,
            will_enabled: false,
            will_topic: String::new(),
            will_payload: String::new(),
            will_qos: 0,
            will_retained: false,
            pre_connect: true,
            pre_connect_retry_count: None,
            pre_connect_retry_interval: None,
            max_reconnect_interval: None,
        }
    }

    /// Checks the parameters, naming the one at fault.
    fn check(&self) -> anyhow::Result<()> {
        self.endpoint()?;
        if self.qos > 2 {
            bail!("QOS must be 0, 1 or 2, not {}", self.qos);
        }
        if self.topic.trim().is_empty() {
            bail!("Topic must not be empty");
        }
        if self.auth_mode != AuthMode::None && self.secret_name.is_empty() {
            bail!("SecretName is needed with AuthMode {:?}", self.auth_mode);
        }
        if self.will_enabled {
            if self.will_topic.is_empty() {
                bail!("WillTopic must be present and non-empty when WillEnabled is true");
            }
            if !oxedge_bus::topic::is_valid_topic(&self.will_topic) {
                bail!("WillTopic '{}' is not a topic one can publish on", self.will_topic);
            }
            if self.will_payload.is_empty() {
                bail!("WillPayload must be present and non-empty when WillEnabled is true");
            }
            if self.will_qos > 2 {
                bail!("WillQos must be 0, 1 or 2, not {}", self.will_qos);
            }
        }
        if self.max_reconnect_interval.is_some_and(|d| d.is_zero()) {
            bail!("MaxReconnectInterval must be above zero");
        }
        if self.pre_connect_retry_interval.is_some_and(|d| d.is_zero()) {
            bail!("PreConnectRetryInterval must be above zero");
        }
        Ok(())
    }

    /// The MQTT connection settings: endpoint, QoS, keep-alive, timeouts, last will, backoff
    /// (credentials and TLS are added from the secret).
    fn mqtt(&self, default_client_id: &str) -> anyhow::Result<MqttSettings> {
        let (host, port, _) = self.endpoint()?;
        let client_id = if self.client_id.is_empty() { default_client_id } else { &self.client_id };
        let mut mqtt = MqttSettings::new(&host, port, client_id);
        mqtt.qos = self.qos;
        if let Some(keep_alive) = self.keep_alive {
            mqtt.keep_alive = keep_alive.max(Duration::from_secs(1));
        }
        mqtt.connect_timeout = self.connect_timeout;
        if let Some(max) = self.max_reconnect_interval {
            mqtt.max_reconnect_interval = max;
        }
        if self.will_enabled {
            mqtt.last_will = Some(MqttLastWill {
                topic: self.will_topic.clone(),
                payload: self.will_payload.clone().into(),
                qos: self.will_qos,
                retain: self.will_retained,
            });
        }
        Ok(mqtt)
    }

    /// With `PreConnect`: how long the first connection may take before it is logged as an
    /// error (EdgeX's `PreConnectRetryCount` × `PreConnectRetryInterval`, 6 × 10s).
    fn pre_connect_deadline(&self) -> Duration {
        let interval = self.pre_connect_retry_interval.unwrap_or(Duration::from_secs(10));
        interval.saturating_mul(self.pre_connect_retry_count.unwrap_or(6).max(1))
    }

    /// Host, port and whether TLS is on, from `BrokerAddress`.
    fn endpoint(&self) -> anyhow::Result<(String, u16, bool)> {
        let address = self.broker_address.trim();
        let (scheme, rest) = address.split_once("://").unwrap_or(("tcp", address));
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "tcp" | "mqtt" => false,
            "ssl" | "tls" | "tcps" | "mqtts" => true,
            other => bail!("BrokerAddress {address:?}: scheme {other:?} is not tcp, mqtt, ssl, tls, tcps or mqtts"),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => {
                (host, port.parse().map_err(|_| anyhow!("BrokerAddress {address:?}: port {port:?} is not a number"))?)
            }
            None => (rest, if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            bail!("BrokerAddress {address:?}: no host");
        }
        Ok((host.trim_matches(['[', ']']).to_owned(), port, tls))
    }
}

/// An MQTT broker as a [`Sink`].
pub struct MqttSink {
    /// The connection, once opened (at once with `PreConnect`, else at the first send).
    bus: OnceLock<Arc<MqttBus>>,
    mqtt: MqttSettings,
    /// How long the first send waits for the connection it opens.
    first_wait: Duration,
    retain: bool,
    publish_timeout: Duration,
    url: String,
}

impl MqttSink {
    /// Connects (in the background, reconnecting by itself) as `settings` say, reading
    /// credentials and certificates from `secrets`; `default_client_id` when none is set.
    pub async fn connect(
        settings: &MqttExportSettings,
        secrets: &Secrets,
        default_client_id: &str,
    ) -> anyhow::Result<Self> {
        settings.check()?;
        let (host, port, scheme_tls) = settings.endpoint()?;
        let mut mqtt = settings.mqtt(default_client_id)?;
        let secret = |key: &'static str| secrets.value(&settings.secret_name, key);
        let (mut ca, mut client) = (None, None);
        match settings.auth_mode {
            AuthMode::None => {}
            AuthMode::UsernamePassword => {
                mqtt.credentials = Some((secret("username").await?, secret("password").await?));
            }
            AuthMode::ClientCert => {
                client = Some((secret("clientcert").await?, secret("clientkey").await?));
                ca = secrets.value(&settings.secret_name, "cacert").await.ok();
            }
            AuthMode::CaCert => ca = Some(secret("cacert").await?),
        }
        let tls = scheme_tls || matches!(settings.auth_mode, AuthMode::ClientCert | AuthMode::CaCert);
        if tls {
            let client = client.as_ref().map(|(cert, key)| (cert.as_bytes(), key.as_bytes()));
            let config = oxedge_bus::tls::client_config(ca.as_deref().map(str::as_bytes), client, settings.skip_verify);
            mqtt.tls = Some(config.map_err(|e| {
                let key = match e.part {
                    TlsPart::Ca => "secret key cacert: ",
                    TlsPart::ClientCert => "secret key clientcert: ",
                    TlsPart::ClientKey => "secret key clientkey: ",
                    TlsPart::Roots | TlsPart::Protocol => "TLS: ",
                };
                anyhow!("{key}{e}")
            })?);
        }
        let scheme = if tls { "mqtts" } else { "mqtt" };
        let sink = Self {
            bus: OnceLock::new(),
            mqtt,
            first_wait: settings.connect_timeout.unwrap_or(FIRST_CONNECTION).min(FIRST_CONNECTION),
            retain: settings.retain,
            publish_timeout: settings.publish_timeout.unwrap_or(Duration::from_secs(10)),
            url: format!("{scheme}://{host}:{port}"),
        };
        if settings.pre_connect {
            let bus = sink.open()?;
            tokio::spawn(report_pre_connect(Arc::downgrade(bus), sink.url.clone(), settings.pre_connect_deadline()));
            wait_connected(bus, sink.first_wait).await;
        }
        Ok(sink)
    }

    /// The connection, opened now if it is not yet.
    fn open(&self) -> anyhow::Result<&Arc<MqttBus>> {
        if let Some(bus) = self.bus.get() {
            return Ok(bus);
        }
        let bus = Arc::new(MqttBus::connect(self.mqtt.clone()).map_err(|e| anyhow!("{e}"))?);
        Ok(self.bus.get_or_init(|| bus))
    }
}

/// Waits at most `within` for `bus` to be connected; whether it is.
async fn wait_connected(bus: &MqttBus, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while !bus.is_connected() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(WATCH).await;
    }
    true
}

/// `PreConnect`: logs an error when the connection opened at start is still missing after
/// `deadline` (it keeps trying), as EdgeX does once its pre-connect attempts are spent.
async fn report_pre_connect(bus: std::sync::Weak<MqttBus>, url: String, deadline: Duration) {
    let start = tokio::time::Instant::now();
    loop {
        let Some(bus) = bus.upgrade() else { return };
        if bus.is_connected() {
            return;
        }
        if start.elapsed() >= deadline {
            tracing::error!(broker = %url, waited = ?deadline, "MQTTExport could not connect at start; it keeps trying.");
            return;
        }
        drop(bus);
        tokio::time::sleep(WATCH * 10).await;
    }
}

#[async_trait]
impl Sink for MqttSink {
    fn describe(&self) -> String {
        format!("MQTTExport {}", self.url)
    }

    async fn send(&self, message: &Outgoing) -> Result<(), SinkError> {
        let bus = match self.bus.get() {
            Some(bus) => bus,
            None => {
                // The first export opens the connection and waits for it a moment.
                let bus = self.open().map_err(|e| SinkError::Unavailable(format!("{e:#}")))?;
                wait_connected(bus, self.first_wait).await;
                bus
            }
        };
        // Not waiting here: sends are started in order, and must reach the connection so.
        if !bus.is_connected() {
            return Err(SinkError::Unavailable(format!("not connected to {}", self.url)));
        }
        let publish = bus.publish_retained(&message.destination, message.payload.clone(), self.retain);
        let lost = async {
            while bus.is_connected() {
                tokio::time::sleep(WATCH).await;
            }
        };
        tokio::select! {
            result = publish => result.map_err(|e| match e {
                BusError::Refused(why) | BusError::Malformed(why) => SinkError::Rejected(why),
                other => SinkError::Unavailable(other.to_string()),
            }),
            () = lost => Err(SinkError::Unavailable(format!("connection to {} lost before the broker acknowledged", self.url))),
            () = tokio::time::sleep(self.publish_timeout) => Err(SinkError::Unavailable(format!(
                "{} did not acknowledge within {:?}", self.url, self.publish_timeout
            ))),
        }
    }

    /// Before the first export opens the connection, the broker is taken as reachable.
    fn is_connected(&self) -> bool {
        self.bus.get().is_none_or(|bus| bus.is_connected())
    }
}

/// The `MQTTExport` function: publishes its input (as [`Data::to_payload`] makes it) on the
/// topic its template gives, through store-and-forward. Returns `Ok(None)`: the pipeline ends
/// here; the message is acknowledged once its confirmation resolves.
pub struct MqttExport {
    topic: String,
    forwarder: LazyForwarder,
}

impl MqttExport {
    /// Checks `settings` and starts connecting in the background (see [the module](super)).
    pub fn new(settings: MqttExportSettings, app: &AppContext) -> anyhow::Result<Self> {
        settings.check().context("MQTTExport")?;
        let name = format!("MQTTExport {} {}", settings.broker_address.trim(), settings.topic);
        let topic = settings.topic.clone();
        let (secrets, client_id) = (app.secrets().clone(), format!("{}-mqtt-export", app.name()));
        let persist = settings.persist_on_error;
        let make_sink: super::MakeSink = Box::new(move || {
            let (settings, secrets, client_id) = (settings.clone(), secrets.clone(), client_id.clone());
            Box::pin(async move {
                let sink = MqttSink::connect(&settings, &secrets, &client_id).await.context("MQTTExport")?;
                Ok(Arc::new(sink) as Arc<dyn Sink>)
            })
        });
        Ok(Self { topic, forwarder: LazyForwarder::new(name, persist, app, make_sink) })
    }

    /// The export's forwarder, once started (its name labels the export metrics).
    pub fn forwarder(&self) -> Option<&Forwarder> {
        self.forwarder.started()
    }
}

#[async_trait]
impl Function for MqttExport {
    fn name(&self) -> &str {
        "MQTTExport"
    }

    async fn call(&self, ctx: &Context, data: Data) -> Result<Option<Data>, FunctionError> {
        let message = super::outgoing(ctx, &data, &self.topic, BTreeMap::new())?;
        ctx.add_confirmation(self.forwarder.get().await.submit(message).await);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_read_edgex_parameters() {
        let settings: MqttExportSettings = crate::functions::params::from_parameters(
            json!({
                "brokeraddress": "ssl://cloud.example:8883", "topic": "factory/{deviceName}",
                "qos": "1", "retain": "true", "AuthMode": "usernamepassword", "SecretName": "cloud",
                "PersistOnError": "true", "KeepAlive": "10s"
            })
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(settings.qos, 1);
        assert!(settings.retain && settings.persist_on_error);
        assert_eq!(settings.auth_mode, AuthMode::UsernamePassword);
        assert_eq!(settings.keep_alive, Some(Duration::from_secs(10)));
        assert_eq!(settings.endpoint().unwrap(), ("cloud.example".to_owned(), 8883, true));
        assert_eq!(MqttExportSettings::new("tcp://h", "t").endpoint().unwrap(), ("h".to_owned(), 1883, false));
        let bad = MqttExportSettings::new("udp://h:1", "t").endpoint().unwrap_err().to_string();
        assert!(bad.contains("BrokerAddress"), "{bad}");
    }

    fn read(parameters: serde_json::Value) -> MqttExportSettings {
        crate::functions::params::from_parameters(parameters.as_object().unwrap()).unwrap()
    }

    #[test]
    fn will_pre_connect_and_reconnect_parameters_become_connection_settings() {
        let settings = read(json!({
            "BrokerAddress": "tcp://h:1883", "Topic": "t", "WillEnabled": "true", "WillTopic": "status/app",
            "WillPayload": "offline", "WillQos": "1", "WillRetained": "true", "PreConnect": "true",
            "PreConnectRetryCount": "3", "PreConnectRetryInterval": "2s", "MaxReconnectInterval": "1m",
            "ConnectionTimeout": "3s", "KeepAlive": "2s"
        }));
        assert!(settings.pre_connect);
        assert_eq!(settings.pre_connect_deadline(), Duration::from_secs(6));
        settings.check().unwrap();
        let mqtt = settings.mqtt("fallback-id").unwrap();
        assert_eq!(mqtt.client_id, "fallback-id");
        assert_eq!(mqtt.keep_alive, Duration::from_secs(2));
        assert_eq!(mqtt.connect_timeout, Some(Duration::from_secs(3)));
        assert_eq!(mqtt.max_reconnect_interval, Duration::from_secs(60));
        let will = mqtt.last_will.unwrap();
        assert_eq!(
            (will.topic.as_str(), &will.payload[..], will.qos, will.retain),
            ("status/app", &b"offline"[..], 1, true)
        );

        // EdgeX's defaults: no will, connect at the first export, 6 × 10s.
        let plain = read(json!({"BrokerAddress": "tcp://h", "Topic": "t", "WillTopic": "", "WillPayload": ""}));
        assert!(!plain.pre_connect);
        assert_eq!(plain.pre_connect_deadline(), Duration::from_secs(60));
        assert!(plain.mqtt("id").unwrap().last_will.is_none());
    }

    #[test]
    fn an_incomplete_or_bad_will_is_refused_naming_the_parameter() {
        let base = json!({"BrokerAddress": "tcp://h", "Topic": "t", "WillEnabled": "true"});
        let with = |extra: serde_json::Value| {
            let mut p = base.clone();
            p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            read(p).check().unwrap_err().to_string()
        };
        assert!(with(json!({"WillPayload": "x"})).starts_with("WillTopic must be present"));
        assert!(with(json!({"WillTopic": "a"})).starts_with("WillPayload must be present"));
        assert!(with(json!({"WillTopic": "a/#", "WillPayload": "x"})).starts_with("WillTopic 'a/#'"));
        assert!(with(json!({"WillTopic": "a", "WillPayload": "x", "WillQos": "3"})).starts_with("WillQos"));
        let err = crate::functions::params::from_parameters::<MqttExportSettings>(
            json!({"BrokerAddress": "tcp://h", "Topic": "t", "MaxReconnectInterval": "soon"}).as_object().unwrap(),
        )
        .unwrap_err();
        assert_eq!(err.parameter, "MaxReconnectInterval");
    }
}
