//! The mirrors on this computer: each destination the jobs copy into, with
//! what it holds and how it stood at its last check (table `checks`).

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::Store;
use crate::Result;

/// One check of a mirror.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// When (RFC 3339).
    pub checked_at: String,
    /// Files checked.
    pub files: u64,
    /// Files that matched their size and checksum.
    pub verified: u64,
    /// What was left wrong (missing, damaged, edited).
    pub problems: u64,
}

/// A mirror: one destination, the jobs that copy into it, what it holds.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorRow {
    /// The folder or bucket address.
    pub destination: String,
    /// The jobs that copy into it, oldest first.
    pub jobs: Vec<i64>,
    /// Their names (or sources, for a job without a name).
    pub names: Vec<String>,
    /// Files verified in it (each path once, whichever job copied it).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Files its jobs could not copy.
    pub failed: u64,
    /// Files the watcher saw change since they were copied.
    pub flagged: u64,
    /// When a job into it last finished (RFC 3339).
    pub last_copied: Option<String>,
    /// Whether a job is planning or copying into it now.
    pub unfinished: bool,
    /// Its last check, if it had one.
    pub last_check: Option<Check>,
}

impl Store {
    /// Records a check of the mirror at `destination` (as jobs record it).
    pub fn record_check(
        &self,
        destination: &str,
        files: u64,
        verified: u64,
        problems: u64,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO checks (destination, files, verified, problems) VALUES (?1, ?2, ?3, ?4)",
            params![destination, files as i64, verified as i64, problems as i64],
        )?;
        Ok(())
    }

    /// The last check of the mirror at `destination`.
    pub fn last_check(&self, destination: &str) -> Result<Option<Check>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT checked_at, files, verified, problems FROM checks
                 WHERE destination = ?1 ORDER BY id DESC LIMIT 1",
                [destination],
                |row| {
                    Ok(Check {
                        checked_at: row.get(0)?,
                        files: row.get::<_, i64>(1)? as u64,
                        verified: row.get::<_, i64>(2)? as u64,
                        problems: row.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .optional()?)
    }

    /// Every mirror the jobs (not drafts) copy into, the latest copied first.
    pub fn mirrors(&self) -> Result<Vec<MirrorRow>> {
        let mut statement = self.conn().prepare(
            "SELECT destination,
                    group_concat(id, ',' ORDER BY id),
                    json_group_array(coalesce(name, source_url) ORDER BY id),
                    max(finished_at),
                    count(*) FILTER (WHERE state IN ('planning', 'running'))
             FROM jobs WHERE draft = 0
             GROUP BY destination
             ORDER BY max(coalesce(finished_at, updated_at)) DESC, destination",
        )?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut mirrors = Vec::with_capacity(rows.len());
        for (destination, ids, names, last_copied, unfinished) in rows {
            // Each file once, at the size its latest record gives; a file
            // counts as failed only while no job has it.
            let (files, bytes, failed): (i64, i64, i64) = self.conn().query_row(
                "WITH here AS (
                     SELECT a.path, a.state, a.size, a.updated_at, a.id
                     FROM jobs j JOIN items i ON i.job_id = j.id JOIN assets a ON a.item_row = i.id
                     WHERE j.destination = ?1 AND j.draft = 0 AND j.state != 'cancelled'),
                 kept AS (
                     SELECT path, size, row_number() OVER (PARTITION BY path ORDER BY updated_at DESC, id DESC) AS nth
                     FROM here WHERE state IN ('done', 'skipped'))
                 SELECT (SELECT count(*) FROM kept WHERE nth = 1),
                        (SELECT coalesce(sum(size), 0) FROM kept WHERE nth = 1),
                        (SELECT count(DISTINCT path) FROM here
                         WHERE state = 'failed' AND path NOT IN (SELECT path FROM kept))",
                [&destination],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
            mirrors.push(MirrorRow {
                jobs: ids.split(',').filter_map(|id| id.parse().ok()).collect(),
                names: serde_json::from_str(&names).unwrap_or_default(),
                files: files as u64,
                bytes: bytes as u64,
                failed: failed as u64,
                flagged: self.some_flags(&destination, 0)?.1,
                last_copied,
                unfinished: unfinished > 0,
                last_check: self.last_check(&destination)?,
                destination,
            });
        }
        Ok(mirrors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewJob;

    #[test]
    fn a_mirror_with_no_job_finished_and_no_check_reads_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        assert!(store.mirrors().unwrap().is_empty());
        let job = store
            .create_job(&NewJob {
                source_url: "https://example.org/catalog.json".into(),
                destination: "/mnt/mirror".into(),
                selection: serde_json::json!({}),
                limit_rate: None,
                concurrency: 2,
                per_host: 2,
            })
            .unwrap();
        let mirrors = store.mirrors().unwrap();
        assert_eq!(mirrors.len(), 1);
        assert_eq!(mirrors[0].jobs, vec![job]);
        assert_eq!(mirrors[0].names, vec!["https://example.org/catalog.json"]);
        assert_eq!((mirrors[0].files, mirrors[0].bytes), (0, 0));
        assert!(mirrors[0].unfinished, "a job being planned is under way");
        store
            .set_job_state(job, crate::store::JobState::Paused)
            .unwrap();
        assert!(
            !store.mirrors().unwrap()[0].unfinished,
            "a paused job is not copying: its mirror can be checked"
        );
        assert_eq!(mirrors[0].last_check, None);
        store.record_check("/mnt/mirror", 10, 9, 1).unwrap();
        store.record_check("/mnt/mirror", 10, 10, 0).unwrap();
        let check = store.mirrors().unwrap()[0].last_check.clone().unwrap();
        assert_eq!((check.files, check.verified, check.problems), (10, 10, 0));
        assert!(store.last_check("/elsewhere").unwrap().is_none());
    }
}
