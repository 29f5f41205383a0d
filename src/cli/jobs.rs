//! `cairn jobs`: the mirror jobs in the state file.

use std::path::PathBuf;

use cairn::Result;
use serde_json::json;

use super::{EXIT_OK, json_line, open_store};

/// Arguments of `cairn jobs`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON object per job, then a summary line.
    #[arg(long)]
    json: bool,
}

/// Lists jobs, newest first.
pub fn run(args: Args, state: Option<PathBuf>) -> Result<u8> {
    let store = open_store(state)?;
    let jobs = store.jobs()?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for job in &jobs {
            json_line(&mut out, job);
        }
        json_line(&mut out, &json!({"type": "summary", "jobs": jobs.len()}));
    } else if jobs.is_empty() {
        println!("No mirror jobs yet.");
    } else {
        for job in &jobs {
            println!(
                "{:>5}  {:<10} {} -> {}",
                job.id,
                format!("{:?}", job.state).to_lowercase(),
                job.source_url,
                job.destination
            );
        }
    }
    Ok(EXIT_OK)
}
