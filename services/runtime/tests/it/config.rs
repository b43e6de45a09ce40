//! Configuration: defaults, YAML file, environment overrides and the errors they give.

use std::io::Write;

use oxedge_runtime::config::{load_from, redact, LogSection, ServiceSection};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TestConfig {
    service: ServiceSection,
    log: LogSection,
    database: Database,
    tags: Vec<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Database {
    redis: Redis,
    max_connections: u32,
}

impl Default for Database {
    fn default() -> Self {
        Self { redis: Redis::default(), max_connections: 8 }
    }
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Redis {
    url: String,
    password: Option<String>,
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn yaml(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

#[test]
fn defaults_without_file_or_env() {
    let config: TestConfig = load_from(None, env(&[("PATH", "/bin")]), "OXEDGE").unwrap();
    assert_eq!(config, TestConfig::default());
    assert_eq!(config.service.host, "127.0.0.1");
    assert_eq!(config.service.max_request_size, 4 * 1024 * 1024);
    assert_eq!(config.service.max_result_count, 1024);
    assert_eq!(config.service.workers, 2);
    assert_eq!(config.service.shutdown_grace, 10);
    assert_eq!(config.log, LogSection { level: "info".into(), json: false });
}

#[test]
fn yaml_file_merges_over_defaults() {
    let file = yaml("service:\n  port: 59881\nlog:\n  json: true\ndatabase:\n  redis:\n    url: redis://db:6379\n");
    let config: TestConfig = load_from(Some(file.path()), env(&[]), "OXEDGE").unwrap();
    assert_eq!(config.service.port, 59881);
    assert_eq!(config.service.host, "127.0.0.1", "keys the file omits keep their default");
    assert!(config.log.json);
    assert_eq!(config.log.level, "info");
    assert_eq!(config.database.redis.url, "redis://db:6379");
    assert_eq!(config.database.max_connections, 8);
}

#[test]
fn empty_yaml_file_keeps_defaults() {
    let file = yaml("");
    let config: TestConfig = load_from(Some(file.path()), env(&[]), "OXEDGE").unwrap();
    assert_eq!(config, TestConfig::default());
}

#[test]
fn env_overrides_file_including_keys_with_underscores_and_nested_sections() {
    let file = yaml("service:\n  port: 59881\n  max_request_size: 10\n");
    let vars = env(&[
        ("OXEDGE_SERVICE_PORT", "6000"),
        ("OXEDGE_SERVICE_MAX_REQUEST_SIZE", "1000"),
        ("OXEDGE_DATABASE_REDIS_URL", "redis://env:6379"),
        ("OXEDGE_DATABASE_REDIS_PASSWORD", "hunter2"),
        ("OXEDGE_DATABASE_MAX_CONNECTIONS", "3"),
        ("oxedge_log_json", "true"),
        ("OXEDGE_TAGS", r#"["a","b"]"#),
        ("OXEDGE_NOT_A_KEY", "ignored"),
        ("OTHER_SERVICE_PORT", "1"),
    ]);
    let config: TestConfig = load_from(Some(file.path()), vars, "OXEDGE").unwrap();
    assert_eq!(config.service.port, 6000);
    assert_eq!(config.service.max_request_size, 1000);
    assert_eq!(config.database.redis.url, "redis://env:6379");
    assert_eq!(config.database.redis.password.as_deref(), Some("hunter2"));
    assert_eq!(config.database.max_connections, 3);
    assert!(config.log.json);
    assert_eq!(config.tags, ["a", "b"]);
}

#[test]
fn env_value_of_the_wrong_type_names_variable_and_key() {
    let err = load_from::<TestConfig>(None, env(&[("OXEDGE_SERVICE_PORT", "sixty")]), "OXEDGE").unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("OXEDGE_SERVICE_PORT") && message.contains("service.port"), "{message}");
}

#[test]
fn env_number_out_of_range_names_the_key() {
    let err = load_from::<TestConfig>(None, env(&[("OXEDGE_SERVICE_PORT", "70000")]), "OXEDGE").unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("service.port"), "{message}");
}

#[test]
fn yaml_value_of_the_wrong_type_names_the_key() {
    let file = yaml("service:\n  workers: many\n");
    let err = load_from::<TestConfig>(Some(file.path()), env(&[]), "OXEDGE").unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("service.workers"), "{message}");
}

#[test]
fn unknown_yaml_key_is_rejected_naming_it() {
    let file = yaml("service:\n  prot: 1\n");
    let err = load_from::<TestConfig>(Some(file.path()), env(&[]), "OXEDGE").unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("prot") && message.contains("service"), "{message}");

    let file = yaml("databse:\n  x: 1\n");
    let err = load_from::<TestConfig>(Some(file.path()), env(&[]), "OXEDGE").unwrap_err();
    assert!(format!("{err:#}").contains("databse"), "{err:#}");
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let err = load_from::<TestConfig>(Some("/nonexistent/oxedge.yaml".as_ref()), env(&[]), "OXEDGE").unwrap_err();
    assert!(format!("{err:#}").contains("/nonexistent/oxedge.yaml"), "{err:#}");
}

#[test]
fn redact_hides_password_of_a_loaded_config() {
    let vars = env(&[("OXEDGE_DATABASE_REDIS_PASSWORD", "hunter2")]);
    let config: TestConfig = load_from(None, vars, "OXEDGE").unwrap();
    let shown = redact(&serde_json::to_value(&config).unwrap());
    assert_eq!(shown["database"]["redis"]["password"], "***");
    assert_eq!(shown["service"]["port"], 0);
}
