//! The SQLite file behind a service's store, shared by every store that uses SQLite.
//!
//! A [`Pool`] opens one file in WAL mode with `synchronous=NORMAL`: one writer connection,
//! whose transactions begin `IMMEDIATE` so that checks and the writes they guard are atomic
//! even when several processes share the file, and a few read-only connections, which WAL
//! lets proceed while a write is in progress. Every transaction runs on a blocking thread.
//! The schema is versioned in `PRAGMA user_version`; a file written by newer code is refused.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

/// How long a connection waits for a lock held by another connection or process.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong in SQLite, or around it (opening, the blocking task).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error(e.to_string())
    }
}

/// A store's schema: `migrations[i]` brings the file from version `i` to `i + 1`.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// What the file holds, for messages (`event`, `metadata`).
    pub what: &'static str,
    /// The SQL of each version, in order.
    pub migrations: &'static [&'static str],
}

impl Schema {
    /// The version this code writes.
    pub fn version(&self) -> i64 {
        self.migrations.len() as i64
    }
}

/// How the pool's connections are set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How many read-only connections to keep (at least 1).
    pub readers: usize,
    /// The page cache in KiB: all of it for the writer, an equal slice (at least 256 KiB) for
    /// each reader, so memory stays bounded however many queries run. `None` keeps SQLite's
    /// default per connection.
    pub cache_kib: Option<u32>,
    /// No checkpoint inside commits (`wal_autocheckpoint=0`, the WAL truncated to 64 MiB after
    /// a checkpoint): the store checkpoints on its own, e.g. from a thread.
    pub manual_checkpoints: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { readers: 4, cache_kib: None, manual_checkpoints: false }
    }
}

/// One SQLite file: a writer and read-only readers. Cheap to clone; clones share them.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("readers", &self.inner.readers.len()).finish_non_exhaustive()
    }
}

impl Pool {
    /// Opens (creating it and its parent directories if needed) the database at `path` and
    /// brings its schema up to date.
    ///
    /// Blocks while it opens the file; call it before serving, or from a blocking task.
    pub fn open(path: &Path, schema: &Schema, options: &Options) -> Result<Pool, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut writer = Connection::open(path).map_err(|e| Error(format!("cannot open {}: {e}", path.display())))?;
        writer.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error(format!("{} cannot use WAL (journal mode {mode})", path.display())));
        }
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        if let Some(kib) = options.cache_kib {
            writer.pragma_update(None, "cache_size", format!("-{kib}"))?;
        }
        if options.manual_checkpoints {
            writer.pragma_update(None, "wal_autocheckpoint", 0)?;
            writer.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        }
        migrate(&mut writer, schema)?;
        writer.set_prepared_statement_cache_capacity(64);

        let count = options.readers.max(1);
        let mut readers = Vec::with_capacity(count);
        for _ in 0..count {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
            let conn = Connection::open_with_flags(path, flags)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            if let Some(kib) = options.cache_kib {
                conn.pragma_update(None, "cache_size", format!("-{}", (kib as usize / count).max(256)))?;
            }
            conn.set_prepared_statement_cache_capacity(64);
            readers.push(Mutex::new(conn));
        }
        Ok(Pool { inner: Arc::new(Inner { writer: Mutex::new(writer), readers, next_reader: AtomicUsize::new(0) }) })
    }

    /// How many read-only connections the pool keeps.
    pub fn readers(&self) -> usize {
        self.inner.readers.len()
    }

    /// Runs `f` in an immediate transaction on the writer connection, on a blocking thread;
    /// commits when `f` succeeds, rolls back when it fails.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(Error::from)?;
            let out = f(&tx)?;
            tx.commit().map_err(Error::from)?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` in a (deferred, read-only) transaction on a free reader connection.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<Error> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            let mut conn = inner.reader();
            let tx = conn.transaction().map_err(Error::from)?;
            let out = f(&tx)?;
            tx.commit().map_err(Error::from)?;
            Ok(out)
        })
        .await
    }
}

/// Runs `f` on a blocking thread; a task that panicked is an error, not a panic here.
async fn blocking<T, E, F>(f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| E::from(Error(format!("storage task failed: {e}"))))?
}

impl Inner {
    /// A free reader connection if there is one, else waits for the next in turn.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            match self.readers[(start + i) % n].try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        self.readers[start].lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Brings the schema to `schema`'s version; refuses a database written by newer code.
fn migrate(conn: &mut Connection, schema: &Schema) -> Result<(), Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = schema.version();
    if version > latest {
        return Err(Error(format!(
            "{} database has schema version {version}, newer than this program's {latest}",
            schema.what
        )));
    }
    for (i, sql) in schema.migrations.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql).map_err(|e| Error(format!("{} schema version {}: {e}", schema.what, i + 1)))?;
    }
    tx.pragma_update(None, "user_version", latest)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: Schema = Schema { what: "test", migrations: &["CREATE TABLE t (n INTEGER NOT NULL);"] };

    #[tokio::test]
    async fn writes_commit_or_roll_back_and_readers_see_commits() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::open(&dir.path().join("a/b/t.db"), &SCHEMA, &Options::default()).unwrap();
        pool.write(|tx| tx.execute("INSERT INTO t VALUES (1)", []).map_err(Error::from)).await.unwrap();
        let failed: Result<(), Error> = pool
            .write(|tx| {
                tx.execute("INSERT INTO t VALUES (2)", [])?;
                Err(Error("no".into()))
            })
            .await;
        assert_eq!(failed, Err(Error("no".into())));
        let sum: i64 =
            pool.read(|tx| tx.query_row("SELECT SUM(n) FROM t", [], |r| r.get(0)).map_err(Error::from)).await.unwrap();
        assert_eq!(sum, 1, "the failed write rolled back");
        assert_eq!(pool.readers(), 4);
    }

    #[test]
    fn a_newer_file_is_refused_and_an_older_one_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Pool::open(&path, &SCHEMA, &Options::default()).unwrap());
        const V2: Schema = Schema { what: "test", migrations: &[SCHEMA.migrations[0], "ALTER TABLE t ADD m INTEGER;"] };
        drop(Pool::open(&path, &V2, &Options { readers: 1, cache_kib: Some(1024), manual_checkpoints: true }).unwrap());
        let err = Pool::open(&path, &SCHEMA, &Options::default()).unwrap_err();
        assert_eq!(err.0, "test database has schema version 2, newer than this program's 1");
    }
}
