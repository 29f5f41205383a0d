//! The state store: one SQLite file shared by the CLI and the desktop app.
//!
//! Every connection uses WAL (readers never block the writer), a busy timeout (the
//! app and a CLI can share the file), and foreign keys. The schema is a list of
//! numbered SQL files applied in one transaction by `rusqlite_migration`, with the
//! version in `PRAGMA user_version`; a database written by a newer Cairn is refused
//! rather than damaged.

mod assets;
mod collections;
mod cursors;
mod items;
mod jobs;
mod log;
mod sources;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite_migration::{M, MigrationDefinitionError, Migrations};

pub use assets::{AssetRow, AssetState, Counts, Failure, VerifiedAsset};
pub use collections::CollectionRow;
pub use items::{ItemMark, ItemRow, Mirrored, NewAsset, NewItem};
pub use jobs::{Job, JobState, NewJob};
pub use log::{LogKind, LogLine};
pub use sources::Source;

use crate::{Error, Result};

/// The schema, one numbered SQL file per table, in the order they apply.
const SCHEMA: [&str; 11] = [
    include_str!("migrations/0001_sources.sql"),
    include_str!("migrations/0002_jobs.sql"),
    include_str!("migrations/0003_items.sql"),
    include_str!("migrations/0004_assets.sql"),
    include_str!("migrations/0005_cursors.sql"),
    include_str!("migrations/0006_items_dir.sql"),
    include_str!("migrations/0007_assets_size.sql"),
    include_str!("migrations/0008_collections.sql"),
    include_str!("migrations/0009_jobs_flushed.sql"),
    include_str!("migrations/0010_jobs_per_host.sql"),
    include_str!("migrations/0011_job_log.sql"),
];

static MIGRATIONS: LazyLock<Migrations<'static>> =
    LazyLock::new(|| Migrations::new(SCHEMA.iter().map(|sql| M::up(sql)).collect()));

/// The schema version this build writes.
pub fn schema_version() -> usize {
    SCHEMA.len()
}

/// The state database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
}

impl Store {
    /// Opens (creating if needed) the state file at `path` and brings its schema up
    /// to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        let mut store = Store::setup(conn, &path.display().to_string())?;
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// A private in-memory store (for tests and dry runs).
    pub fn open_in_memory() -> Result<Store> {
        Store::setup(Connection::open_in_memory()?, ":memory:")
    }

    fn setup(mut conn: Connection, name: &str) -> Result<Store> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Fewer, larger checkpoints: each one waits for the disk twice.
        conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        MIGRATIONS.to_latest(&mut conn).map_err(|error| match error {
            rusqlite_migration::Error::MigrationDefinition(
                MigrationDefinitionError::DatabaseTooFarAhead,
            ) => Error::DatabaseVersion(format!(
                "the state file {name} was written by a newer version of Cairn (schema {found}; this version knows up to {}). Install the newer Cairn, or choose another file with --state.",
                schema_version()
            )),
            rusqlite_migration::Error::RusqliteError { err, .. } => Error::Database(err),
            other => Error::DatabaseVersion(format!(
                "the state file {name} could not be brought up to date: {other}"
            )),
        })?;
        Ok(Store { conn, path: None })
    }

    /// Starts a transaction for a batch of updates, unless one is open.
    pub fn begin_batch(&self) -> Result<()> {
        if self.conn.is_autocommit() {
            self.conn.execute_batch("BEGIN")?;
        }
        Ok(())
    }

    /// Commits the batch [`Store::begin_batch`] started, if one is open.
    pub fn end_batch(&self) -> Result<()> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    /// The store's clock: now, as the timestamps of its rows are written.
    pub fn now(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
                r.get(0)
            })?)
    }

    /// Starts a write transaction (for batches of updates).
    pub fn begin(&self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    /// Commits the transaction [`Store::begin`] started.
    pub fn commit(&self) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// Abandons the transaction [`Store::begin`] started.
    pub fn rollback(&self) -> Result<()> {
        self.conn.execute_batch("ROLLBACK")?;
        Ok(())
    }

    /// Where a job's files wait for upload to a bucket: beside the state file
    /// (or in the temporary folder for an in-memory store).
    pub fn staging_dir(&self, job_id: i64) -> PathBuf {
        let base = match self.path.as_deref().and_then(Path::parent) {
            Some(parent) if !parent.as_os_str().is_empty() => parent.join("staging"),
            Some(_) => PathBuf::from("staging"),
            None => std::env::temp_dir().join("cairn-staging"),
        };
        base.join(format!("job-{job_id}"))
    }

    /// Where the state file lives: `explicit` if given, else `$CAIRN_HOME/cairn.db`,
    /// else the platform's data directory.
    pub fn default_path(explicit: Option<&Path>) -> Result<PathBuf> {
        if let Some(path) = explicit {
            return Ok(path.to_path_buf());
        }
        if let Some(home) = std::env::var_os("CAIRN_HOME").filter(|h| !h.is_empty()) {
            return Ok(PathBuf::from(home).join("cairn.db"));
        }
        directories::ProjectDirs::from("org", "Cairn", "cairn")
            .map(|dirs| dirs.data_dir().join("cairn.db"))
            .ok_or_else(|| {
                Error::invalid_input(
                    "no home folder was found for the state file; set CAIRN_HOME or pass --state",
                )
            })
    }

    /// The schema version of the open file.
    pub fn version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?)
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// Reads a JSON document stored as text in column `index`.
fn json_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<serde_json::Value> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(MIGRATIONS.validate().is_ok());
    }

    #[test]
    fn a_new_file_gets_the_whole_schema_with_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/cairn.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.version().unwrap() as usize, schema_version());
        let mode: String = store
            .conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = store
            .conn()
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        drop(store);
        // Opening again is a no-op.
        assert!(Store::open(&path).is_ok());
    }

    #[test]
    fn a_file_from_a_newer_cairn_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.db");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, Error::DatabaseVersion(_)), "{err:?}");
        assert!(err.to_string().contains("newer version of Cairn"), "{err}");
        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, 99);
    }

    #[test]
    fn a_failing_migration_leaves_the_file_as_it_was() {
        // All pending migrations run in one transaction: if one fails, none apply.
        let mut conn = Connection::open_in_memory().unwrap();
        let migrations = Migrations::new(vec![
            M::up("CREATE TABLE a (x INTEGER);"),
            M::up("CREATE TABLE b (y INTEGER); THIS IS NOT SQL;"),
        ]);
        assert!(migrations.to_latest(&mut conn).is_err());
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
    }
}
