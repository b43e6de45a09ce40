//! The SQLite backend: one file, WAL, one writer connection and a few reader connections.
//!
//! Schema, chosen for ingest speed (see ENVIRONMENT.md, "Measured here"):
//!
//! - `events`: keyed by `seq`, the rowid, which grows with storage order. The event id is
//!   the only UNIQUE index (it makes redelivered events detectable); `(device, origin)` and
//!   `(origin)` serve queries and deletes by device and by age. An event row also holds
//!   `(first_reading, reading_count)`: the readings of one event are written together and
//!   occupy one contiguous rowid range of `readings`, so joins and deletes need no index on
//!   the event.
//! - `readings`: keyed by `seq`, the rowid; indexed by `(device, origin)`, `(resource, origin)`
//!   and `(origin)` — what the queries filter and sort by — and nothing else. A reading's own
//!   id is stored unindexed. `number` holds the value of numeric readings as a REAL, so
//!   aggregates are plain SQL.
//!
//! Ids that are canonical (lowercase, hyphenated) UUIDs are stored as 16-byte blobs, others
//! as text, so any id round-trips unchanged while the common case stays small.
//!
//! Every trait call is one transaction on a blocking thread: writes on the writer connection
//! (`BEGIN IMMEDIATE`), reads on read-only connections, which WAL lets proceed while a write
//! is in progress. Queries sort by `origin` then `seq`, newest first.
//!
//! Checkpoints (copying the WAL into the database file) run on a thread and connection of
//! their own, never inside a commit: SQLite's automatic checkpoint runs in the commit that
//! crosses its threshold, and was seen to hold an ingest batch for ~45 ms.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oxedge_contracts::{Event, Reading, ValueType};
use oxedge_sqlite::{Options, Pool, Schema, BUSY_TIMEOUT};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};

use super::{
    numeric_value, AddOutcome, AggregateFunc, AggregateRow, EventFilter, EventStore, Page, ReadingFilter, StoreError,
};

/// The schema, one entry per version (kept in `PRAGMA user_version`).
const SCHEMA: Schema = Schema { what: "event", migrations: &[SCHEMA_V1] };

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id BLOB NOT NULL UNIQUE,
    device TEXT NOT NULL,
    profile TEXT NOT NULL,
    source TEXT NOT NULL,
    origin INTEGER NOT NULL,
    tags TEXT,
    first_reading INTEGER NOT NULL,
    reading_count INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_device_origin ON events (device, origin);
CREATE INDEX IF NOT EXISTS events_origin ON events (origin);
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY,
    origin INTEGER NOT NULL,
    device TEXT NOT NULL,
    resource TEXT NOT NULL,
    profile TEXT NOT NULL,
    value_type TEXT NOT NULL,
    number REAL,
    value TEXT,
    id BLOB NOT NULL,
    units TEXT,
    tags TEXT,
    binary BLOB,
    media_type TEXT,
    object TEXT
);
CREATE INDEX IF NOT EXISTS readings_device_origin ON readings (device, origin);
CREATE INDEX IF NOT EXISTS readings_resource_origin ON readings (resource, origin);
CREATE INDEX IF NOT EXISTS readings_origin ON readings (origin);
";

const EVENT_COLUMNS: &str = "seq, id, device, profile, source, origin, tags, first_reading, reading_count";
const READING_COLUMNS: &str =
    "id, origin, device, resource, profile, value_type, units, tags, value, binary, media_type, object";

/// Tuning of a [`SqliteStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How many read-only connections to keep (at least 1).
    pub readers: usize,
    /// Page cache of each connection, in KiB (SQLite's default is 2,000).
    pub cache_kib: u32,
    /// WAL size, in pages, past which the background checkpoint makes writers wait until
    /// the WAL starts over (it only grows that far when writes never pause long enough
    /// for a checkpoint to catch up).
    pub wal_autocheckpoint: u32,
    /// How often the background thread copies the WAL into the database file.
    pub checkpoint_every: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            readers: 4,
            cache_kib: 8 * 1024,
            wal_autocheckpoint: 10_000,
            checkpoint_every: Duration::from_millis(500),
        }
    }
}

/// Checkpoints the WAL of one database on its own thread and connection until dropped.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path, options: &SqliteOptions) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (every, limit) = (options.checkpoint_every, i64::from(options.wal_autocheckpoint));
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || {
                // Returns when the store is dropped (the sender goes away).
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let wal_pages = checkpoint(&conn, "PASSIVE");
                    if wal_pages.is_some_and(|pages| pages > limit) {
                        checkpoint(&conn, "RESTART");
                    }
                }
            })
            .map_err(backend)?;
        Ok(Self { stop: Some(stop), thread: Some(thread) })
    }
}

/// Runs `PRAGMA wal_checkpoint(mode)`; the WAL's size in pages, `None` if it failed.
fn checkpoint(conn: &Connection, mode: &str) -> Option<i64> {
    match conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get::<_, i64>(1)) {
        Ok(pages) => Some(pages),
        Err(error) => {
            tracing::warn!(%error, mode, "SQLite checkpoint failed; retrying later.");
            None
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An [`EventStore`] in an SQLite file.
///
/// Cheap to clone; clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool,
    _checkpointer: Arc<Checkpointer>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("pool", &self.pool).finish_non_exhaustive()
    }
}

impl From<oxedge_sqlite::Error> for StoreError {
    fn from(e: oxedge_sqlite::Error) -> Self {
        StoreError::Backend(e.0)
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if needed) the database at `path` with
    /// the default [`SqliteOptions`].
    ///
    /// Blocks while it opens the file; call it before serving, or from a blocking task.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens the database at `path` in WAL mode with `synchronous=NORMAL`, and brings its
    /// schema up to date.
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let pool_options =
            Options { readers: options.readers, cache_kib: Some(options.cache_kib), manual_checkpoints: true };
        let pool = Pool::open(path, &SCHEMA, &pool_options)?;
        let checkpointer = Checkpointer::start(path, &options)?;
        Ok(SqliteStore { pool, _checkpointer: Arc::new(checkpointer) })
    }
}

// ---------------------------------------------------------------------------------------------
// Column encodings

/// An id as stored: a canonical UUID as its 16 bytes, anything else as text.
fn id_value(id: &str) -> Value {
    match uuid::Uuid::try_parse(id) {
        Ok(u) if u.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()) == id => {
            Value::Blob(u.as_bytes().to_vec())
        }
        _ => Value::Text(id.to_owned()),
    }
}

/// The id [`id_value`] stored in column `i`.
fn id_from(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<String> {
    match row.get::<_, Value>(i)? {
        Value::Blob(b) => uuid::Uuid::from_slice(&b)
            .map(|u| u.hyphenated().to_string())
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, Box::new(e))),
        Value::Text(t) => Ok(t),
        other => Err(rusqlite::Error::InvalidColumnType(i, "id".into(), other.data_type())),
    }
}

/// Tags as stored: JSON text, or NULL when there are none.
fn tags_value(tags: &serde_json::Map<String, serde_json::Value>) -> Result<Option<String>, StoreError> {
    if tags.is_empty() {
        Ok(None)
    } else {
        serde_json::to_string(tags).map(Some).map_err(backend)
    }
}

fn json_from<T: serde::de::DeserializeOwned>(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<T>> {
    let Some(text) = row.get::<_, Option<String>>(i)? else { return Ok(None) };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

/// Empty strings are stored as NULL.
fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The value type stored in column `i`.
fn value_type_from(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<ValueType> {
    let text: String = row.get(i)?;
    ValueType::parse(&text).ok_or_else(|| {
        let why = format!("unknown value type '{text}'");
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, why.into())
    })
}

fn row_to_reading(row: &rusqlite::Row<'_>) -> rusqlite::Result<Reading> {
    Ok(Reading {
        id: id_from(row, 0)?,
        origin: row.get(1)?,
        device_name: row.get(2)?,
        resource_name: row.get(3)?,
        profile_name: row.get(4)?,
        value_type: value_type_from(row, 5)?,
        units: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
        tags: json_from(row, 7)?.unwrap_or_default(),
        value: row.get(8)?,
        binary_value: row.get(9)?,
        media_type: row.get::<_, Option<String>>(10)?.unwrap_or_default(),
        object_value: json_from(row, 11)?,
    })
}

/// Where an event's readings are: the first reading's rowid and how many there are.
struct EventRow {
    seq: i64,
    first_reading: i64,
    reading_count: i64,
}

fn row_to_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Event, EventRow)> {
    let event = Event {
        api_version: oxedge_contracts::API_VERSION.to_owned(),
        id: id_from(row, 1)?,
        device_name: row.get(2)?,
        profile_name: row.get(3)?,
        source_name: row.get(4)?,
        origin: row.get(5)?,
        readings: Vec::new(),
        tags: json_from(row, 6)?.unwrap_or_default(),
    };
    Ok((event, EventRow { seq: row.get(0)?, first_reading: row.get(7)?, reading_count: row.get(8)? }))
}

/// Fills in the readings of events read by [`row_to_event`].
fn with_readings(tx: &Transaction<'_>, rows: Vec<(Event, EventRow)>) -> Result<Vec<Event>, StoreError> {
    let sql = format!("SELECT {READING_COLUMNS} FROM readings WHERE seq >= ?1 AND seq < ?2 ORDER BY seq");
    let mut stmt = tx.prepare_cached(&sql).map_err(backend)?;
    rows.into_iter()
        .map(|(mut event, at)| {
            event.readings = stmt
                .query_map(params![at.first_reading, at.first_reading + at.reading_count], row_to_reading)
                .and_then(|rows| rows.collect())
                .map_err(backend)?;
            Ok(event)
        })
        .collect()
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Filters

/// A WHERE clause and its arguments.
struct Clause {
    sql: String,
    args: Vec<Value>,
}

impl Clause {
    /// `device = ?` (when given) and the inclusive origin bounds.
    fn new(device: &Option<String>, start: Option<i64>, end: Option<i64>) -> Clause {
        let mut clause = Clause {
            sql: "origin BETWEEN ? AND ?".to_owned(),
            args: vec![Value::Integer(start.unwrap_or(i64::MIN)), Value::Integer(end.unwrap_or(i64::MAX))],
        };
        if let Some(device) = device {
            clause.sql.push_str(" AND device = ?");
            clause.args.push(Value::Text(device.clone()));
        }
        clause
    }

    fn events(filter: &EventFilter) -> Clause {
        Clause::new(&filter.device, filter.start, filter.end)
    }

    fn readings(filter: &ReadingFilter) -> Clause {
        let mut clause = Clause::new(&filter.device, filter.start, filter.end);
        if !filter.resources.is_empty() {
            let marks = vec!["?"; filter.resources.len()].join(", ");
            clause.sql.push_str(&format!(" AND resource IN ({marks})"));
            clause.args.extend(filter.resources.iter().cloned().map(Value::Text));
        }
        clause
    }

    fn count(&self, tx: &Transaction<'_>, table: &str) -> Result<u64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE {}", self.sql);
        let n: i64 = tx
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row(params_from_iter(self.args.iter()), |r| r.get(0)))
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Runs `SELECT {columns} FROM {table}` with this clause, newest first, paged.
    fn page<T>(
        mut self,
        tx: &Transaction<'_>,
        table: &str,
        columns: &str,
        page: Page,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let sql =
            format!("SELECT {columns} FROM {table} WHERE {} ORDER BY origin DESC, seq DESC LIMIT ? OFFSET ?", self.sql);
        self.args.push(Value::Integer(to_i64(page.limit)));
        self.args.push(Value::Integer(to_i64(page.offset)));
        let mut stmt = tx.prepare_cached(&sql).map_err(backend)?;
        let rows = stmt.query_map(params_from_iter(self.args.iter()), map).and_then(|rows| rows.collect());
        rows.map_err(backend)
    }
}

// ---------------------------------------------------------------------------------------------
// Writes

fn add_tx(tx: &Transaction<'_>, events: &[Event]) -> Result<AddOutcome, StoreError> {
    let mut next: i64 =
        tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM readings", [], |r| r.get(0)).map_err(backend)?;
    let mut add_event = tx
        .prepare_cached(
            "INSERT INTO events (id, device, profile, source, origin, tags, first_reading, reading_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
        )
        .map_err(backend)?;
    let mut add_reading = tx
        .prepare_cached(
            "INSERT INTO readings (seq, origin, device, resource, profile, value_type, number, value, id, units,
                 tags, binary, media_type, object)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .map_err(backend)?;
    let mut outcome = AddOutcome::default();
    for e in events {
        let count = i64::try_from(e.readings.len()).map_err(backend)?;
        let added = add_event
            .execute(params![
                id_value(&e.id),
                e.device_name,
                e.profile_name,
                e.source_name,
                e.origin,
                tags_value(&e.tags)?,
                next,
                count
            ])
            .map_err(backend)?;
        if added == 0 {
            outcome.duplicates.push(e.id.clone());
            continue;
        }
        outcome.added += 1;
        for r in &e.readings {
            let object = r.object_value.as_ref().map(serde_json::to_string).transpose().map_err(backend)?;
            add_reading
                .execute(params![
                    next,
                    r.origin,
                    r.device_name,
                    r.resource_name,
                    r.profile_name,
                    r.value_type.as_str(),
                    numeric_value(r),
                    r.value,
                    id_value(&r.id),
                    non_empty(&r.units),
                    tags_value(&r.tags)?,
                    r.binary_value,
                    non_empty(&r.media_type),
                    object,
                ])
                .map_err(backend)?;
            next += 1;
        }
    }
    Ok(outcome)
}

/// Deletes the events at `rows` and their readings; returns how many there were.
fn delete_rows(tx: &Transaction<'_>, rows: &[EventRow]) -> Result<usize, StoreError> {
    let mut readings = tx.prepare_cached("DELETE FROM readings WHERE seq >= ?1 AND seq < ?2").map_err(backend)?;
    let mut event = tx.prepare_cached("DELETE FROM events WHERE seq = ?1").map_err(backend)?;
    for at in rows {
        readings.execute(params![at.first_reading, at.first_reading + at.reading_count]).map_err(backend)?;
        event.execute(params![at.seq]).map_err(backend)?;
    }
    Ok(rows.len())
}

/// The events selected by `sql` (which yields `seq, first_reading, reading_count`).
fn event_rows(tx: &Transaction<'_>, sql: &str, args: &[Value]) -> Result<Vec<EventRow>, StoreError> {
    let mut stmt = tx.prepare_cached(sql).map_err(backend)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
        Ok(EventRow { seq: r.get(0)?, first_reading: r.get(1)?, reading_count: r.get(2)? })
    });
    rows.and_then(|rows| rows.collect()).map_err(backend)
}

fn delete_events_tx(tx: &Transaction<'_>, filter: &EventFilter, max: usize) -> Result<usize, StoreError> {
    let mut clause = Clause::events(&EventFilter { start: None, ..filter.clone() });
    clause.args.push(Value::Integer(i64::try_from(max).unwrap_or(i64::MAX)));
    let sql = format!(
        "SELECT seq, first_reading, reading_count FROM events WHERE {} ORDER BY origin, seq LIMIT ?",
        clause.sql
    );
    delete_rows(tx, &event_rows(tx, &sql, &clause.args)?)
}

fn trim_tx(tx: &Transaction<'_>, keep: u64, max: usize) -> Result<usize, StoreError> {
    // The newest event beyond the `keep` newest, in storage order.
    let cutoff: Option<i64> = tx
        .prepare_cached("SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?1")
        .and_then(|mut s| s.query_row(params![to_i64(keep)], |r| r.get(0)).optional())
        .map_err(backend)?;
    let Some(cutoff) = cutoff else { return Ok(0) };
    let sql = "SELECT seq, first_reading, reading_count FROM events WHERE seq <= ?1 ORDER BY seq LIMIT ?2";
    let args = [Value::Integer(cutoff), Value::Integer(i64::try_from(max).unwrap_or(i64::MAX))];
    delete_rows(tx, &event_rows(tx, sql, &args)?)
}

// ---------------------------------------------------------------------------------------------
// Reads

fn event_tx(tx: &Transaction<'_>, id: &str) -> Result<Option<Event>, StoreError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1");
    let row = tx
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row(params![id_value(id)], row_to_event).optional())
        .map_err(backend)?;
    Ok(with_readings(tx, row.into_iter().collect())?.pop())
}

fn aggregate_tx(
    tx: &Transaction<'_>,
    filter: &ReadingFilter,
    func: AggregateFunc,
) -> Result<Vec<AggregateRow>, StoreError> {
    let func = match func {
        AggregateFunc::Min => "MIN",
        AggregateFunc::Max => "MAX",
        AggregateFunc::Count => "COUNT",
        AggregateFunc::Sum => "SUM",
        AggregateFunc::Avg => "AVG",
    };
    let clause = Clause::readings(filter);
    // The value type reported is the one of the group's latest-stored reading.
    let sql = format!(
        "WITH g AS (
             SELECT device, resource, profile, MAX(seq) AS last, COUNT(number) AS n, {func}(number) AS v
             FROM readings WHERE {} GROUP BY device, resource, profile)
         SELECT g.device, g.resource, g.profile, r.value_type, CASE WHEN g.n = 0 THEN NULL ELSE g.v END
         FROM g JOIN readings r ON r.seq = g.last
         ORDER BY g.device, g.resource, g.profile",
        clause.sql
    );
    let mut stmt = tx.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt.query_map(params_from_iter(clause.args.iter()), |row| {
        Ok(AggregateRow {
            device: row.get(0)?,
            resource: row.get(1)?,
            profile: row.get(2)?,
            value_type: value_type_from(row, 3)?,
            value: row.get(4)?,
        })
    });
    rows.and_then(|rows| rows.collect()).map_err(backend)
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn add_events(&self, events: &[Event]) -> Result<AddOutcome, StoreError> {
        let events = events.to_vec();
        self.pool.write(move |tx| add_tx(tx, &events)).await
    }

    async fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        let id = id.to_owned();
        self.pool.read(move |tx| event_tx(tx, &id)).await
    }

    async fn events(&self, filter: &EventFilter, page: Page) -> Result<(Vec<Event>, u64), StoreError> {
        let clause = Clause::events(filter);
        self.pool
            .read(move |tx| {
                let total = clause.count(tx, "events")?;
                let rows = clause.page(tx, "events", EVENT_COLUMNS, page, row_to_event)?;
                Ok((with_readings(tx, rows)?, total))
            })
            .await
    }

    async fn count_events(&self, filter: &EventFilter) -> Result<u64, StoreError> {
        let clause = Clause::events(filter);
        self.pool.read(move |tx| clause.count(tx, "events")).await
    }

    async fn readings(&self, filter: &ReadingFilter, page: Page) -> Result<(Vec<Reading>, u64), StoreError> {
        let clause = Clause::readings(filter);
        self.pool
            .read(move |tx| {
                let total = clause.count(tx, "readings")?;
                Ok((clause.page(tx, "readings", READING_COLUMNS, page, row_to_reading)?, total))
            })
            .await
    }

    async fn count_readings(&self, filter: &ReadingFilter) -> Result<u64, StoreError> {
        let clause = Clause::readings(filter);
        self.pool.read(move |tx| clause.count(tx, "readings")).await
    }

    async fn aggregate(&self, filter: &ReadingFilter, func: AggregateFunc) -> Result<Vec<AggregateRow>, StoreError> {
        let filter = filter.clone();
        self.pool.read(move |tx| aggregate_tx(tx, &filter, func)).await
    }

    async fn delete_event(&self, id: &str) -> Result<bool, StoreError> {
        let id = id_value(id);
        self.pool
            .write(move |tx| {
                let rows = event_rows(tx, "SELECT seq, first_reading, reading_count FROM events WHERE id = ?1", &[id])?;
                Ok(delete_rows(tx, &rows)? > 0)
            })
            .await
    }

    async fn delete_events(&self, filter: &EventFilter, max: usize) -> Result<usize, StoreError> {
        let filter = filter.clone();
        self.pool.write(move |tx| delete_events_tx(tx, &filter, max)).await
    }

    async fn trim_events(&self, keep: u64, max: usize) -> Result<usize, StoreError> {
        self.pool.write(move |tx| trim_tx(tx, keep, max)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.pool.read(|tx| tx.query_row("SELECT 1", [], |_| Ok(())).map_err(backend)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: usize) -> Event {
        let readings = (0..10)
            .map(|i| Reading {
                id: uuid::Uuid::new_v4().to_string(),
                origin: seq as i64,
                device_name: "d".to_owned(),
                resource_name: format!("r{i}"),
                profile_name: "p".to_owned(),
                value_type: ValueType::Int64,
                units: String::new(),
                tags: Default::default(),
                value: Some(seq.to_string()),
                binary_value: None,
                media_type: String::new(),
                object_value: None,
            })
            .collect();
        Event {
            api_version: "v3".to_owned(),
            id: uuid::Uuid::new_v4().to_string(),
            device_name: "d".to_owned(),
            profile_name: "p".to_owned(),
            source_name: "s".to_owned(),
            origin: seq as i64,
            readings,
            tags: Default::default(),
        }
    }

    /// Commits never checkpoint; the background thread copies the WAL into the file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_reaches_the_database_file_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let options = SqliteOptions { checkpoint_every: Duration::from_millis(20), ..Default::default() };
        let store = SqliteStore::open_with(&path, options).unwrap();
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let before = size();
        store.add_events(&(0..500).map(event).collect::<Vec<_>>()).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() < before + 500 * 10 * 100 {
            assert!(std::time::Instant::now() < deadline, "the database file stayed at {} bytes", size());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(store.count_events(&EventFilter::default()).await.unwrap(), 500);
    }
}
