//! Checkpoints of the state file beside a running job.
//!
//! SQLite writes each commit to the write-ahead log and, once the log has
//! grown past a size, copies it into the database in the committing
//! connection (a checkpoint). For a job that connection is the one thread
//! that records every file: the copies that wait for its answers stop while
//! it copies tens of megabytes and waits for the disk twice.
//!
//! While a job runs, a thread with a connection of its own does that work
//! instead, a little at a time (`PRAGMA wal_checkpoint(PASSIVE)`, which never
//! blocks the writer). A log is only started over from its beginning when a
//! write finds everything in it copied; the writer goes on meanwhile, so the
//! job's own connection is asked, once the log is long and nearly all of it
//! copied, to copy the few last pages itself ([`Checkpointer::due`]): the log
//! then stays about the size it was, whatever the size of the job.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{AUTOCHECKPOINT, Store};

/// How often the thread copies what the log holds.
const EVERY: Duration = Duration::from_millis(250);

/// Pages in the log (4 KiB each) past which the job's connection copies the
/// last few itself, so that the log starts over.
const LONG: i64 = 8192;

/// The thread that checkpoints the state file while a job runs; it stops
/// when dropped. Meanwhile the job's connection checkpoints only when
/// [`Checkpointer::due`] says so.
pub struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    due: Arc<AtomicBool>,
}

impl Checkpointer {
    /// The log is long and nearly all copied: the job's connection is to
    /// checkpoint now ([`Store::checkpoint`]), so that its next write starts
    /// the log over. Asked once each time.
    pub fn due(&self) -> bool {
        self.due.swap(false, Ordering::AcqRel)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Store {
    /// Starts a thread that checkpoints this store's file beside its own
    /// connection, which then leaves checkpoints to it (until
    /// [`Store::checkpoint_alone`] is called once for each). `None` for a
    /// store in memory, or when the thread or its connection cannot be
    /// had: this connection then checkpoints as before.
    pub fn checkpoint_beside(&self) -> Option<Checkpointer> {
        let path = self.path.as_deref()?;
        let conn = checkpoint_connection(path)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let due = Arc::new(AtomicBool::new(false));
        let asks = due.clone();
        let thread = std::thread::Builder::new()
            .name("cairn-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    look(&conn, &asks);
                }
            })
            .ok()?;
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .ok()?;
        self.beside.set(self.beside.get() + 1);
        Some(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
            due,
        })
    }

    /// Copies what the log holds into the database, without waiting for
    /// anyone (see [`Checkpointer::due`]).
    pub fn checkpoint(&self) {
        if let Err(error) = passive(&self.conn) {
            tracing::debug!(%error, "a checkpoint of the state file failed");
        }
    }

    /// This connection checkpoints by itself again, as it does when no job
    /// runs, once every job that left them to a thread has ended (jobs of
    /// the app share its connection).
    pub fn checkpoint_alone(&self) {
        self.beside.set(self.beside.get().saturating_sub(1));
        if self.beside.get() > 0 {
            return;
        }
        if let Err(error) = self
            .conn
            .pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT)
        {
            tracing::debug!(%error, "the state file's checkpoints could not be set");
        }
    }
}

/// Copies what the log holds (with the thread's own connection `conn`);
/// when the log is long and nearly all of it copied, asks for the rest to
/// be copied by the job's connection.
fn look(conn: &Connection, due: &AtomicBool) {
    // (A checkpoint that fails is tried again next time; the job's
    // connection still writes to the log.)
    let Ok((log, copied)) = passive(conn) else {
        return;
    };
    if log >= LONG && log - copied <= LONG / 8 {
        due.store(true, Ordering::Release);
    }
}

/// A second connection to the state file at `path`, for checkpoints only.
fn checkpoint_connection(path: &Path) -> Option<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    conn.busy_timeout(Duration::from_millis(100)).ok()?;
    Some(conn)
}

/// A checkpoint that blocks no one: the pages in the log, and how many of
/// them are copied.
fn passive(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get(1)?, row.get(2)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(store: &Store, n: i64) {
        store.conn.execute_batch("BEGIN").unwrap();
        insert(store, n);
        store.conn.execute_batch("COMMIT").unwrap();
    }

    fn insert(store: &Store, n: i64) {
        store
            .conn
            .execute(
                "INSERT INTO filler (n, bytes) VALUES (?1, zeroblob(3000))",
                [n],
            )
            .unwrap();
    }

    /// A store with a job's worth of log, and a thread's connection that
    /// copies it while the job's connection has a transaction under way
    /// (as it nearly always has): whether the log starts over depends on
    /// the job's connection copying the rest when asked.
    fn log_after_a_look(catch_up: bool) -> i64 {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        store
            .conn
            .execute_batch("CREATE TABLE filler (n INTEGER, bytes BLOB)")
            .unwrap();
        let checkpointer = store.checkpoint_beside().expect("a checkpointing thread");
        // (The thread is stopped: its connection's work is done here, at
        // the moments the test chooses.)
        drop(checkpointer);
        store
            .conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .unwrap();
        let beside = checkpoint_connection(store.path.as_deref().unwrap()).unwrap();
        let mut n = 0;
        while n < LONG {
            commit(&store, n);
            n += 1;
        }
        let due = AtomicBool::new(false);
        store.conn.execute_batch("BEGIN").unwrap();
        insert(&store, n);
        look(&beside, &due);
        store.conn.execute_batch("COMMIT").unwrap();
        assert!(due.load(Ordering::Acquire), "the job's connection is asked");
        if catch_up {
            store.checkpoint();
        }
        commit(&store, n + 1);
        let rows: i64 = store
            .conn
            .query_row("SELECT count(*) FROM filler", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, n + 2);
        // The pages in the log (as its header says: the file keeps the
        // largest size it had).
        passive(&beside).unwrap().0
    }

    #[test]
    fn the_log_starts_over_when_the_job_copies_the_last_pages() {
        // Without the job's connection copying the rest, the log goes on
        // growing from where it was ...
        assert!(log_after_a_look(false) > LONG);
        // ... with it, the next write starts it over.
        let log = log_after_a_look(true);
        assert!(log < 16, "the log holds {log} pages");
    }

    #[test]
    fn a_job_leaves_checkpoints_to_the_thread_while_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let autocheckpoint = |store: &Store| -> i64 {
            store
                .conn
                .pragma_query_value(None, "wal_autocheckpoint", |row| row.get(0))
                .unwrap()
        };
        assert_eq!(autocheckpoint(&store), AUTOCHECKPOINT);
        let checkpointer = store.checkpoint_beside().expect("a checkpointing thread");
        assert_eq!(autocheckpoint(&store), 0);
        drop(checkpointer);
        store.checkpoint_alone();
        assert_eq!(autocheckpoint(&store), AUTOCHECKPOINT);
        // Two jobs on one connection (the app's): the first to end leaves
        // the other's checkpoints beside it.
        let first = store.checkpoint_beside().expect("a checkpointing thread");
        let second = store.checkpoint_beside().expect("another");
        drop(first);
        store.checkpoint_alone();
        assert_eq!(autocheckpoint(&store), 0);
        drop(second);
        store.checkpoint_alone();
        assert_eq!(autocheckpoint(&store), AUTOCHECKPOINT);
    }

    #[test]
    fn a_store_in_memory_checkpoints_as_before() {
        let store = Store::open_in_memory().unwrap();
        assert!(store.checkpoint_beside().is_none());
    }
}
