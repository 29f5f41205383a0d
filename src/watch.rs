//! Watching the mirror folders while the app runs: a file deleted, changed
//! or added is flagged in the state store within a second or two, told as
//! an event (the job's card shows it, the map colours its item), and put
//! right by a repair, after which the flag goes.
//!
//! `notify` (inotify, FSEvents, ReadDirectoryChangesW) with the full
//! debouncer sees the changes (creations, removals, writes and renames;
//! not reads, so judging a file does not set off another look at it, and
//! links are never followed); each changed path is then judged against
//! what the state store records of it. What Cairn's own runs write is never
//! flagged: while a run of any process holds a job into a mirror, its
//! changes wait, and they are judged once the run has let go. A folder
//! deleted or moved away is judged file by file from the records. Buckets
//! are not watched (`cairn verify` checks them).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify_debouncer_full::notify::event::{EventKind, ModifyKind};
use notify_debouncer_full::notify::{self, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, NoCache, new_debouncer_opt};

use crate::checksum::Checksum;
use crate::events::Event;
use crate::folder::Folder;
use crate::runner::Runner;
use crate::store::{FlagKind, Known};
use crate::{Error, Result};

/// How long a burst of changes to one path settles before it is judged.
const SETTLE: Duration = Duration::from_millis(400);

/// Changes kept per mirror while a run holds it, judged once it lets go;
/// beyond these, "Check the copy" finds the rest.
const HELD_BACK: usize = 100_000;

/// Files judged, at most, for one folder deleted or moved away.
const UNDER_A_FOLDER: usize = 100_000;

/// Watches every mirror folder of the state store's jobs.
pub struct Watcher {
    runner: Arc<Runner>,
    debouncer: Mutex<Debouncer<RecommendedWatcher, NoCache>>,
    roots: Arc<Mutex<HashMap<PathBuf, Root>>>,
    /// Destinations that could not be watched, with why (said once).
    refused: Mutex<HashMap<String, String>>,
    /// Changed paths of mirrors a run held when they changed, by mirror.
    held_back: Mutex<HashMap<String, BTreeSet<String>>>,
}

/// A watched mirror folder.
struct Root {
    destination: String,
    folder: Arc<Folder>,
}

impl Watcher {
    /// Starts watching (nothing yet: see [`Watcher::refresh`]), judging
    /// changes on a thread of its own.
    pub fn start(runner: Arc<Runner>) -> Result<Arc<Watcher>> {
        let (sender, receiver) = mpsc::channel::<DebounceEventResult>();
        let debouncer = new_debouncer_opt::<_, RecommendedWatcher, NoCache>(
            SETTLE,
            None,
            sender,
            NoCache,
            notify::Config::default().with_follow_symlinks(false),
        )
        .map_err(|e| Error::invalid_input(format!("the mirror folders cannot be watched: {e}")))?;
        let watcher = Arc::new(Watcher {
            runner,
            debouncer: Mutex::new(debouncer),
            roots: Arc::new(Mutex::new(HashMap::new())),
            refused: Mutex::new(HashMap::new()),
            held_back: Mutex::new(HashMap::new()),
        });
        let judge = watcher.clone();
        std::thread::Builder::new()
            .name("cairn-watch".into())
            .spawn(move || {
                for result in receiver {
                    let events = match result {
                        Ok(events) => events,
                        Err(errors) => {
                            for error in errors {
                                tracing::warn!(%error, "watching the mirrors");
                            }
                            continue;
                        }
                    };
                    // Changes, not reads (a read of a file to judge it would
                    // otherwise be judged in turn).
                    let mut paths: Vec<PathBuf> = events
                        .into_iter()
                        .filter(|e| {
                            matches!(
                                e.event.kind,
                                EventKind::Create(_)
                                    | EventKind::Remove(_)
                                    | EventKind::Modify(
                                        ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any
                                    )
                            )
                        })
                        .flat_map(|e| e.event.paths)
                        .collect();
                    paths.sort();
                    paths.dedup();
                    let mut told = Told::default();
                    for path in paths {
                        if let Err(error) = judge.judge_path(&path, &mut told) {
                            tracing::warn!(%error, path = %path.display(), "a change in a mirror could not be judged");
                        }
                    }
                    judge.tell(told);
                }
            })
            .map_err(|e| Error::io(Path::new("the watcher thread"), e))?;
        Ok(watcher)
    }

    /// Watches the mirror folders of every job not yet watched (those that
    /// exist), and looks again at the flagged files of mirrors no run
    /// writes into now (a repair may have put them right). Call it every
    /// second or so.
    pub fn refresh(&self) -> Result<()> {
        // A mirror folder deleted (or moved away) is watched again once it
        // is back.
        let gone: Vec<PathBuf> = self
            .roots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .filter(|root| !root.is_dir())
            .cloned()
            .collect();
        for root in gone {
            let _ = self
                .debouncer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwatch(&root);
            self.roots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&root);
        }
        let jobs = self.runner.with_store(|s| s.jobs())?;
        for job in jobs {
            let destination = job.destination;
            if crate::destination::is_bucket_address(&destination) {
                continue;
            }
            let root = PathBuf::from(&destination);
            let known = self
                .roots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&root);
            let refused = self
                .refused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&destination);
            if known || refused || !root.is_dir() {
                continue;
            }
            let folder = match Folder::open(&root) {
                Ok(folder) => Arc::new(folder),
                Err(_) => continue,
            };
            let watched = self
                .debouncer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .watch(&root, RecursiveMode::Recursive);
            match watched {
                Ok(()) => {
                    self.roots.lock().unwrap_or_else(|e| e.into_inner()).insert(
                        root,
                        Root {
                            destination: destination.clone(),
                            folder,
                        },
                    );
                }
                Err(error) => {
                    // What was watched before the limit is let go of too.
                    let _ = self
                        .debouncer
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .unwatch(&root);
                    let reason = format!(
                        "changes to this mirror are not watched ({error}; a system limit on watched folders, often); \"Check the copy\" still finds them"
                    );
                    self.runner.announce(Event::Problem {
                        job: job.id,
                        href: destination.clone(),
                        reason: reason.clone(),
                    });
                    self.refused
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(destination, reason);
                }
            }
        }
        let mut told = Told::default();
        // Changes made while a run held a mirror, judged once it let go.
        let waiting: Vec<String> = self
            .held_back
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for destination in waiting {
            if self.runner.with_store(|s| s.mirror_held(&destination))? {
                continue;
            }
            let paths = self
                .held_back
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&destination)
                .unwrap_or_default();
            let folder = self.folder_of(&destination);
            if let Some(folder) = folder {
                for path in paths {
                    self.judge(&destination, &folder, &path, &mut told)?;
                }
            }
        }
        // Flags of mirrors that are quiet now, judged again (a repair may
        // have put them right); a file no job put there stays flagged until
        // it goes.
        let flagged = self.runner.with_store(|s| s.flagged_destinations())?;
        for destination in flagged {
            let Some(folder) = self.folder_of(&destination) else {
                continue;
            };
            if self.runner.with_store(|s| s.mirror_held(&destination))? {
                continue;
            }
            let flags = self.runner.with_store(|s| s.flags(&destination))?;
            for flag in flags.iter().filter(|f| f.kind != FlagKind::Added) {
                self.judge(&destination, &folder, &flag.path, &mut told)?;
            }
        }
        self.tell(told);
        Ok(())
    }

    /// The open folder of the watched mirror at `destination`.
    fn folder_of(&self, destination: &str) -> Option<Arc<Folder>> {
        self.roots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(Path::new(destination))
            .map(|r| r.folder.clone())
    }

    /// Tells each mirror's job what changed in one look: one event per
    /// mirror, with its first path and how many more.
    fn tell(&self, told: Told) {
        for (destination, (path, kind, more)) in told.changed {
            let job = self
                .runner
                .with_store(|s| s.job_of_mirror(&destination))
                .ok()
                .flatten();
            if let Some(job) = job {
                self.runner.announce(Event::Flagged {
                    job,
                    path,
                    kind,
                    more,
                });
            }
        }
    }

    /// The mirror folders watched now.
    pub fn watched(&self) -> Vec<PathBuf> {
        self.roots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Judges a changed `path` (absolute) in whichever mirror holds it.
    fn judge_path(&self, path: &Path, told: &mut Told) -> Result<()> {
        let found = {
            let roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
            roots
                .iter()
                .filter_map(|(root, r)| {
                    let inside = path.strip_prefix(root).ok()?;
                    Some((
                        root.components().count(),
                        r.destination.clone(),
                        r.folder.clone(),
                        inside.to_path_buf(),
                    ))
                })
                .max_by_key(|(depth, ..)| *depth)
        };
        let Some((_, destination, folder, inside)) = found else {
            return Ok(());
        };
        // Relative, with `/` between its names; a name that is not text is
        // none of Cairn's.
        let Some(relative) = inside
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect::<Option<Vec<_>>>()
            .map(|names| names.join("/"))
        else {
            return Ok(());
        };
        if relative.is_empty() || crate::layout::is_own_temporary(&relative) {
            return Ok(());
        }
        // What Cairn's own runs write is theirs: judged once they let go.
        let held = match told.held.get(&destination) {
            Some(held) => *held,
            None => {
                let held = self.runner.with_store(|s| s.mirror_held(&destination))?;
                told.held.insert(destination.clone(), held);
                held
            }
        };
        if held {
            let mut held_back = self.held_back.lock().unwrap_or_else(|e| e.into_inner());
            let paths = held_back.entry(destination).or_default();
            if paths.len() < HELD_BACK {
                paths.insert(relative);
            }
            return Ok(());
        }
        // A folder deleted or moved away: each file Cairn recorded in it.
        let is_folder = folder
            .place(&relative, false)
            .is_ok_and(|place| place.is_folder(place.name()));
        let gone = !is_folder
            && folder
                .place(&relative, false)
                .is_ok_and(|p| !p.exists(p.name()));
        if is_folder || gone {
            let under = self
                .runner
                .with_store(|s| s.recorded_under(&destination, &relative, UNDER_A_FOLDER))?;
            if !under.is_empty() {
                for path in under {
                    self.judge(&destination, &folder, &path, told)?;
                }
                return Ok(());
            }
        }
        self.judge(&destination, &folder, &relative, told)
    }

    /// Flags `relative` of the mirror at `destination`, or takes its flag
    /// off, after what it is now; tells the change.
    fn judge(
        &self,
        destination: &str,
        folder: &Folder,
        relative: &str,
        told: &mut Told,
    ) -> Result<()> {
        // The record under the store's lock, the file outside it.
        let known = self
            .runner
            .with_store(|s| s.known_file(destination, relative))?;
        let verdict = judge(folder, known, relative);
        let changed = self.runner.with_store(|s| match verdict {
            Some(kind) => s.flag(destination, relative, kind),
            None => s.unflag(destination, relative),
        })?;
        if changed {
            told.add(destination, relative, verdict);
        }
        Ok(())
    }
}

/// What one look found, by mirror: its first changed path, what happened
/// to it, and how many more changed.
#[derive(Default)]
struct Told {
    changed: HashMap<String, (String, Option<FlagKind>, u64)>,
    /// Whether a run held each mirror, looked up once per look.
    held: HashMap<String, bool>,
}

impl Told {
    fn add(&mut self, destination: &str, path: &str, kind: Option<FlagKind>) {
        match self.changed.get_mut(destination) {
            Some((_, _, more)) => *more += 1,
            None => {
                self.changed
                    .insert(destination.to_string(), (path.to_string(), kind, 0));
            }
        }
    }
}

/// What happened to `relative` in the mirror `folder` against what the
/// store records of it (`known`): `None` when it is as recorded (or Cairn
/// does not track it, or cannot tell).
fn judge(folder: &Folder, known: Known, relative: &str) -> Option<FlagKind> {
    let stamp = folder
        .place(relative, false)
        .and_then(|place| place.stamp(place.name()));
    // `None`: nothing there; `Some(None)`: something, not a regular file.
    let now = match stamp {
        Ok(stamp) => Some(Some(stamp)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(_) => Some(None),
    };
    match known {
        Known::Verified { size, mtime } => match now {
            None => Some(FlagKind::Missing),
            Some(Some((s, m))) if s == size && mtime.is_none_or(|t| t == m) => None,
            Some(_) => Some(FlagKind::Modified),
        },
        Known::Document { checksum } => match now {
            None => Some(FlagKind::Missing),
            Some(None) => Some(FlagKind::Edited),
            Some(Some(_)) => {
                let written = Checksum::parse(&checksum).ok();
                let same =
                    folder
                        .read(relative)
                        .ok()
                        .zip(written)
                        .is_some_and(|(bytes, written)| {
                            Checksum::of(written.algorithm, &bytes) == written
                        });
                (!same).then_some(FlagKind::Edited)
            }
        },
        Known::Own => None,
        Known::Unknown => match now {
            Some(Some(_)) => Some(FlagKind::Added),
            _ => None,
        },
    }
}
