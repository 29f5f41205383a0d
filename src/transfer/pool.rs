//! Running a planned job: a bounded pool of transfers over the job's pending
//! assets, then the STAC write-out.
//!
//! Each worker claims the next pending asset from the state store, skips it if a
//! verified copy is already in place, else copies it with [`AssetCopy`], retrying
//! what may succeed later (with jittered backoff, honouring `Retry-After`) and
//! recording a plain reason for what will not. When the pool is done, every item
//! whose assets are all verified is written out, then its collection and the
//! root catalog.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::copy::{AssetCopy, verify_existing};
use crate::checksum::{Algorithm, Checksum};
use crate::events::{Counters, Event, Sampler};
use crate::fetch::Fetcher;
use crate::limit::Limits;
use crate::rewrite::{self, Mirrored};
use crate::store::{AssetRow, AssetState, Counts, Store};
use crate::{Error, Result};

/// How a job's transfers run.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Transfers at once.
    pub concurrency: usize,
    /// Attempts per asset before it is marked failed.
    pub max_attempts: u32,
    /// The first retry delay; later ones grow.
    pub min_delay: Duration,
    /// The longest retry delay.
    pub max_delay: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            concurrency: 8,
            max_attempts: 5,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The job's counts at the end.
    pub counts: Counts,
    /// Whether the run was interrupted (resumable).
    pub interrupted: bool,
    /// Items written to the destination in this run.
    pub items_written: u64,
}

/// Everything one job's workers share.
struct Shared {
    store: Arc<Mutex<Store>>,
    job_id: i64,
    destination: PathBuf,
    http: reqwest::Client,
    limits: Limits,
    cancel: CancellationToken,
    counters: Arc<Counters>,
    options: PoolOptions,
    events: Option<mpsc::UnboundedSender<Event>>,
}

impl Shared {
    fn db<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let run = || {
            let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            f(&store)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        }
    }

    fn emit(&self, event: Event) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

/// Runs job `job_id`'s pending assets into `destination` (a local folder), then
/// writes the STAC catalog. Progress goes to `events` about four times a second.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    store: Arc<Mutex<Store>>,
    fetcher: &Fetcher,
    job_id: i64,
    destination: &Path,
    limits: Limits,
    options: PoolOptions,
    cancel: CancellationToken,
    events: Option<mpsc::UnboundedSender<Event>>,
) -> Result<Outcome> {
    let shared = Arc::new(Shared {
        store,
        job_id,
        destination: destination.to_path_buf(),
        http: fetcher.http().clone(),
        limits,
        cancel: cancel.clone(),
        counters: Arc::new(Counters::default()),
        options,
        events,
    });
    shared.db(|s| s.reconcile_job(job_id))?;
    let before = shared.db(|s| s.job_counts(job_id))?;
    shared.emit(Event::Started {
        job: job_id,
        files_total: before.assets,
        bytes_total: before.bytes_expected,
    });

    let sampler = Sampler::new(
        job_id,
        before.bytes_done,
        before.done + before.skipped,
        before.bytes_expected,
        before.assets,
    );
    let ticker = {
        let shared = shared.clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let handle = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = stopped.cancelled() => break,
                    _ = interval.tick() => shared.emit(Event::Progress(sampler.sample(&shared.counters))),
                }
            }
            sampler
        });
        (stop, handle)
    };

    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..shared.options.concurrency.max(1) {
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
    let (stop, handle) = ticker;
    stop.cancel();
    if let Ok(sampler) = handle.await {
        shared.emit(Event::Progress(sampler.sample(&shared.counters)));
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    let items_written = write_out(&shared)?;
    let counts = shared.db(|s| s.job_counts(job_id))?;
    Ok(Outcome {
        counts,
        interrupted: cancel.is_cancelled(),
        items_written,
    })
}

async fn worker(shared: &Shared) -> Result<()> {
    while !shared.cancel.is_cancelled() {
        let Some(asset) = shared.db(|s| s.claim_asset(shared.job_id))? else {
            return Ok(());
        };
        copy_one(shared, asset).await?;
    }
    Ok(())
}

/// Copies one claimed asset, with retries; records the outcome. Errors only for
/// failures of the state store itself.
async fn copy_one(shared: &Shared, asset: AssetRow) -> Result<()> {
    let target = shared.destination.join(&asset.path);
    let expected_checksum = asset
        .expected_checksum
        .as_deref()
        .and_then(|c| Checksum::parse(c).ok());
    // Already there and verified against the catalog's checksum: nothing to
    // fetch. (A size alone does not prove a file; without a checksum it is
    // fetched again and replaced only once the new copy is verified.)
    if expected_checksum.is_some()
        && target.exists()
        && let Some(verified) =
            verify_existing(&target, asset.expected_size, expected_checksum.clone()).await
    {
        let checksum = recorded_checksum(&asset, &verified.sha256);
        shared.db(|s| s.finish_asset(asset.id, AssetState::Skipped, verified.size, &checksum))?;
        shared.counters.files.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    let url = match Url::parse(&asset.href) {
        Ok(url) => url,
        Err(e) => return give_up(shared, &asset, &format!("its address is not valid: {e}")),
    };
    let mut copy = AssetCopy {
        url,
        target,
        expected_size: asset.expected_size,
        expected_checksum,
        validator: asset.validator.clone(),
    };
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(shared.options.min_delay)
        .with_max_delay(shared.options.max_delay)
        .with_jitter()
        .without_max_times()
        .build();
    let mut attempts = asset.attempts;
    loop {
        let mut validator = None;
        let result = copy
            .run(
                &shared.http,
                &shared.limits,
                &shared.cancel,
                &shared.counters.bytes,
                |started| {
                    validator = Some(started.validator.clone());
                },
            )
            .await;
        if let Some(validator) = validator {
            copy.validator = validator.clone();
            shared.db(|s| s.set_asset_validator(asset.id, validator.as_deref()))?;
        }
        attempts += 1;
        let error = match result {
            Ok(copied) => {
                let checksum = recorded_checksum(&asset, &copied.verified.sha256);
                shared.db(|s| {
                    s.finish_asset(asset.id, AssetState::Done, copied.verified.size, &checksum)
                })?;
                shared.counters.files.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(Error::Cancelled) => {
                shared.db(|s| s.release_asset(asset.id))?;
                return Ok(());
            }
            Err(error) => error,
        };
        // A verification failure may be a passing corruption: it counts as an
        // attempt and is tried again, like a busy server.
        let again = (error.is_retryable() || matches!(error, Error::Verification { .. }))
            && attempts < shared.options.max_attempts;
        if !again {
            return give_up(shared, &asset, &plain(&error));
        }
        shared.db(|s| s.note_attempt(asset.id, &plain(&error)))?;
        let delay = delays.next().unwrap_or(shared.options.max_delay);
        let delay = error.retry_after().map_or(delay, |asked| {
            asked.min(Duration::from_secs(120)).max(delay)
        });
        tokio::select! {
            _ = shared.cancel.cancelled() => {
                shared.db(|s| s.release_asset(asset.id))?;
                return Ok(());
            }
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

fn give_up(shared: &Shared, asset: &AssetRow, reason: &str) -> Result<()> {
    shared.db(|s| s.fail_attempt(asset.id, reason, true))?;
    shared.counters.failed.fetch_add(1, Ordering::Relaxed);
    shared.emit(Event::AssetFailed {
        href: asset.href.clone(),
        reason: reason.to_string(),
    });
    Ok(())
}

/// The reason recorded for a failed asset: the error's own plain sentence.
fn plain(error: &Error) -> String {
    error.to_string()
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
fn write_out(shared: &Shared) -> Result<u64> {
    let job_id = shared.job_id;
    let job = shared
        .db(|s| s.job(job_id))?
        .ok_or_else(|| Error::invalid_input(format!("there is no job {job_id}")))?;
    let items = shared.db(|s| s.items_to_write(job_id))?;
    let dest = &shared.destination;
    let mut written = 0;
    for item in &items {
        let finished = shared.db(|s| s.finished_assets(item.id))?;
        let mirrored: Vec<Mirrored> = finished
            .into_iter()
            .map(|(key, path, size, checksum)| Mirrored {
                key,
                file_name: path.rsplit('/').next().unwrap_or_default().to_string(),
                size,
                checksum,
            })
            .collect();
        let name = item.dir.rsplit('/').next().unwrap_or_default();
        let document = rewrite::item(&item.document, &mirrored);
        rewrite::write_json(
            &dest.join(&item.dir).join(format!("{name}.json")),
            &document,
        )?;
        shared.db(|s| s.mark_item_written(item.id))?;
        written += 1;
    }
    // Collections: every folder that holds written items of this job.
    let all_written = shared.db(|s| s.written_items(job_id))?;
    let collections = shared.db(|s| s.job_collections(job_id))?;
    let mut dirs: Vec<String> = Vec::new();
    for item in &all_written {
        let dir = item.dir.split('/').next().unwrap_or_default();
        if !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_string());
        }
    }
    for dir in &dirs {
        let links: Vec<String> = all_written
            .iter()
            .filter(|i| i.dir.split('/').next() == Some(dir.as_str()))
            .map(|i| {
                let name = i.dir.rsplit('/').next().unwrap_or_default();
                format!("./{name}/{name}.json")
            })
            .collect();
        let source = collections
            .iter()
            .find(|c| &c.dir == dir)
            .map(|c| c.document.clone())
            .unwrap_or_else(|| rewrite::stand_in_collection(dir));
        let path = dest.join(dir).join("collection.json");
        let existing = rewrite::read_existing(&path);
        rewrite::write_json(
            &path,
            &rewrite::collection(&source, existing.as_ref(), &links),
        )?;
    }
    let path = dest.join("catalog.json");
    let existing = rewrite::read_existing(&path);
    let title = shared
        .db(|s| s.source(&job.source_url))?
        .and_then(|s| s.title);
    let root = rewrite::root(existing.as_ref(), &job.source_url, title.as_deref(), &dirs);
    rewrite::write_json(&path, &root)?;
    Ok(written)
}
