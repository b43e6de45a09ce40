//! The SQLite backend: one file, WAL, one writer connection and a few reader connections.
//!
//! Every record lives in one table, `metadata`, keyed by `(kind, id)` with `(kind, name)`
//! unique. Each trait call is one transaction on a blocking thread; writes take the writer
//! connection and begin `IMMEDIATE`, so the reference checks and the write they guard are
//! atomic even when several processes share the file. Reads use a small pool of read-only
//! connections, which WAL lets proceed while a write is in progress.
//!
//! Checks run in this order, the same as the Redis backend: the record itself (update,
//! delete), then `requires`, then name and id uniqueness, then references (in use).

use std::path::Path;

use async_trait::async_trait;
use oxedge_sqlite::{Options, Pool, Schema};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Transaction};

use super::{Filter, Kind, MetadataStore, Page, Record, Requires, StoreError};

/// How many read-only connections to keep.
const READERS: usize = 4;

/// The schema, one entry per version (kept in `PRAGMA user_version`).
const SCHEMA: Schema = Schema { what: "metadata", migrations: &[SCHEMA_V1] };

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS metadata (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    service TEXT,
    profile TEXT,
    parent TEXT,
    manufacturer TEXT,
    model TEXT,
    labels TEXT NOT NULL DEFAULT '[]',
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id),
    UNIQUE (kind, name)
);
CREATE INDEX IF NOT EXISTS metadata_service ON metadata (kind, service);
CREATE INDEX IF NOT EXISTS metadata_profile ON metadata (kind, profile);
CREATE INDEX IF NOT EXISTS metadata_parent ON metadata (kind, parent);
CREATE INDEX IF NOT EXISTS metadata_created ON metadata (kind, created, name);
";

const COLUMNS: &str = "id, name, created, labels, service, profile, parent, manufacturer, model, body";

/// A [`MetadataStore`] in an SQLite file.
///
/// Cheap to clone; clones share the connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: Pool,
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
    /// Opens (creating it and its parent directories if needed) the database at `path`,
    /// in WAL mode with `synchronous=NORMAL`, and brings its schema up to date.
    ///
    /// Blocks while it opens the file; call it before serving, or from a blocking task.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = Options { readers: READERS, ..Options::default() };
        Ok(SqliteStore { pool: Pool::open(path, &SCHEMA, &options)? })
    }
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let labels: String = row.get(3)?;
    let labels = serde_json::from_str(&labels)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(Record {
        id: row.get(0)?,
        name: row.get(1)?,
        created: row.get(2)?,
        labels,
        service: row.get(4)?,
        profile: row.get(5)?,
        parent: row.get(6)?,
        manufacturer: row.get(7)?,
        model: row.get(8)?,
        body: row.get(9)?,
    })
}

fn get_by(tx: &Transaction<'_>, kind: Kind, column: &str, value: &str) -> Result<Option<Record>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM metadata WHERE kind = ?1 AND {column} = ?2");
    let mut stmt = tx.prepare_cached(&sql).map_err(backend)?;
    stmt.query_row(params![kind.as_str(), value], row_to_record).optional().map_err(backend)
}

fn name_exists(tx: &Transaction<'_>, kind: Kind, name: &str) -> Result<bool, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT 1 FROM metadata WHERE kind = ?1 AND name = ?2").map_err(backend)?;
    stmt.exists(params![kind.as_str(), name]).map_err(backend)
}

fn id_exists(tx: &Transaction<'_>, kind: Kind, id: &str) -> Result<bool, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT 1 FROM metadata WHERE kind = ?1 AND id = ?2").map_err(backend)?;
    stmt.exists(params![kind.as_str(), id]).map_err(backend)
}

/// Fails with `NotFound` naming the first of `requires` that does not exist.
fn check_requires(tx: &Transaction<'_>, requires: &Requires) -> Result<(), StoreError> {
    for (kind, name) in requires {
        if !name_exists(tx, *kind, name)? {
            return Err(StoreError::NotFound { kind: *kind, name: name.clone() });
        }
    }
    Ok(())
}

/// Which `(kinds, column)` pairs refer to a record of `kind` by name.
fn referrers(kind: Kind) -> &'static [(Kind, &'static str)] {
    match kind {
        Kind::Service => &[(Kind::Device, "service"), (Kind::Watcher, "service")],
        Kind::Profile => &[(Kind::Device, "profile"), (Kind::Watcher, "profile")],
        Kind::Device => &[(Kind::Device, "parent")],
        Kind::Watcher => &[],
    }
}

/// Fails with `InUse` if any record refers to the record of `kind` named `name`, naming the
/// first referrer in listing order (devices before watchers).
fn check_not_in_use(tx: &Transaction<'_>, kind: Kind, name: &str) -> Result<(), StoreError> {
    for (referrer, column) in referrers(kind) {
        let sql = format!("SELECT name FROM metadata WHERE kind = ?1 AND {column} = ?2 ORDER BY created, name LIMIT 1");
        let mut stmt = tx.prepare_cached(&sql).map_err(backend)?;
        let by: Option<String> =
            stmt.query_row(params![referrer.as_str(), name], |r| r.get(0)).optional().map_err(backend)?;
        if let Some(by) = by {
            return Err(StoreError::InUse { kind, name: name.to_owned(), by: format!("{} '{by}'", referrer.label()) });
        }
    }
    Ok(())
}

fn labels_json(rec: &Record) -> Result<String, StoreError> {
    serde_json::to_string(&rec.labels).map_err(backend)
}

fn insert_tx(tx: &Transaction<'_>, kind: Kind, rec: &Record, requires: &Requires) -> Result<(), StoreError> {
    check_requires(tx, requires)?;
    if name_exists(tx, kind, &rec.name)? {
        return Err(StoreError::Duplicate { kind, name: rec.name.clone() });
    }
    if id_exists(tx, kind, &rec.id)? {
        return Err(StoreError::Duplicate { kind, name: rec.id.clone() });
    }
    write_record(
        tx,
        "INSERT INTO metadata (kind, id, name, created, labels, service, profile, parent, manufacturer, model, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        kind,
        rec,
    )
}

fn update_tx(tx: &Transaction<'_>, kind: Kind, rec: &Record, requires: &Requires) -> Result<(), StoreError> {
    let old = get_by(tx, kind, "id", &rec.id)?.ok_or_else(|| StoreError::NotFound { kind, name: rec.id.clone() })?;
    check_requires(tx, requires)?;
    if old.name != rec.name {
        if name_exists(tx, kind, &rec.name)? {
            return Err(StoreError::Duplicate { kind, name: rec.name.clone() });
        }
        check_not_in_use(tx, kind, &old.name)?;
    }
    write_record(
        tx,
        "UPDATE metadata SET name = ?3, created = ?4, labels = ?5, service = ?6, profile = ?7, parent = ?8,
             manufacturer = ?9, model = ?10, body = ?11
         WHERE kind = ?1 AND id = ?2",
        kind,
        rec,
    )
}

/// Runs `sql` (an insert or update of one row) with the record's fields as ?1…?11.
fn write_record(tx: &Transaction<'_>, sql: &str, kind: Kind, rec: &Record) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(sql).map_err(backend)?;
    stmt.execute(params![
        kind.as_str(),
        rec.id,
        rec.name,
        rec.created,
        labels_json(rec)?,
        rec.service,
        rec.profile,
        rec.parent,
        rec.manufacturer,
        rec.model,
        rec.body
    ])
    .map_err(backend)?;
    Ok(())
}

fn delete_tx(tx: &Transaction<'_>, kind: Kind, column: &str, value: &str) -> Result<Record, StoreError> {
    let rec = get_by(tx, kind, column, value)?.ok_or_else(|| StoreError::NotFound { kind, name: value.to_owned() })?;
    check_not_in_use(tx, kind, &rec.name)?;
    let mut stmt = tx.prepare_cached("DELETE FROM metadata WHERE kind = ?1 AND id = ?2").map_err(backend)?;
    stmt.execute(params![kind.as_str(), rec.id]).map_err(backend)?;
    Ok(rec)
}

fn query_tx(tx: &Transaction<'_>, kind: Kind, filter: &Filter, page: Page) -> Result<(Vec<Record>, u64), StoreError> {
    let mut clause = String::from("kind = ?");
    let mut args: Vec<Value> = vec![Value::Text(kind.as_str().to_owned())];
    let scalars = [
        ("service", &filter.service),
        ("profile", &filter.profile),
        ("parent", &filter.parent),
        ("manufacturer", &filter.manufacturer),
        ("model", &filter.model),
    ];
    for (column, value) in scalars {
        if let Some(value) = value {
            clause.push_str(&format!(" AND {column} = ?"));
            args.push(Value::Text(value.clone()));
        }
    }
    if !filter.labels.is_empty() {
        let marks = vec!["?"; filter.labels.len()].join(", ");
        clause.push_str(&format!(" AND EXISTS (SELECT 1 FROM json_each(metadata.labels) WHERE value IN ({marks}))"));
        args.extend(filter.labels.iter().cloned().map(Value::Text));
    }

    let count_sql = format!("SELECT COUNT(*) FROM metadata WHERE {clause}");
    let total: i64 = tx
        .prepare_cached(&count_sql)
        .and_then(|mut s| s.query_row(params_from_iter(args.iter()), |r| r.get(0)))
        .map_err(backend)?;

    // LIMIT -1 means no limit in SQLite.
    let limit = page.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let offset = i64::try_from(page.offset).unwrap_or(i64::MAX);
    args.push(Value::Integer(limit));
    args.push(Value::Integer(offset));
    let sql = format!("SELECT {COLUMNS} FROM metadata WHERE {clause} ORDER BY created, name LIMIT ? OFFSET ?");
    let mut stmt = tx.prepare_cached(&sql).map_err(backend)?;
    let records = stmt
        .query_map(params_from_iter(args.iter()), row_to_record)
        .and_then(|rows| rows.collect())
        .map_err(backend)?;
    Ok((records, u64::try_from(total).unwrap_or(0)))
}

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn insert(&self, kind: Kind, rec: Record, requires: Requires) -> Result<(), StoreError> {
        self.pool.write(move |tx| insert_tx(tx, kind, &rec, &requires)).await
    }

    async fn update(&self, kind: Kind, rec: Record, requires: Requires) -> Result<(), StoreError> {
        self.pool.write(move |tx| update_tx(tx, kind, &rec, &requires)).await
    }

    async fn get_by_name(&self, kind: Kind, name: &str) -> Result<Option<Record>, StoreError> {
        let name = name.to_owned();
        self.pool.read(move |tx| get_by(tx, kind, "name", &name)).await
    }

    async fn get_by_id(&self, kind: Kind, id: &str) -> Result<Option<Record>, StoreError> {
        let id = id.to_owned();
        self.pool.read(move |tx| get_by(tx, kind, "id", &id)).await
    }

    async fn delete_by_name(&self, kind: Kind, name: &str) -> Result<Record, StoreError> {
        let name = name.to_owned();
        self.pool.write(move |tx| delete_tx(tx, kind, "name", &name)).await
    }

    async fn delete_by_id(&self, kind: Kind, id: &str) -> Result<Record, StoreError> {
        let id = id.to_owned();
        self.pool.write(move |tx| delete_tx(tx, kind, "id", &id)).await
    }

    async fn query(&self, kind: Kind, filter: &Filter, page: Page) -> Result<(Vec<Record>, u64), StoreError> {
        let filter = filter.clone();
        self.pool.read(move |tx| query_tx(tx, kind, &filter, page)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.pool.read(|tx| tx.query_row("SELECT 1", [], |_| Ok(())).map_err(backend)).await
    }
}
