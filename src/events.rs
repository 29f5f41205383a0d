//! Progress of a running job, sampled rather than pushed per chunk.
//!
//! Transfers add to atomic counters; a ticker reads them about four times a
//! second into [`Snapshot`]s with a rate and an ETA. Events go out on a channel
//! for the CLI (progress lines) and the desktop app.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::store::LogKind;
use crate::words::{human_bytes, plural};

/// What a job that reads requester-pays buckets costs the user, said
/// before it copies.
pub const REQUESTER_PAYS: &str = "Requester pays is on: the owners of the S3 buckets this job reads bill your AWS account for its requests and for every byte it reads.";

/// Counters shared by the transfers of one job.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes received in this run.
    pub bytes: Arc<AtomicU64>,
    /// Assets finished (done or skipped) in this run.
    pub files: AtomicU64,
    /// Of those, the ones whose record the state store has applied (counted
    /// by the store's thread as it applies each): beside a count of the
    /// store's rows read in the same turn, it tells what the rows held
    /// before this run.
    pub files_recorded: AtomicU64,
    /// Assets failed in this run.
    pub failed: AtomicU64,
}

/// What a job reports.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Something in the source could not be used, or something in the
    /// mirror stood in the way (the job goes on past it). `href` is where:
    /// an address in the source, or a path in the mirror.
    Problem {
        /// The job.
        job: i64,
        /// Where.
        href: String,
        /// What, in plain words.
        reason: String,
    },
    /// The plan is complete: what the job holds.
    #[serde(rename = "plan")]
    Planned {
        /// The job.
        job: i64,
        /// Items selected.
        items: u64,
        /// Assets selected.
        assets: u64,
        /// Bytes the catalog announced.
        bytes: u64,
        /// Assets whose size the catalog does not give.
        unknown_sizes: u64,
        /// Assets in the mirror before this run (copied by an earlier one,
        /// or found there and verified); not those copied while the plan
        /// was read.
        already_done: u64,
        /// Where the mirror goes.
        destination: String,
        /// Whether S3 buckets are read as requester-pays buckets: the
        /// user's account is billed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        requester_pays: bool,
    },
    /// The job started (or resumed) its transfers.
    Started {
        /// The job.
        job: i64,
        /// Assets to copy in all.
        files_total: u64,
        /// Bytes the catalog announced (assets without a size are not counted).
        bytes_total: u64,
    },
    /// A sample of the counters.
    Progress(Snapshot),
    /// An asset gave up.
    AssetFailed {
        /// The job.
        job: i64,
        /// The asset's source.
        href: String,
        /// Why, in plain words.
        reason: String,
    },
    /// The run stopped on an error that no retry fixes (the source cannot be
    /// read, the disk is full...): it says what to do, then resume.
    Stopped {
        /// The job.
        job: i64,
        /// What happened, in plain words.
        reason: String,
    },
    /// The job waits for a server it cannot reach (it is down, or the
    /// network is gone) rather than fail its files, or no longer does (it
    /// answers again, other servers answer, or an hour went by).
    Waiting {
        /// The job.
        job: i64,
        /// The server: its scheme, host and port.
        server: String,
        /// Whether the job waits for it from now on.
        waiting: bool,
        /// What happened, in plain words.
        reason: String,
    },
    /// The watcher saw a file of the job's mirror change since it was
    /// copied, or put right again.
    Flagged {
        /// The job (the latest into that mirror).
        job: i64,
        /// The file, relative to the mirror.
        path: String,
        /// What happened to it (`None`: it is no longer flagged).
        kind: Option<crate::store::FlagKind>,
        /// How many other files of the mirror changed in the same look.
        more: u64,
    },
    /// The run ended: everything was tried, or it was interrupted.
    Finished {
        /// The job.
        job: i64,
        /// The job's counts at the end.
        counts: crate::store::Counts,
        /// Whether it stopped early (and can be resumed).
        interrupted: bool,
    },
}

impl Event {
    /// The job the event is about.
    pub fn job(&self) -> i64 {
        match self {
            Event::Problem { job, .. }
            | Event::Planned { job, .. }
            | Event::Started { job, .. }
            | Event::AssetFailed { job, .. }
            | Event::Stopped { job, .. }
            | Event::Flagged { job, .. }
            | Event::Waiting { job, .. }
            | Event::Finished { job, .. } => *job,
            Event::Progress(snapshot) => snapshot.job,
        }
    }

    /// The sentence the job's log keeps for this event (progress samples
    /// are not kept).
    pub fn log_line(&self) -> Option<(LogKind, String)> {
        Some(match self {
            Event::Problem { href, reason, .. } => (LogKind::Problem, format!("{href}: {reason}")),
            Event::Planned {
                items,
                assets,
                bytes,
                unknown_sizes,
                already_done,
                requester_pays,
                ..
            } => {
                let unknown = if *unknown_sizes > 0 {
                    format!(" (and {} of unknown size)", plural(*unknown_sizes, "asset"))
                } else {
                    String::new()
                };
                (
                    LogKind::Info,
                    format!(
                        "Planned {}, {}, {}{unknown}; {already_done} already there.{}",
                        plural(*items, "item"),
                        plural(*assets, "asset"),
                        human_bytes(*bytes),
                        match requester_pays {
                            true => format!(" {REQUESTER_PAYS}"),
                            false => String::new(),
                        }
                    ),
                )
            }
            // Copying starts while the plan is still read: its totals come later.
            Event::Started { .. } => (LogKind::Info, "Copying started.".to_string()),
            Event::AssetFailed { href, reason, .. } => {
                (LogKind::Failed, format!("Could not copy {href}: {reason}"))
            }
            Event::Stopped { reason, .. } => (LogKind::Failed, format!("Stopped: {reason}")),
            Event::Waiting {
                server,
                waiting,
                reason,
                ..
            } => (
                match waiting {
                    true => LogKind::Problem,
                    false => LogKind::Info,
                },
                format!("{server} {reason}."),
            ),
            Event::Flagged {
                path, kind, more, ..
            } => {
                use crate::store::FlagKind;
                let what = match kind {
                    Some(FlagKind::Missing) => "is gone from the mirror; Repair fetches it again",
                    Some(FlagKind::Modified) => {
                        "was changed since it was verified; Check the copy tells whether its bytes differ, and Repair fetches it again"
                    }
                    Some(FlagKind::Edited) => {
                        "(an item's description) was edited since Cairn wrote it; Repair writes it again"
                    }
                    Some(FlagKind::Added) => {
                        "appeared in the mirror; no job put it there, and it is left as it is"
                    }
                    None => "is no longer flagged",
                };
                let others = match more {
                    0 => String::new(),
                    n => format!(" ({} changed too)", crate::words::plural(*n, "other file")),
                };
                (
                    if kind.is_some_and(FlagKind::repairable) {
                        LogKind::Problem
                    } else {
                        LogKind::Info
                    },
                    format!("{path} {what}{others}."),
                )
            }
            Event::Finished {
                counts,
                interrupted: true,
                ..
            } => (
                LogKind::Info,
                format!(
                    "Copying stopped with {} verified{}; Resume continues from there.",
                    plural(counts.done + counts.skipped, "asset"),
                    match counts.bytes_kept {
                        0 => String::new(),
                        kept => format!(" and {} of unfinished downloads kept", human_bytes(kept)),
                    }
                ),
            ),
            Event::Finished { counts, .. } => (
                if counts.failed > 0 || counts.items_failed > 0 {
                    LogKind::Failed
                } else {
                    LogKind::Info
                },
                format!(
                    "Finished: {} verified, {} failed{}.",
                    plural(counts.done + counts.skipped, "asset"),
                    counts.failed,
                    match counts.items_failed {
                        0 => String::new(),
                        n => format!(", {} not written", plural(n, "item description")),
                    }
                ),
            ),
            Event::Progress(_) => return None,
        })
    }
}

/// One sample of a job's progress.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// The job.
    pub job: i64,
    /// Bytes verified before this run plus bytes received in it.
    pub bytes_done: u64,
    /// Bytes announced in all.
    pub bytes_total: u64,
    /// Assets finished.
    pub files_done: u64,
    /// Assets in all.
    pub files_total: u64,
    /// Assets failed.
    pub files_failed: u64,
    /// Bytes per second over the last few seconds.
    pub rate: f64,
    /// Seconds left at that rate, when it can be told.
    pub eta_seconds: Option<u64>,
}

/// Turns counter readings into snapshots with a smoothed rate.
#[derive(Debug)]
pub struct Sampler {
    job: i64,
    base_bytes: u64,
    base_files: AtomicU64,
    bytes_total: AtomicU64,
    files_total: AtomicU64,
    window: Mutex<Vec<(Instant, u64)>>,
}

impl Sampler {
    /// A sampler for a job that had `base_bytes`/`base_files` done before this run.
    pub fn new(
        job: i64,
        base_bytes: u64,
        base_files: u64,
        bytes_total: u64,
        files_total: u64,
    ) -> Sampler {
        Sampler {
            job,
            base_bytes,
            base_files: AtomicU64::new(base_files),
            bytes_total: AtomicU64::new(bytes_total),
            files_total: AtomicU64::new(files_total),
            window: Mutex::new(Vec::new()),
        }
    }

    /// New totals, while the job is still being planned, and the assets
    /// finished before this run as the store now counts them: a sync asks
    /// again about files verified before, which are then no longer counted
    /// as finished until they are again.
    pub fn set_totals(&self, bytes_total: u64, files_total: u64, files_before: u64) {
        self.bytes_total.store(bytes_total, Ordering::Relaxed);
        self.files_total.store(files_total, Ordering::Relaxed);
        self.base_files.store(files_before, Ordering::Relaxed);
    }

    /// Reads the counters now.
    pub fn sample(&self, counters: &Counters) -> Snapshot {
        let bytes = counters.bytes.load(Ordering::Relaxed);
        let now = Instant::now();
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        window.push((now, bytes));
        window.retain(|(at, _)| now.duration_since(*at) <= Duration::from_secs(5));
        let rate = match (window.first(), window.last()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
                (b1 - b0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        };
        let bytes_done = self.base_bytes + bytes;
        let bytes_total = self.bytes_total.load(Ordering::Relaxed);
        let eta_seconds = (rate > 0.0 && bytes_total > bytes_done)
            .then(|| ((bytes_total - bytes_done) as f64 / rate).ceil() as u64);
        // While the plan is read, files are done faster than the totals
        // are counted again: a total is never less than what is done.
        let files_done =
            self.base_files.load(Ordering::Relaxed) + counters.files.load(Ordering::Relaxed);
        Snapshot {
            job: self.job,
            bytes_done,
            bytes_total: bytes_total.max(bytes_done),
            files_done,
            files_total: self.files_total.load(Ordering::Relaxed).max(files_done),
            files_failed: counters.failed.load(Ordering::Relaxed),
            rate,
            eta_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_never_has_more_files_done_than_in_all() {
        // Two done before, 3 in all as last counted, 5 done since: the plan
        // found more than was counted.
        let sampler = Sampler::new(1, 0, 2, 0, 3);
        let counters = Counters::default();
        counters.files.store(5, Ordering::Relaxed);
        let snapshot = sampler.sample(&counters);
        assert_eq!((snapshot.files_done, snapshot.files_total), (7, 7));
        sampler.set_totals(0, 10, 2);
        let snapshot = sampler.sample(&counters);
        assert_eq!((snapshot.files_done, snapshot.files_total), (7, 10));
    }
}
