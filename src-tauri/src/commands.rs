//! What the window can ask for: each command is one call into the engine.
//! Errors reach the window as [`AppError`]: a stable code and a sentence.
//! Every command is async: it runs on the runtime the engine spawns its jobs on.

use std::ops::ControlFlow;

use cairn::catalog::browse::{Entry, ItemSummary, look as look_at};
use cairn::catalog::search::{Found, search};
use cairn::catalog::walk::Problem;
use cairn::limit::parse_rate;
use cairn::plan::Selection;
use cairn::runner::{Estimate, JobRequest, JobStatus};
use cairn::store::{Failure, ItemMark, LogLine};
use cairn::verify::{Report, VerifyOptions, verify};
use serde::Serialize;
use specta::Type;
use tauri::State;

use crate::App;
use crate::sources::{self, SourceEntry};

/// An engine error, in plain words.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
pub struct AppError {
    /// What kind of error (`not_found`, `unavailable`, `invalid_input`...).
    pub code: String,
    /// What happened and what to do, for people.
    pub message: String,
}

impl From<cairn::Error> for AppError {
    fn from(error: cairn::Error) -> AppError {
        AppError {
            code: error.code().to_string(),
            message: error.to_string(),
        }
    }
}

type Reply<T> = Result<T, AppError>;

/// The catalogs to start from: the demo, bookmarks, public catalogs, recent ones.
#[tauri::command]
#[specta::specta]
pub async fn sources(app: State<'_, App>) -> Reply<Vec<SourceEntry>> {
    let known = app.runner.with_store(|s| s.sources())?;
    let demo = app
        .demo
        .as_ref()
        .and_then(|p| url::Url::from_file_path(p).ok())
        .map(|u| u.to_string());
    Ok(sources::list(demo.as_deref(), &known))
}

/// Bookmarks a catalog, or takes its bookmark away.
#[tauri::command]
#[specta::specta]
pub async fn set_bookmark(app: State<'_, App>, url: String, bookmarked: bool) -> Reply<()> {
    app.runner
        .with_store(|s| s.set_bookmark(&url, bookmarked))?;
    Ok(())
}

/// Reads one catalog, collection or API and what it links to; remembers it
/// among the recent sources.
#[tauri::command]
#[specta::specta]
pub async fn look(app: State<'_, App>, url: String) -> Reply<Entry> {
    let entry = look_at(&app.fetcher, &url).await?;
    app.runner.with_store(|s| {
        s.touch_source(&entry.url, entry.title.as_deref(), Some(entry.kind.noun()))
    })?;
    Ok(entry)
}

/// Items found by a search, for the map and the table.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
pub struct ItemPage {
    /// The items, in the order found.
    pub items: Vec<ItemSummary>,
    /// What could not be read on the way.
    pub problems: Vec<Problem>,
    /// Whether the search stopped at `max_items` with more to find.
    pub more: bool,
}

/// The items of `source` that match `selection`, up to `max_items`.
#[tauri::command]
#[specta::specta]
pub async fn search_items(
    app: State<'_, App>,
    source: String,
    selection: Selection,
    max_items: u32,
) -> Reply<ItemPage> {
    let mut page = ItemPage {
        items: Vec::new(),
        problems: Vec::new(),
        more: false,
    };
    let max = u64::from(max_items);
    let query = selection.search()?;
    search(&app.fetcher, &source, &query, Some(max + 1), |found| {
        match found {
            Found::Item(_) if page.items.len() as u64 >= max => {
                page.more = true;
                return ControlFlow::Break(());
            }
            Found::Item(item) => page.items.extend(ItemSummary::of(&item)),
            Found::Problem(problem) => page.problems.push(problem),
        }
        ControlFlow::Continue(())
    })
    .await?;
    Ok(page)
}

/// Records and plans a job without copying: what it will copy, and whether
/// the destination has room.
#[tauri::command]
#[specta::specta]
pub async fn estimate(app: State<'_, App>, request: JobRequest) -> Reply<Estimate> {
    Ok(app.runner.estimate(&request).await?)
}

/// Starts (or continues) a planned job in the background.
#[tauri::command]
#[specta::specta]
pub async fn start_job(app: State<'_, App>, job: i64) -> Reply<()> {
    Ok(app.runner.start(job)?)
}

/// Every job, newest first, with its counts.
#[tauri::command]
#[specta::specta]
pub async fn jobs(app: State<'_, App>) -> Reply<Vec<JobStatus>> {
    Ok(app.runner.jobs()?)
}

/// The failed assets of a job, with the reasons.
#[tauri::command]
#[specta::specta]
pub async fn failures(app: State<'_, App>, job: i64) -> Reply<Vec<Failure>> {
    Ok(app.runner.with_store(|s| s.failures(job))?)
}

/// The last lines of a job's log (its plan, problems, failures, stops).
#[tauri::command]
#[specta::specta]
pub async fn job_log(app: State<'_, App>, job: i64) -> Reply<Vec<LogLine>> {
    Ok(app.runner.with_store(|s| s.job_log(job, 500))?)
}

/// Pauses a job; everything copied so far stays.
#[tauri::command]
#[specta::specta]
pub async fn pause_job(app: State<'_, App>, job: i64) -> Reply<()> {
    Ok(app.runner.pause(job)?)
}

/// Continues a job and tries its failed assets again.
#[tauri::command]
#[specta::specta]
pub async fn resume_job(app: State<'_, App>, job: i64) -> Reply<()> {
    Ok(app.runner.resume(job)?)
}

/// Stops a job for good; verified files stay.
#[tauri::command]
#[specta::specta]
pub async fn cancel_job(app: State<'_, App>, job: i64) -> Reply<()> {
    Ok(app.runner.cancel(job)?)
}

/// Sets a job's bandwidth limit ("10M", "500K"; empty: none), at once.
#[tauri::command]
#[specta::specta]
pub async fn set_job_limit(app: State<'_, App>, job: i64, rate: String) -> Reply<()> {
    let rate = if rate.trim().is_empty() {
        None
    } else {
        parse_rate(&rate)?
    };
    Ok(app.runner.set_limit(job, rate)?)
}

/// Checks a job's mirror: every file against the size and checksum the
/// mirror records, item documents against what Cairn wrote, and files no
/// entry names. With `repair`, what is missing or damaged is fetched again
/// through the job (and edited item documents written again).
#[tauri::command]
#[specta::specta]
pub async fn check_copy(app: State<'_, App>, job: i64, repair: bool) -> Reply<Report> {
    let destination = app
        .runner
        .with_store(|s| s.job(job))?
        .ok_or_else(|| cairn::Error::invalid_input(format!("there is no job {job}")))?
        .destination;
    let options = VerifyOptions { repair };
    Ok(verify(&destination, Some(&app.runner), &options).await?)
}

/// Where each item of `source` stands in the mirrors made from it (done,
/// pending, failed), for the map's colours.
#[tauri::command]
#[specta::specta]
pub async fn item_marks(app: State<'_, App>, source: String) -> Reply<Vec<ItemMark>> {
    Ok(app.runner.with_store(|s| s.item_marks(&source))?)
}

/// The window says it is ready to use: logged with the time since start-up.
/// With `CAIRN_EXIT_WHEN_READY` set (the startup benchmark), the app prints
/// that time and quits.
#[tauri::command]
#[specta::specta]
pub async fn window_ready(app: tauri::AppHandle) -> Reply<()> {
    let elapsed = crate::STARTED.get().map(|t| t.elapsed());
    tracing::info!(?elapsed, "the window is ready");
    if std::env::var_os("CAIRN_EXIT_WHEN_READY").is_some() {
        println!("ready_ms={}", elapsed.map_or(0, |e| e.as_millis()));
        app.exit(0);
    }
    Ok(())
}
