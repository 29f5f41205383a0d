//! The state store as seen by a running job: one thread owns the store while
//! the job runs and applies what the transfers ask for in batches, one
//! transaction per batch (group commit). Thousands of small files then cost a
//! few hundred transactions, not tens of thousands, and no transfer ever
//! blocks a runtime thread on the database.
//!
//! Answers are given only after their batch is committed. Files marked done
//! are made durable in the background: at most every two seconds, and when
//! the job stops, one `syncfs` of the destination's file system (Linux) covers
//! everything written so far, and the moment it started is recorded as the
//! job's `flushed_at`. The flush has a thread of its own, so that batches go
//! on being committed while the disk writes (on a slow disk, for seconds).
//! A file marked done after that moment is checked again when the job next
//! starts, in case the machine stopped before the file system wrote it (see
//! [`Store::unflushed_done`]). Elsewhere each copy flushes its own file
//! before it is reported.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::store::{Checkpointer, Store};
use crate::{Error, Result};

/// Requests at most in one transaction.
const BATCH: usize = 512;

/// How long updates nobody waits for (and those sent with
/// [`Ledger::call_gathered`]) may gather before they are committed.
const GATHER: Duration = Duration::from_millis(5);

/// The longest finished files wait before they are flushed to disk.
const FLUSH_EVERY: Duration = Duration::from_secs(2);

type Answer = Box<dyn FnOnce(Result<()>) + Send>;
type Work = Box<dyn FnOnce(&Store) -> Answer + Send>;

/// An update sent without waiting that failed: in words, and whether for
/// want of room on the state file's disk (the job then stops as for a full
/// destination, to be resumed).
#[derive(Clone)]
pub struct Failure {
    pub words: String,
    pub disk_full: bool,
}

impl Failure {
    /// The failure as the job's error.
    pub fn error(self) -> Error {
        match self.disk_full {
            true => state_disk_full(),
            // (Words that say already that progress was not saved are
            // not said twice.)
            false
                if self
                    .words
                    .starts_with("the state store could not save progress") =>
            {
                Error::invalid_input(self.words)
            }
            false => Error::invalid_input(format!(
                "the state file could not record the job's progress: {}",
                self.words
            )),
        }
    }
}

/// The state file's disk is full (in SQLite's words for it, which say
/// what to do).
fn state_disk_full() -> Error {
    Error::Database(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
        None,
    ))
}

/// How an answered request is committed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// Without delay.
    Now,
    /// Without delay; it records files as done.
    Finished,
    /// Once others have had a few milliseconds to join it.
    Gathered,
}

struct Request {
    work: Work,
    /// The request records files as done: they are to be flushed.
    finished: bool,
    /// Someone waits for the answer and nothing else: commit without delay.
    awaited: bool,
}

/// What must be flushed, and where the flush is recorded.
struct Flush {
    folder: PathBuf,
    job_id: i64,
    /// Files were finished since the last flush began.
    pending: bool,
    last: Instant,
    /// The thread that flushes while the store thread goes on.
    flusher: Option<Flusher>,
}

/// A thread that flushes the file system each time it is asked.
struct Flusher {
    ask: std::sync::mpsc::Sender<()>,
    thread: JoinHandle<()>,
    /// A flush is under way.
    busy: Arc<AtomicBool>,
    /// A flush failed: the last one, when the job stops, is not skipped.
    failed: Arc<AtomicBool>,
}

impl Flusher {
    /// Starts the thread; `None` when it cannot be (the store thread then
    /// flushes by itself, as when the job stops).
    fn start(store: Arc<Mutex<Store>>, folder: PathBuf, job_id: i64) -> Option<Flusher> {
        let (ask, asked) = std::sync::mpsc::channel::<()>();
        let busy = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicBool::new(false));
        let (done, failing) = (busy.clone(), failed.clone());
        let thread = std::thread::Builder::new()
            .name("cairn-flush".into())
            .spawn(move || {
                for () in asked {
                    if let Err(error) = flush_once(&store, &folder, job_id) {
                        // Not recorded: the files are checked again at the
                        // next start (unless a later flush covers them).
                        flush_failed(&error);
                        failing.store(true, Ordering::Release);
                    }
                    done.store(false, Ordering::Release);
                }
            })
            .ok()?;
        Some(Flusher {
            ask,
            thread,
            busy,
            failed,
        })
    }
}

/// Updates sent with [`Ledger::send_paced`] that may wait at most, not yet
/// applied: a few batches. A sender that finds them all waiting waits until
/// a batch of them is applied.
const PACED: usize = 4 * BATCH;

/// A handle on the store thread; the thread stops when the last handle is
/// dropped, after applying what was asked.
pub struct Ledger {
    sender: Option<std::sync::mpsc::Sender<Request>>,
    waker: Waker,
    thread: Option<JoinHandle<()>>,
    /// The first failure of an update nobody waited for.
    failed: Arc<Mutex<Option<Failure>>>,
    /// Paced updates sent and not yet applied, and the signal that a batch
    /// of room was made.
    paced: Arc<(Mutex<usize>, Condvar)>,
    /// The mirror folder the job writes into, held while the ledger lives.
    writer: Option<crate::writer::Writer>,
}

/// Ends the store thread's gathering early, for a request answered without
/// delay.
struct Waker {
    urgent: Arc<AtomicBool>,
    thread: std::thread::Thread,
}

impl Waker {
    fn wake(&self) {
        self.urgent.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

impl Ledger {
    /// Starts the thread over `store` for job `job_id`. `flush` is the folder
    /// whose file system holds the finished files (`None` when they need no
    /// flush, e.g. for a bucket).
    pub fn start(store: Arc<Mutex<Store>>, job_id: i64, flush: Option<PathBuf>) -> Result<Ledger> {
        let (sender, receiver) = std::sync::mpsc::channel::<Request>();
        let urgent = Arc::new(AtomicBool::new(false));
        let woken = urgent.clone();
        let mut flush = flush.map(|folder| Flush {
            flusher: Flusher::start(store.clone(), folder.clone(), job_id),
            folder,
            job_id,
            pending: false,
            last: Instant::now(),
        });
        let thread = std::thread::Builder::new()
            .name("cairn-ledger".into())
            .spawn(move || {
                let mut backlog = false;
                // Checkpoints of the state file are done beside this
                // thread, not in its way (until it ends, or panics).
                let checkpointer = Beside::start(&store);
                loop {
                    let first = match receiver.recv_timeout(FLUSH_EVERY) {
                        Ok(first) => first,
                        Err(RecvTimeoutError::Timeout) => {
                            flush_if_due(&store, flush.as_mut(), When::Idle);
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                    // Updates nobody waits for (or whose sender may wait)
                    // gather a few milliseconds, so that thousands of small
                    // files share transactions. The thread sleeps meanwhile:
                    // those sends do not wake it, one for a request answered
                    // without delay does, and ends the gathering.
                    if !first.awaited && !backlog {
                        let deadline = Instant::now() + GATHER;
                        while !urgent.load(Ordering::Acquire) {
                            let left = deadline.saturating_duration_since(Instant::now());
                            if left.is_zero() {
                                break;
                            }
                            std::thread::park_timeout(left);
                        }
                    }
                    urgent.store(false, Ordering::Release);
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        let Ok(more) = receiver.try_recv() else { break };
                        batch.push(more);
                    }
                    // A full batch leaves more waiting: the next one is
                    // taken at once.
                    backlog = batch.len() == BATCH;
                    if let Some(flush) = flush.as_mut() {
                        flush.pending |= batch.iter().any(|r| r.finished);
                    }
                    apply(&store, batch);
                    flush_if_due(&store, flush.as_mut(), When::Batch);
                    if checkpointer.due() {
                        store.lock().unwrap_or_else(|e| e.into_inner()).checkpoint();
                    }
                }
                drop(checkpointer);
                // The job is stopping: everything it finished goes to disk.
                flush_if_due(&store, flush.as_mut(), When::Stopping);
            })
            .map_err(|e| {
                Error::invalid_input(format!(
                    "Cairn could not start a thread for the job ({e}); the system may be short of memory"
                ))
            })?;
        let waker = Waker {
            urgent: woken,
            thread: thread.thread().clone(),
        };
        Ok(Ledger {
            sender: Some(sender),
            waker,
            thread: Some(thread),
            failed: Arc::new(Mutex::new(None)),
            paced: Arc::new((Mutex::new(0), Condvar::new())),
            writer: None,
        })
    }

    /// Keeps `writer` (the job's hold on its mirror folder) until the
    /// ledger is dropped: the run's last write is done by then.
    pub fn holding(mut self, writer: Option<crate::writer::Writer>) -> Ledger {
        self.writer = writer;
        self
    }

    /// Runs `f` in the next batch and answers once it is committed.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.ask(f, Ask::Now).await
    }

    /// As [`Ledger::call`], for a request that may wait for others to share
    /// its transaction (a few milliseconds at most): for a caller that has
    /// nothing else to do meanwhile, and many like it.
    pub async fn call_gathered<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.ask(f, Ask::Gathered).await
    }

    /// As [`Ledger::call`], for a request that records files as done: they
    /// are flushed to disk within [`FLUSH_EVERY`].
    pub async fn call_finished<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.ask(f, Ask::Finished).await
    }

    /// Runs `f` in the next batch without waiting; a failure is logged.
    pub fn send(&self, f: impl FnOnce(&Store) -> Result<()> + Send + 'static) {
        self.enqueue(f, false);
    }

    /// As [`Ledger::send`], for updates that come faster than the store
    /// takes them (the rows of a plan): when [`PACED`] of them wait, this
    /// waits for room, so what waits in memory stays bounded.
    pub fn send_paced(&self, f: impl FnOnce(&Store) -> Result<()> + Send + 'static) {
        let (count, applied) = &*self.paced;
        let full = || *count.lock().unwrap_or_else(|e| e.into_inner()) >= PACED;
        if full() {
            let wait = || {
                let mut waiting = count.lock().unwrap_or_else(|e| e.into_inner());
                // Until a batch has room (not one row: that would wait once
                // a row); checked every so often, as a store thread that
                // stopped never makes room.
                while *waiting > PACED - BATCH
                    && !self.thread.as_ref().is_none_or(JoinHandle::is_finished)
                {
                    waiting = applied
                        .wait_timeout(waiting, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            // On a runtime that has other threads, its other tasks move
            // there while this one waits.
            match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
                _ => wait(),
            }
        }
        *count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let paced = self.paced.clone();
        self.enqueue(
            move |store| {
                let result = f(store);
                let (count, applied) = &*paced;
                let mut waiting = count.lock().unwrap_or_else(|e| e.into_inner());
                *waiting -= 1;
                if *waiting == PACED - BATCH {
                    applied.notify_all();
                }
                result
            },
            false,
        );
    }

    /// As [`Ledger::send`], for an update that records files as done.
    pub fn send_finished(&self, f: impl FnOnce(&Store) -> Result<()> + Send + 'static) {
        self.enqueue(f, true);
    }

    fn enqueue(&self, f: impl FnOnce(&Store) -> Result<()> + Send + 'static, finished: bool) {
        let failed = self.failed.clone();
        let work: Work = Box::new(move |store| {
            let result = f(store);
            Box::new(move |committed: Result<()>| {
                if let Err(error) = result.and(committed) {
                    tracing::debug!(%error, "a state update failed");
                    failed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(Failure {
                            words: error.to_string(),
                            disk_full: error.is_disk_full(),
                        });
                }
            })
        });
        if let Some(sender) = &self.sender {
            let _ = sender.send(Request {
                work,
                finished,
                awaited: false,
            });
        }
    }

    /// The first failure of an update sent without waiting, if any, left
    /// for [`Ledger::take_error`].
    pub fn failure(&self) -> Option<Failure> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The first failure of an update sent without waiting, if any (once
    /// the updates sent before are applied: call after an awaited request).
    pub fn take_error(&self) -> Result<()> {
        match self.failed.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(failure) => Err(failure.error()),
            None => Ok(()),
        }
    }

    async fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
        ask: Ask,
    ) -> Result<T> {
        let (answer, answered) = oneshot::channel();
        let work: Work = Box::new(move |store| {
            let result = f(store);
            Box::new(move |committed: Result<()>| {
                let _ = answer.send(committed.and(result));
            })
        });
        let stopped = || Error::invalid_input("the state store stopped while the job ran");
        self.sender
            .as_ref()
            .ok_or_else(stopped)?
            .send(Request {
                work,
                finished: ask == Ask::Finished,
                awaited: ask != Ask::Gathered,
            })
            .map_err(|_| stopped())?;
        if ask != Ask::Gathered {
            self.waker.wake();
        }
        answered.await.map_err(|_| stopped())?
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.sender.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The checkpoints of the state file done beside the store thread while
/// it lives; the store's connection does them again once it is dropped
/// (the thread ended, or panicked).
struct Beside {
    store: Arc<Mutex<Store>>,
    checkpointer: Option<Checkpointer>,
}

impl Beside {
    fn start(store: &Arc<Mutex<Store>>) -> Beside {
        let checkpointer = store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .checkpoint_beside();
        Beside {
            store: store.clone(),
            checkpointer,
        }
    }

    /// See [`Checkpointer::due`].
    fn due(&self) -> bool {
        self.checkpointer.as_ref().is_some_and(Checkpointer::due)
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        if let Some(checkpointer) = self.checkpointer.take() {
            drop(checkpointer);
            self.store
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .checkpoint_alone();
        }
    }
}

fn apply(store: &Mutex<Store>, batch: Vec<Request>) {
    let store = store.lock().unwrap_or_else(|e| e.into_inner());
    // Should the file stay busy past the store's timeout, the batch runs
    // without a transaction: each statement then commits on its own, and
    // each answer carries its own statement's outcome.
    let began = store.begin().is_ok();
    let answers: Vec<Answer> = batch.into_iter().map(|r| (r.work)(&store)).collect();
    let committed = if began { store.commit() } else { Ok(()) };
    if committed.is_err() {
        let _ = store.rollback();
    }
    for answer in answers {
        let outcome = match &committed {
            Ok(()) => Ok(()),
            Err(error) if error.is_disk_full() => Err(state_disk_full()),
            Err(error) => Err(Error::invalid_input(format!(
                "the state store could not save progress: {error}"
            ))),
        };
        answer(outcome);
    }
}

/// When the store thread looks whether a flush is due.
#[derive(Clone, Copy, PartialEq, Eq)]
enum When {
    /// After a batch: a flush at most every [`FLUSH_EVERY`].
    Batch,
    /// Nothing came for a while: a flush whenever files wait.
    Idle,
    /// The job stops: everything now.
    Stopping,
}

/// Has the finished files flushed when some wait (and, after a batch, the
/// last flush began long enough ago), by the flushing thread unless it is
/// still at the last one. When the job stops, the flushing thread is let
/// finish, and whatever is left is flushed here and now.
fn flush_if_due(store: &Mutex<Store>, flush: Option<&mut Flush>, when: When) {
    let Some(flush) = flush else { return };
    if when == When::Stopping {
        let mut failed = false;
        if let Some(Flusher {
            ask,
            thread,
            failed: failing,
            ..
        }) = flush.flusher.take()
        {
            drop(ask);
            // (A thread that panicked may have left its flush unrecorded.)
            failed = thread.join().is_err() || failing.load(Ordering::Acquire);
        }
        if flush.pending || failed {
            match flush_once(store, &flush.folder, flush.job_id) {
                Ok(()) => flush.pending = false,
                // Not recorded: the files are checked again at the next start.
                Err(error) => flush_failed(&error),
            }
        }
        return;
    }
    // A flushing thread ends only when asked to: one that is gone
    // panicked, and may have left its flush unrecorded. This thread
    // flushes from now on.
    if flush
        .flusher
        .as_ref()
        .is_some_and(|flusher| flusher.thread.is_finished())
    {
        flush.flusher = None;
        flush.pending = true;
    }
    // A failed flush is tried again, as if its files were finished anew.
    if let Some(flusher) = &flush.flusher
        && flusher.failed.swap(false, Ordering::AcqRel)
    {
        flush.pending = true;
    }
    if !flush.pending || (when == When::Batch && flush.last.elapsed() < FLUSH_EVERY) {
        return;
    }
    match &flush.flusher {
        Some(flusher) => {
            if flusher.busy.swap(true, Ordering::AcqRel) {
                return;
            }
            // (Gone since the look above: this thread flushes next time.)
            if flusher.ask.send(()).is_err() {
                flush.flusher = None;
                return;
            }
        }
        None => {
            if let Err(error) = flush_once(store, &flush.folder, flush.job_id) {
                flush_failed(&error);
                return;
            }
        }
    }
    flush.pending = false;
    flush.last = Instant::now();
}

/// Flushes the file system that holds `folder`, and records the moment the
/// flush began as job `job_id`'s `flushed_at`: every file recorded done
/// before that moment was written before it, so the flush covers it. The
/// store is held only to read the moment and to record it. No record bears
/// that moment's time (the store's clock is in milliseconds): it is read
/// once the clock has moved on from the last record's, and the store is let
/// go once the clock has moved on from it.
/// Notes a flush that failed (its files are checked again at the next
/// start). A failure of the state file itself (its disk full) is the job's
/// to say, in words, as it stops (see [`Ledger::failure`]): not a warning
/// of its own beside it.
fn flush_failed(error: &Error) {
    match error {
        Error::Database(_) => tracing::debug!(%error, "flushing finished files failed"),
        _ => tracing::warn!(%error, "flushing finished files failed"),
    }
}

fn flush_once(store: &Mutex<Store>, folder: &Path, job_id: i64) -> Result<()> {
    let lock = || store.lock().unwrap_or_else(|e| e.into_inner());
    let started = {
        let store = lock();
        // (A clock set back is not waited for: the flush is then not
        // recorded, and its files are checked again at the next start.)
        let tick = |after: &str| -> Result<String> {
            loop {
                let now = store.now();
                match now.as_str().cmp(after) {
                    std::cmp::Ordering::Greater => return Ok(now),
                    std::cmp::Ordering::Equal => std::thread::sleep(Duration::from_micros(200)),
                    std::cmp::Ordering::Less => {
                        return Err(Error::invalid_input(
                            "the computer's clock was set back during a flush",
                        ));
                    }
                }
            }
        };
        let started = tick(&store.now())?;
        tick(&started)?;
        started
    };
    flush_file_system(folder)?;
    lock().set_job_flushed(job_id, &started)
}

/// Makes every file written under `folder` durable: `syncfs` on Linux (one
/// call for the whole batch). Elsewhere copies flush their own files.
pub(crate) fn flush_file_system(folder: &Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let dir = std::fs::File::open(folder).map_err(|source| Error::Io {
            path: folder.display().to_string(),
            source,
        })?;
        // SAFETY: `dir` is an open file descriptor for the whole call.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(Error::Io {
                path: folder.display().to_string(),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = folder;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AssetState, NewAsset, NewItem};

    /// A store with a job of `assets` claimed assets, and their ids.
    fn claimed(folder: &Path, assets: usize) -> (Store, i64, Vec<i64>) {
        let s = Store::open_in_memory().unwrap();
        let (job, ids) = {
            let job = s
                .create_job(&crate::store::NewJob {
                    source_url: "https://x.test/catalog.json".into(),
                    destination: folder.display().to_string(),
                    selection: serde_json::json!({}),
                    limit_rate: None,
                    concurrency: 4,
                    per_host: 2,
                })
                .unwrap();
            s.plan_item(&NewItem {
                job_id: job,
                collection: Some("c".into()),
                item_id: "i".into(),
                href: "https://x.test/i.json".into(),
                dir: "c/i".into(),
                renamed: None,
                document: "{}".into(),
                assets: (0..assets)
                    .map(|n| NewAsset {
                        key: format!("a{n}"),
                        href: format!("https://x.test/a{n}.tif"),
                        path: format!("c/i/a{n}.tif"),
                        expected_size: Some(10),
                        expected_checksum: None,
                        media_type: None,
                    })
                    .collect(),
                run: None,
            })
            .unwrap();
            let ids = (0..assets)
                .map(|_| s.claim_asset(job).unwrap().unwrap().id)
                .collect();
            (job, ids)
        };
        (s, job, ids)
    }

    fn finish(id: i64) -> impl FnOnce(&Store) -> Result<()> {
        move |s: &Store| s.finish_asset(id, AssetState::Done, 10, "1220ab")
    }

    /// A flush covers every file recorded done before it began, also in the
    /// same millisecond, and none recorded after it, also in the same one.
    #[test]
    fn a_flush_covers_what_was_recorded_before_it_and_nothing_after() {
        let folder = tempfile::tempdir().unwrap();
        let (store, job, ids) = claimed(folder.path(), 40);
        let store = Mutex::new(store);
        for pair in ids.chunks(2) {
            finish(pair[0])(&store.lock().unwrap()).unwrap();
            flush_once(&store, folder.path(), job).unwrap();
            finish(pair[1])(&store.lock().unwrap()).unwrap();
            let unflushed = store.lock().unwrap().unflushed_done(job).unwrap();
            let unflushed: Vec<i64> = unflushed.iter().map(|a| a.id).collect();
            assert_eq!(unflushed, [pair[1]]);
        }
    }

    /// Files recorded done are flushed by the flushing thread once the store
    /// thread is idle, and every one of them when the job stops.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finished_files_are_flushed_beside_the_batches_and_when_the_job_stops() {
        let folder = tempfile::tempdir().unwrap();
        let (store, job, ids) = claimed(folder.path(), 2);
        let store = Arc::new(Mutex::new(store));
        let unflushed = || store.lock().unwrap().unflushed_done(job).unwrap().len();
        let ledger = Ledger::start(store.clone(), job, Some(folder.path().to_path_buf())).unwrap();
        ledger.call_finished(finish(ids[0])).await.unwrap();
        assert_eq!(unflushed(), 1);
        let deadline = Instant::now() + 10 * FLUSH_EVERY;
        while unflushed() > 0 {
            assert!(Instant::now() < deadline, "never flushed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ledger.call_finished(finish(ids[1])).await.unwrap();
        tokio::task::block_in_place(|| drop(ledger));
        assert_eq!(unflushed(), 0);
    }

    /// Requests are applied in the order they were sent, a request waited
    /// for is answered after all sent before it, however many batches they
    /// fill, and the thread stops once the ledger is dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_waited_for_sees_every_update_sent_before_it() {
        let store = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
        let ledger = Ledger::start(store.clone(), 0, None).unwrap();
        let applied = Arc::new(Mutex::new(Vec::new()));
        let sent = 5 * BATCH + 3;
        for n in 0..sent {
            let applied = applied.clone();
            ledger.send_paced(move |_| {
                applied.lock().unwrap().push(n);
                Ok(())
            });
        }
        let seen = {
            let applied = applied.clone();
            ledger
                .call(move |_| Ok(applied.lock().unwrap().len()))
                .await
                .unwrap()
        };
        assert_eq!(seen, sent);
        // Gathered requests, and one waited for among them.
        for n in sent..sent + 10 {
            let applied = applied.clone();
            ledger.send(move |_| {
                applied.lock().unwrap().push(n);
                Ok(())
            });
        }
        let gathered = ledger.call_gathered(|_| Ok(7)).await.unwrap();
        assert_eq!(gathered, 7);
        drop(ledger);
        let applied = applied.lock().unwrap();
        assert_eq!(*applied, (0..sent + 10).collect::<Vec<_>>());
    }
}
