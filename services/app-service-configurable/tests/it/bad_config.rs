//! Bad configuration fails at start with a message naming the key path: an unknown function,
//! a missing parameter, a bad template, a bad value, a malformed section.

use std::process::Command;
use std::sync::{Arc, Mutex};

use oxedge_app_sdk::config::TriggerType;
use oxedge_app_sdk::secrets::Secrets;
use oxedge_app_sdk::{AppContext, AppServiceConfig};
use oxedge_app_service_configurable::{build_pipelines_from, load_config, mqtt_export_pipeline};
use serde_json::{json, Map, Value as Json};

fn app() -> (tempfile::TempDir, AppContext) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = AppServiceConfig { data_dir: dir.path().to_owned(), ..AppServiceConfig::default() };
    let registry = Arc::new(Mutex::new(prometheus_client::registry::Registry::default()));
    (dir, AppContext::new("app-test", cfg, Secrets::default(), registry))
}

fn error(section: Json) -> String {
    let (_dir, app) = app();
    let section: Map<String, Json> = section.as_object().cloned().unwrap();
    match build_pipelines_from(&section, TriggerType::EdgexMessagebus, &app) {
        Ok(pipelines) => panic!("accepted: {pipelines:?}"),
        Err(e) => format!("{e:#}"),
    }
}

fn mqtt_export(parameters: Json) -> Json {
    json!({"execution_order": "Transform, MQTTExport", "functions": {
        "Transform": {"parameters": {"Type": "json"}},
        "MQTTExport": {"parameters": parameters}
    }})
}

#[test]
fn a_missing_parameter_is_named_with_its_path() {
    let err = error(mqtt_export(json!({"Topic": "t"})));
    assert_eq!(err, "pipelines.functions.MQTTExport.parameters.BrokerAddress: missing");
    let err = error(json!({"ExecutionOrder": "FilterByDeviceName", "Functions": {
        "FilterByDeviceName": {"Parameters": {"FilterOut": "true"}}}}));
    assert_eq!(err, "pipelines.functions.FilterByDeviceName.Parameters.DeviceNames: missing");
}

#[test]
fn an_unknown_function_is_named() {
    let err = error(json!({"execution_order": "Transform, Frobnicate",
        "functions": {"Transform": {"parameters": {"Type": "json"}}, "Frobnicate": {"parameters": {}}}}));
    assert!(err.starts_with("pipelines.functions.Frobnicate: 'Frobnicate' is not a function"), "{err}");
    let err = error(
        json!({"execution_order": "Transform, Missing", "functions": {"Transform": {"parameters": {"Type": "json"}}}}),
    );
    assert!(err.starts_with("pipelines.execution_order: 'Missing' has no entry in pipelines.functions"), "{err}");
}

#[test]
fn a_bad_template_is_named() {
    let err = error(mqtt_export(json!({"BrokerAddress": "tcp://127.0.0.1:1", "Topic": "factory/{deviceName/x"})));
    assert!(
        err.starts_with("pipelines.functions.MQTTExport.parameters.Topic: template 'factory/{deviceName/x'"),
        "{err}"
    );
    let err = error(json!({"execution_order": "HTTPExport", "functions": {"HTTPExport": {"parameters": {
        "Method": "post", "MimeType": "application/json", "Url": "http://x/{}"}}}}));
    assert!(err.starts_with("pipelines.functions.HTTPExport.parameters.Url: template"), "{err}");
}

#[test]
fn bad_values_and_unknown_parameters_are_named() {
    let cases = [
        (json!({"Mode": "whenever"}), "Batch", "pipelines.functions.Batch.parameters.Mode: 'whenever'"),
        (
            json!({"Mode": "bycount", "BatchThreshold": "lots"}),
            "Batch",
            "pipelines.functions.Batch.parameters.BatchThreshold: expected a number",
        ),
        (
            json!({"Type": "csv"}),
            "Transform",
            "pipelines.functions.Transform.parameters.Type: 'csv' is not json or xml",
        ),
        (
            json!({"DeviceNames": "a", "FilterOut": "maybe"}),
            "FilterByDeviceName",
            "pipelines.functions.FilterByDeviceName.parameters.FilterOut: expected true or false",
        ),
        (
            json!({"Algorithm": "gzip", "Level": 9}),
            "Compress",
            "pipelines.functions.Compress.parameters.Level: unknown parameter",
        ),
        (json!({"Tags": "a"}), "AddTags2", "pipelines.functions.AddTags2.parameters.Tags: 'a' is not key:value"),
        (json!({}), "JSONLogic", "pipelines.functions.JSONLogic.parameters.Rule: missing"),
        (
            json!({"Rule": "{\"==\": [1,"}),
            "JSONLogic",
            "pipelines.functions.JSONLogic.parameters.Rule: '{\"==\": [1,' is not JSON",
        ),
        (
            json!({"Rule": "{\"frobnicate\": [{\"var\": \"deviceName\"}]}"}),
            "JSONLogic",
            "pipelines.functions.JSONLogic.parameters.Rule: 'frobnicate' is not a JSONLogic operator",
        ),
        (
            json!({"Tags": "site"}),
            "ToLineProtocol",
            "pipelines.functions.ToLineProtocol.parameters.Tags: 'site' is not key:value",
        ),
        (
            json!({"BrokerAddress": "tcp://h", "Topic": "t", "WillEnabled": "yes please"}),
            "MQTTExport",
            "pipelines.functions.MQTTExport.parameters.WillEnabled: expected true or false",
        ),
        (
            json!({"BrokerAddress": "tcp://h", "Topic": "t", "PreConnectRetryInterval": "often"}),
            "MQTTExport",
            "pipelines.functions.MQTTExport.parameters.PreConnectRetryInterval: 'often' is not a duration",
        ),
    ];
    for (parameters, function, expected) in cases {
        let err = error(json!({"execution_order": function, "functions": {function: {"parameters": parameters}}}));
        assert!(err.starts_with(expected), "{function}: {err}");
    }
    let err = error(json!({"execution_order": "Batch", "functions": {"Batch": {"parameters": {
        "Mode": "bytimecount", "BatchThreshold": "1024", "TimeInterval": "1s"}}}}));
    assert!(
        err.starts_with(
            "pipelines.functions.Batch.parameters.BatchThreshold: 1024 is not below trigger.capacity (1024)"
        ),
        "{err}"
    );
    let err = error(mqtt_export(json!({"BrokerAddress": "tcp://127.0.0.1:1", "Topic": "t", "QOS": "high"})));
    assert!(err.starts_with("pipelines.functions.MQTTExport.parameters.QOS: expected a number"), "{err}");
    let err = error(mqtt_export(json!({"BrokerAddress": "tcp://h", "Topic": "t", "WillEnabled": "true",
        "WillPayload": "gone"})));
    assert!(err.starts_with("pipelines.functions.MQTTExport: MQTTExport: WillTopic must be present"), "{err}");
}

#[test]
fn malformed_sections_are_named() {
    assert!(error(json!({"execution_order": ""})).starts_with("pipelines.execution_order: no functions"));
    assert!(error(json!({"executionorder": "Transform", "functions": [1]}))
        .starts_with("pipelines.functions: must be a map"));
    assert!(error(json!({"target_type": "raw"})).starts_with("pipelines.target_type: unknown key"));
    let err = error(
        json!({"per_topic_pipelines": {"floats": {"execution_order": "ToJsonValue"}}, "functions": {"ToJsonValue": {}}}),
    );
    assert_eq!(err, "pipelines.per_topic_pipelines.floats.topics: missing");
    let err = error(json!({"per_topic_pipelines": {"floats": {"topics": "a/#/b", "execution_order": "ToJsonValue"}},
        "functions": {"ToJsonValue": {}}}));
    assert!(
        err.starts_with("pipelines.per_topic_pipelines.floats.topics: 'edgex/a/#/b' is not a valid MQTT topic filter"),
        "{err}"
    );
}

#[test]
fn edgex_shaped_pipelines_build_with_per_topic_pipelines_and_instances() {
    let (_dir, app) = app();
    let section = json!({
        "ExecutionOrder": "FilterByDeviceName, Transform",
        "Functions": {
            "FilterByDeviceName": {"Parameters": {"DeviceNames": "a, b", "FilterOut": "false"}},
            "Transform": {"Parameters": {"Type": "json"}},
            "TransformXml": {"Parameters": {"Type": "xml"}},
            "Unused": {"Parameters": {"Whatever": "1"}}
        },
        "PerTopicPipelines": {
            "floats": {"Id": "float-pipeline", "Topics": "events/device/+/+/+/Float32, edgex/events/device/+/+/+/Float64", "ExecutionOrder": "TransformXml"}
        }
    });
    let pipelines = build_pipelines_from(section.as_object().unwrap(), TriggerType::EdgexMessagebus, &app).unwrap();
    assert_eq!(pipelines.len(), 2);
    assert_eq!(pipelines[0].id, "default-pipeline");
    assert_eq!(pipelines[0].topics, ["#"]);
    assert_eq!(pipelines[1].id, "float-pipeline");
    assert_eq!(pipelines[1].topics, ["edgex/events/device/+/+/+/Float32", "edgex/events/device/+/+/+/Float64"]);
    let names: Vec<&str> = pipelines[1].functions.iter().map(|f| f.name()).collect();
    assert_eq!(names, ["TransformToXML"]);
}

#[test]
fn profiles_and_files_are_selected_and_unknown_profiles_listed() {
    let (name, cfg) = load_config(Some("http-export"), None).unwrap();
    assert_eq!((name, cfg.service.port), ("app-http-export", 59704));
    let err = load_config(Some("kafka-export"), None).unwrap_err().to_string();
    assert!(err.contains("mqtt-export, http-export, rules-forwarder"), "{err}");
    assert!(load_config(None, None).unwrap_err().to_string().contains("--profile"));
}

#[tokio::test]
async fn the_all_in_one_export_helper_refuses_bad_templates() {
    let (_dir, app) = app();
    let pipeline = mqtt_export_pipeline(&app, "mqtt://127.0.0.1:1883", "factory/{deviceName}/{sourceName}").unwrap();
    assert_eq!(pipeline.topics, ["#"]);
    assert_eq!(pipeline.functions.len(), 1);
    let err = mqtt_export_pipeline(&app, "mqtt://127.0.0.1:1883", "factory/{deviceName").unwrap_err();
    assert!(err.to_string().starts_with("export topic: template"), "{err}");
    app.shutdown().cancel();
}

#[test]
fn the_binary_stops_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        format!(
            "service: {{ port: {} }}\ndata_dir: {}\npipelines:\n  execution_order: MQTTExport\n  functions:\n    MQTTExport:\n      parameters: {{ Topic: t }}\n",
            oxedge_testkit::free_port(),
            dir.path().display()
        ),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_app-service-configurable"))
        .args(["-c", &file.display().to_string()])
        .env_remove("OXEDGE_PROFILE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("pipelines.functions.MQTTExport.parameters.BrokerAddress: missing"), "{stderr}");
}
