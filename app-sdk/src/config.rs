//! An app service's configuration: defaults in code, a YAML file, `OXEDGE_<SECTION>_<KEY>`
//! environment overrides (see [`oxedge_runtime::config::load`]).
//!
//! The sections follow EdgeX's app service configuration: `service`, `log`, `bus`,
//! `trigger` (EdgeX's `Trigger`), `store_and_forward` (EdgeX's `Writable.StoreAndForward`),
//! `secrets`, and `pipelines` (EdgeX's `Writable.Pipeline`: read by app-service-configurable,
//! ignored by services that build their pipelines in code).

use std::path::{Path, PathBuf};

use oxedge_bus::config::{BusConfig, BusType};
use oxedge_bus::tls::TlsFiles;
use oxedge_runtime::config::{LogSection, ServiceSection};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::forward::ForwardConfig;
use crate::secrets::SecretsConfig;

/// The whole configuration of an app service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppServiceConfig {
    /// HTTP listener and limits.
    pub service: ServiceSection,
    /// Logging.
    pub log: LogSection,
    /// The message bus (the `edgex-messagebus` trigger listens on it).
    pub bus: BusConfig,
    /// Where the pipelines' messages come from.
    pub trigger: TriggerSection,
    /// Store-and-forward of exports that fail.
    pub store_and_forward: ForwardConfig,
    /// Where secrets are read from.
    pub secrets: SecretsConfig,
    /// The directory the service keeps its stores in (store-and-forward's SQLite file).
    pub data_dir: PathBuf,
    /// Pipeline definitions, read by app-service-configurable.
    pub pipelines: Map<String, Json>,
}

impl Default for AppServiceConfig {
    /// Defaults as EdgeX's: the bus is an MQTT broker on localhost (the all-in-one passes its
    /// own bus instead), the trigger is the message bus.
    fn default() -> Self {
        Self {
            service: ServiceSection::default(),
            log: LogSection::default(),
            bus: BusConfig { kind: BusType::Mqtt, ..BusConfig::default() },
            trigger: TriggerSection::default(),
            store_and_forward: ForwardConfig::default(),
            secrets: SecretsConfig::default(),
            data_dir: PathBuf::from("oxedge-data"),
            pipelines: Map::new(),
        }
    }
}

/// Which trigger feeds the pipelines (EdgeX's `Trigger.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerType {
    /// EdgeX message envelopes from the service's message bus.
    EdgexMessagebus,
    /// Messages from an MQTT broker other than the bus (`trigger.external_mqtt`).
    ExternalMqtt,
    /// `POST /api/v3/trigger`; the response data is the HTTP answer.
    Http,
}

/// What the trigger hands the first function (EdgeX's `TargetType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetType {
    /// The payload decoded as an EdgeX event (an `AddEventRequest` or a bare event, JSON or
    /// CBOR); a payload that is not one is malformed: counted, logged and acknowledged.
    Event,
    /// The payload's bytes as they are, with their content type.
    Raw,
}

/// Where the pipelines' messages come from (EdgeX's `Trigger` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriggerSection {
    /// `edgex-messagebus`, `external-mqtt` or `http`.
    #[serde(rename = "type")]
    pub kind: TriggerType,
    /// What the first function receives: `event` or `raw`.
    pub target_type: TargetType,
    /// The topics of pipelines that name none (EdgeX's `SubscribeTopics`).
    pub subscribe_topics: Vec<String>,
    /// Where response data set by a function is published after the pipeline (message bus
    /// and external MQTT triggers; EdgeX's `PublishTopic`); a template such as
    /// `results/{deviceName}`. Empty: not published.
    pub publish_topic: String,
    /// The durable subscription's name: the broker keeps the messages published while the
    /// service is away. Empty: the service name.
    pub durable_name: String,
    /// Deliveries the subscription holds in memory at most (received, not yet acknowledged);
    /// at that many the broker keeps the rest. Keep it above `max_in_flight` and above the
    /// count of a batch, whose items stay unacknowledged until the batch is released.
    pub capacity: usize,
    /// Messages taken from the trigger and not yet finished (their functions run, their
    /// exports not yet confirmed) at most; a full window stops taking messages, so memory
    /// stays bounded whatever the export speed.
    pub max_in_flight: usize,
    /// The external broker (`type: external-mqtt`).
    pub external_mqtt: ExternalMqttSection,
}

impl Default for TriggerSection {
    fn default() -> Self {
        Self {
            kind: TriggerType::EdgexMessagebus,
            target_type: TargetType::Event,
            subscribe_topics: vec![oxedge_bus::topic::EVENTS_FILTER.to_owned()],
            publish_topic: String::new(),
            durable_name: String::new(),
            capacity: 1024,
            max_in_flight: 512,
            external_mqtt: ExternalMqttSection::default(),
        }
    }
}

/// An MQTT broker other than the bus, for the `external-mqtt` trigger (EdgeX's
/// `Trigger.ExternalMqtt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalMqttSection {
    /// The broker: `mqtt://host:1883` or `mqtts://host:8883`.
    pub url: String,
    /// The client id; the durable subscription's name when `durable` (EdgeX's `ClientId`).
    /// Empty: the service name.
    pub client_id: String,
    /// QoS of the subscription: 0, 1 or 2.
    pub qos: u8,
    /// Keep-alive interval, in seconds.
    pub keep_alive_secs: u64,
    /// Whether the broker keeps the session (and the messages published meanwhile) while the
    /// service is away.
    pub durable: bool,
    /// User name, with the password from `password_file`.
    pub username: Option<String>,
    /// File holding the password (its first line).
    pub password_file: Option<PathBuf>,
    /// TLS files (used with `mqtts://` URLs): CA, client certificate and key.
    pub tls: TlsFiles,
}

impl Default for ExternalMqttSection {
    fn default() -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".to_owned(),
            client_id: String::new(),
            qos: 1,
            keep_alive_secs: 30,
            durable: true,
            username: None,
            password_file: None,
            tls: TlsFiles::default(),
        }
    }
}

impl ExternalMqttSection {
    /// The section as a bus configuration, so that the bus's MQTT client (reconnection,
    /// in-order acks, bounded window, TLS) serves the trigger.
    pub fn bus_config(&self) -> BusConfig {
        BusConfig {
            kind: BusType::Mqtt,
            url: self.url.clone(),
            client_id: self.client_id.clone(),
            qos: self.qos,
            keep_alive_secs: self.keep_alive_secs,
            username: self.username.clone(),
            password_file: self.password_file.clone(),
            tls: self.tls.clone(),
            ..BusConfig::default()
        }
    }
}

impl AppServiceConfig {
    /// Loads the configuration: defaults, the YAML file at `path`, then `OXEDGE_*`
    /// variables; then [`validate`](Self::validate)s it.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let cfg: Self = oxedge_runtime::config::load(path, "OXEDGE")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what serde cannot, naming every bad key.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        let trigger = &self.trigger;
        for (i, topic) in trigger.subscribe_topics.iter().enumerate() {
            if !oxedge_bus::topic::is_valid_filter(topic) {
                problems.push(format!("trigger.subscribe_topics[{i}]: '{topic}' is not a valid MQTT topic filter"));
            }
        }
        if trigger.publish_topic.contains(['#', '+']) {
            problems.push(format!("trigger.publish_topic: '{}' must not contain wildcards", trigger.publish_topic));
        }
        if trigger.capacity == 0 {
            problems.push("trigger.capacity: must be at least 1".to_owned());
        }
        if trigger.max_in_flight == 0 {
            problems.push("trigger.max_in_flight: must be at least 1".to_owned());
        }
        if trigger.kind == TriggerType::ExternalMqtt {
            let mqtt = &trigger.external_mqtt;
            if !["mqtt://", "tcp://", "mqtts://", "ssl://"].iter().any(|s| mqtt.url.starts_with(s)) {
                problems.push(format!(
                    "trigger.external_mqtt.url: '{}' is not an MQTT URL (mqtt://host:port, mqtts://host:port)",
                    mqtt.url
                ));
            }
            if mqtt.qos > 2 {
                problems.push(format!("trigger.external_mqtt.qos: must be 0, 1 or 2, not {}", mqtt.qos));
            }
            if mqtt.username.is_some() != mqtt.password_file.is_some() {
                problems.push(
                    "trigger.external_mqtt.username: username and password_file must be either both set or both missing"
                        .to_owned(),
                );
            }
        }
        problems.extend(self.secrets.problems());
        if let Err(error) = self.store_and_forward.validate() {
            problems.push(error.to_string().trim_start_matches("Invalid configuration: ").to_owned());
        }
        oxedge_runtime::config::check_problems(problems)
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
        let cfg = AppServiceConfig::default();
        cfg.validate().unwrap();
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<AppServiceConfig>(&text).unwrap(), cfg);
        assert_eq!(cfg.trigger.subscribe_topics, ["edgex/events/device/#"]);
    }

    #[test]
    fn file_and_environment_set_trigger_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "trigger:\n  type: external-mqtt\n  external_mqtt: { url: 'mqtt://cloud:1884', qos: 0 }\n\
             pipelines:\n  functions: { FilterByDeviceName: { parameters: { DeviceNames: d1 } } }\n",
        )
        .unwrap();
        let vars = env(&[("OXEDGE_TRIGGER_MAX_IN_FLIGHT", "8"), ("OXEDGE_TRIGGER_TARGET_TYPE", "raw")]);
        let cfg: AppServiceConfig = oxedge_runtime::config::load_from(Some(&path), vars, "OXEDGE").unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.trigger.kind, TriggerType::ExternalMqtt);
        assert_eq!(cfg.trigger.target_type, TargetType::Raw);
        assert_eq!(cfg.trigger.max_in_flight, 8);
        assert_eq!(cfg.trigger.external_mqtt.bus_config().url, "mqtt://cloud:1884");
        assert!(cfg.pipelines.contains_key("functions"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut cfg = AppServiceConfig::default();
        cfg.trigger.kind = TriggerType::ExternalMqtt;
        cfg.trigger.external_mqtt.url = "http://cloud".into();
        cfg.trigger.subscribe_topics = vec!["a/#/b".into()];
        cfg.trigger.max_in_flight = 0;
        let err = cfg.validate().unwrap_err().to_string();
        for key in ["trigger.external_mqtt.url", "trigger.subscribe_topics[0]", "trigger.max_in_flight"] {
            assert!(err.contains(key), "{key} not in {err}");
        }
        let vars = env(&[("OXEDGE_TRIGGER_TYPE", "carrier-pigeon")]);
        let err = oxedge_runtime::config::load_from::<AppServiceConfig>(None, vars, "OXEDGE").unwrap_err();
        assert!(format!("{err:#}").contains("trigger.type"), "{err:#}");
    }
}
