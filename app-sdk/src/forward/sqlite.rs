//! The SQLite [`Store`]: one table, rows keyed by an ever-growing id, indexed by queue.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use oxedge_sqlite::{Options, Pool, Schema};
use rusqlite::{params, Transaction};

use super::store::{QueueStats, Record, Store, StoreError, StoredMessage};
use crate::export::Outgoing;

const SCHEMA: Schema = Schema {
    what: "store-and-forward",
    migrations: &["CREATE TABLE forward_queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        size INTEGER NOT NULL,
        destination TEXT NOT NULL,
        content_type TEXT NOT NULL,
        key TEXT NOT NULL,
        attributes TEXT NOT NULL,
        payload BLOB NOT NULL
    );
    CREATE INDEX forward_queue_by_queue ON forward_queue (queue, id);"],
};

impl From<oxedge_sqlite::Error> for StoreError {
    fn from(e: oxedge_sqlite::Error) -> Self {
        StoreError(e.0)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// A [`Store`] in an SQLite file (WAL; ids from `AUTOINCREMENT`, never reused).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: Pool,
    path: String,
}

impl SqliteStore {
    /// Opens (creating it if needed) the store at `path`.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let owned = path.to_owned();
        let pool = tokio::task::spawn_blocking(move || {
            Pool::open(&owned, &SCHEMA, &Options { readers: 1, cache_kib: Some(2048), manual_checkpoints: false })
        })
        .await
        .map_err(|e| StoreError(format!("opening task failed: {e}")))??;
        Ok(SqliteStore { pool, path: path.display().to_string() })
    }
}

fn remove_ids(tx: &Transaction<'_>, queue: &str, ids: &[u64]) -> Result<QueueStats, StoreError> {
    let mut removed = QueueStats::default();
    let mut find = tx.prepare_cached("SELECT size FROM forward_queue WHERE id = ?1 AND queue = ?2")?;
    let mut delete = tx.prepare_cached("DELETE FROM forward_queue WHERE id = ?1")?;
    for &id in ids {
        let size: Option<i64> = match find.query_row(params![id as i64, queue], |r| r.get(0)) {
            Ok(size) => Some(size),
            Err(rusqlite::Error::QueryReturnedNoRows) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(size) = size {
            delete.execute(params![id as i64])?;
            removed.count += 1;
            removed.bytes += size as u64;
        }
    }
    Ok(removed)
}

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path)
    }

    async fn append(&self, queue: &str, records: &[Record]) -> Result<Vec<u64>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let queue = queue.to_owned();
        let rows: Vec<(Record, String)> = records
            .iter()
            .map(|r| {
                let attributes = serde_json::to_string(&r.message.attributes).unwrap_or_else(|_| "{}".to_owned());
                (r.clone(), attributes)
            })
            .collect();
        self.pool
            .write(move |tx| {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO forward_queue (queue, created_ms, size, destination, content_type, key, attributes, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                let mut ids = Vec::with_capacity(rows.len());
                for (record, attributes) in &rows {
                    let m = &record.message;
                    insert.execute(params![
                        queue,
                        record.created_ms,
                        record.size() as i64,
                        m.destination,
                        m.content_type,
                        m.key,
                        attributes,
                        &m.payload[..]
                    ])?;
                    ids.push(tx.last_insert_rowid() as u64);
                }
                Ok(ids)
            })
            .await
    }

    async fn load(&self, queue: &str, after: u64, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        let queue = queue.to_owned();
        self.pool
            .read(move |tx| {
                let mut select = tx.prepare_cached(
                    "SELECT id, created_ms, destination, content_type, key, attributes, payload FROM forward_queue
                     WHERE queue = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                )?;
                let rows = select.query_map(params![queue, after as i64, limit as i64], |r| {
                    let attributes: String = r.get(5)?;
                    let payload: Vec<u8> = r.get(6)?;
                    Ok(StoredMessage {
                        id: r.get::<_, i64>(0)? as u64,
                        record: Record {
                            created_ms: r.get(1)?,
                            message: Outgoing {
                                payload: Bytes::from(payload),
                                content_type: r.get(3)?,
                                destination: r.get(2)?,
                                key: r.get(4)?,
                                attributes: serde_json::from_str::<BTreeMap<String, String>>(&attributes)
                                    .unwrap_or_default(),
                            },
                        },
                    })
                })?;
                rows.collect::<Result<Vec<_>, _>>().map_err(StoreError::from)
            })
            .await
    }

    async fn remove(&self, queue: &str, ids: &[u64]) -> Result<QueueStats, StoreError> {
        if ids.is_empty() {
            return Ok(QueueStats::default());
        }
        let (queue, ids) = (queue.to_owned(), ids.to_vec());
        self.pool.write(move |tx| remove_ids(tx, &queue, &ids)).await
    }

    async fn remove_oldest(&self, queue: &str, after: u64, count: u64) -> Result<QueueStats, StoreError> {
        let queue = queue.to_owned();
        self.pool
            .write(move |tx| {
                let ids: Vec<u64> = tx
                    .prepare_cached("SELECT id FROM forward_queue WHERE queue = ?1 AND id > ?2 ORDER BY id LIMIT ?3")?
                    .query_map(params![queue, after as i64, count as i64], |r| r.get::<_, i64>(0).map(|id| id as u64))?
                    .collect::<Result<_, _>>()?;
                remove_ids(tx, &queue, &ids)
            })
            .await
    }

    async fn remove_older_than(&self, queue: &str, after: u64, before_ms: i64) -> Result<QueueStats, StoreError> {
        let queue = queue.to_owned();
        self.pool
            .write(move |tx| {
                let mut ids = Vec::new();
                let mut select = tx.prepare_cached(
                    "SELECT id, created_ms FROM forward_queue WHERE queue = ?1 AND id > ?2 ORDER BY id LIMIT 1000",
                )?;
                let mut rows = select.query(params![queue, after as i64])?;
                while let Some(row) = rows.next()? {
                    if row.get::<_, i64>(1)? >= before_ms {
                        break;
                    }
                    ids.push(row.get::<_, i64>(0)? as u64);
                }
                drop(rows);
                remove_ids(tx, &queue, &ids)
            })
            .await
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, StoreError> {
        let queue = queue.to_owned();
        self.pool
            .read(move |tx| {
                let (count, bytes): (i64, i64) = tx.query_row(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM forward_queue WHERE queue = ?1",
                    params![queue],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                Ok(QueueStats { count: count as u64, bytes: bytes as u64 })
            })
            .await
    }
}
