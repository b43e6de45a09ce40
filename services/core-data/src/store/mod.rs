//! The event repository: one trait, two backends (SQLite and Redis), one conformance suite.
//!
//! Writes come in batches (one transaction or one pipeline per batch) and are idempotent
//! by event id, so a message the bus delivers twice is stored once. Deletes — by id, by
//! device, by age, down to a count — run as indexed deletes in bounded batches and never
//! load whole records.

#[cfg(test)]
mod conformance;
pub mod redis;
pub mod sqlite;

use async_trait::async_trait;
use oxedge_contracts::{Event, Reading};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (I/O, connection, corrupt data).
    #[error("event store failed: {0}")]
    Backend(String),
}

/// A page of a query sorted by origin, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// How many matching items to skip.
    pub offset: u64,
    /// How many to return at most.
    pub limit: u64,
}

/// Which events a query selects. `None` does not filter. Time bounds are origins in
/// nanoseconds, both inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events of this device.
    pub device: Option<String>,
    /// Only events with `origin >= start`.
    pub start: Option<i64>,
    /// Only events with `origin <= end`.
    pub end: Option<i64>,
}

/// Which readings a query selects. `None` or empty does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadingFilter {
    /// Only readings of this device.
    pub device: Option<String>,
    /// Only readings of one of these resources.
    pub resources: Vec<String>,
    /// Only readings with `origin >= start`.
    pub start: Option<i64>,
    /// Only readings with `origin <= end`.
    pub end: Option<i64>,
}

/// An SQL-style aggregate over numeric readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateFunc {
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Number of readings.
    Count,
    /// Sum of values.
    Sum,
    /// Mean of values.
    Avg,
}

/// The aggregate of the readings of one (device, resource, profile).
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateRow {
    /// Device name.
    pub device: String,
    /// Resource name.
    pub resource: String,
    /// Profile name.
    pub profile: String,
    /// The value type of the readings aggregated.
    pub value_type: oxedge_contracts::ValueType,
    /// The aggregate; `None` when no reading of the group is numeric.
    pub value: Option<f64>,
}

/// How a batch write went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddOutcome {
    /// Events newly stored.
    pub added: usize,
    /// Ids of events that were already stored and were left as they were.
    pub duplicates: Vec<String>,
}

/// Where core-data keeps events and their readings.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Stores `events` and their readings in one transaction (SQLite) or one pipeline
    /// (Redis). An event whose id is already stored is skipped and reported, not an
    /// error: redelivered messages are stored once.
    async fn add_events(&self, events: &[Event]) -> Result<AddOutcome, StoreError>;

    /// The event with this id, with its readings.
    async fn event(&self, id: &str) -> Result<Option<Event>, StoreError>;

    /// A page of the events matching `filter`, newest origin first, with the total number
    /// matching.
    async fn events(&self, filter: &EventFilter, page: Page) -> Result<(Vec<Event>, u64), StoreError>;

    /// How many events match `filter`.
    async fn count_events(&self, filter: &EventFilter) -> Result<u64, StoreError>;

    /// A page of the readings matching `filter`, newest origin first, with the total
    /// number matching.
    async fn readings(&self, filter: &ReadingFilter, page: Page) -> Result<(Vec<Reading>, u64), StoreError>;

    /// How many readings match `filter`.
    async fn count_readings(&self, filter: &ReadingFilter) -> Result<u64, StoreError>;

    /// `func` over the numeric readings matching `filter`, one row per (device, resource,
    /// profile), sorted by device then resource.
    async fn aggregate(&self, filter: &ReadingFilter, func: AggregateFunc) -> Result<Vec<AggregateRow>, StoreError>;

    /// Deletes one event and its readings; whether it existed.
    async fn delete_event(&self, id: &str) -> Result<bool, StoreError>;

    /// Deletes up to `max` of the oldest events matching `filter` (device and/or `end`
    /// bound; `start` ignored) with their readings; returns how many were deleted. Callers
    /// loop until it returns less than `max`, so no single call holds the store long.
    async fn delete_events(&self, filter: &EventFilter, max: usize) -> Result<usize, StoreError>;

    /// Deletes up to `max` of the earliest-stored events beyond the newest `keep` ones,
    /// with their readings; returns how many were deleted.
    async fn trim_events(&self, keep: u64, max: usize) -> Result<usize, StoreError>;

    /// Checks the backend answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The value of a numeric reading (an integer or float type whose value parses as a finite
/// number), which aggregates work on; `None` for every other reading.
pub fn numeric_value(reading: &Reading) -> Option<f64> {
    if !reading.value_type.is_numeric() {
        return None;
    }
    reading.value.as_deref()?.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}
