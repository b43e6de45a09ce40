//! app-service-configurable: builds app-sdk pipelines from configuration, with no code.
//!
//! The `pipelines` section has the shape of EdgeX's `Writable.Pipeline`, so that EdgeX
//! configurations carry over (keys in EdgeX's `ExecutionOrder` spelling or Oxedge's
//! `execution_order`, any case):
//!
//! ```yaml
//! pipelines:
//!   execution_order: "FilterByDeviceName, Transform, MQTTExport"   # the default pipeline
//!   functions:
//!     FilterByDeviceName: { parameters: { DeviceNames: "Random-.*", FilterOut: "false" } }
//!     Transform: { parameters: { Type: json } }
//!     MQTTExport: { parameters: { BrokerAddress: "tcp://cloud:1883", Topic: "factory/{deviceName}" } }
//!   per_topic_pipelines:                                               # more pipelines, by topic
//!     floats:
//!       id: float-pipeline
//!       topics: "events/device/+/+/+/Float32, events/device/+/+/+/Float64"
//!       execution_order: "Transform, HTTPExport"
//! ```
//!
//! A function's name is a built-in's name or starts with one (`HTTPExport2`: a second
//! `HTTPExport`), as in EdgeX. Only the functions an execution order names are built, so a
//! profile may keep ready-made entries that are not used. The default pipeline takes every
//! message the trigger receives (`trigger.subscribe_topics`); a per-topic pipeline takes its
//! `topics`, to which the message-bus trigger adds EdgeX's base topic `edgex/` when missing.
//!
//! Bad configuration fails at start with the key path: an unknown function, a missing or bad
//! parameter, a bad template (`pipelines.functions.MQTTExport.parameters.Topic: …`), a batch
//! threshold the trigger cannot fill (messages held by a batch are not acknowledged, and the
//! trigger holds `trigger.capacity` unacknowledged messages at most).

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use oxedge_app_sdk::config::TriggerType;
use oxedge_app_sdk::export::http::{HttpExport, HttpExportSettings};
use oxedge_app_sdk::export::mqtt::{MqttExport, MqttExportSettings};
use oxedge_app_sdk::functions::{self, params::from_parameters, Batch, BatchMode, BatchSettings, ParameterError};
use oxedge_app_sdk::{AppContext, AppServiceConfig, Function, Pipeline};
use serde_json::{Map, Value as Json};

/// The service's default HTTP port (EdgeX's app services start at 59700).
pub const DEFAULT_PORT: u16 = 59700;

/// The service's name when it runs a configuration file rather than a profile.
pub const SERVICE_NAME: &str = "app-service-configurable";

/// The id of the pipeline `execution_order` describes (EdgeX's `DefaultPipelineId`).
pub const DEFAULT_PIPELINE_ID: &str = "default-pipeline";

/// A profile shipped with the service (`profiles/app/<name>.yaml`, compiled in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// What `--profile` selects: `mqtt-export`.
    pub name: &'static str,
    /// The service name it runs as (EdgeX's: `app-mqtt-export`).
    pub service_name: &'static str,
    /// Its HTTP port.
    pub port: u16,
    /// The configuration file's text.
    pub yaml: &'static str,
}

/// The profiles shipped with the service.
pub const PROFILES: &[Profile] = &[
    Profile {
        name: "mqtt-export",
        service_name: "app-mqtt-export",
        port: 59703,
        yaml: include_str!("../../../profiles/app/mqtt-export.yaml"),
    },
    Profile {
        name: "http-export",
        service_name: "app-http-export",
        port: 59704,
        yaml: include_str!("../../../profiles/app/http-export.yaml"),
    },
    Profile {
        name: "rules-forwarder",
        service_name: "app-rules-engine",
        port: 59701,
        yaml: include_str!("../../../profiles/app/rules-forwarder.yaml"),
    },
];

/// The profile `name`; an error lists the profiles there are.
pub fn profile(name: &str) -> anyhow::Result<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name).ok_or_else(|| {
        let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
        anyhow!("There is no profile '{name}' (profiles: {}).", names.join(", "))
    })
}

impl Profile {
    /// The profile's configuration, then the `OXEDGE_<SECTION>_<KEY>` variables; `service.port`
    /// 0 becomes the profile's port.
    pub fn load(&self) -> anyhow::Result<AppServiceConfig> {
        // The configuration loader reads files: the compiled-in text goes through one.
        let path = std::env::temp_dir().join(format!(
            "oxedge-{}-{}-{:?}.yaml",
            self.name,
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, self.yaml).with_context(|| format!("Failed to write {}.", path.display()))?;
        let loaded = AppServiceConfig::load(Some(&path));
        let _ = std::fs::remove_file(&path);
        let mut cfg = loaded.map_err(|e| anyhow!("Profile '{}': {e:#}", self.name))?;
        if cfg.service.port == 0 {
            cfg.service.port = self.port;
        }
        Ok(cfg)
    }
}

/// The configuration of `profile` or of the file at `file` (the file wins when both are
/// given), then the `OXEDGE_<SECTION>_<KEY>` variables, and the service name to run it as.
pub fn load_config(
    profile_name: Option<&str>,
    file: Option<&Path>,
) -> anyhow::Result<(&'static str, AppServiceConfig)> {
    match (file, profile_name) {
        (Some(file), _) => {
            let mut cfg = AppServiceConfig::load(Some(file))?;
            if cfg.service.port == 0 {
                cfg.service.port = DEFAULT_PORT;
            }
            let name = match profile_name {
                Some(name) => profile(name)?.service_name,
                None => SERVICE_NAME,
            };
            Ok((name, cfg))
        }
        (None, Some(name)) => {
            let profile = profile(name)?;
            Ok((profile.service_name, profile.load()?))
        }
        (None, None) => {
            let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
            bail!(
                "No pipelines to run: select a profile with --profile or OXEDGE_PROFILE ({}) or give a configuration file with -c.",
                names.join(", ")
            )
        }
    }
}

/// Builds the pipelines the `pipelines` section of the app's configuration describes.
pub fn build_pipelines(app: &AppContext) -> anyhow::Result<Vec<Pipeline>> {
    let cfg = app.config();
    build_pipelines_from(&cfg.pipelines, cfg.trigger.kind, app)
}

/// Builds the pipelines `section` describes (the `pipelines` section of a configuration) for a
/// service whose trigger is `trigger`.
pub fn build_pipelines_from(
    section: &Map<String, Json>,
    trigger: TriggerType,
    app: &AppContext,
) -> anyhow::Result<Vec<Pipeline>> {
    const KEYS: &[&str] = &["execution_order", "functions", "per_topic_pipelines"];
    check_keys(section, "pipelines", KEYS)?;
    let empty = Map::new();
    let functions = match field(section, "functions") {
        Some((_, Json::Object(functions))) => functions,
        Some((key, _)) => bail!("pipelines.{key}: must be a map of function names to their parameters"),
        None => &empty,
    };
    let mut pipelines = Vec::new();
    if let Some((key, order)) = field(section, "execution_order") {
        let names = names(order, &format!("pipelines.{key}"))?;
        if !names.is_empty() {
            let built = build_functions(&names, functions, &format!("pipelines.{key}"), app)?;
            pipelines.push(Pipeline::new(DEFAULT_PIPELINE_ID, vec!["#".to_owned()], built));
        }
    }
    match field(section, "per_topic_pipelines") {
        None => {}
        Some((key, Json::Object(per_topic))) => {
            for (name, definition) in per_topic {
                let path = format!("pipelines.{key}.{name}");
                pipelines.push(per_topic_pipeline(name, definition, functions, trigger, &path, app)?);
            }
        }
        Some((key, _)) => {
            bail!("pipelines.{key}: must be a map of pipeline names to their id, topics and execution_order")
        }
    }
    if pipelines.is_empty() {
        bail!("pipelines.execution_order: no functions, and no per_topic_pipelines: there is nothing to run");
    }
    Ok(pipelines)
}

fn per_topic_pipeline(
    name: &str,
    definition: &Json,
    functions: &Map<String, Json>,
    trigger: TriggerType,
    path: &str,
    app: &AppContext,
) -> anyhow::Result<Pipeline> {
    let Json::Object(definition) = definition else {
        bail!("{path}: must be a map with id, topics and execution_order");
    };
    check_keys(definition, path, &["id", "topics", "execution_order"])?;
    let id = match field(definition, "id") {
        Some((_, Json::String(id))) if !id.trim().is_empty() => id.trim().to_owned(),
        Some((key, _)) => bail!("{path}.{key}: must be a non-empty string"),
        None => name.to_owned(),
    };
    let (topics_key, topics) = field(definition, "topics").ok_or_else(|| anyhow!("{path}.topics: missing"))?;
    let topics = names(topics, &format!("{path}.{topics_key}"))?;
    if topics.is_empty() {
        bail!("{path}.{topics_key}: no topics");
    }
    let topics = topics
        .into_iter()
        .map(|topic| {
            let topic = match trigger {
                TriggerType::EdgexMessagebus if !topic.starts_with("edgex/") => format!("edgex/{topic}"),
                _ => topic,
            };
            if oxedge_bus::topic::is_valid_filter(&topic) {
                Ok(topic)
            } else {
                Err(anyhow!("{path}.{topics_key}: '{topic}' is not a valid MQTT topic filter"))
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (order_key, order) =
        field(definition, "execution_order").ok_or_else(|| anyhow!("{path}.execution_order: missing"))?;
    let order_path = format!("{path}.{order_key}");
    let names = names(order, &order_path)?;
    if names.is_empty() {
        bail!("{order_path}: no functions");
    }
    Ok(Pipeline::new(id, topics, build_functions(&names, functions, &order_path, app)?))
}

/// The export functions app-service-configurable adds to the SDK's built-ins.
const EXPORTS: &[&str] = &["MQTTExport", "HTTPExport"];

fn build_functions(
    names: &[String],
    functions: &Map<String, Json>,
    order_path: &str,
    app: &AppContext,
) -> anyhow::Result<Vec<Arc<dyn Function>>> {
    names
        .iter()
        .map(|name| {
            let definition = functions.get(name).ok_or_else(|| {
                anyhow!("{order_path}: '{name}' has no entry in pipelines.functions (names are case-sensitive)")
            })?;
            build_function(name, definition, &format!("pipelines.functions.{name}"), app)
        })
        .collect()
}

/// The built-in `instance` is an instance of: its name, or the longest built-in name it
/// starts with.
fn builtin_of(instance: &str) -> Option<&'static str> {
    functions::NAMES.iter().chain(EXPORTS).copied().filter(|name| instance.starts_with(name)).max_by_key(|n| n.len())
}

fn build_function(
    instance: &str,
    definition: &Json,
    path: &str,
    app: &AppContext,
) -> anyhow::Result<Arc<dyn Function>> {
    let builtin = builtin_of(instance).ok_or_else(|| {
        let known: Vec<&str> = functions::NAMES.iter().chain(EXPORTS).copied().collect();
        anyhow!("{path}: '{instance}' is not a function (a name must start with one of: {})", known.join(", "))
    })?;
    let empty = Map::new();
    let (params_path, parameters) = match definition {
        Json::Object(definition) => {
            check_keys(definition, path, &["parameters"])?;
            match field(definition, "parameters") {
                Some((key, Json::Object(parameters))) => (format!("{path}.{key}"), parameters),
                Some((_, Json::Null)) | None => (format!("{path}.parameters"), &empty),
                Some((key, _)) => bail!("{path}.{key}: must be a map of parameter names to values"),
            }
        }
        Json::Null => (format!("{path}.parameters"), &empty),
        _ => bail!("{path}: must be a map with parameters"),
    };
    let named = |e: ParameterError| match e.parameter.as_str() {
        "" => anyhow!("{params_path}: {}", e.message),
        parameter => anyhow!("{params_path}.{parameter}: {}", e.message),
    };
    match builtin {
        "MQTTExport" => {
            let settings: MqttExportSettings = from_parameters(parameters).map_err(named)?;
            check_template(&settings.topic).map_err(|e| named(ParameterError::new("Topic", e)))?;
            let export = MqttExport::new(settings, app).map_err(|e| anyhow!("{path}: {e:#}"))?;
            Ok(Arc::new(export))
        }
        "HTTPExport" => {
            let settings: HttpExportSettings = from_parameters(parameters).map_err(named)?;
            check_template(&settings.url).map_err(|e| named(ParameterError::new("Url", e)))?;
            let export = HttpExport::new(settings, app).map_err(|e| anyhow!("{path}: {e:#}"))?;
            Ok(Arc::new(export))
        }
        "Batch" => {
            let settings: BatchSettings = from_parameters(parameters).map_err(named)?;
            let capacity = app.config().trigger.capacity;
            if let BatchMode::ByCount(n) | BatchMode::ByTimeAndCount(_, n) = settings.mode().map_err(named)? {
                if n >= capacity {
                    bail!(
                        "{params_path}.BatchThreshold: {n} is not below trigger.capacity ({capacity}): the batch would \
                         wait for messages the trigger holds back until the batch's are acknowledged"
                    );
                }
            }
            Ok(Arc::new(Batch::from_settings(&settings).map_err(named)?))
        }
        name => match functions::build(name, parameters) {
            Some(built) => built.map_err(named),
            None => Err(anyhow!("{path}: '{name}' is not a function")),
        },
    }
}

/// Makes the pipeline the all-in-one's `--export-mqtt URL --export-topic TEMPLATE` asks for:
/// every event to the MQTT broker at `broker_url` (`mqtt://host:1883`, `mqtts://…`), as JSON,
/// on the topic `topic` (a template such as `factory/{deviceName}/{sourceName}`), through the
/// app's store-and-forward.
pub fn mqtt_export_pipeline(app: &AppContext, broker_url: &str, topic: &str) -> anyhow::Result<Pipeline> {
    check_template(topic).map_err(|e| anyhow!("export topic: {e}"))?;
    let export = MqttExport::new(MqttExportSettings::new(broker_url, topic), app).context("export MQTT")?;
    Ok(Pipeline::new("mqtt-export", vec!["#".to_owned()], vec![Arc::new(export)]))
}

/// Checks a template (`factory/{deviceName}/{sourceName}`): every `{` closed by a `}` around
/// a non-empty name, no `}` alone.
pub fn check_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(at) = rest.find(['{', '}']) {
        if rest[at..].starts_with('}') {
            return Err(format!("template '{template}' has '}}' without '{{'"));
        }
        let after = &rest[at + 1..];
        let close = after.find('}').ok_or_else(|| format!("template '{template}' has '{{' without '}}'"))?;
        let key = &after[..close];
        if key.trim().is_empty() || key.contains('{') {
            return Err(format!("template '{template}' has an empty or nested placeholder"));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// A key of `map` spelled as `name` (`execution_order`) or as EdgeX spells it
/// (`ExecutionOrder`): compared without case and underscores.
fn field<'a>(map: &'a Map<String, Json>, name: &str) -> Option<(&'a str, &'a Json)> {
    map.iter().find(|(key, _)| normalized(key) == normalized(name)).map(|(key, value)| (key.as_str(), value))
}

fn normalized(key: &str) -> String {
    key.chars().filter(|c| *c != '_').flat_map(char::to_lowercase).collect()
}

fn check_keys(map: &Map<String, Json>, path: &str, known: &[&str]) -> anyhow::Result<()> {
    match map.keys().find(|key| !known.iter().any(|k| normalized(k) == normalized(key))) {
        Some(key) => bail!("{path}.{key}: unknown key (known: {})", known.join(", ")),
        None => Ok(()),
    }
}

/// A list of names: a comma-separated string (as EdgeX writes it) or a YAML sequence.
fn names(value: &Json, path: &str) -> anyhow::Result<Vec<String>> {
    match value {
        Json::String(text) => Ok(functions::params::de::split_list(text)),
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                Json::String(name) => Ok(name.trim().to_owned()),
                other => Err(anyhow!("{path}: expected names, got {other}")),
            })
            .filter(|name| !matches!(name, Ok(n) if n.is_empty()))
            .collect(),
        Json::Null => Ok(Vec::new()),
        other => bail!("{path}: expected a comma-separated list, got {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked() {
        assert!(check_template("factory/{deviceName}/{sourceName}").is_ok());
        assert!(check_template("plain").is_ok());
        for bad in ["a/{deviceName", "a/}b", "a/{}/b", "a/{{x}}"] {
            assert!(check_template(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instances_match_the_longest_builtin_prefix() {
        assert_eq!(builtin_of("HTTPExport2"), Some("HTTPExport"));
        assert_eq!(builtin_of("TransformXml"), Some("Transform"));
        assert_eq!(builtin_of("FilterByDeviceName"), Some("FilterByDeviceName"));
        assert_eq!(builtin_of("Frobnicate"), None);
    }

    #[test]
    fn keys_match_edgex_and_oxedge_spellings() {
        let map = serde_json::json!({"ExecutionOrder": "a", "per_topic_pipelines": {}});
        let map = map.as_object().unwrap();
        assert_eq!(field(map, "execution_order").unwrap().0, "ExecutionOrder");
        assert_eq!(field(map, "per_topic_pipelines").unwrap().0, "per_topic_pipelines");
        assert!(check_keys(map, "pipelines", &["execution_order", "per_topic_pipelines"]).is_ok());
        let err = check_keys(map, "pipelines", &["functions"]).unwrap_err().to_string();
        assert!(err.starts_with("pipelines.ExecutionOrder: unknown key"), "{err}");
    }

    #[test]
    fn profiles_load() {
        for p in PROFILES {
            let cfg = p.load().unwrap_or_else(|e| panic!("{}: {e:#}", p.name));
            assert_eq!(cfg.service.port, p.port);
            assert!(!cfg.pipelines.is_empty(), "{}", p.name);
        }
    }
}
