//! Running a planned job: a bounded pool of transfers over the job's pending
//! assets, then the STAC write-out.
//!
//! Each worker claims the next pending asset from the state store, skips it if a
//! verified copy is already in place, else copies it with [`AssetCopy`], retrying
//! what may succeed later (with jittered backoff, honouring `Retry-After`) and
//! recording a plain reason for what will not. At most `per_host` transfers
//! talk to one server at a time. A copy is recorded as `verifying` with its
//! checksum before it is moved into place (or uploaded), so a crash at any
//! point leaves either a partial to resume or a verified file that is
//! recognised without fetching it again. When the pool is done, every item
//! whose assets are all verified is written out, then its collection and the
//! root catalog.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::copy::{AssetCopy, verify_existing};
use super::ledger::Ledger;
use crate::checksum::{Algorithm, Checksum};
use crate::destination::{Destination, Linked, SetAside};
use crate::events::{Counters, Event, Sampler};
use crate::fetch::{Fetcher, MinSpeed};
use crate::folder::{Folder, Place};
use crate::layout;
use crate::limit::Limits;
use crate::outage::server;
use crate::provenance::Provenance;
use crate::retry::{self, RetryPolicy};
use crate::rewrite::{self, Mirrored};
use crate::store::{
    AssetRow, AssetState, Counts, EndedAssets, FileRecord, ItemRow, Prior, Store, Tallies, Version,
};
use crate::transfer::copy::{Served, unchanged_at_source};
use crate::{Error, Result};

/// How a job's transfers run.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Transfers at once.
    pub concurrency: usize,
    /// Transfers at once from any one server.
    pub per_host: usize,
    /// Attempts per asset before it is marked failed.
    pub max_attempts: u32,
    /// The first retry delay; later ones grow.
    pub min_delay: Duration,
    /// The longest retry delay.
    pub max_delay: Duration,
    /// Copy only the assets a repair reopened.
    pub repair_only: bool,
    /// Keep the verified bytes of a file whose source changed, beside the
    /// new file (else the new bytes replace them).
    pub keep_versions: bool,
    /// Take the items a sync found gone from the source out of the mirror
    /// (else they stay, marked).
    pub mirror_deletions: bool,
    /// A sync: which of the files verified before stay done is known once
    /// its plan is complete (the others are asked about again), so they are
    /// counted only then, and the count of files done never goes back.
    pub sync: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            concurrency: 8,
            per_host: 6,
            max_attempts: 5,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            repair_only: false,
            keep_versions: true,
            mirror_deletions: false,
            sync: false,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The job's counts at the end.
    pub counts: Counts,
    /// What the run brought, counted at its end (see
    /// [`Store::close_run`]), when it was.
    pub tallies: Option<Tallies>,
    /// Whether the run was interrupted (resumable).
    pub interrupted: bool,
}

/// The items a run took out of the mirror (removed upstream), until their
/// collections' documents no longer link them: the links to leave out, and
/// the item rows and folders, by collection folder.
#[derive(Default)]
struct TakenOut {
    links: BTreeMap<String, HashSet<String>>,
    rows: BTreeMap<String, Vec<i64>>,
    dirs: HashSet<String>,
}

/// Items written out per state-store round trip.
const WRITE_SLICE: usize = 256;

/// How often the totals of a job still being planned are counted again, at
/// most; and how many times the time a count took passes before the next
/// (the state thread spends at most about a twentieth of its time on them).
const TOTALS_EVERY: Duration = Duration::from_secs(1);
const TOTALS_SHARE: u32 = 20;

/// Everything one job's workers share.
struct Shared {
    ledger: Arc<Ledger>,
    /// Becomes true when the plan is complete (`None`: it already was).
    planned: Option<watch::Receiver<bool>>,
    job_id: i64,
    destination: Destination,
    /// The mirror folder, or a bucket's staging folder: where files are written.
    local: Arc<Folder>,
    /// Reads the bytes, signed in as the job does.
    fetcher: Fetcher,
    min_speed: MinSpeed,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// One permit per transfer the job runs at once (its concurrency): a
    /// worker takes one before it claims an asset and holds it while it
    /// fetches or checks the file; into a folder, it lets it go once the
    /// bytes are verified, so that waiting for their record does not hold
    /// up the next file (an upload to a bucket, or keeping a replaced file
    /// aside, is still part of the transfer).
    slots: Arc<Semaphore>,
    /// Why the run stopped early on its own (a full disk), if it did.
    stopped: Mutex<Option<Error>>,
    /// Assets claimed from the store and not yet taken by a worker.
    claimed: tokio::sync::Mutex<VecDeque<AssetRow>>,
    /// When the store last had no asset to claim while the plan was still
    /// being read: the workers that come soon after wait for more rows
    /// rather than each asking again.
    found_none: Mutex<Option<Instant>>,
    /// A worker is claiming the next assets while others take those left.
    claiming: std::sync::atomic::AtomicBool,
    /// Said when that claim has landed in [`Shared::claimed`].
    claim_landed: tokio::sync::Notify,
    /// Items one of whose assets came to an end (verified, or failed for
    /// good) since the item writer last looked: while the job runs, the
    /// writer looks at these alone, not at every item still waiting, so its
    /// cost follows the items that finish. (An item planned with no asset to
    /// copy is found by the pass over every waiting item at the end.)
    ended: Mutex<Vec<i64>>,
    /// Whether this run put a file or an item document into the mirror, or
    /// took something out (see [`Shared::mark_changed`]).
    changed: std::sync::atomic::AtomicBool,
    /// The job's counts and the run's tallies, once the run's changes are
    /// all made: counted while the index is written (the state thread is
    /// free then), rather than after it.
    ending: Mutex<Option<(Counts, Option<Tallies>)>>,
    limits: Limits,
    cancel: CancellationToken,
    counters: Arc<Counters>,
    options: PoolOptions,
    events: Option<mpsc::UnboundedSender<Event>>,
}

impl Shared {
    fn plan_complete(&self) -> bool {
        self.planned
            .as_ref()
            .is_none_or(|planned| *planned.borrow())
    }

    /// The gate that keeps at most `per_host` transfers on `server` (as
    /// [`server`] names it).
    fn host_gate(&self, server: &str) -> Arc<Semaphore> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(gate) = hosts.get(server) {
            return gate.clone();
        }
        hosts
            .entry(server.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.options.per_host.max(1))))
            .clone()
    }

    /// How long to wait before trying `server` again, after its `waits`-th
    /// try in a row found it unreachable; `None` when it is not waited for
    /// (see [`crate::outage`]).
    fn unreachable(&self, server: &str, waits: u32) -> Option<Duration> {
        self.fetcher.outages()?.unreachable(server, waits)
    }

    /// Notes that `server` answered.
    fn reached(&self, server: &str) {
        if let Some(outages) = self.fetcher.outages() {
            outages.answered(server);
        }
    }

    /// Notes that `asset` came to an end, after its record was sent: its item
    /// may now be ready to write (the writer's look is applied after it).
    fn ended(&self, asset: &AssetRow) {
        self.ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(asset.item_row);
    }

    /// Notes, before the run changes the mirror, that it does: its index
    /// and provenance are to be written again at the end, and stay due in
    /// the state file until they are (a run stopped or killed first leaves
    /// them to the next run, which may change nothing itself). The first
    /// note of a run waits until the state file has it.
    async fn mark_changed(&self) -> Result<()> {
        if !self.changed.swap(true, Ordering::AcqRel) {
            let job_id = self.job_id;
            let noted = self
                .ledger
                .call(move |s| s.set_extras_due(job_id, true))
                .await;
            if noted.is_err() {
                self.changed.store(false, Ordering::Release);
            }
            return noted;
        }
        Ok(())
    }

    fn emit(&self, event: Event) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

/// The ledger a job's run records itself in: finished files in a folder are
/// flushed to disk in the background; a bucket needs no flush.
pub async fn open_ledger(
    store: Arc<Mutex<Store>>,
    job_id: i64,
    destination: &Destination,
    (source, claim): (&str, bool),
) -> Result<Arc<Ledger>> {
    let (flush, writer) = match destination {
        Destination::Folder(root) => {
            tokio::fs::create_dir_all(root)
                .await
                .map_err(|source| destination_error(root, source))?;
            // A run that copies holds the folder against other programs.
            let writer = match claim {
                true => Some(take_folder(root).await?),
                false => None,
            };
            (Some(root.clone()), writer)
        }
        Destination::Bucket(_) => (None, None),
    };
    // The root catalog is written first, naming its source, so that a job
    // from another source started meanwhile is refused too (unless only
    // planned: an estimate writes no file there; a missing folder is made).
    if !destination.check_source(source).await? && claim {
        let local = destination.local_folder()?;
        let root = rewrite::root(None, source, None, &[]);
        destination
            .write_json(&local, "catalog.json", &root)
            .await?;
    }
    Ok(Arc::new(
        Ledger::start(store, job_id, flush)?.holding(writer),
    ))
}

/// Takes the mirror folder `root` for this run (see [`crate::writer`]).
async fn take_folder(root: &std::path::Path) -> Result<crate::writer::Writer> {
    let at = root.to_path_buf();
    let taken = tokio::task::spawn_blocking(move || crate::writer::Writer::take(&at))
        .await
        .map_err(|e| Error::invalid_input(format!("the destination could not be opened: {e}")))?
        .map_err(|source| destination_error(root, source))?;
    taken.ok_or_else(|| {
        Error::invalid_input(format!(
            "another program is copying into the mirror folder {} or making a bag of it (another Cairn: the app, a command in another terminal, or one on another computer sharing the drive); two copiers at once would overwrite each other's catalog files. Resume this job once that one has ended",
            root.display()
        ))
    })
}

/// Why a destination folder could not be made, in words.
fn destination_error(root: &std::path::Path, source: std::io::Error) -> Error {
    let path = root.display();
    let why = match source.kind() {
        std::io::ErrorKind::StorageFull => {
            return Error::DiskFull {
                path: path.to_string(),
            };
        }
        std::io::ErrorKind::NotADirectory | std::io::ErrorKind::AlreadyExists => {
            "a file stands where one of its folders should be".to_string()
        }
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            "Cairn is not allowed to write there".to_string()
        }
        _ => source.to_string(),
    };
    Error::invalid_input(format!(
        "the destination folder {path} could not be made: {why}; choose another destination, or fix this and resume the job"
    ))
}

/// Runs job `job_id`'s pending assets into `destination`, then writes the STAC
/// catalog. Progress goes to `events` about four times a second; the end is
/// announced by the runner once it has written the job's state. While
/// `planned` says the plan is not complete, workers wait for more rows
/// instead of stopping.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    ledger: Arc<Ledger>,
    fetcher: &Fetcher,
    job_id: i64,
    destination: Destination,
    limits: Limits,
    options: PoolOptions,
    cancel: CancellationToken,
    events: Option<mpsc::UnboundedSender<Event>>,
    planned: Option<watch::Receiver<bool>>,
) -> Result<Outcome> {
    let local = destination.run_folder()?;
    let shared = Arc::new(Shared {
        ledger,
        planned,
        job_id,
        destination,
        local,
        fetcher: fetcher.clone(),
        min_speed: fetcher.min_speed(),
        hosts: Mutex::new(HashMap::new()),
        slots: Arc::new(Semaphore::new(options.concurrency.max(1))),
        claimed: tokio::sync::Mutex::new(VecDeque::new()),
        found_none: Mutex::new(None),
        claiming: std::sync::atomic::AtomicBool::new(false),
        claim_landed: tokio::sync::Notify::new(),
        ended: Mutex::new(Vec::new()),
        changed: std::sync::atomic::AtomicBool::new(false),
        ending: Mutex::new(None),
        stopped: Mutex::new(None),
        limits,
        cancel: cancel.clone(),
        // The job's outages hear of the bytes that arrive.
        counters: Arc::new(Counters {
            bytes: fetcher.outages().map(|o| o.bytes()).unwrap_or_default(),
            ..Counters::default()
        }),
        options,
        events,
    });
    shared.ledger.call(move |s| s.reconcile_job(job_id)).await?;
    recheck_unflushed(&shared).await?;
    let before = shared.ledger.call(move |s| s.job_counts(job_id)).await?;
    shared.emit(Event::Started {
        job: job_id,
        files_total: before.assets,
        bytes_total: before.bytes_expected,
    });

    let sync = shared.options.sync;
    let sampler = Sampler::new(
        job_id,
        before.bytes_done,
        if sync {
            0
        } else {
            before.done + before.skipped
        },
        before.bytes_expected,
        before.assets,
    );
    let ticker = {
        let shared = shared.clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let handle = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(250));
            // (A sync's base is counted once its plan is complete, so at
            // least once here.)
            let mut totals_final = !sync && shared.plan_complete();
            let mut totals_next = Instant::now() + TOTALS_EVERY;
            loop {
                tokio::select! {
                    _ = stopped.cancelled() => break,
                    _ = interval.tick() => {}
                }
                // While planning goes on, the totals grow; once more when it
                // is complete. The files finished before are counted then
                // for a sync (see `PoolOptions::sync`).
                let complete = shared.plan_complete();
                if !totals_final && (complete || Instant::now() >= totals_next) {
                    let asked = Instant::now();
                    if let Ok((bytes, files, before)) = totals(&shared).await {
                        let before = if sync && !complete { 0 } else { before };
                        sampler.set_totals(bytes, files, before);
                        totals_final = complete;
                    }
                    // Counting reads every row of the job, and holds the
                    // state file meanwhile: for a big job, it is asked less
                    // often (else planning and claiming wait for it).
                    totals_next = Instant::now() + TOTALS_EVERY.max(asked.elapsed() * TOTALS_SHARE);
                }
                shared.emit(Event::Progress(sampler.sample(&shared.counters)));
                if let Some(outages) = shared.fetcher.outages() {
                    outages.look();
                }
                // An update of the state file that failed (its disk full)
                // leaves rows that others wait for: the job stops, in words,
                // rather than wait for ever.
                if let Some(failure) = shared.ledger.failure() {
                    shared
                        .stopped
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert_with(|| failure.error());
                    shared.cancel.cancel();
                }
            }
            (sampler, totals_final)
        });
        (stop, handle)
    };

    // Finished items appear in the mirror while the job runs.
    let item_writer = {
        let shared = shared.clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let handle = tokio::spawn(async move {
            // Items an earlier run finished and did not write are all looked
            // for once; from then on, the items whose assets end.
            let mut every = true;
            loop {
                tokio::select! {
                    _ = stopped.cancelled() => break,
                    _ = tokio::time::sleep(WRITE_ITEMS_EVERY) => {}
                }
                let written = if std::mem::take(&mut every) {
                    write_items(&shared).await
                } else {
                    write_ended_items(&shared).await
                };
                if let Err(error) = written {
                    tracing::warn!(%error, "finished items could not be written yet");
                }
            }
        });
        (stop, handle)
    };

    // However this returns (a failure of the state file returns early),
    // the ticker and the item writer stop, and with them their hold on
    // the job's events: whoever forwards them is not left waiting.
    let _stop_ticker = ticker.0.clone().drop_guard();
    let _stop_item_writer = item_writer.0.clone().drop_guard();

    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..worker_count(&shared.options) {
        let shared = shared.clone();
        workers.spawn(async move { worker(&shared).await });
    }
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                cancel.cancel();
                first_error.get_or_insert(error);
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    // Claimed and never started (the run was stopped): back to the queue.
    let unstarted: Vec<i64> = shared
        .claimed
        .lock()
        .await
        .drain(..)
        .map(|a| a.id)
        .collect();
    if !unstarted.is_empty() {
        shared
            .ledger
            .call(move |s| {
                unstarted
                    .into_iter()
                    .try_for_each(|id| s.release_asset(id, None))
            })
            .await?;
    }
    let (stop, handle) = item_writer;
    stop.cancel();
    let _ = handle.await;
    let (stop, handle) = ticker;
    stop.cancel();
    if let Ok((sampler, totals_final)) = handle.await {
        // (Counted already once the plan was complete.)
        if !totals_final && let Ok((bytes, files, before)) = totals(&shared).await {
            sampler.set_totals(bytes, files, before);
        }
        shared.emit(Event::Progress(sampler.sample(&shared.counters)));
    }
    let fetched = shared.counters.bytes.load(Ordering::Relaxed);
    shared
        .ledger
        .call(move |s| s.count_in_run(job_id, fetched, false))
        .await?;
    if let Some(error) = first_error {
        return Err(error);
    }
    let stopped = shared
        .stopped
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(error) = stopped {
        // What is finished is written out if it fits; the job continues later.
        let _ = write_out(&shared).await;
        return Err(error);
    }
    write_out(&shared).await?;
    shared.ledger.take_error()?;
    let ending = shared
        .ending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let (counts, tallies) = match ending {
        Some(ending) => ending,
        None => (
            shared.ledger.call(move |s| s.job_counts(job_id)).await?,
            None,
        ),
    };
    let interrupted = cancel.is_cancelled();
    Ok(Outcome {
        counts,
        tallies,
        interrupted,
    })
}

/// Files marked done after the job's last flush to disk may not have reached
/// it (the machine stopped): each is checked against what was verified, and
/// fetched again if it does not match.
async fn recheck_unflushed(shared: &Shared) -> Result<()> {
    if shared.destination.is_bucket() {
        return Ok(());
    }
    let local = &shared.local;
    let job_id = shared.job_id;
    let suspects = shared
        .ledger
        .call(move |s| s.unflushed_done(job_id))
        .await?;
    let damaged: Vec<i64> = futures::stream::iter(suspects)
        .map(|asset| async move {
            let proof = Checksum::parse(&asset.checksum).ok();
            let intact = match (proof, local.place(&asset.path, false)) {
                (Some(proof), Ok(place)) => verify_existing(&place, Some(asset.size), Some(proof))
                    .await
                    .is_some(),
                _ => false,
            };
            (!intact).then_some(asset.id)
        })
        .buffer_unordered(4)
        .filter_map(std::future::ready)
        .collect()
        .await;
    if !damaged.is_empty() {
        tracing::warn!(
            count = damaged.len(),
            "files finished just before a stop are fetched again"
        );
        shared
            .ledger
            .call(move |s| damaged.into_iter().try_for_each(|id| s.reopen_asset(id)))
            .await?;
    }
    Ok(())
}

/// Workers beyond the job's concurrency: a file whose bytes are verified
/// waits in one for its record (gathered with others into one transaction)
/// and its rename, while the transfers go on with the next files. A worker
/// that waits for a permit holds no asset.
const SETTLING: usize = 64;

/// How many workers a run has: one per transfer at once, and those where
/// verified files wait for their record ([`SETTLING`]). (A bucket's file
/// uploads in the worker that fetched it, still holding its transfer's
/// permit: uploads are transfers too.)
fn worker_count(options: &PoolOptions) -> usize {
    options.concurrency.max(1) + SETTLING
}

async fn worker(shared: &Shared) -> Result<()> {
    while !shared.cancel.is_cancelled() {
        // A transfer's permit first: only a worker about to transfer an
        // asset claims one.
        let slot = tokio::select! {
            _ = shared.cancel.cancelled() => return Ok(()),
            slot = shared.slots.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else { return Ok(()) };
        // Looked at before asking the store: once the plan is complete,
        // every row of it is committed, and finding none means the end.
        let complete = shared.plan_complete();
        let Some(asset) = next_asset(shared, complete).await? else {
            drop(slot);
            if complete {
                return Ok(());
            }
            // The plan is still being read: more rows will come.
            tokio::select! {
                _ = shared.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(PLAN_WAIT) => continue,
            }
        };
        copy_one(shared, asset, slot).await?;
    }
    Ok(())
}

/// The job's bytes and assets in all, and the assets finished before this
/// run (those finished now, less those this run finished and recorded, both
/// read in one turn of the store's thread).
async fn totals(shared: &Shared) -> Result<(u64, u64, u64)> {
    let (job_id, counters) = (shared.job_id, shared.counters.clone());
    shared
        .ledger
        .call(move |s| {
            let counts = s.job_counts(job_id)?;
            let recorded = counters.files_recorded.load(Ordering::Relaxed);
            let finished = counts.done + counts.skipped;
            Ok((
                counts.bytes_expected,
                counts.assets,
                finished.saturating_sub(recorded),
            ))
        })
        .await
}

/// How often the items whose assets all ended are written while the job
/// runs: often enough that few are left for the end of the run, where
/// their writing adds to its time (the index waits for them).
const WRITE_ITEMS_EVERY: Duration = Duration::from_millis(250);

/// How long the workers wait for more rows of a plan being read before
/// they ask the store again.
const PLAN_WAIT: Duration = Duration::from_millis(100);

/// The next claimed asset; claims a few at a time from the store. While
/// the plan is not `complete`, a store found empty a moment ago is not
/// asked again.
///
/// The next few are claimed before the last ones are taken: a worker that
/// takes one of the last (fewer left than transfers at once) claims more
/// before it starts its own transfer, while the other workers go on with
/// those left. Claiming waits for the state thread's batch in progress, a
/// few milliseconds; claimed only once none were left, every transfer
/// waited for it (at 7,000 files a second, a third of a run's time).
async fn next_asset(shared: &Shared, complete: bool) -> Result<Option<AssetRow>> {
    let ahead = shared.options.concurrency.max(1);
    loop {
        let mut claimed = shared.claimed.lock().await;
        if let Some(asset) = claimed.pop_front() {
            // Not when the store had none a moment ago.
            let few = claimed.len() < ahead && !found_none_lately(shared);
            drop(claimed);
            if few && !shared.claiming.swap(true, Ordering::AcqRel) {
                let claiming = Claiming(shared);
                let more = claim(shared).await;
                // The claim ends once its assets are in hand (a worker
                // that finds none left looks at both under this lock).
                let mut claimed = shared.claimed.lock().await;
                let landed = more.map(|more| {
                    found_none_if(shared, more.is_empty());
                    claimed.extend(more);
                });
                drop(claiming);
                drop(claimed);
                if let Err(error) = landed {
                    // Released with the others never started.
                    shared.claimed.lock().await.push_front(asset);
                    return Err(error);
                }
            }
            return Ok(Some(asset));
        }
        // None left in hand while a worker claims more: those are waited
        // for (they may be the job's last).
        let landed = shared.claim_landed.notified();
        tokio::pin!(landed);
        landed.as_mut().enable();
        if shared.claiming.load(Ordering::Acquire) {
            drop(claimed);
            landed.await;
            continue;
        }
        if !complete && found_none_lately(shared) {
            return Ok(None);
        }
        let more = claim(shared).await?;
        found_none_if(shared, more.is_empty());
        claimed.extend(more);
        return Ok(claimed.pop_front());
    }
}

/// A claim ahead under way: when it ends (or is dropped unfinished), the
/// workers waiting for it are told.
struct Claiming<'a>(&'a Shared);

impl Drop for Claiming<'_> {
    fn drop(&mut self) {
        self.0.claiming.store(false, Ordering::Release);
        self.0.claim_landed.notify_waiters();
    }
}

/// Claims the next few pending assets of the job from the store.
async fn claim(shared: &Shared) -> Result<Vec<AssetRow>> {
    let (job_id, count) = (shared.job_id, shared.options.concurrency.max(1) * 4);
    let repairs = shared.options.repair_only;
    shared
        .ledger
        .call(move |s| match repairs {
            true => s.claim_repairs(job_id, count),
            false => s.claim_assets(job_id, count),
        })
        .await
}

/// Whether the store had no asset to claim a moment ago.
fn found_none_lately(shared: &Shared) -> bool {
    let found_none = *shared.found_none.lock().unwrap_or_else(|e| e.into_inner());
    found_none.is_some_and(|at| at.elapsed() < PLAN_WAIT)
}

/// Notes when the store last had no asset to claim (see
/// [`Shared::found_none`]).
fn found_none_if(shared: &Shared, none: bool) {
    *shared.found_none.lock().unwrap_or_else(|e| e.into_inner()) = none.then(Instant::now);
}

/// Files up to this size are fetched again whole after a crash rather than
/// resumed: the validator of their download is not recorded (a statement
/// per file; over HTTP such a body is gathered in memory and leaves no
/// partial file anyway), unless the row holds another one. A partial file
/// found without its validator is not resumed, as when a crash came before
/// the record.
const WORTH_RESUMING: u64 = 256 * 1024;

/// Copies one claimed asset, with retries; records the outcome. Errors only for
/// failures of the state store itself.
async fn copy_one(shared: &Shared, asset: AssetRow, slot: OwnedSemaphorePermit) -> Result<()> {
    // A repair must bring back the bytes verified before.
    let expected_checksum = asset
        .expected_checksum
        .as_deref()
        .or(asset.repair_checksum.as_deref())
        .and_then(|c| Checksum::parse(c).ok());
    // Already there and verified: nothing to fetch. The proof is the catalog's
    // checksum, or the one recorded when this job verified the file just before
    // a crash. A size alone does not prove a file: without a checksum it is
    // fetched again and replaced only once the new copy is verified.
    let recorded = asset.verified.as_ref();
    let proof = expected_checksum
        .clone()
        .or_else(|| recorded.and_then(|(_, c)| Checksum::parse(c).ok()));
    // The file's folder, opened once for everything below.
    let place = match shared.local.place(&asset.path, true) {
        Ok(place) => Arc::new(place),
        Err(error) => {
            return match Error::io(&shared.local.display(&asset.path), error) {
                error @ Error::DiskFull { .. } => stop_job(shared, &asset, error).await,
                error => give_up(shared, &asset, &error.reason()).await,
            };
        }
    };
    // (A folder made just now holds nothing yet.)
    let present = !place.is_new() && place.has_file(place.name());
    if let Some(proof) = proof
        && present
        && let Some(verified) = verify_existing(
            &place,
            asset.expected_size.or(recorded.map(|(size, _)| *size)),
            Some(proof),
        )
        .await
    {
        let state = if recorded.is_some() || shared.destination.is_bucket() {
            AssetState::Done
        } else {
            AssetState::Skipped
        };
        let checksum = recorded_checksum(&asset, &verified.sha256);
        let (mtime, changed) = stamp(shared, &place);
        let record = FileRecord {
            provenance: None,
            mtime,
            changed,
        };
        return publish(shared, &asset, state, (verified.size, &checksum), record).await;
    }
    // A sync asks the server whether a file it verified before changed:
    // one HEAD request, and nothing fetched when it did not.
    let recheck = asset.prior.as_ref().filter(|p| p.recheck);
    if let Some(prior) = recheck
        && (present || shared.destination.is_bucket())
        && let Ok(url) = Url::parse(&asset.href)
    {
        let served = Served {
            etag: prior.etag.clone(),
            last_modified: prior.last_modified.clone(),
            size: prior.size,
        };
        let gate = shared.host_gate(&server(&url));
        let permit = tokio::select! {
            _ = shared.cancel.cancelled() => return release(shared, &asset).await,
            permit = gate.acquire_owned() => permit,
        };
        let unchanged = unchanged_at_source(&shared.fetcher, &url, &served, &shared.cancel).await;
        drop(permit);
        if unchanged && keep_as_it_is(shared, &asset).await? {
            return Ok(());
        }
    }
    // A file already in the asset's place that nothing proves is this asset
    // is replaced only if a job of this mirror put it there: someone else's
    // file is never overwritten.
    // (A file a repair fetches again was put there by this very asset, one
    // a sync asks about was verified by it, and so were the bytes of an
    // asset whose source changed: they are kept aside if they are still
    // those verified.)
    if recorded.is_none() && present && asset.repair_checksum.is_none() && asset.prior.is_none() {
        let (id, path) = (asset.id, asset.path.clone());
        let ours = shared
            .ledger
            .call(move |s| s.placed_by_a_job(id, &path))
            .await?;
        if !ours && !mirror_vouches(shared, &asset, &place).await {
            let reason = format!(
                "a file Cairn did not copy is already at {}; it is left as it is. Move it away (or choose an empty folder), then resume the job",
                shared.local.display(&asset.path).display()
            );
            return give_up(shared, &asset, &reason).await;
        }
    }
    let url = match Url::parse(&asset.href) {
        Ok(url) => url,
        Err(e) => {
            return give_up(shared, &asset, &format!("its address is not valid ({e})")).await;
        }
    };
    let host = server(&url);
    let gate = shared.host_gate(&host);
    // Only an answer over the network is news of the network.
    let remote = matches!(url.scheme(), "http" | "https");
    let mut copy = AssetCopy {
        url,
        place,
        expected_size: asset.expected_size,
        expected_checksum,
        validator: asset.validator.clone(),
        // The ledger flushes a folder's file system before recording files as
        // done (Linux); elsewhere each copy flushes its own file. A staged file
        // counts only once uploaded.
        flush: !cfg!(target_os = "linux") && !shared.destination.is_bucket(),
        media_type: asset.media_type.clone(),
        min_speed: shared.min_speed,
    };
    // Attempts count across runs (a resumed job goes on counting); the
    // waits between them follow the one retry policy.
    let mut backoff = RetryPolicy {
        max_retries: shared.options.max_attempts as usize,
        min_delay: shared.options.min_delay,
        max_delay: shared.options.max_delay,
        ..RetryPolicy::default()
    }
    .backoff();
    let mut attempts = asset.attempts;
    // The validator the asset's row holds.
    let mut recorded = asset.validator.clone();
    // Tries in a row that found the server unreachable.
    let mut waits = 0;
    loop {
        let permit = tokio::select! {
            _ = shared.cancel.cancelled() => return release(shared, &asset).await,
            permit = gate.clone().acquire_owned() => permit,
        };
        // The validator is stored as soon as the server answers, before the
        // body: a crash mid-body can then resume the partial file.
        let mut validator = None;
        let result = copy
            .run(
                &shared.fetcher,
                &shared.limits,
                &shared.cancel,
                &shared.counters.bytes,
                |started| {
                    if remote {
                        shared.reached(&host);
                    }
                    // Not for a small file, unless the row holds another
                    // validator: no partial is left under a stale one.
                    if started.validator != recorded
                        && (recorded.is_some()
                            || started.total.is_none_or(|total| total > WORTH_RESUMING))
                    {
                        let (id, value) = (asset.id, started.validator.clone());
                        shared
                            .ledger
                            .send(move |s| s.set_asset_validator(id, value.as_deref()));
                        recorded.clone_from(&started.validator);
                    }
                    validator = Some(started.validator.clone());
                },
            )
            .await;
        drop(permit);
        if let Some(validator) = validator {
            copy.validator = validator;
        }
        attempts += 1;
        // A transfer that started was heard from then; a status the server
        // answered with is news of it too.
        if remote && result.as_ref().is_err_and(Error::is_answer) {
            shared.reached(&host);
        }
        let error = match result {
            Ok(copied) => {
                let checksum = recorded_checksum(&asset, &copied.verified.sha256);
                let size = copied.verified.size;
                // New bytes for a file verified before: the old ones are
                // kept beside it, and its item is written again.
                let replaced = asset.prior.as_ref().filter(|p| p.checksum != checksum);
                // The next transfer may start: what is left is to record
                // the file and put it in place (an upload, for a bucket,
                // and keeping aside a replaced file count as transfers).
                let apart = replaced.is_none() && !shared.destination.is_bucket();
                if apart {
                    drop(slot);
                }
                // Without a checksum from the catalog, the verified one is
                // recorded before the file takes its place: after a crash the
                // file is recognised by it, not fetched again. Apart from
                // the transfers, the record waits for others to share its
                // transaction.
                if copy.expected_checksum.is_none() {
                    let (id, recorded) = (asset.id, checksum.clone());
                    let record = move |s: &Store| s.set_asset_verifying(id, size, &recorded);
                    match apart {
                        true => shared.ledger.call_gathered(record).await?,
                        false => shared.ledger.call(record).await?,
                    }
                }
                if let Some(prior) = replaced {
                    if shared.options.keep_versions
                        && let Err(error) = set_aside(shared, &asset, prior, &copy.place).await
                    {
                        return give_up(shared, &asset, &error.reason()).await;
                    }
                    let (job, row) = (shared.job_id, asset.item_row);
                    shared
                        .ledger
                        .call(move |s| {
                            s.reopen_item(row)?;
                            s.count_in_run(job, 0, true)
                        })
                        .await?;
                }
                shared.mark_changed().await?;
                if let Err(error) = copy.commit().await {
                    return give_up(shared, &asset, &error.reason()).await;
                }
                let (mtime, changed) = stamp(shared, &copy.place);
                let record = FileRecord {
                    provenance: copied.provenance.as_ref().map(Provenance::to_json),
                    mtime,
                    changed,
                };
                return publish(shared, &asset, AssetState::Done, (size, &checksum), record).await;
            }
            Err(Error::Cancelled) => return release(shared, &asset).await,
            Err(error @ Error::DiskFull { .. }) => return stop_job(shared, &asset, error).await,
            Err(error) => error,
        };
        // A server that cannot be reached while the job hears from no
        // server (the computer is offline, or the catalog's one server is
        // down) is waited for, and these tries count no attempt (see
        // `crate::outage`).
        if !error.is_unreachable() {
            waits = 0;
        } else if let Some(delay) = shared.unreachable(&host, waits) {
            shared.fetcher.ask_whether_online(&host);
            attempts -= 1;
            waits += 1;
            if retry::pause(&shared.cancel, delay).await.is_err() {
                return release(shared, &asset).await;
            }
            continue;
        }
        // A verification failure may be a passing corruption: it counts as an
        // attempt and is tried again, like a busy server.
        let again = (error.is_retryable() || matches!(error, Error::Verification { .. }))
            && attempts < shared.options.max_attempts;
        let delay = match again {
            true => backoff.after(&error),
            false => None,
        };
        let Some(delay) = delay else {
            return give_up(shared, &asset, &error.reason()).await;
        };
        let (id, reason) = (asset.id, error.reason());
        shared.ledger.send(move |s| s.note_attempt(id, &reason));
        if retry::pause(&shared.cancel, delay).await.is_err() {
            return release(shared, &asset).await;
        }
    }
}

/// Makes a verified local file part of the mirror (an upload, for a bucket)
/// and marks its row.
async fn publish(
    shared: &Shared,
    asset: &AssetRow,
    state: AssetState,
    (size, checksum): (u64, &str),
    record: FileRecord,
) -> Result<()> {
    // Publishing into a folder is already done (the file is in place) and must
    // be recorded even when the job is stopping; an upload stops between its
    // parts, and is abandoned (never left open in the store).
    let verified = Checksum::parse(checksum).ok();
    shared.mark_changed().await?;
    let published = shared
        .destination
        .publish(
            &shared.local,
            &asset.path,
            verified.as_ref(),
            &shared.cancel,
        )
        .await;
    if matches!(published, Err(Error::Cancelled)) {
        return release(shared, asset).await;
    }
    if let Err(error) = published {
        if matches!(error, Error::Verification { .. }) {
            // Damaged where it waited: fetched again when the job resumes.
            shared
                .destination
                .discard_staged(&shared.local, &asset.path);
        }
        return give_up(shared, asset, &error.reason()).await;
    }
    let (id, checksum, counters) = (asset.id, checksum.to_string(), shared.counters.clone());
    let finish = move |s: &Store| {
        s.finish_asset_with(id, state, size, &checksum, &record)?;
        counters.files_recorded.fetch_add(1, Ordering::Relaxed);
        Ok(())
    };
    if shared.destination.is_bucket() {
        // The staged copy is the proof until the upload is recorded.
        shared.ledger.call_finished(finish).await?;
        shared
            .destination
            .discard_staged(&shared.local, &asset.path);
    } else {
        // The file in place is its own proof (by the catalog's checksum or the
        // one recorded before the rename): no need to wait for the record.
        shared.ledger.send_finished(finish);
    }
    shared.ended(asset);
    shared.counters.files.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The modification and change times of a verified file in a mirror
/// folder, recorded so that an export can tell later that it has not
/// changed (a bucket's staged copy is not the mirror's file).
fn stamp(shared: &Shared, place: &Place) -> (Option<i64>, Option<i64>) {
    if shared.destination.is_bucket() {
        return (None, None);
    }
    place
        .stamp_changed(place.name())
        .map_or((None, None), |(_, mtime, changed)| (Some(mtime), changed))
}

/// Whether the mirror's own item document (written by an earlier run of this
/// source, perhaps with another state file) vouches for the file in place:
/// it names the file for this asset, and the file matches its checksum.
async fn mirror_vouches(shared: &Shared, asset: &AssetRow, place: &Place) -> bool {
    if shared.destination.is_bucket() {
        return false;
    }
    let Some((dir, file)) = asset.path.rsplit_once('/') else {
        return false;
    };
    let Ok(bytes) = shared.local.read(&layout::item_document(dir)) else {
        return false;
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    let Some(entry) = doc.get("assets").and_then(|a| a.get(&asset.key)) else {
        return false;
    };
    let names_it = entry.get("href").and_then(|h| h.as_str()) == Some(&format!("./{file}"));
    let checksum = entry
        .get("file:checksum")
        .and_then(|c| c.as_str())
        .and_then(|c| Checksum::parse(c).ok());
    match checksum {
        Some(checksum) if names_it => verify_existing(
            place,
            entry.get("file:size").and_then(|s| s.as_u64()),
            Some(checksum),
        )
        .await
        .is_some(),
        _ => false,
    }
}

/// No other file would fit either: the whole job stops, resumable, and
/// `asset` goes back in the queue.
async fn stop_job(shared: &Shared, asset: &AssetRow, error: Error) -> Result<()> {
    shared
        .stopped
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert(error);
    shared.cancel.cancel();
    release(shared, asset).await
}

/// Puts an interrupted asset back in the queue; its partial file stays.
async fn release(shared: &Shared, asset: &AssetRow) -> Result<()> {
    let id = asset.id;
    // What the partial download holds is kept, and said.
    let kept = shared
        .local
        .own_len(&crate::transfer::copy::part_path(&asset.path))
        .unwrap_or(0);
    shared
        .ledger
        .call(move |s| s.release_asset(id, Some(kept)))
        .await
}

/// A file a sync asked about is as it was at the source: it stays, verified
/// as before (should the plan have changed the asset meanwhile, the new
/// source is then fetched and compared with it). Returns whether it stays.
async fn keep_as_it_is(shared: &Shared, asset: &AssetRow) -> Result<bool> {
    let (id, href, path) = (asset.id, asset.href.clone(), asset.path.clone());
    let counters = shared.counters.clone();
    let kept = shared
        .ledger
        .call_finished(move |s| {
            let kept = s.keep_prior(id, &href, &path)?;
            if kept {
                counters.files_recorded.fetch_add(1, Ordering::Relaxed);
            }
            Ok(kept)
        })
        .await?;
    if kept {
        shared.ended(asset);
        shared.counters.files.fetch_add(1, Ordering::Relaxed);
    }
    Ok(kept)
}

/// Moves the verified bytes `prior` of `asset` out of the new copy's way,
/// to `<name>.previous-<when><extension>` beside it, and records them. Bytes
/// that no longer match what was verified (damaged since) are not a
/// version: the new copy replaces them.
async fn set_aside(shared: &Shared, asset: &AssetRow, prior: &Prior, place: &Place) -> Result<()> {
    if !shared.destination.is_bucket() {
        let proof = Checksum::parse(&prior.checksum).ok();
        if proof.is_none()
            || verify_existing(place, Some(prior.size), proof)
                .await
                .is_none()
        {
            return Ok(());
        }
    }
    let when = chrono::Utc::now().format("%Y-%m-%dT%H%M%SZ").to_string();
    let (dir, name) = asset.path.rsplit_once('/').unwrap_or(("", &asset.path));
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if dot > 0 => name.split_at(dot),
        _ => (name, ""),
    };
    let beside = |name: String| match dir {
        "" => name,
        dir => format!("{dir}/{name}"),
    };
    let named = |n: u32| {
        beside(match n {
            1 => format!("{stem}.previous-{when}{extension}"),
            n => format!("{stem}.previous-{when}-{n}{extension}"),
        })
    };
    // Nor a name whose partial download is beside it.
    let partial = |kept: &str| {
        let name = kept.rsplit('/').next().unwrap_or(kept);
        place.has_file(&crate::transfer::copy::part_path(name))
    };
    let Some(kept) = keep_aside(shared, &asset.path, prior.size, named, partial).await? else {
        return Ok(());
    };
    let (id, size, checksum) = (asset.id, prior.size, prior.checksum.clone());
    shared
        .ledger
        .call(move |s| s.keep_version(id, &kept, size, &checksum))
        .await
}

/// Keeps the mirror's file at `path` (`size` bytes, for a bucket) aside
/// under the first of `named(1)`, `named(2)`, ... that nothing has (nor
/// `taken` says is taken); should another job take that name at the same
/// moment, the next one. Returns the name, or `None` when the file was not
/// there.
async fn keep_aside(
    shared: &Shared,
    path: &str,
    size: u64,
    named: impl Fn(u32) -> String,
    taken: impl Fn(&str) -> bool,
) -> Result<Option<String>> {
    let (mut n, mut lost) = (1, 0);
    loop {
        let kept = named(n);
        n += 1;
        if shared.destination.has_file(&shared.local, &kept).await || taken(&kept) {
            continue;
        }
        match shared
            .destination
            .set_aside(&shared.local, path, &kept, size)
            .await?
        {
            SetAside::Kept => return Ok(Some(kept)),
            SetAside::Gone => return Ok(None),
            SetAside::Taken => {
                lost += 1;
                if lost == TAKEN_AT_ONCE {
                    return Err(all_taken(path));
                }
            }
        }
    }
}

/// How many names found taken at the moment of the move (after a look
/// found them free) end the search for one to keep a file aside under.
const TAKEN_AT_ONCE: u32 = 16;

/// The error when every name tried to keep `path` aside was taken as it
/// was tried.
fn all_taken(path: &str) -> Error {
    Error::invalid_input(format!(
        "{path} could not be kept aside: each name Cairn chose for it was taken at the moment it moved the file (another program may be writing into the mirror); run the job again"
    ))
}

async fn give_up(shared: &Shared, asset: &AssetRow, reason: &str) -> Result<()> {
    // A file a sync could not fetch to compare stays as it was verified
    // (if it is still in its place: not after it was set aside).
    let still_there = shared.destination.is_bucket() || shared.local.has_file(&asset.path);
    if let Some(prior) = asset.prior.as_ref().filter(|p| p.recheck && still_there) {
        let (id, size, checksum) = (asset.id, prior.size, prior.checksum.clone());
        let counters = shared.counters.clone();
        shared
            .ledger
            .call(move |s| {
                s.finish_asset_with(
                    id,
                    AssetState::Done,
                    size,
                    &checksum,
                    &FileRecord::default(),
                )?;
                counters.files_recorded.fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
            .await?;
        shared.ended(asset);
        shared.counters.files.fetch_add(1, Ordering::Relaxed);
        shared.emit(Event::Problem {
            job: shared.job_id,
            href: crate::provenance::redact(&asset.href),
            reason: format!(
                "it could not be fetched to see whether it changed at the source ({reason}); the copy in the mirror is kept as it was verified, and the next sync asks again"
            ),
        });
        return Ok(());
    }
    let (id, recorded) = (asset.id, reason.to_string());
    let requeued = shared
        .ledger
        .call(move |s| s.fail_attempt(id, &recorded, true))
        .await?;
    shared.ended(asset);
    if requeued {
        // Its source changed meanwhile: the new one is tried instead.
        return Ok(());
    }
    shared.counters.failed.fetch_add(1, Ordering::Relaxed);
    // Said (and logged) without credentials or a signature.
    shared.emit(Event::AssetFailed {
        job: shared.job_id,
        href: crate::provenance::redact(&asset.href),
        reason: reason.to_string(),
    });
    Ok(())
}

/// The catalog's own checksum when it gave one (it was verified), else sha2-256.
fn recorded_checksum(asset: &AssetRow, sha256: &Checksum) -> String {
    match &asset.expected_checksum {
        Some(expected)
            if Checksum::parse(expected).is_ok_and(|c| c.algorithm != Algorithm::Sha2_256) =>
        {
            expected.clone()
        }
        _ => sha256.to_hex(),
    }
}

/// Writes every finished item, then the collections and the root catalog.
async fn write_out(shared: &Shared) -> Result<()> {
    let job_id = shared.job_id;
    let job = shared
        .ledger
        .call(move |s| {
            s.job(job_id)?
                .ok_or_else(|| Error::invalid_input(format!("there is no job {job_id}")))
        })
        .await?;
    let TakenOut {
        links: taken_out,
        rows: mut taken_out_rows,
        dirs: taken_out_dirs,
    } = if shared.options.mirror_deletions
        && shared.plan_complete()
        && !shared.cancel.is_cancelled()
    {
        take_out_removed(shared).await?
    } else {
        TakenOut::default()
    };
    write_items(shared).await?;
    let dest = &shared.destination;
    let source_url = job.source_url.clone();
    // Every collection folder holding written items of this job, with the
    // links to them: gathered in one pass, kept as text.
    let (written, collections, title) = shared
        .ledger
        .call(move |s| {
            let title = s.source(&source_url)?.and_then(|s| s.title);
            // Counted first, so that each collection's links take the room
            // they need and no more (a growing buffer may take twice).
            let mut sizes: BTreeMap<String, (usize, usize)> = BTreeMap::new();
            s.each_written_dir(job_id, |item_dir| {
                if taken_out_dirs.contains(item_dir) {
                    return;
                }
                if let Some((dir, name)) = item_dir.split_once('/') {
                    let size = match sizes.get_mut(dir) {
                        Some(size) => size,
                        None => sizes.entry(dir.to_string()).or_default(),
                    };
                    *size = (size.0 + 1, size.1 + item_href_len(name));
                }
            })?;
            let mut written: BTreeMap<String, rewrite::Hrefs> = sizes
                .into_iter()
                .map(|(dir, (count, bytes))| (dir, rewrite::Hrefs::with_capacity(count, bytes)))
                .collect();
            s.each_written_dir(job_id, |item_dir| {
                if let Some((dir, name)) = item_dir.split_once('/')
                    && !taken_out_dirs.contains(item_dir)
                    && let Some(hrefs) = written.get_mut(dir)
                {
                    hrefs.push_parts(&["./", name, "/", name, ".json"]);
                }
            })?;
            Ok((written, s.job_collections(job_id)?, title))
        })
        .await?;
    let mut written = written;
    for dir in taken_out.keys() {
        written.entry(dir.clone()).or_default();
    }
    let dirs: Vec<String> = written.keys().cloned().collect();
    let none = HashSet::new();
    // A collection left as it was: the index made now lacks what it would
    // link, so the index stays due.
    let mut left_as_it_was = false;
    for (dir, mut links) in written {
        let (source, base) = collections
            .iter()
            .find(|c| c.dir == dir)
            .map(|c| (c.document.clone(), url::Url::parse(&c.href).ok()))
            .unwrap_or_else(|| (rewrite::stand_in_collection(&dir), None));
        let path = format!("{dir}/collection.json");
        let left_out = taken_out.get(&dir).unwrap_or(&none);
        match dest
            .add_linked(&shared.local, &path, &mut links, left_out)
            .await
        {
            Linked::Absent | Linked::Read => {}
            Linked::Damaged { why, size } => {
                if !keep_damaged(shared, &path, &why, size).await {
                    left_as_it_was = true;
                    continue;
                }
            }
            // Never written over unread: it may link items of other jobs.
            Linked::Unreadable(why) => {
                say_problem(
                    shared,
                    &path,
                    format!(
                        "{path} in the mirror could not be read ({why}), so it is left as it is and does not link this job's new items yet: make it readable (or move it away), then run the job again"
                    ),
                );
                left_as_it_was = true;
                continue;
            }
        }
        dest.write_json(
            &shared.local,
            &path,
            &rewrite::collection(&source, base.as_ref(), links),
        )
        .await?;
        // The collection no longer links the items taken out of it: they
        // can be forgotten. (A collection left as it was keeps their rows,
        // and the next run takes their links out.)
        if let Some(rows) = taken_out_rows.remove(&dir) {
            shared
                .ledger
                .call(move |s| {
                    rows.into_iter()
                        .try_for_each(|row| s.forget_item(row).map(drop))
                })
                .await?;
        }
    }
    let existing = dest.read_json(&shared.local, "catalog.json").await;
    let mut root = rewrite::root(existing.as_ref(), &job.source_url, title.as_deref(), &dirs);
    // The index and the provenance keep their links until they are written
    // again.
    let (linked_index, linked_provenance) = rewrite::links_index(existing.as_ref());
    // A link to a file that is gone (removed by hand) is none: the file is
    // written again.
    let had_index = linked_index && dest.has_file(&shared.local, rewrite::INDEX).await;
    let had_provenance =
        linked_provenance && dest.has_file(&shared.local, rewrite::PROVENANCE).await;
    rewrite::link_index(&mut root, (had_index, had_provenance));
    // The root first, so that the index finds every collection.
    dest.write_json(&shared.local, "catalog.json", &root)
        .await?;
    // They wait for the end of a run, and are written again only when the
    // run changed the mirror, or an earlier one did and was stopped before
    // they were written again (the state file says so), or was stopped
    // while it wrote them (what it left half-made says so).
    let half_made = |name: &str| {
        !shared.destination.is_bucket() && shared.local.has_file(&format!("{name}.tmp"))
    };
    let due = shared.ledger.call(move |s| s.extras_due(job_id)).await?;
    let changed = shared.changed.load(Ordering::Relaxed)
        || due
        || half_made(rewrite::INDEX)
        || half_made(rewrite::PROVENANCE);
    if shared.cancel.is_cancelled() || (!changed && had_index && had_provenance) {
        return Ok(());
    }
    // They are extras: a failure is said in the job's log, and the copy
    // stands.
    // The two are made side by side: the provenance from the state file
    // (on its thread), the index from the mirror's item documents.
    let (provenance, indexed, ending) = tokio::join!(
        write_provenance(shared, job.destination.clone()),
        crate::index::write(dest, &shared.local, &shared.cancel),
        shared
            .ledger
            .call(move |s| Ok((s.job_counts(job_id)?, s.tally_run(job_id)?)))
    );
    if let Ok(ending) = ending {
        *shared.ending.lock().unwrap_or_else(|e| e.into_inner()) = Some(ending);
    }
    let provenance_written = provenance.is_ok();
    let provenance = match provenance {
        Ok(()) => true,
        Err(error) => {
            say_problem(
                shared,
                rewrite::PROVENANCE,
                format!(
                    "{} could not be written: {}",
                    rewrite::PROVENANCE,
                    error.reason()
                ),
            );
            had_provenance
        }
    };
    let indexed = match indexed {
        Ok(indexed) => indexed,
        Err(Error::Cancelled) => return Ok(()),
        Err(error) => {
            say_problem(
                shared,
                rewrite::INDEX,
                format!(
                    "{} could not be written: {}",
                    rewrite::INDEX,
                    error.reason()
                ),
            );
            rewrite::link_index(&mut root, (had_index, provenance));
            return dest.write_json(&shared.local, "catalog.json", &root).await;
        }
    };
    if indexed.left_out_count > 0 {
        let named: Vec<String> = indexed
            .left_out
            .iter()
            .map(|(path, why)| format!("{path} ({why})"))
            .collect();
        let text = format!(
            "{} {} left out of {} (they are in the catalog): {}{}",
            crate::words::plural(indexed.left_out_count, "item"),
            if indexed.left_out_count == 1 {
                "is"
            } else {
                "are"
            },
            rewrite::INDEX,
            named.join("; "),
            if indexed.left_out_count > named.len() as u64 {
                "; ..."
            } else {
                ""
            }
        );
        say_problem(shared, rewrite::INDEX, text);
    }
    rewrite::link_index(&mut root, (indexed.items > 0, provenance));
    dest.write_json(&shared.local, "catalog.json", &root)
        .await?;
    if provenance_written && !left_as_it_was && !indexed.incomplete {
        shared
            .ledger
            .call(move |s| s.set_extras_due(job_id, false))
            .await?;
    }
    Ok(())
}

/// Keeps aside the collection document at `path` that is not one Cairn
/// can read (cut short, edited into something else), under a name of its
/// own beside it, so that a new one can take its place, and says so in the
/// job's log: the new one links the items of this job, and those of other
/// jobs of the mirror when they run again. False when it could not be kept:
/// it is then left as it is.
async fn keep_damaged(shared: &Shared, path: &str, why: &str, size: u64) -> bool {
    let when = chrono::Utc::now().format("%Y-%m-%dT%H%M%SZ").to_string();
    let named = |n: u32| match n {
        1 => format!("{path}.damaged-{when}"),
        n => format!("{path}.damaged-{when}-{n}"),
    };
    // The index is made again from the new document.
    if shared.mark_changed().await.is_err() {
        return false;
    }
    let (text, kept) = match keep_aside(shared, path, size, named, |_| false).await {
        Ok(Some(kept)) => (
            format!(
                "{path} in the mirror could not be read as a collection ({why}); it is kept as {kept}, and a new one links the items of this job (the items other jobs of this mirror copied are linked again when those jobs run again)"
            ),
            true,
        ),
        Ok(None) => (
            format!(
                "{path} in the mirror could not be read as a collection ({why}), and it was moved or changed while Cairn was keeping it aside (another job of this mirror may have kept it); what is there is left as it is: run the job again"
            ),
            false,
        ),
        Err(error) => (
            format!(
                "{path} in the mirror could not be read as a collection ({why}) nor kept aside ({}), so it is left as it is and does not link this job's new items: move it away, then run the job again",
                error.reason()
            ),
            false,
        ),
    };
    say_problem(shared, path, text);
    kept
}

/// Says `text`, about `at` in the mirror, as a problem that did not stop
/// the job: to whoever listens to the job (and so in its log, in words),
/// else in its log alone.
fn say_problem(shared: &Shared, at: &str, text: String) {
    let job_id = shared.job_id;
    let problem = Event::Problem {
        job: job_id,
        href: at.to_string(),
        reason: text,
    };
    match &shared.events {
        Some(events) => {
            let _ = events.send(problem);
        }
        None => {
            if let Some((kind, text)) = problem.log_line() {
                shared.ledger.send(move |s| s.log_job(job_id, kind, &text));
            }
        }
    }
}

/// Takes the items a sync found gone from the source out of the mirror:
/// the files Cairn copied for them, their previous versions and their
/// documents. Their records go once their collections' documents no longer
/// link them (see [`TakenOut`]); an item taken out by a run stopped before
/// that is taken out again, finding its files gone.
async fn take_out_removed(shared: &Shared) -> Result<TakenOut> {
    let job_id = shared.job_id;
    let removed = shared.ledger.call(move |s| s.removed_items(job_id)).await?;
    let mut taken_out = TakenOut::default();
    for (row, dir, files) in removed {
        shared.mark_changed().await?;
        let document = layout::item_document(&dir);
        for path in files.iter().chain(std::iter::once(&document)) {
            match shared.destination.remove(&shared.local, path).await {
                // Taken out already (by a run stopped before its end).
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                removed => removed?,
            }
        }
        if !shared.destination.is_bucket() {
            let _ = shared.local.remove_empty_folder(&dir);
        }
        match dir.split_once('/') {
            Some((collection, name)) => {
                // Kept, as written, until its collection stops linking it.
                shared
                    .ledger
                    .call(move |s| match s.hold_taken_out(row)? {
                        true => s.count_taken_out(job_id),
                        false => Ok(()),
                    })
                    .await?;
                taken_out
                    .links
                    .entry(collection.to_string())
                    .or_default()
                    .insert(format!("./{name}/{name}.json"));
                taken_out
                    .rows
                    .entry(collection.to_string())
                    .or_default()
                    .push(row);
                taken_out.dirs.insert(dir);
            }
            None => {
                shared
                    .ledger
                    .call(move |s| match s.forget_item(row)? {
                        true => s.count_taken_out(job_id),
                        false => Ok(()),
                    })
                    .await?
            }
        }
    }
    Ok(taken_out)
}

/// Writes `provenance.jsonl` at the mirror's root: one line for every
/// verified file that a job of this state file put into the mirror at
/// `destination`, in the order of their paths.
async fn write_provenance(shared: &Shared, destination: String) -> Result<()> {
    let local = shared.local.clone();
    shared
        .ledger
        .call(move |s| {
            local
                .write_atomic_with(rewrite::PROVENANCE, |out| {
                    s.each_mirrored_file(&destination, |file| {
                        serde_json::to_writer(&mut *out, &crate::provenance::Line::of(file))
                            .map_err(std::io::Error::from)
                            .and_then(|()| out.write_all(b"\n"))
                            .map_err(|e| Error::io(&local.display(rewrite::PROVENANCE), e))
                    })
                    .map_err(std::io::Error::other)
                })
                .map_err(|e| Error::io(&local.display(rewrite::PROVENANCE), e))
        })
        .await?;
    shared
        .destination
        .publish(&shared.local, rewrite::PROVENANCE, None, &shared.cancel)
        .await?;
    shared
        .destination
        .discard_staged(&shared.local, rewrite::PROVENANCE);
    Ok(())
}

/// The length of `./{name}/{name}.json`, an item's link in its collection.
fn item_href_len(name: &str) -> usize {
    2 * name.len() + ".//.json".len()
}

/// Writes every item whose assets are all verified (or failed for good) and
/// that is not written yet, in slices (memory does not grow with the number of
/// items). Looks at every item still waiting: once at the start of a run and
/// once at its end.
async fn write_items(shared: &Shared) -> Result<()> {
    let job_id = shared.job_id;
    let slice = |after: i64| {
        shared
            .ledger
            .call(move |s| with_assets(s, s.items_to_write(job_id, after, WRITE_SLICE)?))
    };
    let mut items = slice(0).await?;
    while let Some((_, last)) = items.last() {
        // A short slice means the pass reached the last waiting item: items
        // that become ready behind it from now on are written as they end.
        if items.len() < WRITE_SLICE {
            return write_these(shared, items).await;
        }
        // The next slice is read while this one is written.
        let after = last.id;
        let (written, next) = tokio::join!(write_these(shared, items), slice(after));
        written?;
        items = next?;
    }
    Ok(())
}

/// Writes the items among those whose assets ended lately that are ready.
async fn write_ended_items(shared: &Shared) -> Result<()> {
    let mut ended = std::mem::take(&mut *shared.ended.lock().unwrap_or_else(|e| e.into_inner()));
    ended.sort_unstable();
    ended.dedup();
    for rows in ended.chunks(WRITE_SLICE) {
        let (job_id, rows) = (shared.job_id, rows.to_vec());
        let items = shared
            .ledger
            .call(move |s| with_assets(s, s.items_ready(job_id, &rows)?))
            .await?;
        write_these(shared, items).await?;
    }
    Ok(())
}

/// An item to write, with its assets that ended and the previous versions
/// kept.
type ToWrite = ((EndedAssets, Vec<(String, Version)>), ItemRow);

fn with_assets(s: &Store, items: Vec<ItemRow>) -> Result<Vec<ToWrite>> {
    // One question for the whole slice rather than one per item.
    let versions = s.any_versions()?;
    let ended = s.ended_assets(&items.iter().map(|item| item.id).collect::<Vec<_>>())?;
    items
        .into_iter()
        .zip(ended)
        .map(|(item, ended)| {
            let kept = match versions {
                true => s.versions_of_item(item.id)?,
                false => Vec::new(),
            };
            Ok(((ended, kept), item))
        })
        .collect()
}

/// The mirror's document of the item `to_write`: where it goes, its bytes,
/// and their checksum (recorded: `cairn verify` finds an edit later).
fn document_of(((ended, versions), item): &ToWrite) -> (String, Vec<u8>, String) {
    let mirrored: Vec<Mirrored> = ended
        .finished
        .iter()
        .map(|asset| Mirrored {
            key: asset.key.clone(),
            file_name: asset
                .path
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string(),
            size: asset.size,
            checksum: asset.checksum.clone(),
            source: asset.href.clone(),
        })
        .collect();
    let base = url::Url::parse(&item.href).ok();
    let mut document = rewrite::item(&item.document, base.as_ref(), &mirrored, &ended.failed);
    rewrite::history(&mut document, item.removed_at.as_deref(), versions);
    let bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
    let checksum = Checksum::of(Algorithm::Sha2_256, &bytes).to_hex();
    (layout::item_document(&item.dir), bytes, checksum)
}

/// Items at least this many are written by two threads at once (into a
/// folder).
const WRITTEN_APART: usize = 64;

/// Writes the documents of `items` into the mirror folder `local`, on
/// threads of their own (two for many items); the checksum of each
/// written, or why it was not, in order. A failure that is not of one
/// item's place (a full disk) ends a thread's part there: what follows it
/// is left out.
async fn write_into_folder(local: &Arc<Folder>, items: &Arc<Vec<ToWrite>>) -> Vec<Result<String>> {
    let parts = if items.len() >= WRITTEN_APART { 2 } else { 1 };
    let size = items.len().div_ceil(parts).max(1);
    let mut threads = Vec::with_capacity(parts);
    for start in (0..items.len()).step_by(size) {
        let (items, local) = (items.clone(), local.clone());
        threads.push(tokio::task::spawn_blocking(move || {
            let mut part = Vec::with_capacity(size);
            for item in &items[start..(start + size).min(items.len())] {
                let (path, bytes, checksum) = document_of(item);
                let written = local
                    .write_atomic(&path, &bytes)
                    .map(|()| checksum)
                    .map_err(|e| Error::io(&local.display(&path), e));
                let stop = written
                    .as_ref()
                    .is_err_and(|e| !matches!(e, Error::Io { .. }));
                part.push(written);
                if stop {
                    break;
                }
            }
            part
        }));
    }
    // Every thread is waited for before anything is said, a panic too.
    let mut parts = Vec::with_capacity(threads.len());
    for thread in threads {
        parts.push(thread.await);
    }
    let mut written = Vec::with_capacity(items.len());
    for part in parts {
        match part.map_err(tokio::task::JoinError::try_into_panic) {
            Ok(part) => {
                let whole = part.len() == size.min(items.len() - written.len());
                written.extend(part);
                if !whole {
                    break;
                }
            }
            Err(Ok(panic)) => std::panic::resume_unwind(panic),
            // The runtime is shutting down: the job stops here.
            Err(Err(_)) => {
                written.push(Err(Error::Cancelled));
                break;
            }
        }
    }
    written
}

/// Writes `items` into the mirror and records each as written, or as failed
/// with why.
async fn write_these(shared: &Shared, items: Vec<ToWrite>) -> Result<()> {
    let job_id = shared.job_id;
    let dest = &shared.destination;
    if !items.is_empty() {
        shared.mark_changed().await?;
    }
    let items = Arc::new(items);
    let outcomes = match dest {
        Destination::Folder(_) => write_into_folder(&shared.local, &items).await,
        Destination::Bucket(_) => {
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items.iter() {
                let (path, bytes, checksum) = document_of(item);
                let written = dest.write_bytes(&shared.local, &path, bytes).await;
                // A failure of the bucket itself stops the writing (below).
                let stop = written
                    .as_ref()
                    .is_err_and(|e| !matches!(e, Error::Io { .. }));
                outcomes.push(written.map(|()| checksum));
                if stop {
                    break;
                }
            }
            outcomes
        }
    };
    let mut written = Vec::with_capacity(items.len());
    for ((_, item), outcome) in items.iter().zip(outcomes) {
        let id = item.id;
        match outcome {
            Ok(checksum) => {
                written.push((id, Ok(checksum)));
            }
            // This item's place in the folder is unusable (a folder or a link
            // planted at its name...): said for this item, and the others go
            // on. Anything else (a full disk, a bucket that cannot be reached)
            // would stop every other document too: the job stops, resumable.
            Err(error @ Error::Io { .. }) => {
                let reason = format!(
                    "the item's description could not be written into the mirror: {}",
                    error.reason()
                );
                shared.emit(Event::AssetFailed {
                    job: job_id,
                    href: crate::provenance::redact(&item.href),
                    reason: reason.clone(),
                });
                written.push((id, Err(reason)));
            }
            Err(error) => return Err(error),
        }
    }
    shared
        .ledger
        .call(move |s| {
            written
                .into_iter()
                .try_for_each(|(id, written)| match written {
                    Ok(checksum) => s.mark_item_written_as(id, Some(&checksum)),
                    Err(reason) => s.fail_item(id, &reason),
                })
        })
        .await?;
    Ok(())
}
