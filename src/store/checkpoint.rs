//! Checkpoints of the state file's write-ahead log, taken aside.
//!
//! In WAL mode a commit appends to the log; now and then the log is copied
//! back into the database file (a checkpoint), which waits for the disk
//! twice (the log, then the file). SQLite checkpoints on the committing
//! connection, in its commit: for a running job, the thread that applies
//! every transfer's updates would then stop for a tenth of a second or more
//! (seconds on a slow disk), and every transfer with it. While a job runs,
//! its connection only counts the pages of the log, and a thread with a
//! connection of its own checkpoints once enough gather. A passive
//! checkpoint waits for no one: commits go on while it copies.

use std::cell::Cell;
use std::os::raw::c_int;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};

use super::Store;

/// Pages of the log that wait before a checkpoint is asked for (as
/// SQLite's own `wal_autocheckpoint`, which the store sets the same).
pub(super) const PAGES: c_int = 8192;

thread_local! {
    /// Pages in the log after the last commit on this thread.
    static LOGGED: Cell<c_int> = const { Cell::new(0) };
}

/// Called by SQLite after each commit of a connection that checkpoints
/// aside: it only notes the size of the log.
fn note(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    LOGGED.set(pages);
    Ok(())
}

/// The thread that checkpoints while a store's connection commits.
pub struct Checkpoints {
    ask: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// A checkpoint is asked for or under way.
    busy: Arc<AtomicBool>,
}

impl Store {
    /// Has checkpoints of this store's log taken by a thread of their own
    /// from now on, until [`Checkpoints::stop`]. `None` for a store that is
    /// not a file, or whose file could not be opened again: it then
    /// checkpoints in its commits, as before.
    pub fn checkpoint_aside(&self) -> Option<Checkpoints> {
        let connection = open_again(self.path.as_deref()?)?;
        let (ask, asked) = std::sync::mpsc::channel::<()>();
        let busy = Arc::new(AtomicBool::new(false));
        let done = busy.clone();
        let thread = std::thread::Builder::new()
            .name("cairn-checkpoint".into())
            .spawn(move || {
                while asked.recv().is_ok() {
                    // A failure (the disk is full, the file is busy) leaves
                    // the pages in the log, where they are as safe: the next
                    // checkpoint takes them.
                    if let Err(error) =
                        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(%error, "a checkpoint of the state file failed");
                    }
                    done.store(false, Ordering::Release);
                }
            })
            .ok()?;
        // (This replaces SQLite's own checkpoints on this connection.)
        self.conn.wal_hook(Some(note));
        LOGGED.set(0);
        Some(Checkpoints {
            ask: Some(ask),
            thread: Some(thread),
            busy,
        })
    }
}

/// A second connection to the state file at `path`, for checkpoints only.
fn open_again(path: &Path) -> Option<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).ok()?;
    connection.busy_timeout(Duration::from_secs(1)).ok()?;
    Some(connection)
}

impl Checkpoints {
    /// After a commit on the store's thread: asks for a checkpoint when
    /// enough pages wait in the log and none is under way.
    pub fn after_commit(&self) {
        if LOGGED.get() < PAGES || self.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(ask) = &self.ask
            && ask.send(()).is_err()
        {
            // (The thread is gone: nothing is under way.)
            self.busy.store(false, Ordering::Release);
        }
    }

    /// Lets the thread finish its checkpoint, and gives checkpoints back to
    /// `store`'s commits.
    pub fn stop(mut self, store: &Store) {
        self.end();
        store.conn.wal_hook(None);
        if let Err(error) = store.conn.pragma_update(None, "wal_autocheckpoint", PAGES) {
            tracing::warn!(%error, "the state file's checkpoints could not be set again");
        }
    }

    fn end(&mut self) {
        self.ask.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn commits_leave_checkpoints_to_the_thread_aside_and_get_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path).unwrap();
        let file_pages = || std::fs::metadata(&path).unwrap().len() / 4096;
        // Rows of 3 KB under names not written before: each takes a page.
        let write = |from: usize, rows: usize| {
            store.begin().unwrap();
            for n in from..from + rows {
                store
                    .conn
                    .execute(
                        "INSERT INTO settings (name, value) VALUES (?1, ?2)",
                        (format!("k{n}"), "x".repeat(3000)),
                    )
                    .unwrap();
            }
            store.commit().unwrap();
        };
        let past = PAGES as usize + 100;
        let aside = store
            .checkpoint_aside()
            .expect("a file store checkpoints aside");
        // Past the threshold in one commit: the commit leaves the pages in
        // the log, and notes how many there are.
        write(0, past);
        assert!(LOGGED.get() >= PAGES, "{} pages noted", LOGGED.get());
        assert!(file_pages() < 100, "{} pages in the file", file_pages());
        // The thread copies them into the file.
        aside.after_commit();
        let deadline = Instant::now() + Duration::from_secs(60);
        while aside.busy.load(Ordering::Acquire) {
            assert!(Instant::now() < deadline, "no checkpoint came");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            file_pages() >= past as u64,
            "{} pages in the file",
            file_pages()
        );
        // The log starts again at its beginning with the next commit.
        write(past, 1);
        assert!(
            LOGGED.get() < 10,
            "{} pages after a checkpoint",
            LOGGED.get()
        );
        // Given back, the commits checkpoint by themselves again.
        aside.stop(&store);
        let before = file_pages();
        write(past + 1, past);
        assert!(
            file_pages() >= before + past as u64,
            "{} pages in the file, {before} before",
            file_pages()
        );
    }

    #[test]
    fn a_store_in_memory_checkpoints_in_its_commits() {
        assert!(
            Store::open_in_memory()
                .unwrap()
                .checkpoint_aside()
                .is_none()
        );
    }
}
