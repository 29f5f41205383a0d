//! The state store as seen by a running job: one thread owns the store while
//! the job runs and applies what the transfers ask for in batches, one
//! transaction per batch (group commit). Thousands of small files then cost a
//! few hundred transactions, not tens of thousands, and no transfer ever
//! blocks a runtime thread on the database.
//!
//! Answers are given only after their batch is committed. A batch that marks
//! files done is committed only after the files are on disk for good: one
//! `syncfs` of the destination's file system on Linux for the whole batch;
//! elsewhere each file is flushed by its copy before it is reported.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::store::Store;
use crate::{Error, Result};

/// Requests at most in one transaction.
const BATCH: usize = 512;

type Answer = Box<dyn FnOnce(Result<()>) + Send>;
type Work = Box<dyn FnOnce(&Store) -> Answer + Send>;

struct Request {
    work: Work,
    /// The request records files as done: flush the file system first.
    durable: bool,
}

/// A handle on the store thread; the thread stops when the last handle is
/// dropped, after applying what was asked.
pub struct Ledger {
    sender: Option<std::sync::mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Ledger {
    /// Starts the thread over `store`. `flush` is a folder on the file system
    /// whose files must be durable before a batch marks them done (`None` for
    /// none, e.g. a bucket).
    pub fn start(store: Arc<Mutex<Store>>, flush: Option<PathBuf>) -> Ledger {
        let (sender, receiver) = std::sync::mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("cairn-ledger".into())
            .spawn(move || {
                while let Ok(first) = receiver.recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match receiver.try_recv() {
                            Ok(more) => batch.push(more),
                            Err(_) => break,
                        }
                    }
                    apply(&store, flush.as_deref(), batch);
                }
            })
            .expect("the state store thread could not start");
        Ledger {
            sender: Some(sender),
            thread: Some(thread),
        }
    }

    /// Runs `f` in the next batch and answers once it is committed.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.ask(f, false).await
    }

    /// As [`Ledger::call`], for a request that records files as done: its batch
    /// is committed only once those files are on disk for good.
    pub async fn call_durable<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.ask(f, true).await
    }

    /// Runs `f` in the next batch without waiting; a failure is logged.
    pub fn send(&self, f: impl FnOnce(&Store) -> Result<()> + Send + 'static) {
        let work: Work = Box::new(move |store| {
            let result = f(store);
            Box::new(move |committed: Result<()>| {
                if let Err(error) = result.and(committed) {
                    tracing::warn!(%error, "a state update failed");
                }
            })
        });
        if let Some(sender) = &self.sender {
            let _ = sender.send(Request {
                work,
                durable: false,
            });
        }
    }

    async fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
        durable: bool,
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
            .send(Request { work, durable })
            .map_err(|_| stopped())?;
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

fn apply(store: &Mutex<Store>, flush: Option<&std::path::Path>, batch: Vec<Request>) {
    let store = store.lock().unwrap_or_else(|e| e.into_inner());
    let durable = batch.iter().any(|r| r.durable);
    let began = store.begin();
    let answers: Vec<Answer> = batch.into_iter().map(|r| (r.work)(&store)).collect();
    let mut committed = began;
    if committed.is_ok()
        && durable
        && let Some(folder) = flush
    {
        committed = flush_file_system(folder);
    }
    committed = committed.and_then(|()| store.commit());
    if committed.is_err() {
        let _ = store.rollback();
    }
    for answer in answers {
        let outcome = match &committed {
            Ok(()) => Ok(()),
            Err(error) => Err(Error::invalid_input(format!(
                "the state store could not save progress: {error}"
            ))),
        };
        answer(outcome);
    }
}

/// Makes every file written under `folder` durable: `syncfs` on Linux (one
/// call for the whole batch). Elsewhere copies flush their own files.
fn flush_file_system(folder: &std::path::Path) -> Result<()> {
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
