//! [`Store`]: the persistent queues of store-and-forward, one per export, behind one trait
//! with an SQLite and a Redis implementation.

use async_trait::async_trait;

use crate::export::Outgoing;

/// What went wrong in a store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store-and-forward store: {0}")]
pub struct StoreError(pub String);

/// A message to store, with the time it was submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// When the message was submitted, in milliseconds since the Unix epoch (for `max_age`).
    pub created_ms: i64,
    /// The message.
    pub message: Outgoing,
}

impl Record {
    /// The bytes the message counts for against `max_bytes`: payload, destination, key,
    /// content type and attributes.
    pub fn size(&self) -> u64 {
        let m = &self.message;
        let attributes: usize = m.attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
        (m.payload.len() + m.destination.len() + m.key.len() + m.content_type.len() + attributes) as u64
    }
}

/// A stored message and its id in its queue.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Its id: ids grow in the order messages were appended.
    pub id: u64,
    /// The message and when it was submitted.
    pub record: Record,
}

/// How much a queue holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages.
    pub count: u64,
    /// Their bytes, as [`Record::size`] counts them.
    pub bytes: u64,
}

/// Persistent FIFO queues of messages, by queue name (the export's). Every method is atomic:
/// after a crash a message is either stored whole or not at all.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend and where it keeps its data, for logs.
    fn describe(&self) -> String;

    /// Appends `records` to `queue` in order and returns their ids, ascending.
    async fn append(&self, queue: &str, records: &[Record]) -> Result<Vec<u64>, StoreError>;

    /// The oldest `limit` messages of `queue` whose id is greater than `after`, oldest first.
    async fn load(&self, queue: &str, after: u64, limit: usize) -> Result<Vec<StoredMessage>, StoreError>;

    /// Removes the messages `ids` (ids no longer stored are ignored); returns what was removed.
    async fn remove(&self, queue: &str, ids: &[u64]) -> Result<QueueStats, StoreError>;

    /// Removes the oldest `count` messages whose id is greater than `after`; returns what was
    /// removed.
    async fn remove_oldest(&self, queue: &str, after: u64, count: u64) -> Result<QueueStats, StoreError>;

    /// Removes, oldest first, the messages whose id is greater than `after` submitted before
    /// `before_ms`, stopping at the first younger one (messages are appended in submission
    /// order) and after at most 1000; returns what was removed.
    async fn remove_older_than(&self, queue: &str, after: u64, before_ms: i64) -> Result<QueueStats, StoreError>;

    /// What `queue` holds.
    async fn stats(&self, queue: &str) -> Result<QueueStats, StoreError>;
}
