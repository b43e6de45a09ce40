//! Configuration: defaults in code, a YAML file on top, environment variables on top of that.
//!
//! Every key is reachable from the environment as `{PREFIX}_{SECTION}_{KEY}`, upper or lower
//! case, with the `_` of nested keys and of multi-word keys alike (`OXEDGE_SERVICE_MAX_REQUEST_SIZE`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use oxedge_contracts::GoDuration;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{Map, Value};

/// How a service listens for HTTP requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceSection {
    /// The address to bind; loopback by default.
    pub host: String,
    /// The TCP port to bind.
    pub port: u16,
    /// The largest request body accepted, in bytes; larger bodies get 413.
    pub max_request_size: usize,
    /// The largest number of items a query returns (EdgeX's `MaxResultCount`).
    pub max_result_count: usize,
    /// The number of HTTP worker threads.
    pub workers: usize,
    /// How long in-flight requests may run after shutdown is requested, in seconds.
    pub shutdown_grace: u64,
}

impl Default for ServiceSection {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 0,
            max_request_size: 4 * 1024 * 1024,
            max_result_count: 1024,
            workers: 2,
            shutdown_grace: 10,
        }
    }
}

impl ServiceSection {
    /// The `host:port` this section asks to listen on.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Binds the listener [`crate::serve`] expects.
    pub fn bind(&self) -> anyhow::Result<std::net::TcpListener> {
        let address = self.address();
        std::net::TcpListener::bind(&address).with_context(|| format!("Failed to listen on {address}."))
    }
}

/// `Ok` when `problems` is empty, else one error listing them all: `Invalid configuration:
/// a: …; b: …` (each problem names its key).
pub fn check_problems(problems: Vec<String>) -> anyhow::Result<()> {
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("Invalid configuration: {}", problems.join("; "))
    }
}

/// Which store keeps a service's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A SQLite file (embedded, the default).
    Sqlite,
    /// A Redis server.
    Redis,
}

/// Where a service stores its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite` or `redis`.
    pub backend: Backend,
    /// The SQLite file (backend `sqlite`). Each service has its own default file; a
    /// `database` section written in a config file should name it.
    pub path: PathBuf,
    /// The Redis URL (backend `redis`), e.g. `redis://127.0.0.1:6379`; a password belongs
    /// in the secret store or `OXEDGE_DATABASE_REDIS_URL`, not in the file.
    pub redis_url: String,
}

impl DatabaseSection {
    /// SQLite in the file `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), ..Self::default() }
    }

    /// Fails, naming `database.redis_url`, unless it is a Redis URL this build can use
    /// (see [`oxedge_redis::check_url`]): waiting would not fix it.
    pub fn check_redis_url(&self) -> anyhow::Result<()> {
        oxedge_redis::check_url(&self.redis_url)
            .map_err(|e| anyhow::anyhow!("Invalid configuration at key `database.redis_url`: {e}."))
    }
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            path: PathBuf::from("oxedge-data/oxedge.db"),
            redis_url: "redis://127.0.0.1:6379".to_owned(),
        }
    }
}

/// How a service reaches another over HTTP (`clients.<service>`). The default is
/// core-metadata on this host, the one service every client calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientSection {
    /// Base URL (`http://localhost:59881`).
    pub url: String,
    /// How long one call may take, as a Go duration (`5s`, `500ms`); more than zero.
    pub timeout: GoDuration,
}

impl Default for ClientSection {
    fn default() -> Self {
        Self { url: "http://localhost:59881".to_owned(), timeout: Duration::from_secs(5).into() }
    }
}

impl ClientSection {
    /// `timeout` as a duration.
    pub fn timeout(&self) -> Duration {
        self.timeout.get()
    }

    /// What is wrong with this section, each problem named under `key` (`clients.core_metadata`).
    pub fn problems(&self, key: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if self.timeout.is_zero() {
            problems.push(format!("{key}.timeout: must be more than 0s"));
        }
        let rest = self.url.strip_prefix("http://").or_else(|| self.url.strip_prefix("https://"));
        if rest.is_none_or(str::is_empty) {
            problems.push(format!("{key}.url: '{}' is not an http:// or https:// URL", self.url));
        }
        problems
    }
}

/// The services a service calls (`clients`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientsSection {
    /// core-metadata: devices, profiles and device services.
    pub core_metadata: ClientSection,
}

/// How a service logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// The level or `tracing` filter directive (`info`, `debug,actix_web=warn`); `RUST_LOG` wins.
    pub level: String,
    /// Logs one JSON object per line instead of text.
    pub json: bool,
}

impl Default for LogSection {
    fn default() -> Self {
        Self { level: "info".to_owned(), json: false }
    }
}

/// Loads a configuration: `T::default()`, then the YAML file at `path`, then the process
/// environment variables starting with `{env_prefix}_`.
pub fn load<T>(path: Option<&Path>, env_prefix: &str) -> anyhow::Result<T>
where
    T: DeserializeOwned + Serialize + Default,
{
    load_from(path, std::env::vars(), env_prefix)
}

/// Like [`load`], with the environment given explicitly (for tests).
///
/// Env variables under the prefix that name no key are logged and ignored; a value that does not
/// parse as the key's type, an unknown YAML key or a YAML value of the wrong type is an error
/// naming the key.
pub fn load_from<T>(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    env_prefix: &str,
) -> anyhow::Result<T>
where
    T: DeserializeOwned + Serialize + Default,
{
    let mut tree = serde_json::to_value(T::default()).context("Failed to serialize the default configuration.")?;
    let source = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("Failed to read configuration file {}.", path.display()))?;
            let file: Value = serde_norway::from_str(&text)
                .with_context(|| format!("Failed to parse configuration file {}.", path.display()))?;
            merge(&mut tree, file);
            format!("configuration file {}", path.display())
        }
        None => "configuration".to_owned(),
    };
    apply_env(&mut tree, env, env_prefix)?;
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let key = e.path().to_string();
        if key.is_empty() || key == "." {
            anyhow!("Invalid {source}: {}", e.inner())
        } else {
            anyhow!("Invalid {source} at key `{key}`: {}", e.inner())
        }
    })
}

/// Deep-merges `overlay` into `base`: objects merge key by key, anything else replaces.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (_, Value::Null) => {}
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

fn apply_env(tree: &mut Value, env: impl IntoIterator<Item = (String, String)>, prefix: &str) -> anyhow::Result<()> {
    let head = format!("{}_", prefix.to_ascii_uppercase());
    let mut vars: Vec<(String, String)> =
        env.into_iter().filter(|(name, _)| name.to_ascii_uppercase().starts_with(&head)).collect();
    vars.sort();
    for (name, raw) in vars {
        let rest = name[head.len()..].to_ascii_lowercase();
        let Some(path) = find_key(tree, &rest) else {
            tracing::warn!(variable = %name, "Ignoring environment variable that names no configuration key.");
            continue;
        };
        let Some(slot) = path.iter().try_fold(&mut *tree, |node, key| node.get_mut(key.as_str())) else {
            continue;
        };
        *slot =
            parse_like(slot, &raw).with_context(|| format!("Invalid value of {name} for key `{}`.", path.join(".")))?;
    }
    Ok(())
}

/// Finds the path of keys that spells `rest` (lower case, `_`-joined), preferring the longest
/// key at each level.
fn find_key(node: &Value, rest: &str) -> Option<Vec<String>> {
    let Value::Object(map) = node else { return None };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    for key in keys {
        let lower = key.to_ascii_lowercase();
        if rest == lower {
            return Some(vec![key.clone()]);
        }
        if let Some(tail) = rest.strip_prefix(&lower).and_then(|t| t.strip_prefix('_')) {
            if let Some(mut path) = find_key(&map[key], tail) {
                path.insert(0, key.clone());
                return Some(path);
            }
        }
    }
    None
}

/// Parses `raw` as a value of the type `current` has.
fn parse_like(current: &Value, raw: &str) -> anyhow::Result<Value> {
    let value = match current {
        Value::String(_) => Value::String(raw.to_owned()),
        Value::Bool(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => bail!("expected true or false, got '{raw}'"),
        },
        Value::Number(_) => match serde_json::from_str::<Value>(raw.trim()) {
            Ok(n @ Value::Number(_)) => n,
            _ => bail!("expected a number, got '{raw}'"),
        },
        Value::Array(_) => match serde_json::from_str::<Value>(raw) {
            Ok(a @ Value::Array(_)) => a,
            _ => bail!("expected a JSON array, got '{raw}'"),
        },
        Value::Object(_) => match serde_json::from_str::<Value>(raw) {
            Ok(o @ Value::Object(_)) => o,
            _ => bail!("expected a JSON object, got '{raw}'"),
        },
        // An unset optional key: JSON if it parses, else the string.
        Value::Null => serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned())),
    };
    Ok(value)
}

/// Returns `config` with the values of keys naming a password, secret, token or key replaced by
/// `"***"`, including every scalar inside an object or array under such a key; nulls stay null.
pub fn redact(config: &Value) -> Value {
    fn sensitive(key: &str) -> bool {
        let key = key.to_ascii_lowercase();
        ["password", "secret", "token", "key"].iter().any(|word| key.contains(word))
    }
    fn walk(value: &Value, hide: bool) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter().map(|(k, v)| (k.clone(), walk(v, hide || sensitive(k)))).collect::<Map<_, _>>(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| walk(v, hide)).collect()),
            Value::Null => Value::Null,
            _ if hide => Value::String("***".to_owned()),
            scalar => scalar.clone(),
        }
    }
    walk(config, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn find_key_prefers_the_longest_key_and_walks_sections() {
        let tree = json!({"service": {"max": 1, "max_request_size": 2}, "database": {"redis": {"url": ""}}});
        assert_eq!(find_key(&tree, "service_max_request_size").unwrap(), ["service", "max_request_size"]);
        assert_eq!(find_key(&tree, "service_max").unwrap(), ["service", "max"]);
        assert_eq!(find_key(&tree, "database_redis_url").unwrap(), ["database", "redis", "url"]);
        assert!(find_key(&tree, "service_nope").is_none());
    }

    #[test]
    fn redact_hides_secrets_only() {
        let config = json!({"db": {"password": "p", "host": "h", "api_key": 3, "token": null},
                            "secret_store": {"path": "x"}});
        let expected = json!({"db": {"password": "***", "host": "h", "api_key": "***", "token": null},
                              "secret_store": {"path": "***"}});
        assert_eq!(redact(&config), expected);
    }
}
