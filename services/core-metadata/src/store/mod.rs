//! The metadata repository: one trait, two backends (SQLite and Redis), one conformance suite.
//!
//! The store is deliberately ignorant of the DTOs: it keeps [`Record`]s — an entity's JSON
//! body plus the few fields queries and references need — so both backends stay small and
//! every rule about references (404 on unknown, 409 on in-use) is enforced atomically, in
//! one transaction or one Lua script, in one place per backend.

#[cfg(test)]
mod conformance;
pub mod redis;
pub mod sqlite;

use async_trait::async_trait;

/// The four kinds of entity core-metadata keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Device services.
    Service,
    /// Device profiles.
    Profile,
    /// Devices.
    Device,
    /// Provision watchers.
    Watcher,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [Kind::Service, Kind::Profile, Kind::Device, Kind::Watcher];

    /// A short, stable name used in keys and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Profile => "profile",
            Kind::Device => "device",
            Kind::Watcher => "watcher",
        }
    }

    /// How EdgeX names the kind in messages.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Service => "device service",
            Kind::Profile => "device profile",
            Kind::Device => "device",
            Kind::Watcher => "provision watcher",
        }
    }
}

/// One stored entity: its body and the fields that queries and references use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// Unique id (UUID) within the kind.
    pub id: String,
    /// Unique name within the kind.
    pub name: String,
    /// Creation time (ms); records are listed in creation order, then by name.
    pub created: i64,
    /// Labels; a query by labels matches records carrying any of them.
    pub labels: Vec<String>,
    /// The device service this record belongs to (devices, watchers).
    pub service: Option<String>,
    /// The profile this record uses (devices, watchers; may be absent for watchers).
    pub profile: Option<String>,
    /// The parent device (devices).
    pub parent: Option<String>,
    /// Manufacturer (profiles).
    pub manufacturer: Option<String>,
    /// Model (profiles).
    pub model: Option<String>,
    /// The entity as JSON, stored and returned unchanged.
    pub body: String,
}

/// Which records a query selects. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Records carrying any of these labels.
    pub labels: Vec<String>,
    /// Records whose `service` is this.
    pub service: Option<String>,
    /// Records whose `profile` is this.
    pub profile: Option<String>,
    /// Records whose `parent` is this.
    pub parent: Option<String>,
    /// Records whose `manufacturer` is this.
    pub manufacturer: Option<String>,
    /// Records whose `model` is this.
    pub model: Option<String>,
}

/// A page of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Records to skip.
    pub offset: usize,
    /// Records to return at most; `None` for all.
    pub limit: Option<usize>,
}

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The record (or one it refers to) does not exist.
    #[error("{} '{name}' does not exist", .kind.label())]
    NotFound {
        /// The kind looked for.
        kind: Kind,
        /// The name or id looked for.
        name: String,
    },
    /// A record with this name or id exists already.
    #[error("{} '{name}' already exists", .kind.label())]
    Duplicate {
        /// The kind.
        kind: Kind,
        /// The duplicate name or id.
        name: String,
    },
    /// The record is still referred to by others.
    #[error("{} '{name}' is still in use by {by}", .kind.label())]
    InUse {
        /// The kind.
        kind: Kind,
        /// The record's name.
        name: String,
        /// Who refers to it, for the message.
        by: String,
    },
    /// The backend failed (I/O, connection, corruption).
    #[error("storage failed: {0}")]
    Backend(String),
}

/// References a record requires to exist when written: `(kind, name)` pairs.
pub type Requires = Vec<(Kind, String)>;

/// The metadata repository. Implementations must make each call atomic: a failed call
/// changes nothing.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Inserts `rec`. Fails with `Duplicate` if the name or id is taken, with `NotFound`
    /// if any of `requires` does not exist.
    async fn insert(&self, kind: Kind, rec: Record, requires: Requires) -> Result<(), StoreError>;

    /// Replaces the record with id `rec.id` (its name may change). Fails with `NotFound` if
    /// no record has that id or a required record is missing, with `Duplicate` if the new
    /// name belongs to another record, with `InUse` if the name changes while other records
    /// refer to the old name.
    async fn update(&self, kind: Kind, rec: Record, requires: Requires) -> Result<(), StoreError>;

    /// The record named `name`.
    async fn get_by_name(&self, kind: Kind, name: &str) -> Result<Option<Record>, StoreError>;

    /// The record with id `id`.
    async fn get_by_id(&self, kind: Kind, id: &str) -> Result<Option<Record>, StoreError>;

    /// Deletes the record named `name` and returns it. Fails with `NotFound` if absent, with
    /// `InUse` if a device or watcher refers to it (as service, profile or parent).
    async fn delete_by_name(&self, kind: Kind, name: &str) -> Result<Record, StoreError>;

    /// Deletes the record with id `id` and returns it, with the same rules.
    async fn delete_by_id(&self, kind: Kind, id: &str) -> Result<Record, StoreError>;

    /// The records matching `filter` in creation order (then name), paged, with the
    /// total count of matches.
    async fn query(&self, kind: Kind, filter: &Filter, page: Page) -> Result<(Vec<Record>, u64), StoreError>;

    /// True when the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
