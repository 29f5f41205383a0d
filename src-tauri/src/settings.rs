//! The app's settings: where new mirrors go, how many transfers a new job
//! runs, a bandwidth schedule over all jobs, starting with the system and
//! notifications. They live in the state file, beside the jobs.

use std::sync::{Arc, Mutex};

use cairn::limit::{InForce, Schedule, Slot, clock, minute_now};
use cairn::runner::Runner;
use cairn::store::Store;
use serde::{Deserialize, Serialize};
use specta::Type;

/// The name they are saved under in the state file.
const NAME: &str = "app";

/// What the person chose in Settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct AppSettings {
    /// Where new mirrors go unless another place is typed (empty: none).
    pub destination: String,
    /// Transfers at once, for new jobs.
    pub concurrency: u32,
    /// Transfers at once from any one server, for new jobs.
    pub per_host: u32,
    /// Limits over all jobs together by time of day (none: no limit).
    pub schedule: Vec<Slot>,
    /// Whether Cairn starts when the person logs in (jobs go on by themselves).
    pub start_with_system: bool,
    /// Whether a finished job says so on the desktop.
    pub notifications: bool,
}

impl Default for AppSettings {
    fn default() -> AppSettings {
        AppSettings {
            destination: String::new(),
            concurrency: 8,
            per_host: 6,
            schedule: Vec::new(),
            start_with_system: false,
            notifications: true,
        }
    }
}

/// The most transfers at once Settings accepts.
pub const MOST_TRANSFERS: u32 = 64;

impl AppSettings {
    /// Checks what was typed and says in words what cannot be used; gives
    /// the settings as they are kept (the folder in its whole form) and the
    /// schedule they set.
    pub fn checked(mut self) -> cairn::Result<(AppSettings, Schedule)> {
        for (value, what) in [
            (self.concurrency, "Transfers at once"),
            (self.per_host, "Transfers from one server"),
        ] {
            if !(1..=MOST_TRANSFERS).contains(&value) {
                return Err(cairn::Error::invalid_input(format!(
                    "{what} must be a number from 1 to {MOST_TRANSFERS}, not {value}"
                )));
            }
        }
        self.destination = kept_destination(self.destination.trim())?;
        let schedule = Schedule::new(&self.schedule)?;
        Ok((self, schedule))
    }

    /// The saved settings, or the defaults when none were saved (or they can
    /// no longer be read). A setting a save lacks (it came later) has its
    /// default.
    pub fn load(store: &Store) -> AppSettings {
        let saved = match store.setting::<serde_json::Map<String, serde_json::Value>>(NAME) {
            Ok(saved) => saved.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(%error, "the settings could not be read; the defaults hold");
                return AppSettings::default();
            }
        };
        let mut merged = match serde_json::to_value(AppSettings::default()) {
            Ok(serde_json::Value::Object(defaults)) => defaults,
            _ => return AppSettings::default(),
        };
        merged.extend(saved);
        serde_json::from_value(serde_json::Value::Object(merged)).unwrap_or_else(|error| {
            tracing::warn!(%error, "the saved settings could not be read; the defaults hold");
            AppSettings::default()
        })
    }

    /// Saves them, as [`checked`](Self::checked) gives them.
    pub fn save(&self, store: &Store) -> cairn::Result<()> {
        store.set_setting(NAME, self)
    }
}

/// The folder or bucket for new mirrors as it is kept: whole (a folder from
/// the root of this computer, whichever folder Cairn is started in), and
/// with no login or query in a bucket address (a secret is never kept
/// here). Empty stays empty.
fn kept_destination(text: &str) -> cairn::Result<String> {
    if text.is_empty() {
        return Ok(String::new());
    }
    let refused = |why: String| Err(cairn::Error::invalid_input(why));
    if cairn::destination::is_bucket_address(text) {
        // Said without what it holds: a login in it may be a secret.
        let login_or_query = || {
            cairn::Error::invalid_input(
                "a bucket for new mirrors is given by its address alone (s3://bucket/folder); sign in to the bucket when you start a job",
            )
        };
        if text.contains('@') || text.contains('?') || text.contains('#') {
            return Err(login_or_query());
        }
        let url = url::Url::parse(text).map_err(|e| {
            cairn::Error::invalid_input(format!("{text:?} is not a bucket address: {e}"))
        })?;
        if !url.username().is_empty() || url.query().is_some() || url.fragment().is_some() {
            return Err(login_or_query());
        }
    } else if text.starts_with('~') {
        return refused(format!(
            "give the folder's whole path (as /home/you/mirrors), not {text:?}: ~ is not read here"
        ));
    } else if !text.starts_with("file://") && !std::path::Path::new(text).is_absolute() {
        return refused(format!(
            "give the folder's whole path (as /home/you/mirrors), not {text:?}"
        ));
    }
    cairn::destination::normalize(text)
}

/// The limit over all jobs that the schedule sets, for the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Type)]
pub struct LimitNow {
    /// Bytes per second now (none: no limit).
    pub bytes_per_second: Option<u64>,
    /// When it changes, `HH:MM` local time, if it does.
    pub until: Option<String>,
}

/// Keeps the runner's limit over all jobs at what the schedule says for the
/// time of day. Shared by the commands (a saved schedule applies at once)
/// and a clock task (it applies as the day turns).
pub struct Bandwidth {
    runner: Arc<Runner>,
    schedule: Mutex<Schedule>,
}

impl Bandwidth {
    /// Follows `schedule` for `runner`, starting now.
    pub fn new(runner: Arc<Runner>, schedule: Schedule) -> Bandwidth {
        let bandwidth = Bandwidth {
            runner,
            schedule: Mutex::new(schedule),
        };
        bandwidth.apply(minute_now());
        bandwidth
    }

    /// Follows another schedule from now on.
    pub fn replace(&self, schedule: Schedule) {
        *self.schedule.lock().unwrap_or_else(|e| e.into_inner()) = schedule;
        self.apply(minute_now());
    }

    /// Sets the runner's limit to the schedule's at `minute` of the day.
    pub fn apply(&self, minute: u16) -> InForce {
        let in_force = self
            .schedule
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .at(minute);
        if self.runner.global_limit() != in_force.rate {
            self.runner.set_global_limit(in_force.rate);
            match in_force.rate {
                Some(rate) => tracing::info!(
                    bytes_per_second = rate,
                    "the schedule limits all jobs together"
                ),
                None => tracing::info!("the schedule lifts the limit over all jobs"),
            }
        }
        in_force
    }

    /// The limit now, for the window.
    pub fn now(&self) -> LimitNow {
        let in_force = self.apply(minute_now());
        LimitNow {
            bytes_per_second: in_force.rate,
            until: in_force.until.map(clock),
        }
    }

    /// Applies the schedule every few seconds while the app runs.
    pub fn follow_the_clock(self: Arc<Self>) {
        tauri::async_runtime::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.apply(minute_now());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_cannot_be_used_are_refused_in_words() {
        assert!(AppSettings::default().checked().unwrap().1.is_empty());
        let refused = |settings: AppSettings| settings.checked().unwrap_err().to_string();
        let said = refused(AppSettings {
            concurrency: 0,
            ..AppSettings::default()
        });
        assert!(
            said.contains("Transfers at once must be a number from 1 to 64, not 0"),
            "{said}"
        );
        let said = refused(AppSettings {
            per_host: 500,
            ..AppSettings::default()
        });
        assert!(said.contains("from 1 to 64, not 500"), "{said}");
        let said = refused(AppSettings {
            schedule: vec![Slot::new("8h", "1M")],
            ..AppSettings::default()
        });
        assert!(said.contains("is not a time of day"), "{said}");
        let said = refused(AppSettings {
            destination: "ftp://example.org/mirror".into(),
            ..AppSettings::default()
        });
        assert!(!said.is_empty() && !said.contains("::"), "{said}");
        for (typed, says) in [
            ("mirrors", "give the folder's whole path"),
            ("~/mirrors", "~ is not read here"),
            ("s3://key:secret@bucket/m", "by its address alone"),
            ("s3://bucket/m?x-id=1", "by its address alone"),
            ("s3://AKIAEXAMPLE:ab/cd@bucket/m", "by its address alone"),
        ] {
            let said = refused(AppSettings {
                destination: typed.into(),
                ..AppSettings::default()
            });
            assert!(said.contains(says), "{typed}: {said}");
            assert!(!said.contains("ab/cd"), "a secret is shown: {said}");
        }
        // Kept whole: no trailing slash on a bucket, a folder as given.
        let (kept, _) = AppSettings {
            destination: " s3://bucket/mirrors/ ".into(),
            ..AppSettings::default()
        }
        .checked()
        .unwrap();
        assert_eq!(kept.destination, "s3://bucket/mirrors");
    }

    #[test]
    fn settings_are_kept_in_the_state_file_and_fill_what_an_older_save_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        assert_eq!(AppSettings::load(&store), AppSettings::default());
        let chosen = AppSettings {
            destination: dir.path().join("mirrors").display().to_string(),
            concurrency: 4,
            per_host: 2,
            schedule: vec![Slot::new("08:00", "512K"), Slot::new("18:00", "")],
            start_with_system: true,
            notifications: false,
        };
        let (chosen, _) = chosen.checked().unwrap();
        chosen.save(&store).unwrap();
        assert_eq!(AppSettings::load(&store), chosen);
        // A save from before a setting existed reads with its default.
        store
            .set_setting(NAME, &serde_json::json!({ "concurrency": 3 }))
            .unwrap();
        let older = AppSettings::load(&store);
        assert_eq!(older.concurrency, 3);
        assert!(older.notifications);
    }

    #[test]
    fn the_runner_follows_the_schedule_as_the_day_turns() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let runner = Arc::new(Runner::new(store, cairn::fetch::Fetcher::new().unwrap()));
        let schedule =
            Schedule::new(&[Slot::new("08:00", "512K"), Slot::new("18:00", "off")]).unwrap();
        let bandwidth = Bandwidth::new(runner.clone(), Schedule::default());
        assert_eq!(runner.global_limit(), None);
        bandwidth.replace(schedule);
        assert_eq!(bandwidth.apply(9 * 60).rate, Some(512 * 1024));
        assert_eq!(runner.global_limit(), Some(512 * 1024));
        assert_eq!(bandwidth.apply(19 * 60).until, Some(8 * 60));
        assert_eq!(runner.global_limit(), None);
        bandwidth.apply(7 * 60);
        assert_eq!(
            runner.global_limit(),
            None,
            "before 08:00 the evening's rate holds"
        );
        bandwidth.replace(Schedule::new(&[Slot::new("00:00", "1M")]).unwrap());
        assert_eq!(runner.global_limit(), Some(1 << 20));
        assert_eq!(
            bandwidth.now(),
            LimitNow {
                bytes_per_second: Some(1 << 20),
                until: None
            }
        );
    }
}
