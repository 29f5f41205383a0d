//! Running mirror jobs: what the command line and the desktop app share.
//!
//! A [`Runner`] owns the state store of one process and runs any number of
//! jobs at once, each reading its plan while it copies what the plan found.
//! All jobs share one global bandwidth limit besides their own. Events of
//! every job go out on one broadcast channel; each carries its job's id.
//!
//! A job is steered from the runner (pause, cancel, limit) or from another
//! process through the state file: the runner reads each running job's row
//! every half second, so `cairn pause` in a second terminal stops a job the
//! desktop app runs, and the other way round.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::catalog::walk::Problem;
use crate::destination::Destination;
use crate::events::Event;
use crate::fetch::Fetcher;
use crate::fetch::access::{Secrets, Settings};
use crate::limit::{Bandwidth, Limits};
use crate::outage::{Change, Outages};
use crate::plan::{Selection, plan};
use crate::store::{Counts, Holder, Job, JobState, LEASE, NewJob, Store};
use crate::transfer::pool::{self, PoolOptions};
use crate::{Error, Result};

/// The most transfers a job runs at once (and from one server): each is a
/// task with its buffers, and no link or disk needs more.
pub const MAX_CONCURRENCY: u32 = 256;

/// Events kept for a slow listener before the oldest are dropped (progress
/// snapshots come four times a second per job).
const EVENT_BUFFER: usize = 4096;

/// How a run of a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The job.
    pub job: i64,
    /// Its state now: finished, failed (some assets), paused or cancelled.
    pub state: JobState,
    /// Its counts now.
    pub counts: Counts,
}

/// A mirror to set up, as a person asks for it: `cairn mirror` and the
/// desktop app's "Start" both come here.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JobRequest {
    /// The catalog, collection or API, as typed (URL or path).
    pub source: String,
    /// A folder or bucket address, as typed.
    pub destination: String,
    /// What to copy.
    pub selection: Selection,
    /// Bytes per second for this job (`None`: no limit of its own).
    pub limit_rate: Option<u64>,
    /// Transfers at once.
    pub concurrency: u32,
    /// Transfers at once from any one server.
    pub per_host: u32,
    /// What to call the job (the app offers the collection's title).
    #[serde(default)]
    pub name: Option<String>,
    /// How it signs in to its source (the secrets go to
    /// [`Runner::give_secrets`]).
    #[serde(default)]
    pub access: Settings,
}

/// Records the job `request` asks for and returns its id. The same selection
/// from the same source into the same place is the same job: it is found and
/// continues, copying only what is new or unfinished. Bad input (an address,
/// a box, a date) is refused in plain words before anything is recorded.
pub fn prepare_job(store: &Store, request: &JobRequest) -> Result<i64> {
    Ok(prepare(store, request, false)?.id)
}

/// The job `request` would find (the same source, destination and
/// selection), if there is one.
pub fn existing_job(store: &Store, request: &JobRequest) -> Result<Option<i64>> {
    let destination = crate::destination::normalize(&request.destination)?;
    let source = crate::fetch::parse_location(&request.source)?.to_string();
    let selection = serde_json::to_value(&request.selection)
        .map_err(|e| Error::invalid_input(e.to_string()))?;
    Ok(store
        .find_job(&source, &destination, &selection)?
        .map(|job| job.id))
}

/// A job found or recorded for a request.
struct Prepared {
    id: i64,
    /// Whether it was recorded now.
    created: bool,
}

/// Finds or records the job `request` asks for; a new one is a draft if
/// `draft` (an estimate), and a draft asked for as a job becomes one (and
/// plans its source again when it runs: its estimate may be old).
fn prepare(store: &Store, request: &JobRequest, draft: bool) -> Result<Prepared> {
    let destination = crate::destination::normalize(&request.destination)?;
    request.selection.search()?;
    let source = crate::fetch::parse_location(&request.source)?.to_string();
    let selection = serde_json::to_value(&request.selection)
        .map_err(|e| Error::invalid_input(e.to_string()))?;
    let (concurrency, per_host) = (
        request.concurrency.clamp(1, MAX_CONCURRENCY),
        request.per_host.clamp(1, MAX_CONCURRENCY),
    );
    let name = request.name.as_deref().and_then(job_name);
    // Found or made under the write lock: two identical requests at once
    // (the app and a script) are one job.
    store.transaction(|| {
        let (id, created) = match store.find_job(&source, &destination, &selection)? {
            Some(job) => {
                store.set_job_limit_rate(job.id, request.limit_rate)?;
                store.set_job_concurrency(job.id, concurrency, per_host)?;
                if !draft {
                    store.set_job_draft(job.id, false)?;
                    store.set_plan_fresh(job.id, false)?;
                }
                (job.id, false)
            }
            None => {
                let id = store.create_job(&NewJob {
                    source_url: source.clone(),
                    destination: destination.clone(),
                    selection: selection.clone(),
                    limit_rate: request.limit_rate,
                    concurrency,
                    per_host,
                })?;
                store.set_job_draft(id, draft)?;
                (id, true)
            }
        };
        store.set_job_access(id, &request.access)?;
        // Named when made (or still an estimate): an estimate of a job
        // someone named does not rename it.
        if let Some(name) = &name
            && (created || store.is_draft(id)?)
        {
            store.set_job_name(id, name)?;
        }
        Ok(Prepared { id, created })
    })
}

/// A job's name as typed, made one line of a reasonable length (`None`
/// when nothing is left).
fn job_name(typed: &str) -> Option<String> {
    let name: String = typed
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    (!name.trim().is_empty()).then(|| name.trim().to_string())
}

/// Checks a destination as typed before a job is recorded for it: a bucket
/// must answer with the credentials at hand.
pub async fn check_destination(destination: &str) -> Result<()> {
    let destination = crate::destination::normalize(destination)?;
    // Said as bad input: nothing is recorded, and it is for the person to fix.
    Destination::open(&destination, &std::env::temp_dir())?
        .check_access()
        .await
        .map_err(|error| Error::invalid_input(error.to_string()))
}

/// What a job will copy, told before it starts.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Estimate {
    /// The job, planned and ready to start.
    pub job: i64,
    /// Items, assets and bytes it holds, and what is already mirrored.
    pub counts: Counts,
    /// Bytes still to copy (for the assets whose size the catalog gives).
    pub bytes_to_copy: u64,
    /// Bytes free at a folder destination (`None`: a bucket, or not known).
    pub free_bytes: Option<u64>,
    /// Problems found in the source while planning (the plan went past them).
    pub problems: Vec<Problem>,
    /// Whether S3 buckets are read as requester-pays buckets: the account
    /// whose credentials sign the requests is billed for them.
    pub requester_pays: bool,
}

/// A job and how far it is.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobStatus {
    /// The job.
    pub job: Job,
    /// Its counts now.
    pub counts: Counts,
    /// Whether this process is copying it now.
    pub running: bool,
    /// The files of its mirror the watcher saw change since they were
    /// copied (the first [`FLAGS_SHOWN`] by path).
    pub flags: Vec<crate::store::Flag>,
    /// How many files of its mirror are flagged in all.
    pub flag_count: u64,
}

/// Flagged files a job's status lists (the count says how many in all).
pub const FLAGS_SHOWN: usize = 50;

/// Runs mirror jobs in the background.
pub struct Runner {
    store: Arc<Mutex<Store>>,
    fetcher: Fetcher,
    global: Bandwidth,
    events: broadcast::Sender<Event>,
    running: Mutex<HashMap<i64, Running>>,
    /// The jobs this process is estimating now.
    estimating: Mutex<HashSet<i64>>,
    /// The secrets jobs sign in with, by job: in memory only.
    secrets: Mutex<HashMap<i64, Secrets>>,
    /// Public documents read lately (by the app's browsing), which an
    /// estimate takes instead of reading them again.
    recent: Option<Arc<crate::fetch::Recent>>,
}

/// Job `id` marked as being estimated while this lives.
struct Estimating<'a> {
    set: &'a Mutex<HashSet<i64>>,
    id: i64,
}

impl<'a> Estimating<'a> {
    fn new(set: &'a Mutex<HashSet<i64>>, id: i64) -> Estimating<'a> {
        set.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
        Estimating { set, id }
    }
}

impl Drop for Estimating<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// The error for a job another process copies (its lease holds).
pub fn held_elsewhere(job_id: i64, other: &str) -> Error {
    Error::invalid_input(format!(
        "job {job_id} is being copied by another Cairn ({other}); one job is copied by one process at a time. Wait for it to finish, or pause it there, then try again"
    ))
}

struct Running {
    cancel: CancellationToken,
    limit: Bandwidth,
    handle: Option<JoinHandle<Result<Report>>>,
}

impl Running {
    /// Whether the run has not ended (also while it winds down after a pause).
    fn goes_on(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| !h.is_finished())
    }
}

impl Runner {
    /// A runner over `store`, fetching with `fetcher`.
    pub fn new(store: Store, fetcher: Fetcher) -> Runner {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Runner {
            store: Arc::new(Mutex::new(store)),
            fetcher,
            global: Bandwidth::new(None),
            events,
            running: Mutex::new(HashMap::new()),
            estimating: Mutex::new(HashSet::new()),
            secrets: Mutex::new(HashMap::new()),
            recent: None,
        }
    }

    /// This runner, whose estimates take public documents read lately from
    /// `recent` (what the app just browsed) instead of reading them again.
    /// Copies and syncs always read the source itself.
    pub fn with_recent(self, recent: Arc<crate::fetch::Recent>) -> Runner {
        Runner {
            recent: Some(recent),
            ..self
        }
    }

    /// Gives job `job_id` the secrets it signs in with (the values of its
    /// headers), for as long as this runner lives. They are never written.
    pub fn give_secrets(&self, job_id: i64, secrets: Secrets) {
        self.secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(job_id, secrets);
    }

    /// The fetcher for `job`: signed in as it says.
    fn fetcher_for(&self, job: &Job) -> Result<Fetcher> {
        let secrets = self
            .secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&job.id)
            .cloned()
            .unwrap_or_default();
        if job.access.is_empty() && secrets.headers.is_empty() {
            return Ok(self.fetcher.clone());
        }
        let source = Url::parse(&job.source_url).map_err(|e| {
            Error::invalid_input(format!("job {} has a damaged source: {e}", job.id))
        })?;
        self.fetcher.signed_in(&job.access, &secrets, &source)
    }

    /// Runs `f` on the state store.
    pub fn with_store<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        f(&self.store.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Every event of every job from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The limit over all jobs together, in bytes per second (`None`: none).
    pub fn set_global_limit(&self, bytes_per_second: Option<u64>) {
        self.global.set(bytes_per_second);
    }

    /// The limit over all jobs together now (`None`: none).
    pub fn global_limit(&self) -> Option<u64> {
        self.global.get()
    }

    /// Plans job `job_id` without copying anything: its rows are in the store
    /// when this returns, and a `plan` event says what it holds.
    pub async fn plan_only(&self, job_id: i64) -> Result<Report> {
        Ok(self.plan_job(job_id, false).await?.0)
    }

    /// Plans job `job_id` without copying: how it stands, and every problem
    /// met in the source on the way. A draft's plan read whole is marked
    /// fresh if `fresh` (its first run copies it as it is).
    async fn plan_job(&self, job_id: i64, fresh: bool) -> Result<(Report, Vec<Problem>)> {
        let job = self.job(job_id)?;
        // This process copies the job now: its run planned it and keeps the
        // rows current, so how it stands is the estimate. Planning again
        // would take the lease from under the run.
        if self.copies(job_id) {
            return Ok((self.report(job_id, JobState::Running)?, Vec::new()));
        }
        // Not while another process copies the job: two planners would give
        // out folders each on their own.
        let holder = Holder::this_process();
        if let Err(other) = self.with_store(|s| s.take_job(job_id, &holder))? {
            return Err(held_elsewhere(job_id, &other));
        }
        let planned = self.plan_held(&job, fresh).await;
        self.with_store(|s| s.release_job(job_id, &holder))?;
        planned
    }

    async fn plan_held(&self, job: &Job, fresh: bool) -> Result<(Report, Vec<Problem>)> {
        let job_id = job.id;
        // A job that has run keeps its state meanwhile too: should this
        // process end half way, it is as it was.
        let ran = job.state.has_run();
        if !ran {
            self.with_store(|s| s.set_job_state(job_id, JobState::Planning))?;
        }
        let planned = async {
            let destination = self.destination(job)?;
            let ledger = pool::open_ledger(
                self.store.clone(),
                job_id,
                &destination,
                (&job.source_url, false),
            )
            .await?;
            let cancel = CancellationToken::new();
            let fetcher = match (&self.recent, fresh) {
                // An estimate: what was just browsed is not read again.
                (Some(recent), true) => self.fetcher_for(job)?.recalling(recent.clone()),
                _ => self.fetcher_for(job)?,
            };
            let planned =
                plan_and_report(&ledger, &fetcher, job, (&self.store, &self.events), &cancel).await;
            drop(ledger);
            // A plan that took documents browsed lately is an estimate
            // only: the copy reads the source itself.
            planned.map(|problems| (problems, fetcher.recalled() > 0))
        }
        .await;
        let (state, problems, recalled) = match planned {
            Ok((problems, recalled)) => (JobState::Ready, problems, recalled),
            Err(Error::Cancelled) => (JobState::Paused, Vec::new(), false),
            Err(error) => {
                // The job is as it was before the plan (and says why it
                // stopped, if it had).
                self.with_store(|s| s.restore_job(job))?;
                return Err(error);
            }
        };
        // A job that has run stays as its last run left it (finished,
        // paused, and why it stopped): a plan copies nothing, and the next
        // run goes on from the plan. So does one whose plan was stopped.
        let state = match ran {
            true => job.state,
            false => state,
        };
        self.with_store(|s| {
            match ran {
                true => s.restore_job(job)?,
                false => s.set_job_state(job_id, state)?,
            }
            // Held still: no run can have started from it meanwhile. A plan
            // that could not read some of the source is read again by the run.
            s.set_plan_fresh(
                job_id,
                fresh && state == JobState::Ready && problems.is_empty() && !recalled,
            )
        })?;
        Ok((self.report(job_id, state)?, problems))
    }

    /// Records the job `request` asks for (see [`prepare_job`]) as a draft
    /// and plans it without copying: what it holds, and whether the disk
    /// has room. It is a job once started; until then, the next estimate
    /// forgets it.
    pub async fn estimate(&self, request: &JobRequest) -> Result<Estimate> {
        self.estimate_signed(request, Secrets::default()).await
    }

    /// [`Runner::estimate`], for a job that signs in with `secrets` (the
    /// values of the headers `request.access` names).
    pub async fn estimate_signed(
        &self,
        request: &JobRequest,
        secrets: Secrets,
    ) -> Result<Estimate> {
        check_destination(&request.destination).await?;
        let prepared = self.with_store(|s| prepare(s, request, true))?;
        let job_id = prepared.id;
        // What the person gives now replaces what they gave before.
        self.give_secrets(job_id, secrets);
        let planned = {
            let _estimating = Estimating::new(&self.estimating, job_id);
            self.plan_job(job_id, true).await
        };
        let (report, problems) = match planned {
            Ok(planned) => planned,
            Err(error) => {
                // A failed estimate leaves no draft of its own behind.
                if prepared.created {
                    self.forget_draft(job_id);
                }
                return Err(error);
            }
        };
        // An estimate nobody started is not a job: one draft at a time.
        self.forget_drafts(Some(job_id));
        let job = self.job(job_id)?;
        let destination = job.destination;
        Ok(Estimate {
            requester_pays: job.access.requester_pays,
            job: job_id,
            bytes_to_copy: report
                .counts
                .bytes_expected
                .saturating_sub(report.counts.bytes_done),
            counts: report.counts,
            free_bytes: crate::destination::free_space(&destination),
            problems,
        })
    }

    /// Forgets the estimates nobody started (drafts), but for `keep` and
    /// those being estimated or copied now.
    pub fn forget_drafts(&self, keep: Option<i64>) {
        let drafts = match self.with_store(|s| s.drafts()) {
            Ok(drafts) => drafts,
            Err(error) => {
                tracing::warn!(%error, "estimates not started could not be listed");
                return;
            }
        };
        for id in drafts.into_iter().filter(|&id| Some(id) != keep) {
            self.forget_draft(id);
        }
    }

    /// Forgets draft `id`, unless it is being estimated or copied now, or
    /// became a job meanwhile.
    fn forget_draft(&self, id: i64) {
        let busy = self.estimating_now(id) || self.run_goes_on(id);
        if busy {
            return;
        }
        match self.with_store(|s| s.delete_draft(id)) {
            Ok(true) => self.discard_staging(id),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(job = id, %error, "an estimate not started could not be forgotten")
            }
        }
    }

    /// Whether job `id` is being estimated in this process now.
    fn estimating_now(&self, id: i64) -> bool {
        self.estimating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    /// Every job, newest first, with its counts.
    pub fn jobs(&self) -> Result<Vec<JobStatus>> {
        let jobs = self.with_store(|s| s.jobs())?;
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        jobs.into_iter()
            .map(|job| {
                let counts = self.with_store(|s| s.job_counts(job.id))?;
                // A run winding down after a pause, a cancel or its end is
                // no longer copying, as far as anyone asking is concerned.
                let running = job.state == JobState::Running
                    && running.get(&job.id).is_some_and(Running::goes_on);
                let (flags, flag_count) =
                    match crate::destination::is_bucket_address(&job.destination) {
                        true => (Vec::new(), 0),
                        false => {
                            self.with_store(|s| s.some_flags(&job.destination, FLAGS_SHOWN))?
                        }
                    };
                Ok(JobStatus {
                    job,
                    counts,
                    running,
                    flags,
                    flag_count,
                })
            })
            .collect()
    }

    /// Continues a paused or interrupted job, and gives its failed assets a
    /// fresh set of attempts (the server may be back).
    pub fn resume(&self, job_id: i64) -> Result<()> {
        if let Some(other) = self.with_store(|s| s.job_holder(job_id))? {
            return Err(held_elsewhere(job_id, &other));
        }
        self.with_store(|s| s.retry_failed(job_id))?;
        self.start(job_id)
    }

    /// Starts job `job_id` in the background (or does nothing if it runs).
    /// A job still winding down from a pause starts again once it has.
    pub fn start(&self, job_id: i64) -> Result<()> {
        self.start_run(job_id, RunKind::Plan { sync: false })
    }

    /// Brings job `job_id`'s mirror up to date, in the background: its
    /// source is planned again, and each file copied before whose checksum
    /// the catalog does not give is asked about at its server (one HEAD
    /// request) and fetched again only if it changed. New items are copied;
    /// items gone from the source are marked (or taken out, if the job
    /// mirrors deletions).
    pub fn sync(&self, job_id: i64) -> Result<()> {
        if let Some(other) = self.with_store(|s| s.job_holder(job_id))? {
            return Err(held_elsewhere(job_id, &other));
        }
        self.with_store(|s| s.retry_failed(job_id))?;
        self.start_run(job_id, RunKind::Plan { sync: true })
    }

    /// Repairs files of job `job_id`'s mirror: once the job is held, the
    /// assets `assets` (missing or damaged) are fetched again and must match
    /// the checksums they were verified with, and the items `items` (their
    /// documents edited or lost) are written again, through the job's own
    /// transfers, retries, limits, staging and ledger, without reading its
    /// source again. Nothing else of the job is copied, and it keeps its
    /// state (a paused job stays paused). Waits for the repair to end.
    pub async fn repair(&self, job_id: i64, assets: Vec<i64>, items: Vec<i64>) -> Result<Report> {
        if self.run_goes_on(job_id) {
            return Err(Error::invalid_input(format!(
                "job {job_id} is copying now; check the copy again once it has stopped"
            )));
        }
        if let Some(other) = self.with_store(|s| s.job_holder(job_id))? {
            return Err(held_elsewhere(job_id, &other));
        }
        self.start_run(job_id, RunKind::Repair { assets, items })?;
        self.wait(job_id).await
    }

    fn start_run(&self, job_id: i64, kind: RunKind) -> Result<()> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut stopping = None;
        if let Some(run) = running.get_mut(&job_id)
            && run.goes_on()
        {
            if !run.cancel.is_cancelled() {
                return Ok(());
            }
            stopping = run.handle.take();
        }
        if self.estimating_now(job_id) {
            return Err(Error::invalid_input(format!(
                "job {job_id} is still being estimated; wait for the estimate, then start it"
            )));
        }
        let job = self.job(job_id)?;
        let destination = self.destination(&job)?;
        // Nothing to sign in with: said to whoever asked, and the job is left
        // as it was (another process may be copying it).
        let fetcher = self.fetcher_for(&job)?;
        // One copier per job: another process copying it keeps it. Each run
        // holds its own lease, so a run still winding down lets go of its
        // own, never of the one that follows it.
        let holder = Holder::this_process();
        if let Err(other) = self.with_store(|s| s.take_job(job_id, &holder))? {
            return Err(held_elsewhere(job_id, &other));
        }
        // Started, an estimate becomes a job (and is in the list).
        self.with_store(|s| {
            s.set_job_draft(job_id, false)?;
            s.set_job_state(job_id, JobState::Running)
        })?;
        let cancel = CancellationToken::new();
        let limit = Bandwidth::new(job.limit_rate);
        let run = run_job(
            self.store.clone(),
            fetcher,
            (job, kind),
            destination,
            Limits {
                job: limit.clone(),
                global: self.global.clone(),
            },
            (cancel.clone(), holder.clone()),
            self.events.clone(),
        );
        let (store, events) = (self.store.clone(), self.events.clone());
        let handle = tokio::spawn(async move {
            let report = async {
                if let Some(stopping) = stopping {
                    // The stopping run marks the job paused as it ends: running again.
                    let _ = stopping.await;
                    let db = store.lock().unwrap_or_else(|e| e.into_inner());
                    db.set_job_state(job_id, JobState::Running)?;
                }
                run.await
            }
            .await;
            {
                let db = store.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(error) = db.release_job(job_id, &holder) {
                    tracing::debug!(%error, "the job's lease could not be let go; it runs out by itself");
                }
            }
            // Whoever watches (the app, a log) learns why the job stopped.
            if let Err(error) = &report
                && !matches!(error, Error::Cancelled)
            {
                let reason = error.to_string();
                announce(
                    &store,
                    &events,
                    Event::Stopped {
                        job: job_id,
                        reason,
                    },
                );
            }
            report
        });
        running.insert(
            job_id,
            Running {
                cancel,
                limit,
                handle: Some(handle),
            },
        );
        Ok(())
    }

    /// Waits for a started job's run to end.
    pub async fn wait(&self, job_id: i64) -> Result<Report> {
        let handle = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&job_id)
            .and_then(|r| r.handle.take());
        let Some(handle) = handle else {
            return Err(Error::invalid_input(format!("job {job_id} is not running")));
        };
        let report = match handle.await {
            Ok(report) => report,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(Error::Cancelled),
        };
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&job_id);
        report
    }

    /// Pauses a job: it stops soon, keeping everything; [`Runner::start`]
    /// continues it.
    pub fn pause(&self, job_id: i64) -> Result<()> {
        self.stop(job_id, JobState::Paused)
    }

    /// Cancels a job for good (verified files stay where they are).
    pub fn cancel(&self, job_id: i64) -> Result<()> {
        self.stop(job_id, JobState::Cancelled)
    }

    /// Stops a running job without changing what it will be when it stops
    /// (paused): for Ctrl-C.
    pub fn interrupt(&self, job_id: i64) {
        if let Some(running) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&job_id)
        {
            running.cancel.cancel();
        }
    }

    /// A job's own bandwidth limit, applied at once if it runs.
    pub fn set_limit(&self, job_id: i64, bytes_per_second: Option<u64>) -> Result<()> {
        self.with_store(|s| s.set_job_limit_rate(job_id, bytes_per_second))?;
        if let Some(running) = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&job_id)
        {
            running.limit.set(bytes_per_second);
        }
        Ok(())
    }

    /// Whether a run of this process copies job `job_id` now (and is not
    /// winding down after a pause or a cancel).
    fn copies(&self, job_id: i64) -> bool {
        self.run_of(job_id)
            .is_some_and(|(goes_on, cancelled)| goes_on && !cancelled)
    }

    /// Whether a run of job `job_id` in this process has not ended yet
    /// (also one winding down after a pause).
    fn run_goes_on(&self, job_id: i64) -> bool {
        self.run_of(job_id).is_some_and(|(goes_on, _)| goes_on)
    }

    /// This process's run of job `job_id`, if it has one: whether it goes
    /// on, and whether it was told to stop.
    fn run_of(&self, job_id: i64) -> Option<(bool, bool)> {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&job_id)
            .map(|run| (run.goes_on(), run.cancel.is_cancelled()))
    }

    /// Removes job `job_id` from the list: its records go, and the mirror
    /// it made stays as it is. A job that is copying (here or in another
    /// process) is refused: pause it first.
    pub fn remove(&self, job_id: i64) -> Result<()> {
        if self.run_goes_on(job_id) {
            return Err(Error::invalid_input(format!(
                "job {job_id} is copying now; pause it, then remove it"
            )));
        }
        if let Some(other) = self.with_store(|s| s.job_holder(job_id))? {
            return Err(held_elsewhere(job_id, &other));
        }
        if !self.with_store(|s| s.delete_job(job_id))? {
            return Err(Error::invalid_input(format!("there is no job {job_id}")));
        }
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&job_id);
        self.discard_staging(job_id);
        Ok(())
    }

    /// Removes the staging folder of a job that is gone: a bucket job's
    /// files waiting for upload are Cairn's own.
    fn discard_staging(&self, job_id: i64) {
        if let Ok(staging) = self.with_store(|s| Ok(s.staging_dir(job_id))) {
            let _ = std::fs::remove_dir_all(staging);
        }
    }

    /// Tells whoever listens (and the job's log) about `event`.
    pub fn announce(&self, event: Event) {
        announce(&self.store, &self.events, event);
    }

    /// How many jobs are copying now.
    pub fn running_jobs(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|r| r.goes_on())
            .count()
    }

    /// Starts every job that was running when the process last stopped (a
    /// crash, a restart of the app). A job that was only being planned (a
    /// dry run) is not started. Returns their ids.
    pub fn resume_unfinished(&self) -> Result<Vec<i64>> {
        let unfinished: Vec<i64> = self
            .with_store(|s| s.jobs())?
            .into_iter()
            .filter(|j| j.state == JobState::Running)
            .map(|j| j.id)
            .collect();
        let mut started = Vec::new();
        for id in unfinished {
            // A job another process copies stays with it.
            match self.start(id) {
                Ok(()) => started.push(id),
                Err(error) => tracing::warn!(job = id, %error, "a running job was not resumed"),
            }
        }
        Ok(started)
    }

    fn stop(&self, job_id: i64, state: JobState) -> Result<()> {
        self.with_store(|s| s.set_job_state(job_id, state))?;
        self.interrupt(job_id);
        Ok(())
    }

    /// Job `job_id`, or an error saying there is none.
    pub fn job(&self, job_id: i64) -> Result<Job> {
        self.with_store(|s| s.job(job_id))?
            .ok_or_else(|| Error::invalid_input(format!("there is no job {job_id}")))
    }

    fn destination(&self, job: &Job) -> Result<Destination> {
        let staging = self.with_store(|s| Ok(s.staging_dir(job.id)))?;
        Destination::open(&job.destination, &staging)
    }

    fn report(&self, job_id: i64, state: JobState) -> Result<Report> {
        let counts = self.with_store(|s| s.job_counts(job_id))?;
        Ok(Report {
            job: job_id,
            state,
            counts,
        })
    }
}

/// What a run of a job does.
#[derive(Debug, Clone)]
enum RunKind {
    /// Read the source (plan) while the transfers copy what it found; in a
    /// sync, ask the source about the files copied before too.
    Plan {
        /// Whether this is a sync.
        sync: bool,
    },
    /// Fetch again these assets and write again these items, nothing else.
    Repair {
        /// Asset rows.
        assets: Vec<i64>,
        /// Item rows.
        items: Vec<i64>,
    },
}

/// One run of a job: the plan is read while the transfers already copy what
/// it found; then the job's state says how it ended.
async fn run_job(
    store: Arc<Mutex<Store>>,
    fetcher: Fetcher,
    (job, kind): (Job, RunKind),
    destination: Destination,
    limits: Limits,
    (cancel, holder): (CancellationToken, Holder),
    events: broadcast::Sender<Event>,
) -> Result<Report> {
    let job_id = job.id;
    let db = |f: &dyn Fn(&Store) -> Result<()>| f(&store.lock().unwrap_or_else(|e| e.into_inner()));
    // The mirror's folder gone entirely, after this job copied into it: its
    // drive may not be plugged in, and filling the folder again would put
    // the whole mirror on the disk beneath. Said, rather than done; a
    // folder made again (empty) is filled again.
    if let (Destination::Folder(root), RunKind::Plan { .. }) = (&destination, &kind)
        && !root.exists()
    {
        let copied = store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .verified_files(job_id, 0, 1)?;
        if !copied.is_empty() {
            let error = Error::invalid_input(format!(
                "the mirror's folder {} is not there (is its drive plugged in?), though this job copied files into it. To fill it again from the source, make an empty folder there, then run the job again",
                root.display()
            ));
            db(&|s| s.stop_job(job_id, &error.to_string()))?;
            return Err(error);
        }
    }
    let ledger =
        match pool::open_ledger(store.clone(), job_id, &destination, (&job.source_url, true)).await
        {
            Ok(ledger) => ledger,
            // A repair that cannot start leaves the job as it was (the
            // files to repair are not reopened yet): it is tried again as a
            // repair, not left to a resume that would not repair them.
            Err(error) if matches!(kind, RunKind::Repair { .. }) => {
                db(&|s| s.restore_job(&job))?;
                return Err(error);
            }
            Err(error) => {
                // The destination cannot be prepared (no permission, no room):
                // the job waits to be resumed once that is fixed.
                db(&|s| s.stop_job(job_id, &error.to_string()))?;
                return Err(error);
            }
        };
    // Set when another Cairn took the job over: the job is its now.
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = watch_row(
        (store.clone(), events.clone()),
        (job_id, holder, job.destination.clone()),
        limits.job.clone(),
        (cancel.clone(), lost.clone()),
    );
    // The pool's events go to the broadcast channel.
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let forward = {
        let (store, events) = (store.clone(), events.clone());
        tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                announce(&store, &events, event);
            }
        })
    };
    // A server that cannot be reached is waited for while the job hears
    // from none (see `outage`), by the plan and the transfers alike. What
    // it says goes out with the pool's events (while the pool runs).
    let outages = {
        let sender = sender.downgrade();
        let catalog = url::Url::parse(&job.source_url).ok();
        Outages::new(Arc::default(), catalog, move |change: Change| {
            let event = Event::Waiting {
                job: job_id,
                server: change.server,
                waiting: change.waiting,
                reason: change.reason,
            };
            if let Some(sender) = sender.upgrade() {
                let _ = sender.send(event);
            }
        })
    };
    let fetcher = fetcher
        .with_cancellation(cancel.clone())
        .with_outages(Arc::new(outages));

    let (planned_tx, planned_rx) = watch::channel(false);
    let repair = matches!(kind, RunKind::Repair { .. });
    let sync = matches!(kind, RunKind::Plan { sync: true });
    // A job just estimated (its plan read whole, nothing run since) copies
    // that plan: its source is not read a second time. The run that asks
    // the source about the files verified before, if this one does: a
    // sync's own, opened before its source is read (stopped then, it is
    // resumed as the sync it is), or such a run stopped before it asked.
    let (fresh, asking) = {
        let db = store.lock().unwrap_or_else(|e| e.into_inner());
        let asking = match (sync, repair) {
            (true, _) => Some(db.sync_asks(job_id)?),
            (false, true) => None,
            (false, false) => db.sync_to_ask(job_id)?,
        };
        (db.take_plan_fresh(job_id)?, asking)
    };
    if let RunKind::Repair { assets, items } = kind {
        // Reopened once the job is held: no other copier runs over them.
        ledger
            .call(move |s| {
                // One of the ledger's own transactions.
                assets.iter().try_for_each(|&id| s.reopen_for_repair(id))?;
                items.iter().try_for_each(|&row| s.reopen_item(row))
            })
            .await?;
    }
    let planning = async {
        let mut planned = if repair || (fresh && !sync) {
            Ok(Vec::new())
        } else {
            plan_and_report(&ledger, &fetcher, &job, (&store, &events), &cancel).await
        };
        // A sync then asks the servers about the files it verified before,
        // once per run (a run resumed after a stop goes on where it was, a
        // sync stopped before it asked included): once the plan has
        // brought every asset's source up to date. The run of another
        // command (a resume of a job that ended, an estimate) asks nothing.
        if let Some(run) = asking
            && planned.is_ok()
        {
            let rechecks = ledger.call(move |s| s.set_rechecks(run)).await;
            match rechecks {
                Ok(count) if count > 0 => {
                    tracing::info!(
                        job_id,
                        count,
                        "asking the source whether copied files changed"
                    );
                }
                Ok(_) => {}
                Err(error) => planned = Err(error),
            }
        }
        let _ = planned_tx.send(true);
        planned
    };
    let options = PoolOptions {
        concurrency: job.concurrency.clamp(1, MAX_CONCURRENCY) as usize,
        per_host: job.per_host.clamp(1, MAX_CONCURRENCY) as usize,
        repair_only: repair,
        keep_versions: job.keep_versions,
        mirror_deletions: job.mirror_deletions,
        sync: asking.is_some(),
        ..PoolOptions::default()
    };
    let transfers = pool::run(
        ledger.clone(),
        &fetcher,
        job_id,
        destination,
        limits,
        options,
        cancel.clone(),
        Some(sender),
        Some(planned_rx),
    );
    let (planned, outcome) = tokio::join!(planning, transfers);
    watcher.abort();
    let _ = forward.await;
    drop(ledger);
    // Taken over: the job's state is the other Cairn's to write.
    if lost.load(std::sync::atomic::Ordering::Acquire) {
        return Err(Error::Cancelled);
    }

    let cancelled = store
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .job(job_id)?
        .is_some_and(|j| j.state == JobState::Cancelled);
    let stop_as = if cancelled {
        JobState::Cancelled
    } else {
        JobState::Paused
    };
    // Stopped by something to fix, the job says why until it runs again.
    let halt = |error: Error| -> Result<Report> {
        match cancelled || matches!(error, Error::Cancelled) {
            true => db(&|s| s.set_job_state(job_id, stop_as))?,
            false => db(&|s| s.stop_job(job_id, &error.to_string()))?,
        }
        Err(error)
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        // A full disk, or the store failing: resumable once fixed.
        Err(error) => return halt(error),
    };
    match planned {
        Ok(_) | Err(Error::Cancelled) => {}
        // The source could not be read: that is what to report.
        Err(error) => return halt(error),
    }
    let ended = outcome.counts.failed > 0 || outcome.counts.items_failed > 0;
    let state = match job.state {
        // A repair leaves a job that had not ended as it was.
        before if repair && !matches!(before, JobState::Finished | JobState::Failed) => before,
        _ if outcome.interrupted => stop_as,
        _ if ended => JobState::Failed,
        _ => JobState::Finished,
    };
    db(&|s| s.set_job_state(job_id, state))?;
    if !repair && !outcome.interrupted {
        let (failures, tallies) = (outcome.counts.failed, outcome.tallies);
        db(&|s| s.close_run(job_id, failures, tallies).map(drop))?;
    }
    // Announced once the state is written: whoever reads the job on hearing
    // it finds it ended.
    announce(
        &store,
        &events,
        Event::Finished {
            job: job_id,
            counts: outcome.counts.clone(),
            interrupted: outcome.interrupted,
        },
    );
    Ok(Report {
        job: job_id,
        state,
        counts: outcome.counts,
    })
}

/// Sends an event to whoever listens, and keeps its sentence in the job's log.
fn announce(store: &Mutex<Store>, events: &broadcast::Sender<Event>, event: Event) {
    if let Some((kind, text)) = event.log_line() {
        let logged =
            store
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .log_job(event.job(), kind, &text);
        if let Err(error) = logged {
            tracing::debug!(%error, "a line of the job's log could not be kept");
        }
    }
    let _ = events.send(event);
}

/// Plans `job` through `ledger`, then tells what the plan holds (and what in
/// the source could not be used). An error stops the job's transfers.
async fn plan_and_report(
    ledger: &crate::transfer::ledger::Ledger,
    fetcher: &Fetcher,
    job: &Job,
    (store, events): (&Mutex<Store>, &broadcast::Sender<Event>),
    cancel: &CancellationToken,
) -> Result<Vec<Problem>> {
    let job_id = job.id;
    let selection: Selection = serde_json::from_value(job.selection.clone())
        .map_err(|e| Error::invalid_input(format!("job {job_id} has a damaged selection: {e}")))?;
    // What the mirror held before this run: the files the transfers copy
    // while the plan is read are not "already there".
    let before = ledger.call(move |s| s.job_counts(job_id)).await?;
    let lost = restore_lost(ledger, job).await?;
    // Of the files lost, those that had been found in place (skipped): the
    // rest had been copied (done).
    let lost_done = match lost {
        0 => 0,
        _ => {
            let after = ledger.call(move |s| s.job_counts(job_id)).await?;
            (lost as u64).saturating_sub(before.skipped.saturating_sub(after.skipped))
        }
    };
    if lost > 0 {
        let event = Event::Problem {
            job: job_id,
            href: job.destination.clone(),
            reason: format!(
                "{} this job copied before {} no longer in the mirror (deleted or moved away?); {} fetched again",
                crate::words::plural(lost as u64, "file"),
                if lost == 1 { "is" } else { "are" },
                if lost == 1 { "it is" } else { "they are" },
            ),
        };
        announce(store, events, event);
    }
    let summary = match plan(ledger, fetcher, job_id, &job.source_url, &selection).await {
        Ok(summary) => summary,
        Err(error) => {
            cancel.cancel();
            return Err(error);
        }
    };
    for problem in &summary.problems {
        let event = Event::Problem {
            job: job_id,
            href: problem.href.clone(),
            reason: problem.reason.clone(),
        };
        announce(store, events, event);
    }
    adopt_verified(ledger, job).await?;
    let counts = ledger.call(move |s| s.job_counts(job_id)).await?;
    let planned = Event::Planned {
        job: job_id,
        items: counts.items,
        assets: counts.assets,
        bytes: counts.bytes_expected,
        unknown_sizes: summary.unknown_sizes,
        // Found in place (skipped) or copied by an earlier run, less those
        // lost since.
        already_done: counts.skipped + counts.done.min(before.done.saturating_sub(lost_done)),
        destination: job.destination.clone(),
        requester_pays: job.access.requester_pays,
    };
    announce(store, events, planned);
    Ok(summary.problems)
}

/// Fetches again the files this job verified into its folder that are no
/// longer there (the folder deleted or emptied, another drive in its place,
/// files removed): each goes back to be fetched as a new one, and its
/// item's document is written again. Only files that are gone: one that
/// changed is for `cairn verify --repair`, which knows what it held.
/// Returns how many.
async fn restore_lost(ledger: &crate::transfer::ledger::Ledger, job: &Job) -> Result<usize> {
    // (A folder that was gone is refused before the run, or made again.)
    each_slice_of_files(
        ledger,
        job,
        |s, job_id, after| s.verified_files(job_id, after, FILE_SLICE),
        |(id, _, _)| *id,
        |folder, (_, path, _)| {
            folder
                .file_len(path)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        },
        |s, (id, _, _)| s.forget_lost(*id),
    )
    .await
}

/// Counts as already there the files another job of the same mirror copied from the
/// same addresses into the same places and verified, so that they are not
/// fetched again (and an estimate says they are there). Only in a folder,
/// and only files that still have the size and modification time they
/// were verified with (a bucket's objects are fetched, as ever). Returns
/// how many.
async fn adopt_verified(ledger: &crate::transfer::ledger::Ledger, job: &Job) -> Result<usize> {
    each_slice_of_files(
        ledger,
        job,
        |s, job_id, after| s.verified_elsewhere(job_id, after, FILE_SLICE),
        |found| found.id,
        |folder, found| {
            folder
                .place(&found.path, false)
                .and_then(|place| place.stamp(place.name()))
                .is_ok_and(|stamp| stamp == (found.size, found.mtime))
        },
        |s, found| s.adopt_verified(found),
    )
    .await
}

/// How many of a job's files [`each_slice_of_files`] reads at a time.
const FILE_SLICE: usize = 4096;

/// Goes over files of `job`'s mirror folder a slice at a time: `read`
/// gives those after a row (`id` says each one's row), `pick` chooses some
/// by looking at the folder (off the async threads), and `apply` records
/// each one picked. Nothing in a bucket. Returns how many were picked.
async fn each_slice_of_files<T: Send + 'static>(
    ledger: &crate::transfer::ledger::Ledger,
    job: &Job,
    read: fn(&Store, i64, i64) -> Result<Vec<T>>,
    id: fn(&T) -> i64,
    pick: fn(&crate::folder::Folder, &T) -> bool,
    apply: fn(&Store, &T) -> Result<()>,
) -> Result<usize> {
    if crate::destination::is_bucket_address(&job.destination) {
        return Ok(0);
    }
    let (job_id, root) = (job.id, std::path::PathBuf::from(&job.destination));
    let Ok(folder) = crate::folder::Folder::open(&root).map(Arc::new) else {
        return Ok(0);
    };
    let (mut after, mut picked) = (0, 0);
    loop {
        let files = ledger.call(move |s| read(s, job_id, after)).await?;
        let Some(last) = files.last() else {
            return Ok(picked);
        };
        after = id(last);
        let folder = folder.clone();
        let chosen = tokio::task::spawn_blocking(move || {
            files
                .into_iter()
                .filter(|file| pick(&folder, file))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        picked += chosen.len();
        ledger
            .call(move |s| chosen.iter().try_for_each(|file| apply(s, file)))
            .await?;
    }
}

/// Follows the job's row in the state file (written by another process): a
/// new limit applies at once; a pause or cancel stops the run. Renews the
/// run's lease on the job; a run whose lease was taken over stops.
fn watch_row(
    (store, events): (Arc<Mutex<Store>>, broadcast::Sender<Event>),
    (job_id, holder, destination): (i64, Holder, String),
    bandwidth: Bandwidth,
    (cancel, lost): (CancellationToken, Arc<std::sync::atomic::AtomicBool>),
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let tick = Duration::from_millis(500);
        let renew_every = (LEASE.as_millis() / 3 / tick.as_millis()).max(1) as u32;
        let mut interval = tokio::time::interval(tick);
        let mut ticks = 0u32;
        loop {
            interval.tick().await;
            ticks += 1;
            let (job, kept) = {
                let store = store.lock().unwrap_or_else(|e| e.into_inner());
                let kept = if ticks.is_multiple_of(renew_every) {
                    store.renew_job(job_id, &holder).unwrap_or(true)
                } else {
                    true
                };
                (store.job(job_id).ok().flatten(), kept)
            };
            if !kept && !cancel.is_cancelled() {
                // Said, not only logged; the run then ends, writing nothing
                // of the job (see `lost`).
                let holder = store
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .job_holder(job_id)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "another Cairn".into());
                announce(
                    &store,
                    &events,
                    Event::Problem {
                        job: job_id,
                        href: destination.clone(),
                        reason: format!(
                            "{holder} took this job over (this run had not renewed its hold on it in time, or the state file was edited), so this run stops and leaves the job to it"
                        ),
                    },
                );
                lost.store(true, std::sync::atomic::Ordering::Release);
                cancel.cancel();
            }
            let Some(job) = job else { continue };
            if job.limit_rate != bandwidth.get() {
                bandwidth.set(job.limit_rate);
            }
            if matches!(job.state, JobState::Paused | JobState::Cancelled) {
                cancel.cancel();
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use rusqlite::trace::{TraceEvent, TraceEventCodes};
    use serde_json::json;

    use super::*;
    use crate::store::NewJob;

    /// Statements run on the one connection that traces them.
    static STATEMENTS: AtomicU64 = AtomicU64::new(0);

    /// Transactions and claims: their number follows the files and the clock
    /// (how many requests a batch gathers); counted apart, with a looser bound.
    static BATCHED: AtomicU64 = AtomicU64::new(0);
    const BATCHES: [&str; 3] = ["BEGIN", "COMMIT", "UPDATE assets SET state = 'active'"];

    /// Statements whose number follows the clock rather than the files
    /// (progress, the job's row, flushes): not counted.
    const BY_THE_CLOCK: [&str; 4] = [
        "SELECT (SELECT count(*) FROM items",
        "SELECT strftime",
        "SELECT id, source_url",
        "UPDATE jobs SET flushed_at",
    ];

    fn count(event: TraceEvent<'_>) {
        if let TraceEvent::Stmt(_, sql) = event {
            let sql = sql.trim_start();
            if BATCHES.iter().any(|start| sql.starts_with(start)) {
                BATCHED.fetch_add(1, Ordering::Relaxed);
            } else if !BY_THE_CLOCK.iter().any(|start| sql.starts_with(start)) {
                STATEMENTS.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The per-file work of a whole job (planning, claiming, recording each
    /// file, writing each item), counted rather than timed: a change that
    /// adds a statement per file fails here.
    ///
    /// The bound, for one-asset items without size or checksum in the
    /// catalog (the shape most large collections have): 4 statements per
    /// item to plan it (see `plan.rs`), 2 to record its file (the checksum
    /// before the file takes its place, then done), 2 to write the item (its
    /// assets, written; which items are ready is asked once per slice of
    /// them), and a few per job: at most 8.2 per item in all. Those
    /// whose number follows the clock rather than the files are not counted
    /// ([`BY_THE_CLOCK`]); transactions and claims are counted apart
    /// ([`BATCHES`]), at most 1.5 per item (one transaction or one claim per
    /// file goes over it).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_runs_a_bounded_number_of_statements_per_file() {
        const ITEMS: usize = 2_000;
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        std::fs::create_dir_all(source.join("files")).unwrap();
        let mut features = Vec::with_capacity(ITEMS);
        for i in 0..ITEMS {
            let name = format!("chip-{i:05}.bin");
            std::fs::write(source.join("files").join(&name), format!("chip {i}")).unwrap();
            features.push(json!({
                "type": "Feature", "stac_version": "1.1.0", "id": format!("chip-{i:05}"),
                "collection": "chips",
                "geometry": {"type": "Point", "coordinates": [i as f64 / 1e3, 1.5]},
                "bbox": [i as f64 / 1e3, 1.5, i as f64 / 1e3, 1.5],
                "properties": {"datetime": "2024-05-01T00:00:00Z"},
                "links": [],
                "assets": {"data": {"href": format!("./files/{name}"), "roles": ["data"]}},
            }));
        }
        let catalog = source.join("chips.json");
        let collection = json!({"type": "FeatureCollection", "features": features});
        std::fs::write(&catalog, collection.to_string()).unwrap();

        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let job = store
            .create_job(&NewJob {
                source_url: url::Url::from_file_path(&catalog).unwrap().to_string(),
                destination: dir.path().join("mirror").display().to_string(),
                selection: json!({}),
                limit_rate: None,
                concurrency: 8,
                per_host: 8,
            })
            .unwrap();
        store
            .conn()
            .trace_v2(TraceEventCodes::SQLITE_TRACE_STMT, Some(count));
        let runner = Runner::new(store, Fetcher::new().unwrap());
        runner.start(job).unwrap();
        let report = runner.wait(job).await.unwrap();
        assert_eq!(report.state, JobState::Finished, "{report:?}");
        assert_eq!(report.counts.done, ITEMS as u64);

        let statements = STATEMENTS.load(Ordering::Relaxed);
        let per_item = statements as f64 / ITEMS as f64;
        let batched = BATCHED.load(Ordering::Relaxed) as f64 / ITEMS as f64;
        eprintln!(
            "a job of {ITEMS} one-asset items: {per_item:.2} statements per item, and {batched:.2} for transactions and claims"
        );
        assert!(
            per_item <= 8.2,
            "{per_item:.2} statements per item; the bound is 8.2"
        );
        // Claims of 32 files and transactions of many requests: far fewer
        // than one each per file.
        assert!(
            batched <= 1.5,
            "{batched:.2} transactions and claims per item; the bound is 1.5"
        );
    }
}
