//! `cairn mirror` and `cairn resume`: plan a selection, copy and verify it, and
//! write a self-contained STAC catalog at the destination.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cairn::destination::catalog_location;
use cairn::events::{Event, Snapshot};
use cairn::fetch::Fetcher;
use cairn::limit::parse_rate;
use cairn::plan::Selection;
use cairn::runner::{JobRequest, Report, Runner, prepare_job};
use cairn::store::{JobState, Store};
use cairn::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{
    EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, ItemFilter, SignIn, interrupt_token, json_line,
    open_store, plural,
};
use cairn::fetch::access::{Secrets, Settings};

/// Arguments of `cairn mirror`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A catalog, collection or STAC API: URL or path.
    source: String,
    /// A local folder (created if needed), or s3://bucket/prefix, az://container/prefix,
    /// gs://bucket/prefix (credentials from the environment).
    destination: String,
    #[command(flatten)]
    filter: ItemFilter,
    /// Only these assets: keys, roles or media types (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "KEY_OR_ROLE")]
    assets: Vec<String>,
    /// Copy each asset from its alternate address of this name where it
    /// has one (the alternate-assets extension: s3, https, ...), or from its
    /// own href with "main". Without: its own href, unless that is a bucket
    /// address and an alternate is on the web (no credentials needed).
    #[arg(long, value_name = "NAME")]
    alternate: Option<String>,
    /// Transfers at once (1 to 256).
    #[arg(long, default_value_t = 8, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=cairn::runner::MAX_CONCURRENCY as i64))]
    concurrency: u32,
    /// Transfers at once from any one server (1 to 256).
    #[arg(long, default_value_t = 6, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=cairn::runner::MAX_CONCURRENCY as i64))]
    per_host: u32,
    /// Bandwidth limit in bytes per second, e.g. 500K, 10M, 1G.
    #[arg(long, value_name = "RATE")]
    limit_rate: Option<String>,
    /// Show the plan (items, assets, bytes, what is already there) and copy nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object per line (plan, progress, failures), then a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sign_in: SignIn,
}

/// Arguments of `cairn resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The job to continue (see `cairn jobs`).
    job_id: i64,
    /// Print one JSON object per line, then a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sign_in: SignIn,
}

/// Arguments of `cairn sync`.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// The job to bring up to date (see `cairn jobs`).
    job_id: i64,
    /// Replace the files whose source changed instead of keeping the
    /// previous version beside them (kept for this job from now on).
    #[arg(long, conflicts_with = "keep_versions")]
    overwrite_changed: bool,
    /// Keep the previous version of each changed file again (the default).
    #[arg(long)]
    keep_versions: bool,
    /// Remove from the mirror the items the source no longer has (their
    /// files too), instead of keeping them marked as removed upstream.
    #[arg(long, conflicts_with = "keep_removed")]
    mirror_deletions: bool,
    /// Keep the items the source no longer has, marked (the default).
    #[arg(long)]
    keep_removed: bool,
    /// Print one JSON object per line, then a summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sign_in: SignIn,
}

/// Plans and runs a new mirror job (or continues the same one).
pub async fn run(args: Args, state: Option<PathBuf>) -> Result<u8> {
    let limit_rate = args
        .limit_rate
        .as_deref()
        .map(parse_rate)
        .transpose()?
        .flatten();
    cairn::runner::check_destination(&args.destination).await?;
    let (access, secrets) = args.sign_in.read()?;
    let store = open_store(state)?;
    let mut request = JobRequest {
        source: args.source,
        destination: args.destination,
        selection: Selection {
            collections: args.filter.collections,
            bbox: args.filter.bbox,
            datetime: args.filter.datetime,
            assets: args.assets,
            max_items: args.filter.max_items,
            // Stored as typed but for spaces around it (none is none).
            filter: args
                .filter
                .filter
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty()),
            alternate: args.alternate.filter(|a| !a.trim().is_empty()),
            ..Selection::default()
        },
        limit_rate,
        concurrency: args.concurrency,
        per_host: args.per_host,
        name: None,
        access,
    };
    // Without a choice: the address that needs no credentials, unless the
    // person pays to read the buckets, or this is a job made before the
    // choice existed (it goes on reading what it read).
    if request.selection.alternate.is_none()
        && !request.access.requester_pays
        && cairn::runner::existing_job(&store, &request)?.is_none()
    {
        request.selection.alternate = Some(cairn::plan::AUTO.to_string());
    }
    // A dry run of a job that exists changes none of its settings (its
    // limit, its concurrency): it only plans.
    let job_id = match args.dry_run {
        true => match cairn::runner::existing_job(&store, &request)? {
            Some(job_id) => job_id,
            None => prepare_job(&store, &request)?,
        },
        false => prepare_job(&store, &request)?,
    };
    // The same mirror again, once it has run to its end: a sync.
    let ended = store.has_copied(job_id)?;
    let run = match (args.dry_run, ended) {
        (true, _) => Run::PlanOnly,
        (false, true) => Run::Sync,
        (false, false) => Run::Start,
    };
    execute(store, job_id, run, args.json, secrets).await
}

/// How `execute` runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Plan only.
    PlanOnly,
    /// Start or continue it.
    Start,
    /// Bring it up to date.
    Sync,
}

/// The state store and job `job_id`, which no other process copies now.
fn free_job(state: Option<PathBuf>, job_id: i64) -> Result<(Store, cairn::store::Job)> {
    let store = open_store(state)?;
    let job = store.job(job_id)?.ok_or_else(|| {
        Error::invalid_input(format!("there is no job {job_id}; `cairn jobs` lists them"))
    })?;
    if let Some(other) = store.job_holder(job.id)? {
        return Err(cairn::runner::held_elsewhere(job.id, &other));
    }
    Ok((store, job))
}

/// The secrets of a job that goes on: sign-in options given again replace
/// the job's own (headers all together, when any is given; a .netrc or
/// signing each alone; requester-pays once on stays on).
fn sign_in_again(store: &Store, job: &cairn::store::Job, sign_in: &SignIn) -> Result<Secrets> {
    if !sign_in.given() {
        return Ok(Secrets::default());
    }
    let (given, secrets) = sign_in.read()?;
    let access = Settings {
        headers: match given.headers.is_empty() {
            true => job.access.headers.clone(),
            false => given.headers,
        },
        netrc: given.netrc.or(job.access.netrc.clone()),
        sign: given.sign.or(job.access.sign.clone()),
        requester_pays: given.requester_pays || job.access.requester_pays,
    };
    store.set_job_access(job.id, &access)?;
    Ok(secrets)
}

/// Continues a job after an interruption or a crash, and tries its failed
/// assets again.
pub async fn resume(args: ResumeArgs, state: Option<PathBuf>) -> Result<u8> {
    let (store, job) = free_job(state, args.job_id)?;
    let secrets = sign_in_again(&store, &job, &args.sign_in)?;
    // Failed assets get a fresh set of attempts: the server may be back.
    store.retry_failed(job.id)?;
    execute(store, job.id, Run::Start, args.json, secrets).await
}

/// Plans a finished job's source again and copies only what is new or
/// changed; marks (or, if asked, removes) the items gone from the source.
pub async fn sync(args: SyncArgs, state: Option<PathBuf>) -> Result<u8> {
    let (store, job) = free_job(state, args.job_id)?;
    let keep_versions = match (args.overwrite_changed, args.keep_versions) {
        (true, _) => false,
        (_, true) => true,
        _ => job.keep_versions,
    };
    let mirror_deletions = match (args.mirror_deletions, args.keep_removed) {
        (true, _) => true,
        (_, true) => false,
        _ => job.mirror_deletions,
    };
    store.set_job_sync_options(job.id, keep_versions, mirror_deletions)?;
    let secrets = sign_in_again(&store, &job, &args.sign_in)?;
    execute(store, job.id, Run::Sync, args.json, secrets).await
}

async fn execute(store: Store, job_id: i64, run: Run, json: bool, secrets: Secrets) -> Result<u8> {
    let dry_run = run == Run::PlanOnly;
    let job = store
        .job(job_id)?
        .ok_or_else(|| Error::invalid_input(format!("there is no job {job_id}")))?;
    // A sync this command ends is summed up; not one an earlier run ended.
    let started = store.now();
    if job.access.requester_pays && !dry_run && !json {
        say_err!("{}", cairn::events::REQUESTER_PAYS);
    }
    let runner = Arc::new(Runner::new(store, Fetcher::new()?));
    runner.give_secrets(job_id, secrets);
    let done = CancellationToken::new();
    let printer = tokio::spawn(print_events(runner.subscribe(), job_id, json, done.clone()));
    let interrupt = interrupt_token();
    let result = if dry_run {
        tokio::select! {
            planned = runner.plan_only(job_id) => planned,
            _ = interrupt.cancelled() => {
                // As it was: a plan stopped half way changed nothing it
                // showed (a job never run waits, paused).
                runner.with_store(|s| match job.state.has_run() {
                    true => s.restore_job(&job),
                    false => s.set_job_state(job_id, JobState::Paused),
                })?;
                Err(Error::Cancelled)
            }
        }
    } else {
        match run {
            Run::Sync => runner.sync(job_id)?,
            _ => runner.start(job_id)?,
        }
        // Ctrl-C stops the job cleanly; it is paused, and resumable.
        let stopper = {
            let runner = runner.clone();
            tokio::spawn(async move {
                interrupt.cancelled().await;
                runner.interrupt(job_id);
            })
        };
        let report = runner.wait(job_id).await;
        stopper.abort();
        report
    };
    done.cancel();
    let _ = printer.await;
    // A job stopped by something the person fixes (a full disk) continues
    // where it stopped: the command for that is said here, not in the
    // message the app shows too.
    if let Err(error) = &result
        && super::exit_code(error) == EXIT_INTERRUPTED
        && !matches!(error, Error::Cancelled)
    {
        say_err!(
            "Once that is fixed, `{}` continues the job where it stopped.",
            super::command(&format!("resume {job_id}"))
        );
    }
    let report = result?;
    if dry_run {
        // The plan line said what it holds; the last line sums it up as
        // for a run (nothing was copied).
        if json {
            let mut summary = summary_of(&report);
            summary["dry_run"] = json!(true);
            json_line(&mut std::io::stdout().lock(), &summary);
        }
        return Ok(EXIT_OK);
    }
    // The progress printer has stopped: stdout is free again.
    runner.with_store(|store| {
        finish(
            &mut std::io::stdout().lock(),
            json,
            store,
            (&report, &started),
            &job.destination,
        )
    })
}

/// Failures listed at the end of a run in words at most: each was said as
/// it happened, and a list of 20,000 copies of one reason hides the summary.
const FAILURES_LISTED: usize = 100;

/// The `--json` summary of a job's run: its counts, its number and state.
fn summary_of(report: &Report) -> serde_json::Value {
    let mut summary = serde_json::to_value(&report.counts).unwrap_or_default();
    summary["type"] = json!("summary");
    summary["job"] = json!(report.job);
    summary["state"] = json!(format!("{:?}", report.state).to_lowercase());
    summary
}

fn finish(
    out: &mut impl Write,
    json: bool,
    store: &Store,
    (report, started): (&Report, &str),
    destination: &str,
) -> Result<u8> {
    let (job_id, state, counts) = (report.job, report.state, &report.counts);
    let code = match state {
        JobState::Paused | JobState::Cancelled => EXIT_INTERRUPTED,
        JobState::Failed => EXIT_FAILED,
        _ => EXIT_OK,
    };
    let failures = store.failures(job_id)?;
    // What this run changed, when it was a sync that ended now.
    let run =
        store.runs(job_id)?.into_iter().next().filter(|r| {
            r.kind == "sync" && r.finished_at.as_deref().is_some_and(|at| at >= started)
        });
    if json {
        for failure in &failures {
            json_line(
                out,
                &json!({"type": "failed", "href": failure.href, "path": failure.path, "attempts": failure.attempts, "reason": failure.reason}),
            );
        }
        let mut summary = summary_of(report);
        summary["catalog"] = json!(catalog_location(destination));
        if let Some(run) = &run {
            summary["sync"] = serde_json::to_value(run).unwrap_or_default();
        }
        json_line(out, &summary);
    } else {
        let _ = writeln!(
            out,
            "\nJob {job_id}: {} copied and verified, {} already there, {} failed, {} not finished ({} in all).",
            plural(counts.done, "asset"),
            counts.skipped,
            counts.failed,
            counts.pending,
            human_bytes(counts.bytes_done)
        );
        if let Some(run) = &run {
            let _ = writeln!(out, "{}", cairn::words::run_summary(run));
        }
        if counts.items_failed > 0 {
            let _ = writeln!(
                out,
                "{} could not be written into the mirror.",
                plural(counts.items_failed, "item description")
            );
        }
        if !failures.is_empty() {
            let _ = writeln!(
                out,
                "\nThese {}:",
                if counts.items_failed > 0 {
                    "files could not be put in the mirror"
                } else {
                    "assets could not be copied"
                }
            );
            for failure in failures.iter().take(FAILURES_LISTED) {
                let _ = writeln!(
                    out,
                    "  - {}\n    from {}\n    {} (after {})",
                    cairn::words::printable(&failure.path),
                    cairn::words::printable(&cairn::provenance::redact(&failure.href)),
                    cairn::words::printable(&failure.reason),
                    plural(failure.attempts as u64, "attempt")
                );
            }
            if failures.len() > FAILURES_LISTED {
                let _ = writeln!(
                    out,
                    "  ...and {} more (each was said as it failed; with --json, every one is listed)",
                    failures.len() - FAILURES_LISTED
                );
            }
            let _ = writeln!(
                out,
                "\nRun `{}` to try them again.",
                super::command(&format!("resume {job_id}"))
            );
        }
        if code == EXIT_INTERRUPTED {
            let _ = writeln!(
                out,
                "Stopped before the end. Run `{}` to continue where it stopped.",
                super::command(&format!("resume {job_id}"))
            );
        } else {
            let _ = writeln!(out, "The catalog is at {}", catalog_location(destination));
        }
    }
    Ok(code)
}

/// Shows progress: JSON lines with `--json`; a progress bar on a terminal;
/// otherwise a line every few seconds (logs stay readable).
async fn print_events(
    mut events: broadcast::Receiver<Event>,
    job_id: i64,
    json: bool,
    done: CancellationToken,
) {
    let terminal = std::io::stderr().is_terminal();
    let mut bar: Option<ProgressBar> = None;
    let mut last_line: Option<std::time::Instant> = None;
    loop {
        let event = tokio::select! {
            biased;
            received = events.recv() => match received {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            // The run is over: print what is left, then stop.
            _ = done.cancelled() => match events.try_recv() {
                Ok(event) => event,
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            },
        };
        if event.job() != job_id {
            continue;
        }
        if json {
            json_line(&mut std::io::stdout().lock(), &event);
            continue;
        }
        match &event {
            Event::Started {
                bytes_total,
                files_total,
                ..
            } if terminal => {
                bar = Some(progress_bar(*bytes_total, *files_total));
            }
            Event::Progress(snapshot) => {
                if let Some(bar) = &bar {
                    if snapshot.bytes_total > 0 {
                        if bar.length().is_none() {
                            // Sizes became known while planning.
                            bar.set_style(bytes_style());
                        }
                        bar.set_length(snapshot.bytes_total.max(snapshot.bytes_done));
                    }
                    bar.set_position(snapshot.bytes_done);
                    bar.set_message(format!(
                        "{}/{} files, {}/s",
                        snapshot.files_done,
                        snapshot.files_total,
                        human_bytes(snapshot.rate as u64)
                    ));
                } else if last_line.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
                    last_line = Some(std::time::Instant::now());
                    say_err!("{}", progress_line(snapshot));
                }
            }
            Event::AssetFailed { href, reason, .. } => {
                let text = format!(
                    "failed: {}\n  {}",
                    cairn::words::printable(href),
                    cairn::words::printable(reason)
                );
                match &bar {
                    Some(bar) => bar.println(text),
                    None => say_err!("{text}"),
                }
            }
            Event::Finished { .. } => {
                if let Some(bar) = bar.take() {
                    bar.finish();
                }
            }
            Event::Problem { href, reason, .. } => {
                let text = format!(
                    "note: {}\n  {}",
                    cairn::words::printable(href),
                    cairn::words::printable(reason)
                );
                match &bar {
                    Some(bar) => bar.println(text),
                    None => say_err!("{text}"),
                }
            }
            Event::Waiting { .. } => {
                let text = event.log_line().map(|(_, text)| text).unwrap_or_default();
                match &bar {
                    Some(bar) => bar.println(text),
                    None => say_err!("{text}"),
                }
            }
            Event::Planned { job, .. } => {
                // The sentence the job's log keeps.
                let sentence = event.log_line().map(|(_, text)| text).unwrap_or_default();
                let text = format!("Job {job}: {sentence}");
                match &bar {
                    Some(bar) => bar.println(text),
                    None => say!("{text}"),
                }
            }
            // The error itself is printed when the run returns; the watcher
            // runs in the app only.
            Event::Started { .. } | Event::Stopped { .. } | Event::Flagged { .. } => {}
        }
    }
    if let Some(bar) = bar {
        bar.abandon();
    }
}

/// A bar over bytes when the catalog announced sizes, else a spinner.
fn progress_bar(bytes_total: u64, files_total: u64) -> ProgressBar {
    let bar = if bytes_total > 0 {
        ProgressBar::new(bytes_total).with_style(bytes_style())
    } else {
        ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {binary_bytes}, {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        )
    };
    bar.set_message(format!("0/{files_total} files"));
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

fn bytes_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{bar:30.cyan/blue} {percent:>3}% {decimal_bytes}/{decimal_total_bytes}, {msg}, {eta} left",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn progress_line(snapshot: &Snapshot) -> String {
    let percent = (snapshot.bytes_done * 100)
        .checked_div(snapshot.bytes_total)
        .map(|p| format!("{p:>3}% "))
        .unwrap_or_default();
    let eta = snapshot
        .eta_seconds
        .map(|s| format!(", {s} s left"))
        .unwrap_or_default();
    format!(
        "{percent}{} of {}, {}/{} files, {}/s{eta}",
        human_bytes(snapshot.bytes_done),
        human_bytes(snapshot.bytes_total),
        snapshot.files_done,
        snapshot.files_total,
        human_bytes(snapshot.rate as u64)
    )
}

pub use cairn::words::human_bytes;
