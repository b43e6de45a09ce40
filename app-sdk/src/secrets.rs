//! Secrets for functions and exports (encryption keys, broker credentials, HTTP header
//! values), read from a secret store (Vault KV v2 API) or from files — never from the
//! configuration file in plain text.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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
        let source = self.source.as_ref().ok_or_else(|| {
            anyhow::anyhow!("secret {name:?} is needed but no secret store is configured (section `secrets`)")
        })?;
        let mut secret = source.secret(name).await?;
        secret.remove(key).ok_or_else(|| anyhow::anyhow!("secret {name:?} has no key {key:?}"))
    }
}

/// The `secrets` section of an app service's configuration: where secrets are read from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretsConfig {}
