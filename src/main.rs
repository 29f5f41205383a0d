//! `cairn`: the command line over the Cairn engine.

#[macro_use]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc rather than the system's allocator: a mirror of many small
/// files allocates and frees from several threads at once (HTTP, JSON,
/// the state file), where glibc's malloc spends its time in its locks and
/// in giving memory back (about 7 % less CPU time for 20,000 files of
/// 20 KB, at the same peak memory; see the README's transfer figures).
/// Not on Windows, where jemalloc's build needs MSYS.
#[cfg(not(windows))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Mirror STAC catalogs: browse, search, copy and verify geospatial data.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, long_about = None)]
struct Cli {
    /// The state file (default: $CAIRN_HOME/cairn.db, else the platform data folder).
    #[arg(long, global = true, value_name = "PATH")]
    state: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what a catalog or API holds, as a tree with counts.
    Browse(cli::browse::Args),
    /// List the items of a catalog or API that match a search.
    Search(cli::search::Args),
    /// Copy and verify a selection into a folder or a bucket, as a self-contained STAC catalog.
    Mirror(cli::mirror::Args),
    /// List mirror jobs.
    Jobs(cli::jobs::Args),
    /// Continue a mirror job after an interruption or a crash; failed assets are tried again.
    Resume(cli::mirror::ResumeArgs),
    /// Bring a job's mirror up to date: plan its source again and copy only
    /// what is new or changed. Items gone from the source stay, marked as
    /// removed upstream; a changed file keeps its previous version beside it.
    Sync(cli::mirror::SyncArgs),
    /// Change a job's bandwidth limit, also while it runs.
    Limit(cli::jobs::LimitArgs),
    /// Pause a running job; `cairn resume` continues it.
    Pause(cli::jobs::JobArgs),
    /// Stop a job for good; verified files stay.
    Cancel(cli::jobs::JobArgs),
    /// Check every asset of a mirror against its file:size and file:checksum.
    Verify(cli::verify::Args),
    /// Package a mirror for archives (a BagIt bag) or write its stac-geoparquet index.
    Export(cli::export::Args),
    /// Keep a bucket's login in this computer's keyring, for every later
    /// job (the secret is read from standard input).
    SignIn(cli::sign_in::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // clap prints help and version itself; anything else is bad input.
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(cli::EXIT_BAD_INPUT)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    cli::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            say_err!("error: could not start: {error}");
            return ExitCode::from(cli::EXIT_FAILED);
        }
    };
    let state = cli.state;
    cli::remember_state(state.as_deref());
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Browse(args) => cli::browse::run(args, state).await,
            Command::Search(args) => cli::search::run(args, state).await,
            Command::Mirror(args) => cli::mirror::run(args, state).await,
            Command::Jobs(args) => cli::jobs::run(args, state),
            Command::Resume(args) => cli::mirror::resume(args, state).await,
            Command::Sync(args) => cli::mirror::sync(args, state).await,
            Command::Limit(args) => cli::jobs::limit(args, state),
            Command::Pause(args) => cli::jobs::stop(args, state, cairn::store::JobState::Paused),
            Command::Cancel(args) => {
                cli::jobs::stop(args, state, cairn::store::JobState::Cancelled)
            }
            Command::Verify(args) => cli::verify::run(args, state).await,
            Command::Export(args) => cli::export::run(args, state).await,
            // The keyring is asked with blocking calls.
            Command::SignIn(args) => tokio::task::spawn_blocking(move || cli::sign_in::run(args))
                .await
                .unwrap_or_else(|e| Err(cairn::Error::invalid_input(e.to_string()))),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            say_err!("error: {error}");
            ExitCode::from(cli::exit_code(&error))
        }
    }
}
