//! The state store: one SQLite file shared by the CLI and the desktop app.
//!
//! Every connection uses WAL (readers never block the writer), a busy timeout (the
//! app and a CLI can share the file), and foreign keys. The schema is a list of
//! numbered SQL files applied in one transaction by `rusqlite_migration`, with the
//! version in `PRAGMA user_version`; a database written by a newer Cairn is refused
//! rather than damaged.

mod assets;
mod checkpoint;
mod collections;
mod cursors;
mod flags;
mod items;
mod jobs;
mod lease;
mod log;
mod mirrors;
mod runs;
mod settings;
mod sources;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use rusqlite_migration::{M, MigrationDefinitionError, Migrations};

pub use assets::{
    AssetRow, AssetState, Counts, EndedAssets, Failure, FileRecord, MirroredFile, Prior,
    VerifiedAsset, VerifiedElsewhere,
};
pub use checkpoint::Checkpointer;
pub use collections::CollectionRow;
pub use flags::{Flag, FlagKind, Known};
pub use items::{ItemMark, ItemRow, Mirrored, NewAsset, NewItem, PlannedPlaces, WrittenDocument};
pub use jobs::{Job, JobState, NewJob};
pub use lease::{Holder, LEASE};
pub(crate) use lease::{host_name, process_runs};
pub use log::{LogKind, LogLine};
pub use mirrors::{Check, MirrorRow};
pub use runs::{Run, Tallies, Version};
pub use sources::Source;

use crate::{Error, Result};

/// Now, as the timestamps of the store's rows are written: UTC to the
/// millisecond, `2026-12-07T02:49:35.123Z`, the form of SQLite's
/// `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` (read from the same clock on
/// Linux and macOS; SQLite's is coarser on Windows). The statements that
/// stamp a file's row (every update of `assets.updated_at`, which is
/// compared with the job's `flushed_at`, itself this clock) take it as a
/// parameter rather than have SQLite format the time in each of them.
pub(crate) fn stamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Pages in the write-ahead log past which a commit copies it into the
/// database: fewer, larger checkpoints, as each one waits for the disk
/// twice. (A running job leaves them to a thread of their own: see
/// [`Store::checkpoint_beside`].)
const AUTOCHECKPOINT: i64 = 8192;

/// The schema, one numbered SQL file per table, in the order they apply.
const SCHEMA: [&str; 26] = [
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
    include_str!("migrations/0012_assets_media_type.sql"),
    include_str!("migrations/0013_jobs_holder.sql"),
    include_str!("migrations/0014_assets_path.sql"),
    include_str!("migrations/0015_items_failure.sql"),
    include_str!("migrations/0016_fixity.sql"),
    include_str!("migrations/0017_sync.sql"),
    include_str!("migrations/0018_flags.sql"),
    include_str!("migrations/0019_jobs_draft.sql"),
    include_str!("migrations/0020_jobs_access.sql"),
    include_str!("migrations/0021_settings.sql"),
    include_str!("migrations/0022_checks.sql"),
    include_str!("migrations/0023_assets_replan.sql"),
    include_str!("migrations/0024_assets_verified_ctime.sql"),
    include_str!("migrations/0025_jobs_extras_due.sql"),
    include_str!("migrations/0026_runs_taken_out.sql"),
];

static MIGRATIONS: LazyLock<Migrations<'static>> =
    LazyLock::new(|| Migrations::new(SCHEMA.iter().map(|sql| M::up(sql)).collect()));

/// Prepared statements kept per connection.
const STATEMENTS_KEPT: usize = 96;

/// Cairn's mark in the header of its state files (`PRAGMA application_id`,
/// "Crn1"): a file without it that holds tables is another program's, and
/// Cairn never writes into it.
pub const APPLICATION_ID: i32 = 0x4372_6e31;

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The schema version this build writes.
pub fn schema_version() -> usize {
    SCHEMA.len()
}

/// The state database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
    /// Jobs whose checkpoints are done beside this connection now (see
    /// [`Store::checkpoint_beside`]).
    beside: std::cell::Cell<usize>,
}

impl Store {
    /// Opens (creating if needed) the state file at `path` and brings its schema up
    /// to date.
    pub fn open(path: &Path) -> Result<Store> {
        let name = path.display().to_string();
        check_file(path)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        // A file refused (damaged, another program's) is left as it is: the
        // last connection to close would otherwise move the write-ahead log
        // found beside it (maybe another database's) into it.
        let logged = has_log(path);
        let conn = Connection::open(path).map_err(|e| state_error(&name, e))?;
        if logged {
            conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
                .map_err(|e| state_error(&name, e))?;
        }
        let refused = |error| {
            let error = match error {
                Error::Database(e) => state_error(&name, e),
                other => other,
            };
            with_log_named(error, logged)
        };
        let mut store = Store::setup(conn, &name).map_err(refused)?;
        if logged {
            store
                .conn
                .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)
                .map_err(|e| state_error(&name, e))?;
        }
        store.path = Some(path.to_path_buf());
        Ok(store)
    }

    /// Opens the state file at `path` for commands that only read; a file
    /// (or folder) that cannot be written is opened read-only. Nothing is
    /// created or brought up to date then.
    pub fn open_for_reading(path: &Path) -> Result<Store> {
        check_file(path)?;
        let writable =
            !path.exists() || std::fs::OpenOptions::new().append(true).open(path).is_ok();
        if writable {
            return Store::open(path);
        }
        let name = path.display().to_string();
        let read = |immutable: bool| -> Result<Connection> {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = if immutable {
                let unusable = || Error::invalid_input(format!("{name} is not a usable path"));
                let absolute = std::path::absolute(path).map_err(|_| unusable())?;
                let url = url::Url::from_file_path(absolute).map_err(|()| unusable())?;
                Connection::open_with_flags(
                    format!("{url}?immutable=1"),
                    flags | OpenFlags::SQLITE_OPEN_URI,
                )?
            } else {
                Connection::open_with_flags(path, flags)?
            };
            conn.busy_timeout(Duration::from_secs(10))?;
            check_identity(&conn, &name)?;
            let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
            if found != schema_version() as i64 {
                return Err(Error::StateFile {
                    path: name.clone(),
                    reason: format!(
                        "can only be read (it is read-only) and has schema {found} where this Cairn uses {}; make it writable so it can be brought up to date",
                        schema_version()
                    ),
                });
            }
            conn.pragma_update(None, "foreign_keys", "ON")?;
            Ok(conn)
        };
        // A file in write-ahead mode needs its shared-memory file beside it,
        // which a read-only folder cannot hold: it is then read as it stands
        // (`immutable`), as a copy on a read-only disk is.
        let conn = match read(false) {
            Err(Error::Database(e))
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen)
                ) =>
            {
                read(true)
            }
            other => other,
        }
        .map_err(|e| match e {
            Error::Database(e) => state_error(&name, e),
            other => other,
        })?;
        Ok(Store {
            conn,
            path: Some(path.to_path_buf()),
            beside: Default::default(),
        })
    }

    /// A private in-memory store (for tests and dry runs).
    pub fn open_in_memory() -> Result<Store> {
        Store::setup(Connection::open_in_memory()?, ":memory:")
    }

    fn setup(mut conn: Connection, name: &str) -> Result<Store> {
        conn.busy_timeout(Duration::from_secs(10))?;
        // Room for every statement a job runs in turn (claiming, planning,
        // finishing, progress, writing items): with rusqlite's 16, each
        // pass over them prepared some again.
        conn.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
        // Before anything is written: is this file Cairn's?
        check_identity(&conn, name)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        // Several processes opening a new file at once: each reads the
        // version, then migrates in a transaction. The one that loses the
        // race fails; it then finds the file up to date and goes on.
        // A loser is told at once (its snapshot is stale, so SQLite does not
        // wait): it waits a little longer each time before it looks again,
        // so that a crowd of them on a busy machine does not lose every time.
        let mut migrated = MIGRATIONS.to_latest(&mut conn);
        for attempt in 1..=20 {
            let now: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
            if migrated.is_ok() || now == found {
                break;
            }
            std::thread::sleep(Duration::from_millis(5 * attempt));
            migrated = MIGRATIONS.to_latest(&mut conn);
        }
        migrated.map_err(|error| match error {
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
        let mark: i32 = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
        if mark != APPLICATION_ID {
            conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        Ok(Store {
            conn,
            path: None,
            beside: Default::default(),
        })
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
    pub fn now(&self) -> String {
        stamp()
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

    /// Runs `work` in one write transaction: committed when it returns `Ok`,
    /// abandoned when it fails.
    pub fn transaction<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        self.begin()?;
        let done = work();
        match &done {
            Ok(_) => self.commit()?,
            Err(_) => self.rollback()?,
        }
        done
    }

    /// Runs `work` all or nothing, on its own or inside a caller's
    /// transaction (the ledger's batches).
    pub fn savepoint<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        self.conn.prepare_cached("SAVEPOINT work")?.execute([])?;
        let done = work();
        match &done {
            Ok(_) => self.conn.execute_batch("RELEASE work")?,
            Err(_) => self.conn.execute_batch("ROLLBACK TO work; RELEASE work")?,
        }
        done
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

/// Refuses a state path that is a folder, or a file that is not an SQLite
/// database at all, before SQLite touches it.
fn check_file(path: &Path) -> Result<()> {
    let name = path.display().to_string();
    let refuse = |reason: &str| Error::StateFile {
        path: name.clone(),
        reason: reason.to_string(),
    };
    if path.is_dir() {
        return Err(refuse(
            "is a folder; give the path of a file (it is made if missing) with --state",
        ));
    }
    // A pipe or a device would block the open, or never end.
    if std::fs::metadata(path).is_ok_and(|meta| !meta.is_file()) {
        return Err(refuse(
            "is not a regular file (a pipe or a device); give the path of a file with --state",
        ));
    }
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(());
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match std::io::Read::read(&mut file, &mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(_) => return Ok(()),
        }
    }
    if read > 0 && (read < header.len() || &header != SQLITE_HEADER) {
        return Err(refuse(
            "is not an SQLite database, so not a Cairn state file (or one damaged from its first bytes); it was left as it is. Choose another file with --state, or move this one aside (keep it, if it was Cairn's)",
        ));
    }
    Ok(())
}

/// A refusal of a state file read with a write-ahead log beside it
/// (`logged`), naming the log as a likely cause.
fn with_log_named(error: Error, logged: bool) -> Error {
    match error {
        Error::StateFile { path, reason } if logged => Error::StateFile {
            reason: format!(
                "{reason}. (It was read with the file {path}-wal beside it, its write-ahead log: if that one came from another database, move it aside, keep both, and try again.)"
            ),
            path,
        },
        other => other,
    }
}

/// Whether the state file at `path` has a write-ahead log beside it that
/// holds something.
fn has_log(path: &Path) -> bool {
    let mut log = path.as_os_str().to_owned();
    log.push("-wal");
    std::fs::metadata(log).is_ok_and(|meta| meta.len() > 0)
}

/// Refuses a database that is not Cairn's: one with tables but without
/// Cairn's mark (and not an early Cairn file, recognised by its tables).
fn check_identity(conn: &Connection, name: &str) -> Result<()> {
    let mark: i32 = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
    if mark == APPLICATION_ID {
        return Ok(());
    }
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let early_cairn = ["sources", "jobs", "items", "assets"]
        .iter()
        .all(|t| tables.iter().any(|have| have == t));
    if mark == 0 && (tables.is_empty() || early_cairn) {
        return Ok(());
    }
    let whose = if mark == 0 {
        format!("it holds other tables ({})", tables.join(", "))
    } else {
        format!("its application id is {mark:#x}")
    };
    Err(Error::StateFile {
        path: name.to_string(),
        reason: format!(
            "is another program's database ({whose}); Cairn never writes into it. Choose a new file with --state"
        ),
    })
}

/// An SQLite failure on opening the state file, in words.
fn state_error(name: &str, error: rusqlite::Error) -> Error {
    let code = error.sqlite_error_code();
    let reason = match code {
        _ if crate::error::damaged_state(&error) => format!(
            "is damaged ({error}); it was left as it is. Keep it aside (it may be recoverable with `sqlite3 .recover`) and choose another file with --state, or move it away to start afresh"
        ),
        Some(ErrorCode::ReadOnly) => {
            "cannot be written (the file or its folder is read-only); Cairn can still show what it holds, but not change it".to_string()
        }
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => format!(
            "cannot be opened ({error}); check that its folder exists and that you may write there"
        ),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            "is busy: another program holds it locked; try again once it is done".to_string()
        }
        Some(ErrorCode::DiskFull) => {
            "cannot grow: its disk is full; free some space there".to_string()
        }
        _ => return Error::Database(error),
    };
    Error::StateFile {
        path: name.to_string(),
        reason,
    }
}

/// Reads a JSON document stored as text in column `index`.
fn json_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<serde_json::Value> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into())
    })
}

/// Row ids as a JSON array, for a statement that takes many at once through
/// `json_each`.
fn json_array(rows: &[i64]) -> String {
    serde_json::json!(rows).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        assert!(MIGRATIONS.validate().is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn the_store_clock_reads_as_sqlite_writes_its_own() {
        // Stamps of both are compared as text (SQLite's 'now' in the
        // statements of jobs and runs, this clock in those of files and
        // flushes): the same form, the same clock, so text order is time
        // order.
        let store = Store::open_in_memory().unwrap();
        let sqlite = || -> String {
            store
                .conn()
                .query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        for _ in 0..50 {
            let (before, ours, after) = (sqlite(), stamp(), sqlite());
            assert!(before <= ours && ours <= after, "{before} {ours} {after}");
            assert_eq!(ours.len(), before.len(), "{ours} {before}");
            let form = |t: &str| {
                t.chars()
                    .map(|c| if c.is_ascii_digit() { '0' } else { c })
                    .collect::<String>()
            };
            assert_eq!(form(&ours), "0000-00-00T00:00:00.000Z");
            assert_eq!(form(&before), form(&ours));
        }
    }

    #[test]
    fn sqlite_keeps_what_a_savepoint_undoes_in_memory_up_to_124_kib() {
        // Set when SQLite is built (.cargo/config.toml): without it every
        // planned item of a batch writes its pages to a temporary file.
        let store = Store::open_in_memory().unwrap();
        let options: Vec<String> = store
            .conn()
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "STMTJRNL_SPILL=126976"),
            "{options:?}"
        );
    }

    #[test]
    fn a_savepoint_that_changes_more_than_memory_keeps_still_commits() {
        // Past the threshold above, the undo pages go to a temporary file,
        // where SQLite writes them in pieces of the threshold's size; a piece
        // of 128 KiB or more was written as nothing and taken for a full
        // disk (a sync asking again about 20,000 files stopped so).
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("cairn.db")).unwrap();
        let conn = store.conn();
        conn.execute_batch(
            "CREATE TABLE big (x BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO big SELECT randomblob(3000) FROM n;",
        )
        .unwrap();
        conn.execute_batch(
            "BEGIN; SAVEPOINT s; UPDATE big SET x = randomblob(3000); RELEASE s; COMMIT;",
        )
        .unwrap();
        let changed: i64 = conn
            .query_row("SELECT count(*) FROM big WHERE length(x) = 3000", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(changed, 3000);
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
    fn a_state_file_read_with_another_databases_log_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.db");
        let store = Store::open(&path).unwrap();
        store
            .create_job(&crate::store::jobs::tests::new_job())
            .unwrap();
        drop(store);
        let kept = std::fs::read(&path).unwrap();
        // Another program's database, its changes still in its log (its
        // connection open, so the log is not folded into the file).
        let other = dir.path().join("other.db");
        let conn = Connection::open(&other).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE notes (x); INSERT INTO notes VALUES (1);")
            .unwrap();
        let log = dir.path().join("cairn.db-wal");
        std::fs::copy(dir.path().join("other.db-wal"), &log).unwrap();
        let error = Store::open(&path).unwrap_err().to_string();
        assert!(error.contains("another program's database"), "{error}");
        assert!(error.contains("cairn.db-wal beside it"), "{error}");
        // Neither the file nor the log was touched.
        assert_eq!(std::fs::read(&path).unwrap(), kept);
        assert!(log.exists());
        drop(conn);
        // With the log moved aside, the file is Cairn's again, whole.
        std::fs::rename(&log, dir.path().join("aside-wal")).unwrap();
        let _ = std::fs::remove_file(dir.path().join("cairn.db-shm"));
        let store = Store::open(&path).unwrap();
        assert_eq!(store.jobs().unwrap().len(), 1);
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
