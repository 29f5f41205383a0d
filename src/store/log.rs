//! The `job_log` table: what happened in each job, in sentences.

use rusqlite::params;
use serde::Serialize;

use super::Store;
use crate::Result;

/// How a log line reads.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    /// A step of the job.
    Info,
    /// Something in the source that could not be used.
    Problem,
    /// An asset, or the job, that failed.
    Failed,
}

impl LogKind {
    fn as_str(self) -> &'static str {
        match self {
            LogKind::Info => "info",
            LogKind::Problem => "problem",
            LogKind::Failed => "failed",
        }
    }
}

/// One line of a job's log.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// How it reads.
    pub kind: LogKind,
    /// What happened.
    pub text: String,
}

impl Store {
    /// Adds a line to a job's log.
    pub fn log_job(&self, job_id: i64, kind: LogKind, text: &str) -> Result<()> {
        self.conn()
            .prepare_cached("INSERT INTO job_log (job_id, kind, text) VALUES (?1, ?2, ?3)")?
            .execute(params![job_id, kind.as_str(), text])?;
        Ok(())
    }

    /// The last `limit` lines of a job's log, oldest first.
    pub fn job_log(&self, job_id: i64, limit: usize) -> Result<Vec<LogLine>> {
        let mut statement = self.conn().prepare_cached(&format!(
            "SELECT at, kind, text FROM (
                 SELECT id, at, kind, text FROM job_log WHERE job_id = ?1 ORDER BY id DESC LIMIT {limit})
             ORDER BY id",
        ))?;
        let rows = statement.query_map(params![job_id], |row| {
            let kind: String = row.get(1)?;
            Ok(LogLine {
                at: row.get(0)?,
                kind: match kind.as_str() {
                    "problem" => LogKind::Problem,
                    "failed" => LogKind::Failed,
                    _ => LogKind::Info,
                },
                text: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::jobs::tests::new_job;

    #[test]
    fn a_job_log_keeps_its_last_lines_in_order() {
        let store = Store::open_in_memory().unwrap();
        let job = store.create_job(&new_job()).unwrap();
        for i in 0..5 {
            store
                .log_job(job, LogKind::Info, &format!("line {i}"))
                .unwrap();
        }
        store
            .log_job(job, LogKind::Failed, "the disk is full")
            .unwrap();
        let lines = store.job_log(job, 3).unwrap();
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["line 3", "line 4", "the disk is full"]);
        assert_eq!(lines[2].kind, LogKind::Failed);
        assert!(store.job_log(job + 1, 10).unwrap().is_empty());
    }
}
