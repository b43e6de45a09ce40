//! Secrets for functions and exports (encryption keys, broker credentials, HTTP header
//! values), read from a secret store (Vault KV v2 API) or from files — never from the
//! configuration file in plain text.
//!
//! The `secrets` section ([`SecretsConfig`]) names the sources:
//! - `dir`: a directory of secret files. The secret `name` is either the file
//!   `<dir>/<name>.json`, a JSON object of keys to values, or the directory `<dir>/<name>/`
//!   holding one file per key (the key is the file name, the value its content without the
//!   trailing newline — the shape Docker and Kubernetes secret mounts have). A name may have
//!   `/`-separated parts (`mqtt/cloud`), never `..`.
//! - `vault`: a Vault or OpenBao server's KV v2 engine: the secret `name` is read at
//!   `<url>/v1/<mount>/data/<path_prefix><name>`, with the token read from `token_file` (or,
//!   for tests and containers, from the environment variable named by `token_env`) at each
//!   read, so that a renewed token is picked up.
//!
//! With both, files are looked at first. A secret read is reused for `cache_ttl`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Where secrets come from: each secret is a name (EdgeX's `SecretName`, a path) holding
/// key/value pairs (EdgeX's `SecretValueKey`s).
#[async_trait]
pub trait SecretSource: Send + Sync + 'static {
    /// The key/value pairs of the secret `name`; an error names the secret and why.
    async fn secret(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>>;
}

/// The service's secrets, cheap to clone. With no source configured every lookup fails,
/// naming the secret and how to configure a source.
#[derive(Clone, Default)]
pub struct Secrets {
    source: Option<Arc<dyn SecretSource>>,
}

impl Secrets {
    /// Secrets read from `source`.
    pub fn new(source: Arc<dyn SecretSource>) -> Self {
        Self { source: Some(source) }
    }

    /// The value `key` of the secret `name`.
    pub async fn value(&self, name: &str, key: &str) -> anyhow::Result<String> {
        let mut secret = self.secret(name).await?;
        secret.remove(key).ok_or_else(|| anyhow::anyhow!("secret {name:?} has no key {key:?}"))
    }

    /// All key/value pairs of the secret `name`.
    pub async fn secret(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let source = self.source.as_ref().ok_or_else(|| {
            anyhow::anyhow!("secret {name:?} is needed but no secret store is configured (section `secrets`)")
        })?;
        source.secret(name).await
    }
}

/// The `secrets` section: where secrets are read from (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// A directory of secret files; empty: none.
    pub dir: String,
    /// A Vault / OpenBao KV v2 server.
    pub vault: VaultConfig,
    /// How long a secret read is reused, as a Go duration (`1m`; `0s`: read every time).
    pub cache_ttl: String,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self { dir: String::new(), vault: VaultConfig::default(), cache_ttl: "1m".to_owned() }
    }
}

/// `secrets.vault`: a Vault / OpenBao server's KV v2 secrets engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaultConfig {
    /// The server's base URL (`http://127.0.0.1:8200`); empty: no Vault.
    pub url: String,
    /// The KV v2 engine's mount (`secret`).
    pub mount: String,
    /// Put before each secret name (`app-mqtt-export/`), as EdgeX keeps a service's secrets
    /// under its name.
    pub path_prefix: String,
    /// A file holding the token.
    pub token_file: String,
    /// The name of an environment variable holding the token, when there is no token file.
    pub token_env: String,
    /// How long one read may take, as a Go duration.
    pub timeout: String,
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            mount: "secret".to_owned(),
            path_prefix: String::new(),
            token_file: String::new(),
            token_env: String::new(),
            timeout: "5s".to_owned(),
        }
    }
}

fn duration(key: &str, value: &str) -> Result<Duration, String> {
    oxedge_contracts::validate::parse_duration(value)
        .ok_or_else(|| format!("{key}: '{value}' is not a duration such as 500ms, 10s or 1m"))
}

impl SecretsConfig {
    /// What is wrong with this section, each problem named under `secrets.`.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(problem) = duration("secrets.cache_ttl", &self.cache_ttl) {
            problems.push(problem);
        }
        let vault = &self.vault;
        if !vault.url.is_empty() {
            let rest = vault.url.strip_prefix("http://").or_else(|| vault.url.strip_prefix("https://"));
            if rest.is_none_or(str::is_empty) {
                problems.push(format!("secrets.vault.url: '{}' is not an http:// or https:// URL", vault.url));
            }
            if vault.mount.trim_matches('/').is_empty() {
                problems.push("secrets.vault.mount: must name the KV v2 mount (e.g. secret)".to_owned());
            }
            if vault.token_file.is_empty() && vault.token_env.is_empty() {
                problems.push(
                    "secrets.vault.token_file: missing (or name an environment variable in token_env)".to_owned(),
                );
            }
            match duration("secrets.vault.timeout", &vault.timeout) {
                Ok(d) if d.is_zero() => problems.push("secrets.vault.timeout: must be longer than zero".to_owned()),
                Ok(_) => {}
                Err(problem) => problems.push(problem),
            }
        }
        problems
    }

    /// The secrets these settings describe (none configured: every lookup fails saying so).
    pub fn build(&self) -> anyhow::Result<Secrets> {
        oxedge_runtime::config::check_problems(self.problems())?;
        let mut sources: Vec<Arc<dyn SecretSource>> = Vec::new();
        if !self.dir.is_empty() {
            sources.push(Arc::new(FileSecrets::new(&self.dir)));
        }
        if !self.vault.url.is_empty() {
            sources.push(Arc::new(VaultSecrets::new(&self.vault)?));
        }
        let source: Arc<dyn SecretSource> = match sources.len() {
            0 => return Ok(Secrets::default()),
            1 => sources.remove(0),
            _ => Arc::new(Chain(sources)),
        };
        let ttl = duration("secrets.cache_ttl", &self.cache_ttl).map_err(|e| anyhow!(e))?;
        if ttl.is_zero() {
            return Ok(Secrets::new(source));
        }
        Ok(Secrets::new(Arc::new(Cached { source, ttl, entries: Mutex::new(HashMap::new()) })))
    }
}

/// Checks a secret name: `/`-separated parts, none empty, `.` or `..`.
fn check_name(name: &str) -> anyhow::Result<()> {
    let bad = name.is_empty()
        || name.contains('\\')
        || name.split('/').any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        bail!("secret name {name:?} is not a path of non-empty parts without '.' or '..'");
    }
    Ok(())
}

fn scalar(value: Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Secrets in files under a directory (see the module documentation).
#[derive(Debug, Clone)]
pub struct FileSecrets {
    dir: PathBuf,
}

impl FileSecrets {
    /// Secrets under `dir`.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self { dir: dir.as_ref().to_path_buf() }
    }

    fn read(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        check_name(name)?;
        let json = self.dir.join(format!("{name}.json"));
        if json.is_file() {
            let text =
                std::fs::read(&json).with_context(|| format!("secret {name:?}: cannot read {}", json.display()))?;
            let object: serde_json::Map<String, Json> = serde_json::from_slice(&text)
                .with_context(|| format!("secret {name:?}: {} is not a JSON object", json.display()))?;
            return object
                .into_iter()
                .map(|(key, value)| {
                    scalar(value).map(|value| (key.clone(), value)).ok_or_else(|| {
                        anyhow!("secret {name:?}: key {key:?} in {} is not a single value", json.display())
                    })
                })
                .collect();
        }
        let dir = self.dir.join(name);
        if !dir.is_dir() {
            bail!("secret {name:?} not found: neither {} nor the directory {} exists", json.display(), dir.display());
        }
        let mut secret = BTreeMap::new();
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("secret {name:?}: cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("secret {name:?}: cannot list {}", dir.display()))?;
            let key = entry.file_name().to_string_lossy().into_owned();
            // Kubernetes mounts keep the real files in hidden `..data` directories.
            if key.starts_with('.') || !entry.path().is_file() {
                continue;
            }
            let value = std::fs::read_to_string(entry.path())
                .with_context(|| format!("secret {name:?}: cannot read key {key:?} ({})", entry.path().display()))?;
            let value = value.strip_suffix('\n').map(|v| v.strip_suffix('\r').unwrap_or(v)).unwrap_or(&value);
            secret.insert(key, value.to_owned());
        }
        Ok(secret)
    }
}

#[async_trait]
impl SecretSource for FileSecrets {
    async fn secret(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let this = self.clone();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || this.read(&name)).await.context("secret file read stopped")?
    }
}

/// Secrets in a Vault / OpenBao KV v2 engine (see the module documentation).
#[derive(Debug, Clone)]
pub struct VaultSecrets {
    client: reqwest::Client,
    base: String,
    path_prefix: String,
    token_file: String,
    token_env: String,
}

impl VaultSecrets {
    /// A client for the server `config` names.
    pub fn new(config: &VaultConfig) -> anyhow::Result<Self> {
        let timeout = duration("secrets.vault.timeout", &config.timeout).map_err(|e| anyhow!(e))?;
        let client =
            reqwest::Client::builder().timeout(timeout).build().context("cannot make the Vault HTTP client")?;
        Ok(Self {
            client,
            base: format!("{}/v1/{}/data/", config.url.trim_end_matches('/'), config.mount.trim_matches('/')),
            path_prefix: config.path_prefix.clone(),
            token_file: config.token_file.clone(),
            token_env: config.token_env.clone(),
        })
    }

    fn token(&self) -> anyhow::Result<String> {
        if !self.token_file.is_empty() {
            let token = std::fs::read_to_string(&self.token_file)
                .with_context(|| format!("secrets.vault.token_file: cannot read {}", self.token_file))?;
            return Ok(token.trim().to_owned());
        }
        std::env::var(&self.token_env)
            .map(|token| token.trim().to_owned())
            .map_err(|_| anyhow!("secrets.vault.token_env: the environment variable {} is not set", self.token_env))
    }
}

#[async_trait]
impl SecretSource for VaultSecrets {
    async fn secret(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        check_name(name)?;
        let mut url = reqwest::Url::parse(&self.base).with_context(|| format!("secrets.vault.url: {}", self.base))?;
        url.path_segments_mut()
            .map_err(|()| anyhow!("secrets.vault.url: {} cannot have a path", self.base))?
            .pop_if_empty()
            .extend(format!("{}{name}", self.path_prefix).split('/').filter(|part| !part.is_empty()));
        let response = self
            .client
            .get(url.clone())
            .header("X-Vault-Token", self.token()?)
            .send()
            .await
            .with_context(|| format!("secret {name:?}: Vault at {url} unreachable"))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            bail!("secret {name:?} not found in Vault ({url})");
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("secret {name:?}: Vault answered {status} for {url}: {}", body.trim());
        }
        let body: Json =
            response.json().await.with_context(|| format!("secret {name:?}: Vault's answer is not JSON"))?;
        let Some(Json::Object(data)) = body.pointer("/data/data").cloned() else {
            bail!("secret {name:?}: Vault's answer has no data.data object (is {url} a KV v2 engine?)");
        };
        data.into_iter()
            .map(|(key, value)| {
                scalar(value)
                    .map(|value| (key.clone(), value))
                    .ok_or_else(|| anyhow!("secret {name:?}: key {key:?} in Vault is not a single value"))
            })
            .collect()
    }
}

/// Several sources, asked in order.
struct Chain(Vec<Arc<dyn SecretSource>>);

#[async_trait]
impl SecretSource for Chain {
    async fn secret(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let mut problems = Vec::new();
        for source in &self.0 {
            match source.secret(name).await {
                Ok(secret) => return Ok(secret),
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
        bail!("{}", problems.join("; "))
    }
}

/// Secrets read, by name, with when they were read.
type Entries = HashMap<String, (Instant, BTreeMap<String, String>)>;

/// A source whose reads are reused for a while.
struct Cached {
    source: Arc<dyn SecretSource>,
    ttl: Duration,
    entries: Mutex<Entries>,
}

impl Cached {
    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SecretSource for Cached {
    async fn secret(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        if let Some((at, secret)) = self.entries().get(name) {
            if at.elapsed() < self.ttl {
                return Ok(secret.clone());
            }
        }
        let secret = self.source.secret(name).await?;
        self.entries().insert(name.to_owned(), (Instant::now(), secret.clone()));
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_directory() {
        for bad in ["", "..", "a/../b", "/abs", "a//b", "a/", "a\\b", "."] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["aes", "mqtt/cloud", "a.b"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn problems_name_the_key() {
        let mut config = SecretsConfig::default();
        assert!(config.problems().is_empty());
        config.vault.url = "ftp://x".into();
        config.cache_ttl = "soon".into();
        let problems = config.problems().join("\n");
        assert!(problems.contains("secrets.vault.url"), "{problems}");
        assert!(problems.contains("secrets.vault.token_file"), "{problems}");
        assert!(problems.contains("secrets.cache_ttl"), "{problems}");
    }
}
