//! Cairn's desktop app: a thin Tauri shell over the engine.
//!
//! Each command is one call into the engine ([`commands`]); the engine's job
//! events go to the window as they come ([`JobEvent`]). Jobs run in this
//! process: closing the window hides it to the tray while they copy, and
//! jobs left running by a crash or a restart continue at start-up.

pub mod commands;
pub mod rendering;
pub mod settings;
pub mod sign_in;
pub mod single;
pub mod sources;

use std::path::PathBuf;
use std::sync::Arc;

use cairn::events::Event;
use cairn::fetch::Fetcher;
use cairn::runner::Runner;
use cairn::store::Store;
use serde::Serialize;
use specta::Type;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{Manager, RunEvent, WindowEvent};
use tauri_specta::{Builder, Event as _, collect_commands, collect_events};

/// The most bytes of documents browsed lately the app keeps for estimates.
const RECENT_BYTES: usize = 256 << 20;

/// The argument the login item starts Cairn with: no window, only the tray.
const HIDDEN: &str = "--hidden";

/// When the process started, for the startup time the window reports.
pub static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// What the commands share: the engine's runner (state store, jobs) and a
/// fetcher for browsing.
pub struct App {
    runner: Arc<Runner>,
    fetcher: Fetcher,
    /// The fetcher items are browsed with: what it reads is kept a while,
    /// for the estimate that follows.
    items: Fetcher,
    demo: Option<PathBuf>,
    /// How the person signs in to each source host, for as long as the app runs.
    sign_ins: std::sync::Arc<sign_in::SignIns>,
    /// The limit over all jobs, following the schedule in Settings.
    bandwidth: Arc<settings::Bandwidth>,
    /// The search of items under way.
    searches: commands::Searches,
}

/// An engine event about a job, as the window receives it.
#[derive(Debug, Clone, Serialize, Type, tauri_specta::Event)]
pub struct JobEvent(pub Event);

/// The commands and events of the app, for Tauri and for the bindings.
pub fn specta_builder() -> Builder<tauri::Wry> {
    Builder::<tauri::Wry>::new()
        .commands(collect_commands![
            commands::sources,
            commands::set_bookmark,
            commands::look,
            commands::set_sign_in,
            commands::forget_sign_in,
            commands::kept_sign_in,
            commands::test_sign_in,
            commands::set_bucket_login,
            commands::forget_bucket_login,
            commands::kept_bucket_login,
            commands::test_bucket,
            commands::search_items,
            commands::estimate,
            commands::start_job,
            commands::jobs,
            commands::failures,
            commands::job_log,
            commands::job_history,
            commands::sync_job,
            commands::set_sync_options,
            commands::remove_job,
            commands::clear_finished,
            commands::pause_job,
            commands::resume_job,
            commands::cancel_job,
            commands::set_job_limit,
            commands::item_marks,
            commands::check_copy,
            commands::export_bag,
            commands::open_folder,
            commands::open_address,
            commands::window_ready,
            commands::settings,
            commands::save_settings,
            commands::limit_now,
            commands::mirrors,
            commands::stop_item_search,
        ])
        .events(collect_events![JobEvent])
        // Items of a list that keep their properties and links, for the
        // item page's words.
        .constant("DETAILED", cairn::catalog::browse::DETAILED)
        .dangerously_cast_bigints_to_number()
        .disable_serde_phases()
}

/// Where the TypeScript bindings live, from this crate's folder.
pub const BINDINGS: &str = "../ui/src/lib/bindings.ts";

/// Writes the TypeScript bindings to `path`.
pub fn export_bindings(path: &std::path::Path) -> Result<(), String> {
    specta_builder()
        .export(
            specta_typescript::Typescript::default()
                .header("// Written by `cargo run -p cairn-app --bin bindings`; do not edit.\n"),
            path,
        )
        .map_err(|e| e.to_string())
}

/// Starts the app. Call it first thing in `main`: it may set WebKit's
/// environment (see [`rendering`]).
pub fn run() {
    STARTED.get_or_init(std::time::Instant::now);
    let drawing = rendering::choice();
    if let Some((name, value)) = drawing {
        // SAFETY: `run` is the first thing `main` does, so no other thread
        // exists yet to read the environment while it changes.
        unsafe { std::env::set_var(name, value) };
    }
    cairn::init_logging();
    if let Some((name, value)) = drawing {
        tracing::info!("no GPU render node: the window is painted on the CPU ({name}={value})");
    }
    // One app per state file: a second launch shows the first one's window.
    let state_dir = cairn::store::Store::default_path(None)
        .ok()
        .and_then(|path| path.parent().map(std::path::Path::to_path_buf));
    let claim = state_dir.as_deref().map(single::claim);
    let _held = match claim {
        Some(Ok(single::Claim::First(lock))) => Some(lock),
        Some(Ok(single::Claim::Taken)) => {
            let dir = state_dir.as_deref().unwrap_or(std::path::Path::new("."));
            if single::ask_first_to_show(dir) {
                println!("Cairn is already open: its window is shown.");
            } else {
                eprintln!(
                    "Cairn is already open with the jobs in {}; use that window (its tray icon shows it).",
                    dir.display()
                );
            }
            return;
        }
        // The state folder cannot be claimed (read-only...): the app opens
        // and says why when it reads the state file.
        Some(Err(error)) => {
            tracing::warn!(%error, "the state folder could not be claimed for this app");
            None
        }
        None => None,
    };
    let builder = specta_builder();
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .app_name("Cairn")
                .arg(HIDDEN)
                .build(),
        )
        .invoke_handler(builder.invoke_handler())
        .setup(move |app| {
            builder.mount_events(app);
            let state = open(app)?;
            let runner = state.runner.clone();
            let sign_ins = state.sign_ins.clone();
            state.bandwidth.clone().follow_the_clock();
            app.manage(state);
            // The window is made hidden and shown here, unless Cairn was
            // started at log-in: then the jobs go on and the window waits in
            // the tray, never shown even for a moment.
            if !std::env::args().any(|arg| arg == HIDDEN)
                && let Some(window) = app.get_webview_window("main")
            {
                window.show()?;
            }
            forward_events(app.handle().clone(), &runner);
            tray(app)?;
            // Estimates nobody started before the app last stopped are not jobs.
            runner.forget_drafts(None);
            // Jobs that were copying when the app last stopped go on,
            // signed in with what this computer's keyring keeps.
            commands::give_kept_secrets(&runner, &sign_ins);
            let resumed = tauri::async_runtime::block_on(async { runner.resume_unfinished() })?;
            if !resumed.is_empty() {
                tracing::info!(jobs = ?resumed, "jobs continue where they stopped");
            }
            watch_mirrors(runner);
            if let Some(dir) = &state_dir {
                let handle = app.handle().clone();
                let shown = single::listen(dir, move || {
                    if let Some(window) = handle.get_webview_window("main") {
                        let _ = window.show();
                        let _ = window.unminimize();
                        let _ = window.set_focus();
                        tracing::info!("a second launch asked for this window");
                    }
                });
                if let Err(error) = shown {
                    tracing::warn!(%error, "a second launch cannot show this window");
                }
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            // While jobs copy, closing the window hides it: the tray brings it back.
            if let WindowEvent::CloseRequested { api, .. } = event
                && window.state::<App>().runner.running_jobs() > 0
            {
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .build(tauri::generate_context!())
        .expect("the window could not be opened");
    app.run(|_, event| {
        if let RunEvent::ExitRequested { .. } = event {
            tracing::info!("closing");
        }
    });
}

/// Opens the state store (shared with the `cairn` command line) and finds the
/// demo catalog that ships with the app.
fn open(app: &tauri::App) -> Result<App, Box<dyn std::error::Error>> {
    let path = Store::default_path(None)?;
    let store = Store::open(&path)?;
    let fetcher = Fetcher::new()?;
    let demo = app
        .path()
        .resolve("demo/catalog.json", tauri::path::BaseDirectory::Resource)
        .ok()
        .filter(|p| p.is_file())
        .or_else(|| {
            // A build run from the source tree.
            let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demo/catalog.json");
            here.is_file().then_some(here)
        });
    // The schedule holds whatever else of the settings can no longer be used.
    let schedule = cairn::limit::Schedule::new(&settings::AppSettings::load(&store).schedule)
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "the saved bandwidth schedule is not followed");
            cairn::limit::Schedule::default()
        });
    // What the window browses is kept a while, for the estimate after it.
    let recent = Arc::new(cairn::fetch::Recent::new(RECENT_BYTES));
    let runner = Arc::new(Runner::new(store, fetcher.clone()).with_recent(recent.clone()));
    Ok(App {
        bandwidth: Arc::new(settings::Bandwidth::new(runner.clone(), schedule)),
        runner,
        items: fetcher.with_recent(recent),
        fetcher,
        demo,
        sign_ins: std::sync::Arc::default(),
        searches: Default::default(),
    })
}

/// Watches the mirror folders while the app runs: what changes in them is
/// flagged on the jobs' cards and on the map. The jobs are looked at every
/// second (new mirrors are watched, flags a repair put right go).
fn watch_mirrors(runner: Arc<Runner>) {
    let watcher = match cairn::watch::Watcher::start(runner) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "the mirrors are not watched");
            return;
        }
    };
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let watcher = watcher.clone();
            let refreshed = tauri::async_runtime::spawn_blocking(move || watcher.refresh()).await;
            if let Ok(Err(error)) = refreshed {
                tracing::warn!(%error, "the watched mirrors could not be looked at");
            }
        }
    });
}

/// Sends every job event to the window, and a desktop notification when a
/// job ends.
fn forward_events(handle: tauri::AppHandle, runner: &Runner) {
    let mut events = runner.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            if let Event::Finished {
                job,
                counts,
                interrupted: false,
            } = &event
            {
                notify_finished(&handle, *job, counts);
            }
            let _ = JobEvent(event).emit(&handle);
        }
    });
}

fn notify_finished(handle: &tauri::AppHandle, job: i64, counts: &cairn::store::Counts) {
    use tauri_plugin_notification::NotificationExt;
    let wanted = handle
        .state::<App>()
        .runner
        .with_store(|s| Ok(settings::AppSettings::load(s).notifications))
        .unwrap_or(true);
    if !wanted {
        return;
    }
    let body = if counts.failed > 0 {
        format!(
            "Job {job} finished: {} assets could not be copied. Open Cairn to see why and try again.",
            counts.failed
        )
    } else {
        format!(
            "Job {job} finished: {} assets copied and verified.",
            counts.done + counts.skipped
        )
    };
    let _ = handle
        .notification()
        .builder()
        .title("Cairn")
        .body(body)
        .show();
}

/// The tray icon: show the window, or quit (jobs continue at the next start).
fn tray(app: &tauri::App) -> tauri::Result<()> {
    let show = MenuItem::with_id(app, "show", "Show Cairn", true, None::<&str>)?;
    let quit = MenuItem::with_id(
        app,
        "quit",
        "Quit (jobs continue next time)",
        true,
        None::<&str>,
    )?;
    let menu = Menu::with_items(app, &[&show, &quit])?;
    let mut tray = TrayIconBuilder::new()
        .tooltip("Cairn")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "show" => {
                if let Some(window) = app.get_webview_window("main") {
                    let _ = window.show();
                    let _ = window.set_focus();
                }
            }
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}
