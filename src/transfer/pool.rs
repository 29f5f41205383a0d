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

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::copy::{AssetCopy, verify_existing};
use crate::checksum::{Algorithm, Checksum};
use crate::destination::Destination;
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
    /// Transfers at once from any one server.
    pub per_host: usize,
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
            per_host: 6,
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
    destination: Destination,
    http: reqwest::Client,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
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

    /// The gate that keeps at most `per_host` transfers on `url`'s server.
    fn host_gate(&self, url: &Url) -> Arc<Semaphore> {
        let host = format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        );
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(host)
            .or_insert_with(|| Arc::new(Semaphore::new(self.options.per_host.max(1))))
            .clone()
    }

    fn emit(&self, event: Event) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

/// Runs job `job_id`'s pending assets into `destination`, then writes the STAC
/// catalog. Progress goes to `events` about four times a second.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    store: Arc<Mutex<Store>>,
    fetcher: &Fetcher,
    job_id: i64,
    destination: Destination,
    limits: Limits,
    options: PoolOptions,
    cancel: CancellationToken,
    events: Option<mpsc::UnboundedSender<Event>>,
) -> Result<Outcome> {
    let shared = Arc::new(Shared {
        store,
        job_id,
        destination,
        http: fetcher.http().clone(),
        hosts: Mutex::new(HashMap::new()),
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
    let items_written = write_out(&shared).await?;
    let counts = shared.db(|s| s.job_counts(job_id))?;
    let interrupted = cancel.is_cancelled();
    shared.emit(Event::Finished {
        job: job_id,
        counts: counts.clone(),
        interrupted,
    });
    Ok(Outcome {
        counts,
        interrupted,
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
    let local = shared.destination.local_file(&asset.path);
    let expected_checksum = asset
        .expected_checksum
        .as_deref()
        .and_then(|c| Checksum::parse(c).ok());
    // Already there and verified: nothing to fetch. The proof is the catalog's
    // checksum, or the one recorded when this job verified the file just before
    // a crash. A size alone does not prove a file: without a checksum it is
    // fetched again and replaced only once the new copy is verified.
    let recorded = asset.verified.as_ref();
    let proof = expected_checksum
        .clone()
        .or_else(|| recorded.and_then(|(_, c)| Checksum::parse(c).ok()));
    if let Some(proof) = proof
        && local.exists()
        && let Some(verified) = verify_existing(
            &local,
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
        return publish(shared, &asset, state, verified.size, &checksum).await;
    }
    let url = match Url::parse(&asset.href) {
        Ok(url) => url,
        Err(e) => return give_up(shared, &asset, &format!("its address is not valid ({e})")),
    };
    let gate = shared.host_gate(&url);
    let mut copy = AssetCopy {
        url,
        target: local,
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
        let permit = tokio::select! {
            _ = shared.cancel.cancelled() => return release(shared, &asset),
            permit = gate.clone().acquire_owned() => permit,
        };
        // The validator is stored as soon as the server answers, before the
        // body: a crash mid-body can then resume the partial file.
        let mut validator = None;
        let mut stored = Ok(());
        let result = copy
            .run(
                &shared.http,
                &shared.limits,
                &shared.cancel,
                &shared.counters.bytes,
                |started| {
                    if started.validator != copy.validator {
                        stored = shared
                            .db(|s| s.set_asset_validator(asset.id, started.validator.as_deref()));
                    }
                    validator = Some(started.validator.clone());
                },
            )
            .await;
        drop(permit);
        stored?;
        if let Some(validator) = validator {
            copy.validator = validator;
        }
        attempts += 1;
        let error = match result {
            Ok(copied) => {
                let checksum = recorded_checksum(&asset, &copied.verified.sha256);
                let size = copied.verified.size;
                // Recorded before the file takes its place: after a crash the
                // file is recognised by this checksum, not fetched again.
                shared.db(|s| s.set_asset_verifying(asset.id, size, &checksum))?;
                if let Err(error) = copy.commit().await {
                    return give_up(shared, &asset, &plain(&error, &asset.href));
                }
                return publish(shared, &asset, AssetState::Done, size, &checksum).await;
            }
            Err(Error::Cancelled) => return release(shared, &asset),
            Err(error) => error,
        };
        // A verification failure may be a passing corruption: it counts as an
        // attempt and is tried again, like a busy server.
        let again = (error.is_retryable() || matches!(error, Error::Verification { .. }))
            && attempts < shared.options.max_attempts;
        if !again {
            return give_up(shared, &asset, &plain(&error, &asset.href));
        }
        shared.db(|s| s.note_attempt(asset.id, &plain(&error, &asset.href)))?;
        let delay = delays.next().unwrap_or(shared.options.max_delay);
        let delay = error.retry_after().map_or(delay, |asked| {
            asked.min(Duration::from_secs(120)).max(delay)
        });
        tokio::select! {
            _ = shared.cancel.cancelled() => return release(shared, &asset),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Makes a verified local file part of the mirror (an upload, for a bucket)
/// and marks its row.
async fn publish(
    shared: &Shared,
    asset: &AssetRow,
    state: AssetState,
    size: u64,
    checksum: &str,
) -> Result<()> {
    let published = tokio::select! {
        _ = shared.cancel.cancelled() => return release(shared, asset),
        published = shared.destination.publish(&asset.path) => published,
    };
    if let Err(error) = published {
        return give_up(shared, asset, &plain(&error, &asset.href));
    }
    shared.db(|s| s.finish_asset(asset.id, state, size, checksum))?;
    shared.destination.discard_staged(&asset.path).await;
    shared.counters.files.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Puts an interrupted asset back in the queue; its partial file stays.
fn release(shared: &Shared, asset: &AssetRow) -> Result<()> {
    shared.db(|s| s.release_asset(asset.id))
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

/// The reason recorded for a failed asset: the error's own plain sentence,
/// without the address it starts with (the failure list shows it apart).
fn plain(error: &Error, href: &str) -> String {
    let text = error.to_string();
    match text.strip_prefix(href) {
        Some(rest) => rest.trim_start_matches([':', ' ']).to_string(),
        None => text,
    }
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
async fn write_out(shared: &Shared) -> Result<u64> {
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
        dest.write_json(&format!("{}/{name}.json", item.dir), &document)
            .await?;
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
        let path = format!("{dir}/collection.json");
        let existing = dest.read_json(&path).await;
        dest.write_json(
            &path,
            &rewrite::collection(&source, existing.as_ref(), &links),
        )
        .await?;
    }
    let existing = dest.read_json("catalog.json").await;
    let title = shared
        .db(|s| s.source(&job.source_url))?
        .and_then(|s| s.title);
    let root = rewrite::root(existing.as_ref(), &job.source_url, title.as_deref(), &dirs);
    dest.write_json("catalog.json", &root).await?;
    Ok(written)
}
