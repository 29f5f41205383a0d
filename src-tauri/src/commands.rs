//! What the window can ask for: each command is one call into the engine.
//! Errors reach the window as [`AppError`]: a stable code and a sentence.
//! Every command is async: it runs on the runtime the engine spawns its jobs on.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use cairn::catalog::browse::{DETAILED, Entry, ItemSummary, look as look_at};
use cairn::catalog::search::{Found, search};
use cairn::catalog::walk::Problem;
use cairn::destination::BucketLogin;
use cairn::limit::parse_rate;
use cairn::plan::Selection;
use cairn::runner::{Estimate, JobRequest, JobStatus};
use cairn::store::{Failure, ItemMark, LogLine, MirrorRow};
use cairn::verify::{Report, VerifyOptions, verify};
use serde::Serialize;
use specta::Type;
use tauri::State;
use tauri::ipc::Channel;
use tauri_plugin_autostart::ManagerExt as _;

use crate::App;
use crate::settings::{AppSettings, LimitNow};
use crate::sign_in::{self, SignInForm, Tested};
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

/// Reads one catalog, collection or API and what it links to; with
/// `remember` (what the person opened, not what a page reads to list its
/// children), remembers it among the recent sources.
#[tauri::command]
#[specta::specta]
pub async fn look(app: State<'_, App>, url: String, remember: bool) -> Reply<Entry> {
    let fetcher = app.sign_ins.fetcher(&app.fetcher, &url)?;
    let entry = look_at(&fetcher, &url).await?;
    if remember {
        app.runner.with_store(|s| {
            s.touch_source(&entry.url, entry.title.as_deref(), Some(entry.kind.noun()))
        })?;
    }
    Ok(entry)
}

/// Keeps how the person signs in to the host of `source`, for as long as
/// the app runs; with `remember`, also in the system's keyring, for later
/// (a token is never written anywhere else).
#[tauri::command]
#[specta::specta]
pub async fn set_sign_in(
    app: State<'_, App>,
    source: String,
    form: SignInForm,
    remember: bool,
) -> Reply<()> {
    app.sign_ins.set(&source, &form)?;
    if remember && form.kind != sign_in::SignInKind::None {
        let sign_ins = app.sign_ins.clone();
        blocking(move || sign_ins.remember(&source, &form))
            .await
            .map_err(used_until_closed)?;
    }
    Ok(())
}

/// Removes the sign-in kept on this computer for the host of `source`
/// (and the one given while the app runs).
#[tauri::command]
#[specta::specta]
pub async fn forget_sign_in(app: State<'_, App>, source: String) -> Reply<()> {
    let sign_ins = app.sign_ins.clone();
    Ok(blocking(move || sign_ins.forget(&source)).await?)
}

/// What is kept on this computer for the host of `source`, in words
/// without its secret, if anything.
#[tauri::command]
#[specta::specta]
pub async fn kept_sign_in(app: State<'_, App>, source: String) -> Reply<Option<String>> {
    let sign_ins = app.sign_ins.clone();
    Ok(blocking(move || Ok(sign_ins.kept(&source))).await?)
}

/// Runs `work` (the keyring's blocking calls) on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> cairn::Result<T> + Send + 'static,
) -> cairn::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(cairn::Error::invalid_input(e.to_string())))
}

/// A login that could not be kept is still used while the app runs.
fn used_until_closed(error: cairn::Error) -> AppError {
    AppError {
        code: error.code().to_string(),
        message: format!("{error}. Until Cairn closes, it uses what you typed."),
    }
}

/// Opens `source` signed in as `form` says, and reads the first byte of
/// one of its files: what worked, or what is wrong, in words.
#[tauri::command]
#[specta::specta]
pub async fn test_sign_in(app: State<'_, App>, source: String, form: SignInForm) -> Reply<Tested> {
    Ok(sign_in::test(&app.fetcher, &source, &form).await?)
}

/// Signs in to the bucket or container of `destination` with what the
/// person typed, for as long as the app runs (`None` goes back to the login
/// kept on this computer, else the environment's credentials); with
/// `remember`, also keeps it in the system's keyring, for later.
#[tauri::command]
#[specta::specta]
pub async fn set_bucket_login(
    destination: String,
    login: Option<BucketLogin>,
    remember: bool,
) -> Reply<()> {
    cairn::destination::sign_in_to_bucket(&destination, login.clone())?;
    if remember && let Some(login) = login {
        blocking(move || cairn::destination::remember_bucket_login(&destination, Some(&login)))
            .await
            .map_err(used_until_closed)?;
    }
    Ok(())
}

/// Removes the login kept on this computer for the bucket of
/// `destination` (and the one typed while the app runs).
#[tauri::command]
#[specta::specta]
pub async fn forget_bucket_login(destination: String) -> Reply<()> {
    // Out of the keyring first: a lookup in between finds nothing.
    let address = destination.clone();
    blocking(move || cairn::destination::remember_bucket_login(&address, None)).await?;
    Ok(cairn::destination::sign_in_to_bucket(&destination, None)?)
}

/// What is kept on this computer for the bucket of `destination`, in
/// words without its secret, if anything.
#[tauri::command]
#[specta::specta]
pub async fn kept_bucket_login(destination: String) -> Reply<Option<String>> {
    Ok(blocking(move || Ok(cairn::destination::kept_bucket_login(&destination))).await?)
}

/// Signs in to the bucket of `destination` with `login`, then lists, writes
/// and removes a small object there: what worked, or what is wrong, in
/// words.
#[tauri::command]
#[specta::specta]
pub async fn test_bucket(destination: String, login: Option<BucketLogin>) -> Reply<Tested> {
    let address = cairn::destination::normalize(&destination)?;
    cairn::destination::sign_in_to_bucket(&address, login)?;
    Ok(match cairn::destination::test_connection(&address).await {
        Ok(message) => Tested { ok: true, message },
        Err(error) => Tested {
            ok: false,
            message: error.to_string(),
        },
    })
}

/// How a search of items ended; the items themselves come in batches, as
/// they are read.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
pub struct ItemPage {
    /// How many items were sent in all (the last batch may arrive after
    /// this answer).
    pub sent: u32,
    /// What could not be read on the way.
    pub problems: Vec<Problem>,
    /// Whether the search stopped at `max_items` with more to find.
    pub more: bool,
}

/// One message of a search to the window: the items found since the last
/// one (often none: then only the count moves), and how many were found.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
pub struct ItemBatch {
    /// Items found since the last batch.
    pub items: Vec<ItemSummary>,
    /// Items found so far.
    pub read: u32,
}

/// How often the count goes to the window while a search reads on.
const COUNT_EVERY: Duration = Duration::from_millis(250);
/// When the first items go. Each later batch waits twice as long as the
/// one before, up to [`ITEMS_AT_MOST`]: the map and the table are drawn
/// again for each batch, so the biggest collections are drawn a few times,
/// not hundreds.
const ITEMS_FIRST: Duration = Duration::from_millis(500);
const ITEMS_AT_MOST: Duration = Duration::from_secs(4);

/// The items of `source` that match `selection`, up to `max_items`, sent to
/// `on_items` as they are read: the count often, the items in batches (the
/// window counts and draws them while the rest are read).
#[tauri::command]
#[specta::specta]
pub async fn search_items(
    app: State<'_, App>,
    source: String,
    selection: Selection,
    max_items: u32,
    search_id: f64,
    on_items: Channel<ItemBatch>,
) -> Reply<ItemPage> {
    let mut page = ItemPage {
        sent: 0,
        problems: Vec::new(),
        more: false,
    };
    // A newer search (another collection, another filter) or a page that
    // went away ends this one; an older one that begins late does not.
    let search_id = search_id as u64;
    if !app.searches.begin(search_id) {
        return Err(stopped());
    }
    let max = u64::from(max_items);
    let query = selection.search()?;
    let fetcher = app.sign_ins.fetcher(&app.items, &source)?;
    let mut out = Batches::new(&on_items);
    // Every item found counts toward `max_items`, shown or not.
    let mut found = 0u64;
    let mut listening = true;
    search(&fetcher, &source, &query, Some(max + 1), |item| {
        match item {
            Found::Item(_) if found >= max => {
                page.more = true;
                return ControlFlow::Break(());
            }
            Found::Item(item) => {
                found += 1;
                out.push(if found <= DETAILED as u64 {
                    ItemSummary::of(&item)
                } else {
                    ItemSummary::brief(&item)
                });
            }
            Found::Problem(problem) => page.problems.push(problem),
        }
        // A window that went away (it closed, or reloaded) or a newer
        // search stops this one.
        listening = out.due() && app.searches.is_on(search_id);
        if listening {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    })
    .await?;
    // Ended early, it never answers as if it had found everything.
    if !listening || !out.send(true) {
        return Err(stopped());
    }
    page.sent = out.sent;
    Ok(page)
}

/// What a search that ended before reading everything says.
fn stopped() -> AppError {
    AppError {
        code: "cancelled".into(),
        message: "Reading the items stopped: another reading began. Open the collection again to see them all.".into(),
    }
}

/// What a search sends the window, and when.
struct Batches<'a> {
    channel: &'a Channel<ItemBatch>,
    batch: Vec<ItemSummary>,
    /// Items found so far.
    read: u32,
    /// Items the window was sent.
    sent: u32,
    last_count: Instant,
    last_items: Instant,
    items_every: Duration,
}

impl<'a> Batches<'a> {
    fn new(channel: &'a Channel<ItemBatch>) -> Batches<'a> {
        Batches {
            channel,
            batch: Vec::new(),
            read: 0,
            sent: 0,
            last_count: Instant::now(),
            last_items: Instant::now(),
            items_every: ITEMS_FIRST,
        }
    }

    fn push(&mut self, item: Option<ItemSummary>) {
        if let Some(item) = item {
            self.batch.push(item);
            self.read += 1;
        }
    }

    /// Sends what is due; whether the window listens.
    fn due(&mut self) -> bool {
        if !self.batch.is_empty() && self.last_items.elapsed() >= self.items_every {
            self.items_every = (self.items_every * 2).min(ITEMS_AT_MOST);
            return self.send(true);
        }
        if self.last_count.elapsed() >= COUNT_EVERY {
            return self.send(false);
        }
        true
    }

    /// Sends the count, with the items found since the last batch if
    /// `items`; whether the window listens.
    fn send(&mut self, items: bool) -> bool {
        let items = if items {
            self.last_items = Instant::now();
            std::mem::take(&mut self.batch)
        } else {
            Vec::new()
        };
        let count = items.len() as u32;
        self.last_count = Instant::now();
        let sent = self
            .channel
            .send(ItemBatch {
                items,
                read: self.read,
            })
            .is_ok();
        if sent {
            self.sent += count;
        }
        sent
    }
}

/// Ends the search of items `search_id`, if it is still under way (the
/// page that asked went away).
#[tauri::command]
#[specta::specta]
pub async fn stop_item_search(app: State<'_, App>, search_id: f64) -> Reply<()> {
    app.searches.end(search_id as u64);
    Ok(())
}

/// The search of items under way: one at a time, numbered by the window;
/// a search with a larger number ends the last.
#[derive(Debug, Default)]
pub struct Searches(std::sync::Mutex<(u64, bool)>);

impl Searches {
    /// Starts search `id`, unless a later one began already.
    fn begin(&self, id: u64) -> bool {
        let mut current = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if id < current.0 {
            return false;
        }
        *current = (id, true);
        true
    }

    fn is_on(&self, id: u64) -> bool {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) == (id, true)
    }

    fn end(&self, id: u64) {
        let mut current = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if current.0 == id {
            current.1 = false;
        }
    }
}

/// Records and plans a job without copying: what it will copy, and whether
/// the destination has room.
#[tauri::command]
#[specta::specta]
pub async fn estimate(app: State<'_, App>, request: JobRequest) -> Reply<Estimate> {
    // The sign-in is the source's, as the person set it; whether buckets
    // are read as requester-pays is the job's own choice.
    let (access, secrets) = app.sign_ins.get(&request.source);
    let access = cairn::fetch::Settings {
        requester_pays: request.access.requester_pays,
        ..access
    };
    let request = JobRequest { access, ..request };
    Ok(app.runner.estimate_signed(&request, secrets).await?)
}

/// Gives each job the app continues at its start, and that signs in with
/// headers, the secrets kept on this computer for its source's host.
/// Blocking (the keyring is asked): called before the jobs start.
pub fn give_kept_secrets(runner: &cairn::runner::Runner, sign_ins: &sign_in::SignIns) {
    let Ok(jobs) = runner.with_store(|s| s.jobs()) else {
        return;
    };
    for job in jobs {
        if job.state == cairn::store::JobState::Running && !job.access.headers.is_empty() {
            let (_, secrets) = sign_ins.get(&job.source_url);
            runner.give_secrets(job.id, secrets);
        }
    }
}

/// Gives job `job` the secrets the person typed for its source's host, if
/// any: a job signing in with a token needs it again after a restart.
fn give_secrets(app: &App, job: i64) -> Reply<()> {
    let Some(job_row) = app.runner.with_store(|s| s.job(job))? else {
        return Ok(());
    };
    // Only a job that signs in with headers is given them.
    if !job_row.access.headers.is_empty() {
        let (_, secrets) = app.sign_ins.get(&job_row.source_url);
        app.runner.give_secrets(job, secrets);
    }
    Ok(())
}

/// Starts (or continues) a planned job in the background.
#[tauri::command]
#[specta::specta]
pub async fn start_job(app: State<'_, App>, job: i64) -> Reply<()> {
    give_secrets(&app, job)?;
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

/// Brings a job's mirror up to date in the background: its source is
/// planned again and only what is new or changed is copied.
#[tauri::command]
#[specta::specta]
pub async fn sync_job(app: State<'_, App>, job: i64) -> Reply<()> {
    Ok(app.runner.sync(job)?)
}

/// What a sync of a job does with a file whose source changed (keep the
/// previous version beside it, or replace it) and with an item the source
/// no longer has (keep it, marked, or take it out of the mirror).
#[tauri::command]
#[specta::specta]
pub async fn set_sync_options(
    app: State<'_, App>,
    job: i64,
    keep_versions: bool,
    mirror_deletions: bool,
) -> Reply<()> {
    Ok(app
        .runner
        .with_store(|s| s.set_job_sync_options(job, keep_versions, mirror_deletions))?)
}

/// One run of a job in its history, with what it changed in words.
#[derive(Debug, Clone, serde::Serialize, specta::Type)]
pub struct HistoryEntry {
    /// The run.
    pub run: cairn::store::Run,
    /// What it found and did, in a sentence.
    pub text: String,
}

/// A job's runs, the latest first: its first copy and each sync.
#[tauri::command]
#[specta::specta]
pub async fn job_history(app: State<'_, App>, job: i64) -> Reply<Vec<HistoryEntry>> {
    let runs = app.runner.with_store(|s| s.runs(job))?;
    Ok(runs
        .into_iter()
        .map(|run| HistoryEntry {
            text: cairn::words::run_summary(&run),
            run,
        })
        .collect())
}

/// Removes a job from the list; the mirror it made stays.
#[tauri::command]
#[specta::specta]
pub async fn remove_job(app: State<'_, App>, job: i64) -> Reply<()> {
    Ok(app.runner.remove(job)?)
}

/// Removes every job that finished with all its files copied; their
/// mirrors stay. Returns how many.
#[tauri::command]
#[specta::specta]
pub async fn clear_finished(app: State<'_, App>) -> Reply<u32> {
    let finished: Vec<i64> = app
        .runner
        .jobs()?
        .into_iter()
        .filter(|s| !s.running && s.job.state == cairn::store::JobState::Finished)
        .map(|s| s.job.id)
        .collect();
    for job in &finished {
        app.runner.remove(*job)?;
    }
    Ok(finished.len() as u32)
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
    give_secrets(&app, job)?;
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
    let destination = app.runner.job(job)?.destination;
    let options = VerifyOptions { repair };
    Ok(verify(&destination, Some(&app.runner), &options).await?)
}

/// A mirror on this computer, as the Mirrors screen lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Type)]
pub struct MirrorEntry {
    /// What the store knows of it.
    #[serde(flatten)]
    pub mirror: MirrorRow,
    /// The address of its catalog, to open on the map.
    pub catalog: String,
}

/// The mirrors the jobs copy into, the latest copied first: what each
/// holds, whether anything failed or changed, and its last check.
#[tauri::command]
#[specta::specta]
pub async fn mirrors(app: State<'_, App>) -> Reply<Vec<MirrorEntry>> {
    let rows = app.runner.with_store(|s| s.mirrors())?;
    Ok(rows
        .into_iter()
        .map(|mirror| MirrorEntry {
            catalog: cairn::destination::catalog_location(&mirror.destination),
            mirror,
        })
        .collect())
}

/// Opens a job's mirror folder in the system's file manager. Only a job's
/// own folder is ever opened: the window cannot ask for another path.
#[tauri::command]
#[specta::specta]
pub async fn open_folder(app: State<'_, App>, handle: tauri::AppHandle, job: i64) -> Reply<()> {
    use tauri_plugin_opener::OpenerExt;
    let destination = app.runner.job(job)?.destination;
    folder_to_open(&destination)?;
    handle
        .opener()
        .open_path(&destination, None::<&str>)
        .map_err(|e| {
            cairn::Error::invalid_input(format!(
                "no file manager could open {destination} ({}); open it by hand",
                cairn::words::without_error_number(&e.to_string())
            ))
        })?;
    Ok(())
}

/// Whether `destination` is a folder here that a file manager can open.
fn folder_to_open(destination: &str) -> cairn::Result<()> {
    if cairn::destination::is_bucket_address(destination) {
        return Err(cairn::Error::invalid_input(format!(
            "{destination} is a bucket, not a folder on this computer; open it with your cloud's console or tools"
        )));
    }
    if !std::path::Path::new(destination).is_dir() {
        return Err(cairn::Error::invalid_input(format!(
            "the folder {destination} is not there (moved, deleted, or on a drive that is not connected); connect the drive or put the folder back, then try again"
        )));
    }
    Ok(())
}

/// Opens a web address a catalog gives (an item's own address, its
/// license, its source) in the system's browser. Only http and https: a
/// catalog's link to a file on this computer or to a program is refused.
#[tauri::command]
#[specta::specta]
pub async fn open_address(handle: tauri::AppHandle, address: String) -> Reply<()> {
    use tauri_plugin_opener::OpenerExt;
    let url = web_address(&address)?;
    handle
        .opener()
        .open_url(url.as_str(), None::<&str>)
        .map_err(|e| {
            cairn::Error::invalid_input(format!(
                "no browser could open {url} ({e}); copy the address into one by hand"
            ))
        })?;
    Ok(())
}

/// `address` when it is an http or https address, else why it is not opened.
fn web_address(address: &str) -> Result<url::Url, cairn::Error> {
    url::Url::parse(address)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .ok_or_else(|| {
            cairn::Error::invalid_input(format!(
                "{address} is not a web address; only http and https links open in the browser"
            ))
        })
}

/// A bag made of a job's mirror.
#[derive(Debug, Clone, serde::Serialize, specta::Type)]
pub struct Bag {
    /// Where it is (a folder, or a bucket address).
    pub path: String,
    /// Payload files.
    pub files: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Files whose checksum recorded when verified was used.
    pub reused: u64,
    /// Files hashed as they were copied.
    pub hashed: u64,
    /// What is not in the bag, with why.
    pub left_out: Vec<LeftOut>,
}

/// A file of a mirror a bag could not take.
#[derive(Debug, Clone, serde::Serialize, specta::Type)]
pub struct LeftOut {
    /// The file, relative to the mirror.
    pub path: String,
    /// Why, in plain words.
    pub reason: String,
}

/// Makes a BagIt bag (RFC 8493) of a job's mirror at `out`: a new folder
/// (or an empty one), or a bucket address that holds nothing yet. Files
/// unchanged since they were verified are not hashed again.
#[tauri::command]
#[specta::specta]
pub async fn export_bag(app: State<'_, App>, job: i64, out: String) -> Reply<Bag> {
    let destination = app.runner.job(job)?.destination;
    let out = out.trim().to_string();
    let folder = !cairn::destination::is_bucket_address(&out);
    if out.is_empty() || (folder && !std::path::Path::new(&out).is_absolute()) {
        return Err(cairn::Error::invalid_input(
            "say where the bag should go: a whole folder path (Choose... picks one), or s3://, az:// or gs:// address",
        )
        .into());
    }
    if app
        .runner
        .jobs()?
        .iter()
        .any(|s| s.job.id == job && s.running)
    {
        return Err(cairn::Error::invalid_input(format!(
            "job {job} is copying now; make the bag once it has finished"
        ))
        .into());
    }
    // The state file read on a thread of its own (its connection stays
    // there), for the checksums recorded when the files were verified.
    let made = tauri::async_runtime::spawn_blocking(move || {
        let store = cairn::store::Store::default_path(None)
            .and_then(|path| cairn::store::Store::open_for_reading(&path))
            .ok();
        tauri::async_runtime::block_on(cairn::export::bag(
            &destination,
            &out,
            store.as_ref(),
            &cairn::export::BagOptions::default(),
        ))
    })
    .await
    .map_err(|_| {
        cairn::Error::invalid_input(
            "Cairn stopped unexpectedly while making the bag; no bag was put in place. Please report this",
        )
    })??;
    Ok(Bag {
        path: made.path.display().to_string(),
        files: made.files,
        bytes: made.bytes,
        reused: made.reused,
        hashed: made.hashed,
        left_out: made
            .left_out
            .into_iter()
            .map(|(path, reason)| LeftOut { path, reason })
            .collect(),
    })
}

/// Where each item of `source` stands in the mirrors made from it (done,
/// pending, failed), for the map's colours.
#[tauri::command]
#[specta::specta]
pub async fn item_marks(app: State<'_, App>, source: String) -> Reply<Vec<ItemMark>> {
    Ok(app.runner.with_store(|s| s.item_marks(&source))?)
}

/// The settings, with whether Cairn starts at log-in as the system has it.
#[tauri::command]
#[specta::specta]
pub async fn settings(app: State<'_, App>, handle: tauri::AppHandle) -> Reply<AppSettings> {
    let mut settings = app.runner.with_store(|s| Ok(AppSettings::load(s)))?;
    if let Ok(enabled) = handle.autolaunch().is_enabled() {
        settings.start_with_system = enabled;
    }
    Ok(settings)
}

/// Checks and saves the settings; the schedule applies at once, and the
/// login item is made or removed. Gives them back as saved.
#[tauri::command]
#[specta::specta]
pub async fn save_settings(
    app: State<'_, App>,
    handle: tauri::AppHandle,
    settings: AppSettings,
) -> Reply<AppSettings> {
    let (settings, schedule) = settings.checked()?;
    let autolaunch = handle.autolaunch();
    if autolaunch.is_enabled().ok() != Some(settings.start_with_system) {
        let changed = if settings.start_with_system {
            autolaunch.enable()
        } else {
            autolaunch.disable()
        };
        changed.map_err(|error| {
            tracing::warn!(%error, "the login item could not be changed");
            login_item_refused(settings.start_with_system, &error.to_string())
        })?;
    }
    app.runner.with_store(|s| settings.save(s))?;
    app.bandwidth.replace(schedule);
    Ok(settings)
}

/// The system would not make (`start`) or remove the login item.
fn login_item_refused(start: bool, error: &str) -> AppError {
    AppError {
        code: "unavailable".into(),
        message: format!(
            "Cairn could not {} when you log in ({}); the other settings were not saved. Try again, or change it in your system's startup settings.",
            if start {
                "be set to start"
            } else {
                "be kept from starting"
            },
            cairn::words::without_error_number(error),
        ),
    }
}

/// The limit over all jobs now, and until when.
#[tauri::command]
#[specta::specta]
pub async fn limit_now(app: State<'_, App>) -> Reply<LimitNow> {
    Ok(app.bandwidth.now())
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

#[cfg(test)]
mod tests {
    use super::{AppError, web_address};

    #[test]
    fn every_message_the_app_shows_is_in_plain_words() {
        let dir = tempfile::tempdir().unwrap();
        let mut shown: Vec<AppError> = cairn::error_examples()
            .into_iter()
            .map(AppError::from)
            .collect();
        assert!(shown.len() >= 30, "{} examples", shown.len());
        for error in cairn::error_examples() {
            shown.push(super::used_until_closed(error));
        }
        shown.push(super::login_item_refused(
            true,
            "Permission denied (os error 13)",
        ));
        shown.push(super::login_item_refused(
            false,
            "No such file or directory (os error 2)",
        ));
        for place in [
            "s3://archive/mirror".to_string(),
            dir.path().join("gone").display().to_string(),
        ] {
            shown.push(super::folder_to_open(&place).unwrap_err().into());
        }
        for address in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "not an address",
        ] {
            shown.push(super::web_address(address).unwrap_err().into());
        }
        let refused = |settings: crate::settings::AppSettings| {
            AppError::from(settings.checked().unwrap_err())
        };
        let defaults = crate::settings::AppSettings::default;
        shown.push(refused(crate::settings::AppSettings {
            concurrency: 0,
            ..defaults()
        }));
        shown.push(refused(crate::settings::AppSettings {
            destination: "ftp://example.org/x".into(),
            ..defaults()
        }));
        shown.push(refused(crate::settings::AppSettings {
            schedule: vec![cairn::limit::Slot::new("25:00", "1M")],
            ..defaults()
        }));
        shown.push(super::parse_rate("fast").unwrap_err().into());
        shown.push(super::stopped());
        for error in &shown {
            assert_eq!(
                cairn::words::not_plain(&error.message),
                None,
                "{}: {}",
                error.code,
                error.message
            );
            assert!(!error.code.is_empty());
        }
        // The system's own error number is taken out.
        assert!(
            shown
                .iter()
                .any(|e| e.message.contains("(Permission denied)"))
        );
    }

    #[test]
    fn a_search_goes_on_while_it_is_the_last_and_is_ended_only_by_its_own_page() {
        let searches = super::Searches::default();
        assert!(searches.begin(10));
        assert!(searches.is_on(10));
        assert!(searches.begin(11));
        assert!(!searches.is_on(10), "a newer search ends the last");
        // The page of the first search goes away after the second began.
        searches.end(10);
        assert!(searches.is_on(11));
        // An older search that begins late does not end the newer one.
        assert!(!searches.begin(10));
        assert!(searches.is_on(11));
        searches.end(11);
        assert!(!searches.is_on(11));
    }

    #[test]
    fn a_system_message_loses_its_error_number() {
        assert_eq!(
            cairn::words::without_error_number("Permission denied (os error 13)"),
            "Permission denied"
        );
        assert_eq!(
            cairn::words::without_error_number("cannot write (os error 30): read-only"),
            "cannot write: read-only"
        );
        assert_eq!(cairn::words::without_error_number("no number"), "no number");
    }

    #[test]
    fn only_web_addresses_are_opened() {
        for good in [
            "https://example.org/LICENSE",
            "http://127.0.0.1:8000/x?y=1#z",
        ] {
            assert!(web_address(good).is_ok(), "{good}");
        }
        for bad in [
            "file:///home/someone/.netrc",
            "javascript:alert(1)",
            "data:text/html,<script>x</script>",
            "../LICENSE.txt",
            "/etc/passwd",
            "s3://bucket/key",
            "smb://host/share",
            "vscode://file/x",
            "",
        ] {
            let refused = web_address(bad).unwrap_err().to_string();
            assert!(refused.contains("only http and https"), "{bad}: {refused}");
        }
    }
}
