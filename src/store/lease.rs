//! One job, one copier: the process that copies a job holds a lease on it in
//! the state file, renews it while it runs, and lets it go when it stops.
//!
//! Another process (the app and a `cairn resume`, two terminals) asking for
//! the same job is refused in words while the lease holds. A process that
//! died stops renewing: its lease runs out after [`LEASE`], or sooner when its
//! process is seen gone on this computer, and the job can be taken over; only
//! then are the rows it left active put back in the queue. The same three
//! calls (take, renew, let go) are what a shared PostgreSQL state will offer.

use std::time::Duration;

use rusqlite::{OptionalExtension, params};

use super::Store;
use crate::Result;

/// How long a lease holds without renewal.
pub const LEASE: Duration = Duration::from_secs(30);

/// Who holds a lease: this computer's name, this process's id, and a token
/// unique to one [`Holder::this_process`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder(String);

impl Holder {
    /// A holder for this process.
    pub fn this_process() -> Holder {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        Holder(format!(
            "{} {} {:016x}",
            host_name(),
            std::process::id(),
            hasher.finish()
        ))
    }

    /// How the holder is told to a person: "process 1234 on this computer".
    pub fn describe(text: &str) -> String {
        let mut parts = text.split(' ');
        match (parts.next(), parts.next()) {
            (Some(host), Some(pid)) if host == host_name() => {
                format!("process {pid} on this computer")
            }
            (Some(host), Some(pid)) => format!("process {pid} on {host}"),
            _ => text.to_string(),
        }
    }

    /// Whether the holder written as `text` is certainly gone: a process of
    /// this computer that no longer runs, or one of this very process (which
    /// coordinates its own runs).
    fn is_gone(text: &str) -> bool {
        let mut parts = text.split(' ');
        let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
            return false;
        };
        if host != host_name() {
            return false;
        }
        let Ok(pid) = pid.parse::<u32>() else {
            return false;
        };
        pid == std::process::id() || !process_runs(pid)
    }
}

/// This computer's name, as holders and Cairn's temporary names give it.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().replace(' ', "_"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this-computer".into())
}

/// Whether process `pid` runs (Linux: its /proc entry, and not a zombie);
/// elsewhere it is assumed to run, and only its lease's end frees the job.
pub(crate) fn process_runs(pid: u32) -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start())
            .is_some_and(|rest| rest.starts_with('Z') || rest.starts_with('X')),
        Err(_) => false,
    }
}

/// A lease that holds now: one whose end is a time (a value that is not,
/// as a damaged or hand-edited file may hold, would sort after every time
/// and hold the job for ever) and is still to come.
pub(super) const LEASE_HOLDS: &str =
    "held_until GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*'
     AND held_until > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

impl Store {
    /// Takes the lease on job `job_id` for `holder`; `Err` with who holds it
    /// when another live process does.
    pub fn take_job(
        &self,
        job_id: i64,
        holder: &Holder,
    ) -> Result<std::result::Result<(), String>> {
        self.transaction(|| {
            if let Some(other) = self.live_holder(job_id)?
                && other != holder.0
            {
                return Ok(Err(Holder::describe(&other)));
            }
            self.conn().execute(
                &format!(
                    "UPDATE jobs SET holder = ?2,
                         held_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+{} seconds')
                     WHERE id = ?1",
                    LEASE.as_secs()
                ),
                params![job_id, holder.0],
            )?;
            Ok(Ok(()))
        })
    }

    /// Extends `holder`'s lease on job `job_id`; false when it holds none
    /// (another process took the job over after the lease ran out).
    pub fn renew_job(&self, job_id: i64, holder: &Holder) -> Result<bool> {
        let seconds = LEASE.as_secs();
        let changed = self.conn().execute(
            &format!(
                "UPDATE jobs SET holder = ?2,
                     held_until = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+{seconds} seconds')
                 WHERE id = ?1 AND holder = ?2"
            ),
            params![job_id, holder.0],
        )?;
        Ok(changed == 1)
    }

    /// Lets go of `holder`'s lease on job `job_id`.
    pub fn release_job(&self, job_id: i64, holder: &Holder) -> Result<()> {
        self.conn().execute(
            "UPDATE jobs SET holder = NULL, held_until = NULL WHERE id = ?1 AND holder = ?2",
            params![job_id, holder.0],
        )?;
        Ok(())
    }

    /// Who holds job `job_id`'s lease now, if a live process does.
    pub fn job_holder(&self, job_id: i64) -> Result<Option<String>> {
        Ok(self.live_holder(job_id)?.map(|h| Holder::describe(&h)))
    }

    /// The holder of job `job_id`'s lease as written, if the lease holds
    /// and its process is not known to be gone.
    fn live_holder(&self, job_id: i64) -> Result<Option<String>> {
        let current: Option<String> = self
            .conn()
            .query_row(
                &format!("SELECT holder FROM jobs WHERE id = ?1 AND {LEASE_HOLDS}"),
                [job_id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(current.filter(|h| !Holder::is_gone(h)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_until_it_lets_go_or_dies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cairn.db");
        let store = Store::open(&path).unwrap();
        let job = store
            .create_job(&crate::store::jobs::tests::new_job())
            .unwrap();
        // Another live process of this computer: pid 1 always runs.
        let other = Holder(format!("{} 1 feed", host_name()));
        assert_eq!(store.take_job(job, &other).unwrap(), Ok(()));
        let me = Holder::this_process();
        let refused = store.take_job(job, &me).unwrap().unwrap_err();
        assert_eq!(refused, "process 1 on this computer");
        assert_eq!(
            store.job_holder(job).unwrap().as_deref(),
            Some("process 1 on this computer")
        );
        assert!(!store.renew_job(job, &me).unwrap());
        store.release_job(job, &other).unwrap();
        // A lease let go is not renewed by whoever asks: it is taken again.
        assert!(!store.renew_job(job, &me).unwrap());
        assert_eq!(store.take_job(job, &me).unwrap(), Ok(()));
        assert!(store.renew_job(job, &me).unwrap());
        // A holder whose process is gone is taken over at once.
        let dead = Holder(format!("{} {} dead", host_name(), u32::MAX - 1));
        store.release_job(job, &me).unwrap();
        assert_eq!(store.take_job(job, &dead).unwrap(), Ok(()));
        assert_eq!(store.job_holder(job).unwrap(), None);
        assert_eq!(store.take_job(job, &me).unwrap(), Ok(()));
        // A holder elsewhere is waited for until its lease ends.
        let remote = Holder("elsewhere 42 beef".into());
        store.release_job(job, &me).unwrap();
        assert_eq!(store.take_job(job, &remote).unwrap(), Ok(()));
        assert_eq!(
            store.take_job(job, &me).unwrap(),
            Err("process 42 on elsewhere".into())
        );
        store
            .conn()
            .execute(
                "UPDATE jobs SET held_until = '2000-01-01T00:00:00.000Z'",
                [],
            )
            .unwrap();
        assert_eq!(store.take_job(job, &me).unwrap(), Ok(()));
        // A lease whose end is not a time (a damaged or edited file) does
        // not hold the job for ever.
        store.release_job(job, &me).unwrap();
        assert_eq!(store.take_job(job, &remote).unwrap(), Ok(()));
        store
            .conn()
            .execute("UPDATE jobs SET held_until = 'not a date'", [])
            .unwrap();
        assert_eq!(store.job_holder(job).unwrap(), None);
        assert_eq!(store.take_job(job, &me).unwrap(), Ok(()));
    }
}
