//! The `jobs` table: mirror jobs and their state.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Store;
use crate::{Error, Result};

/// Where a job is in its life.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Reading the source and listing what to copy.
    Planning,
    /// Planned; nothing running.
    Ready,
    /// Copying.
    Running,
    /// Stopped by the user; can be resumed.
    Paused,
    /// Every selected asset is done and verified.
    Finished,
    /// Finished, with some assets failed.
    Failed,
    /// Stopped for good by the user.
    Cancelled,
}

impl JobState {
    /// Whether a run of the job has ended in this state (finished, failed,
    /// cancelled, or paused): planning it again leaves it so.
    pub fn has_run(self) -> bool {
        matches!(
            self,
            JobState::Finished | JobState::Failed | JobState::Cancelled | JobState::Paused
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            JobState::Planning => "planning",
            JobState::Ready => "ready",
            JobState::Running => "running",
            JobState::Paused => "paused",
            JobState::Finished => "finished",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> rusqlite::Result<JobState> {
        Ok(match text {
            "planning" => JobState::Planning,
            "ready" => JobState::Ready,
            "running" => JobState::Running,
            "paused" => JobState::Paused,
            "finished" => JobState::Finished,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            other => {
                return Err(rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    format!("unknown job state {other:?}").into(),
                ));
            }
        })
    }
}

/// What a new job copies, from where, to where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The source catalog or API.
    pub source_url: String,
    /// A local path or an object-store URL.
    pub destination: String,
    /// Collections, bbox, datetime and asset filters, as JSON.
    pub selection: Value,
    /// Bytes per second, or `None` for no limit.
    pub limit_rate: Option<u64>,
    /// Transfers at once.
    pub concurrency: u32,
    /// Transfers at once from any one server.
    pub per_host: u32,
}

/// A job as stored.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    /// Row id: the JOB_ID of `cairn resume`.
    pub id: i64,
    /// The source catalog or API.
    pub source_url: String,
    /// Where the mirror goes.
    pub destination: String,
    /// What was selected.
    pub selection: Value,
    /// Where the job is in its life.
    pub state: JobState,
    /// Bytes per second, or `None` for no limit.
    pub limit_rate: Option<u64>,
    /// Transfers at once.
    pub concurrency: u32,
    /// Transfers at once from any one server.
    pub per_host: u32,
    /// When it was created (UTC, RFC 3339).
    pub created_at: String,
    /// Whether a sync keeps the previous version of a file whose source
    /// changed (else the new bytes replace it).
    pub keep_versions: bool,
    /// Whether a sync removes from the mirror the items removed upstream
    /// (else they stay, marked as removed).
    pub mirror_deletions: bool,
    /// What the person called it, if they did.
    pub name: Option<String>,
    /// When it last ended (finished, failed or cancelled; UTC, RFC 3339).
    pub finished_at: Option<String>,
    /// Why the job stopped on its own (it is then paused until someone
    /// fixes the cause and resumes it); `None` when it did not.
    pub stop_reason: Option<String>,
    /// How it signs in to its source (nothing secret).
    pub access: crate::fetch::access::Settings,
}

impl Store {
    /// Creates a job in the `planning` state and returns its id.
    pub fn create_job(&self, job: &NewJob) -> Result<i64> {
        let limit = job.limit_rate.map(|r| i64::try_from(r).unwrap_or(i64::MAX));
        self.conn().execute(
            "INSERT INTO jobs (source_url, destination, selection, limit_rate, concurrency, per_host)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                job.source_url,
                job.destination,
                job.selection.to_string(),
                limit,
                job.concurrency,
                job.per_host
            ],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    /// One job by id.
    pub fn job(&self, id: i64) -> Result<Option<Job>> {
        let job = self
            .conn()
            .query_row(&format!("{SELECT_JOB} WHERE id = ?1"), [id], row_to_job)
            .optional()?;
        // A job not found whose items are there (looked at in one
        // statement: another process may be making the job): a damaged
        // page hides it.
        if job.is_none()
            && self.conn().query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM jobs WHERE id = ?1)
                    AND EXISTS (SELECT 1 FROM items WHERE job_id = ?1)",
                [id],
                |r| r.get::<_, bool>(0),
            )?
        {
            return Err(self.damaged(&format!("the items of job {id} are there, but not the job")));
        }
        Ok(job)
    }

    /// Every job, newest first (not the drafts of estimates nobody started).
    pub fn jobs(&self) -> Result<Vec<Job>> {
        let mut statement = self
            .conn()
            .prepare(&format!("{SELECT_JOB} WHERE draft = 0 ORDER BY id DESC"))?;
        let rows = statement.query_map([], row_to_job)?;
        let jobs: Vec<Job> = rows.collect::<Result<_, _>>()?;
        // No job at all in the table itself (not an index of it, which a
        // lost page of the table leaves whole), and items: a damaged page
        // hides the jobs.
        if jobs.is_empty()
            && self.conn().query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM jobs NOT INDEXED) AND EXISTS (SELECT 1 FROM items)",
                [],
                |r| r.get::<_, bool>(0),
            )?
        {
            return Err(self.damaged("items are there, but not their jobs"));
        }
        Ok(jobs)
    }

    /// The job (or draft) that copies `selection` from `source` into
    /// `destination`, if one was recorded.
    pub fn find_job(
        &self,
        source: &str,
        destination: &str,
        selection: &Value,
    ) -> Result<Option<Job>> {
        let mut statement = self.conn().prepare(&format!(
            "{SELECT_JOB} WHERE source_url = ?1 AND destination = ?2 ORDER BY draft, id DESC"
        ))?;
        let rows = statement.query_map(params![source, destination], row_to_job)?;
        for job in rows {
            let job = job?;
            if &job.selection == selection {
                return Ok(Some(job));
            }
        }
        Ok(None)
    }

    /// Records job `id` as a draft (an estimate not started yet) or as a job.
    pub fn set_job_draft(&self, id: i64, draft: bool) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE jobs SET draft = ?2 WHERE id = ?1")?
            .execute(params![id, draft])?;
        Ok(())
    }

    /// Names job `id`.
    pub fn set_job_name(&self, id: i64, name: &str) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE jobs SET name = ?2 WHERE id = ?1")?
            .execute(params![id, name])?;
        Ok(())
    }

    /// Records how job `id` signs in (nothing secret: see
    /// [`Settings`](crate::fetch::access::Settings)).
    pub fn set_job_access(&self, id: i64, access: &crate::fetch::access::Settings) -> Result<()> {
        let text = (!access.is_empty())
            .then(|| serde_json::to_string(access))
            .transpose()
            .map_err(|e| Error::invalid_input(e.to_string()))?;
        self.conn()
            .prepare_cached("UPDATE jobs SET access = ?2 WHERE id = ?1")?
            .execute(params![id, text])?;
        Ok(())
    }

    /// Whether job `id` is a draft (an estimate nobody started).
    pub fn is_draft(&self, id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .query_row("SELECT draft FROM jobs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?
            .unwrap_or(false))
    }

    /// Forgets draft `id` and its records, unless it became a job; returns
    /// whether it went.
    pub fn delete_draft(&self, id: i64) -> Result<bool> {
        let deleted = self
            .conn()
            .execute("DELETE FROM jobs WHERE id = ?1 AND draft = 1", [id])?;
        Ok(deleted > 0)
    }

    /// The drafts: estimates nobody started.
    pub fn drafts(&self) -> Result<Vec<i64>> {
        let mut statement = self
            .conn()
            .prepare("SELECT id FROM jobs WHERE draft = 1 ORDER BY id")?;
        let rows = statement.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Moves a job to `state` (which clears why it stopped, if it had).
    pub fn set_job_state(&self, id: i64, state: JobState) -> Result<()> {
        let changed = self.conn().execute(
            "UPDATE jobs SET state = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
                 -- Paused again, a job that stopped on its own still says why.
                 stop_reason = CASE WHEN ?2 = 'paused' AND state = 'paused' THEN stop_reason END,
                 finished_at = CASE WHEN ?2 IN ('finished', 'failed', 'cancelled')
                                    THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') END
             WHERE id = ?1",
            params![id, state.as_str()],
        )?;
        if changed == 0 {
            return Err(Error::invalid_input(format!("there is no job {id}")));
        }
        Ok(())
    }

    /// Puts job `job` back as it was when read: its state, when it ended,
    /// and why it stopped (a plan that copied nothing leaves it so).
    pub fn restore_job(&self, job: &Job) -> Result<()> {
        let changed = self.conn().execute(
            "UPDATE jobs SET state = ?2, finished_at = ?3, stop_reason = ?4,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?1",
            params![job.id, job.state.as_str(), job.finished_at, job.stop_reason],
        )?;
        if changed == 0 {
            return Err(Error::invalid_input(format!("there is no job {}", job.id)));
        }
        Ok(())
    }

    /// Job `id` stopped on its own because of `reason` (said in words): it
    /// is paused, needing attention, until it runs again.
    pub fn stop_job(&self, id: i64, reason: &str) -> Result<()> {
        let changed = self
            .conn()
            .prepare_cached(
                "UPDATE jobs SET state = 'paused', stop_reason = ?2, finished_at = NULL,
                     updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE id = ?1",
            )?
            .execute(params![id, reason])?;
        if changed == 0 {
            return Err(Error::invalid_input(format!("there is no job {id}")));
        }
        Ok(())
    }

    /// Records whether job `id`'s plan was just read whole by an estimate
    /// (only a draft's can be): its first run then copies without reading
    /// the source again.
    pub fn set_plan_fresh(&self, id: i64, fresh: bool) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE jobs SET plan_fresh = ?2 AND draft = 1 WHERE id = ?1")?
            .execute(params![id, fresh])?;
        Ok(())
    }

    /// Whether job `id`'s plan was fresh; it is not any more once taken.
    pub fn take_plan_fresh(&self, id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("UPDATE jobs SET plan_fresh = 0 WHERE id = ?1 AND plan_fresh = 1")?
            .execute([id])?
            == 1)
    }

    /// Changes how many transfers a job runs at once, overall and per server.
    pub fn set_job_concurrency(&self, id: i64, concurrency: u32, per_host: u32) -> Result<()> {
        self.conn().execute(
            "UPDATE jobs SET concurrency = ?2, per_host = ?3 WHERE id = ?1",
            params![id, concurrency, per_host],
        )?;
        Ok(())
    }

    /// Records that every file the job finished before `at` is on disk for good.
    pub fn set_job_flushed(&self, id: i64, at: &str) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE jobs SET flushed_at = ?2 WHERE id = ?1")?
            .execute(params![id, at])?;
        Ok(())
    }

    /// Records whether job `id`'s mirror holds changes its index and
    /// provenance do not have yet (`due`), or has them written (`!due`).
    pub fn set_extras_due(&self, id: i64, due: bool) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE jobs SET extras_due = ?2 WHERE id = ?1")?
            .execute(params![id, due])?;
        Ok(())
    }

    /// Whether job `id`'s mirror holds changes its index and provenance do
    /// not have yet (see [`Store::set_extras_due`]).
    pub fn extras_due(&self, id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("SELECT extras_due FROM jobs WHERE id = ?1")?
            .query_row([id], |row| row.get(0))
            .optional()?
            .unwrap_or(false))
    }

    /// Forgets job `id` and everything recorded of it (its plan, its runs,
    /// its log); the files it copied stay where they are. Flags of a mirror
    /// no job names any more go too. Returns whether there was such a job.
    pub fn delete_job(&self, id: i64) -> Result<bool> {
        self.savepoint(|| {
            let deleted = self
                .conn()
                .execute("DELETE FROM jobs WHERE id = ?1", [id])?;
            self.conn().execute(
                "DELETE FROM flags WHERE destination NOT IN (SELECT destination FROM jobs)",
                [],
            )?;
            Ok(deleted > 0)
        })
    }

    /// What a sync of job `id` does with changed files and removed items.
    pub fn set_job_sync_options(
        &self,
        id: i64,
        keep_versions: bool,
        mirror_deletions: bool,
    ) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE jobs SET keep_versions = ?2, mirror_deletions = ?3 WHERE id = ?1",
            )?
            .execute(params![id, keep_versions, mirror_deletions])?;
        Ok(())
    }

    /// Changes a job's bandwidth limit; a running job picks it up.
    pub fn set_job_limit_rate(&self, id: i64, limit_rate: Option<u64>) -> Result<()> {
        let changed = self.conn().execute(
            "UPDATE jobs SET limit_rate = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?1",
            params![id, limit_rate.map(|r| i64::try_from(r).unwrap_or(i64::MAX))],
        )?;
        if changed == 0 {
            return Err(Error::invalid_input(format!("there is no job {id}")));
        }
        Ok(())
    }
}

const SELECT_JOB: &str = "SELECT id, source_url, destination, selection, state, limit_rate,
    concurrency, created_at, per_host, keep_versions, mirror_deletions, stop_reason, name,
    finished_at, access FROM jobs";

fn row_to_job(row: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let state: String = row.get(4)?;
    let limit: Option<i64> = row.get(5)?;
    Ok(Job {
        id: row.get(0)?,
        source_url: row.get(1)?,
        destination: row.get(2)?,
        selection: super::json_column(row, 3)?,
        state: JobState::parse(&state)?,
        limit_rate: limit.map(|l| l as u64),
        concurrency: row.get(6)?,
        per_host: row.get(8)?,
        created_at: row.get(7)?,
        keep_versions: row.get(9)?,
        mirror_deletions: row.get(10)?,
        stop_reason: row.get(11)?,
        name: row.get(12)?,
        finished_at: row.get(13)?,
        access: match row.get::<_, Option<String>>(14)? {
            // A setting this version does not know is left out, not fatal.
            Some(text) => serde_json::from_str(&text).unwrap_or_default(),
            None => Default::default(),
        },
    })
}

impl Store {
    /// The refusal of a state file found damaged by what it holds (SQLite
    /// itself finds nothing malformed).
    fn damaged(&self, what: &str) -> Error {
        Error::StateFile {
            path: self
                .path
                .as_deref()
                .map_or_else(|| ":memory:".into(), |p| p.display().to_string()),
            reason: format!(
                "is damaged: {what} (a part of it was lost, or jobs were deleted by hand). Keep a copy of it, then start with a new state file (--state)"
            ),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn new_job() -> NewJob {
        NewJob {
            source_url: "https://a.test/catalog.json".into(),
            destination: "/tmp/mirror".into(),
            selection: json!({"collections": ["c"], "bbox": [0, 0, 1, 1]}),
            limit_rate: Some(10_000_000),
            concurrency: 4,
            per_host: 2,
        }
    }

    #[test]
    fn a_deleted_job_takes_its_records_and_its_mirror_s_flags_with_it() {
        let store = Store::open_in_memory().unwrap();
        let id = store.create_job(&new_job()).unwrap();
        let other = store
            .create_job(&NewJob {
                destination: "/tmp/elsewhere".into(),
                ..new_job()
            })
            .unwrap();
        store
            .log_job(id, crate::store::LogKind::Info, "planned")
            .unwrap();
        store
            .flag("/tmp/mirror", "c/i/a.tif", crate::store::FlagKind::Missing)
            .unwrap();
        store
            .flag("/tmp/elsewhere", "x.tif", crate::store::FlagKind::Missing)
            .unwrap();
        assert!(store.delete_job(id).unwrap());
        assert!(store.job(id).unwrap().is_none());
        assert!(store.job_log(id, 10).unwrap().is_empty());
        assert!(store.flags("/tmp/mirror").unwrap().is_empty());
        assert_eq!(store.flags("/tmp/elsewhere").unwrap().len(), 1);
        assert!(store.job(other).unwrap().is_some());
        assert!(!store.delete_job(id).unwrap());
    }

    #[test]
    fn jobs_round_trip_and_change_state() {
        let store = Store::open_in_memory().unwrap();
        let id = store.create_job(&new_job()).unwrap();
        let job = store.job(id).unwrap().unwrap();
        assert_eq!(job.state, JobState::Planning);
        assert_eq!(job.selection["collections"], json!(["c"]));
        assert_eq!(job.limit_rate, Some(10_000_000));
        store.set_job_state(id, JobState::Paused).unwrap();
        store.set_job_limit_rate(id, None).unwrap();
        let job = store.job(id).unwrap().unwrap();
        assert_eq!((job.state, job.limit_rate), (JobState::Paused, None));
        assert_eq!(store.jobs().unwrap().len(), 1);
        assert!(store.set_job_state(id + 1, JobState::Running).is_err());
    }
}
