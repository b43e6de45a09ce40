//! Store-and-forward: a bounded in-memory queue in front of a sink, spilling to a persistent
//! store (SQLite or Redis) while the sink is unreachable and replaying in order as soon as
//! it is back.

use serde::{Deserialize, Serialize};

/// The `store_and_forward` section of an app service's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ForwardConfig {
    /// Whether exports that fail are stored and retried.
    pub enabled: bool,
}
