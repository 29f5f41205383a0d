//! `cairn jobs`, `cairn limit`, `cairn pause`, `cairn cancel`: the mirror jobs
//! in the state file. A running job reads its limit and state from the file
//! every half second, so these take effect while it runs, from any process.

use std::path::PathBuf;

use cairn::limit::parse_rate;
use cairn::store::{JobState, Store};
use cairn::{Error, Result};
use serde_json::json;

use super::{EXIT_OK, json_line, open_store, open_store_for_reading};

/// Arguments of `cairn jobs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object per job, then a summary line.
    #[arg(long)]
    json: bool,
}

/// Lists jobs, newest first.
pub fn run(args: Args, state: Option<PathBuf>) -> Result<u8> {
    let store = open_store_for_reading(state)?;
    let mut jobs = store.jobs()?;
    // A source's login or signature is the job's to use, not to show.
    for job in &mut jobs {
        job.source_url = cairn::provenance::redact(&job.source_url);
    }
    // A job said to run that no live process holds: the program copying
    // it ended without stopping it (killed, or the computer went down).
    let mut interrupted = std::collections::HashSet::new();
    for job in &jobs {
        if matches!(job.state, JobState::Running | JobState::Planning)
            && store.job_holder(job.id)?.is_none()
        {
            interrupted.insert(job.id);
        }
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        for job in &jobs {
            let mut line = serde_json::to_value(job).unwrap_or_default();
            if interrupted.contains(&job.id) {
                line["interrupted"] = json!(true);
            }
            json_line(&mut out, &line);
        }
        json_line(&mut out, &json!({"type": "summary", "jobs": jobs.len()}));
    } else if jobs.is_empty() {
        say!("No mirror jobs yet.");
    } else {
        for job in &jobs {
            // A job that stopped on its own says so, and why.
            let state = match &job.stop_reason {
                Some(_) => "stopped".to_string(),
                None if interrupted.contains(&job.id) => "interrupted".to_string(),
                None => format!("{:?}", job.state).to_lowercase(),
            };
            say!(
                "{:>5}  {:<10} {} -> {}",
                job.id,
                state,
                job.source_url,
                job.destination
            );
            if let Some(name) = &job.name {
                say!("       {name}");
            }
            if let Some(reason) = &job.stop_reason {
                say!("       It stopped: {reason}");
            } else if interrupted.contains(&job.id) {
                say!(
                    "       The program copying it ended before the job did; `{}` continues it where it stopped.",
                    super::command(&format!("resume {}", job.id))
                );
            }
        }
    }
    Ok(EXIT_OK)
}

/// Arguments of `cairn limit`.
#[derive(Debug, clap::Args)]
pub struct LimitArgs {
    /// The job (see `cairn jobs`).
    job_id: i64,
    /// Bytes per second, e.g. 500K, 10M, 1G; `off` for no limit.
    rate: String,
}

/// Arguments of `cairn pause` and `cairn cancel`.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// The job (see `cairn jobs`).
    job_id: i64,
}

/// Changes a job's bandwidth limit, also while it runs.
pub fn limit(args: LimitArgs, state: Option<PathBuf>) -> Result<u8> {
    let rate = parse_rate(&args.rate)?;
    let store = open_store(state)?;
    existing(&store, args.job_id)?;
    store.set_job_limit_rate(args.job_id, rate)?;
    match rate {
        Some(rate) => say!(
            "Job {} is limited to {}/s.",
            args.job_id,
            super::mirror::human_bytes(rate)
        ),
        None => say!("Job {} has no bandwidth limit.", args.job_id),
    }
    Ok(EXIT_OK)
}

/// Pauses a job (`cairn resume` continues it) or cancels it.
pub fn stop(args: JobArgs, state: Option<PathBuf>, to: JobState) -> Result<u8> {
    let store = open_store(state)?;
    let job = existing(&store, args.job_id)?;
    if matches!(job.state, JobState::Finished | JobState::Cancelled) {
        say!(
            "Job {} is already {}.",
            args.job_id,
            format!("{:?}", job.state).to_lowercase()
        );
        return Ok(EXIT_OK);
    }
    store.set_job_state(args.job_id, to)?;
    match to {
        JobState::Cancelled => say!(
            "Job {} is cancelled; files already verified stay where they are.",
            args.job_id
        ),
        _ => say!(
            "Job {} is paused; `{}` continues it.",
            args.job_id,
            super::command(&format!("resume {}", args.job_id))
        ),
    }
    Ok(EXIT_OK)
}

fn existing(store: &Store, job_id: i64) -> Result<cairn::store::Job> {
    store.job(job_id)?.ok_or_else(|| {
        Error::invalid_input(format!("there is no job {job_id}; `cairn jobs` lists them"))
    })
}
