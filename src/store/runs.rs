//! The `runs` and `versions` tables: each time a job read its source and
//! what that changed in the mirror (the job's history), and the verified
//! bytes a changed file had before.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, stamp};
use crate::Result;

/// What a run brought, counted in SQL over `runs` (as `runs.id`) for job
/// `?1`: its new items, the items it changed, its new assets.
const NEW_ITEMS: &str = "(SELECT count(*) FROM items WHERE job_id = ?1 AND first_run = runs.id)";
const CHANGED_ITEMS: &str = "(SELECT count(*) FROM items WHERE job_id = ?1
                                  AND changed_run = runs.id AND first_run IS NOT runs.id)";
const NEW_ASSETS: &str = "(SELECT count(*) FROM assets a JOIN items i ON i.id = a.item_row
                               WHERE i.job_id = ?1 AND a.first_run = runs.id)";

/// The counts of a run (see [`Store::close_run`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tallies {
    /// Items first planned in the run.
    pub new_items: u64,
    /// Items planned before whose document the run found changed.
    pub changed_items: u64,
    /// Assets first planned in the run.
    pub new_assets: u64,
}

/// One run of a job: the first copy, or a sync bringing it up to date.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// Row id.
    pub id: i64,
    /// The job.
    pub job: i64,
    /// `mirror` (the first copy) or `sync` (a later one).
    pub kind: String,
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// When its copying ended (`None`: it has not yet).
    pub finished_at: Option<String>,
    /// Items its plan found for the first time.
    pub new_items: u64,
    /// Items whose document changed in the source.
    pub changed_items: u64,
    /// Items no longer in the source (kept in the mirror, marked).
    pub removed_items: u64,
    /// Assets its plan found for the first time.
    pub new_assets: u64,
    /// Files whose bytes changed in the source (fetched again; the previous
    /// version kept unless the job says otherwise).
    pub changed_assets: u64,
    /// Bytes fetched.
    pub bytes: u64,
    /// Assets that could not be copied when it ended.
    pub failures: u64,
    /// Whether its plan read the whole source, so that removed items could
    /// be told; why not, otherwise.
    pub removals_checked: bool,
    /// Why items removed upstream were not looked for, if they were not.
    pub removals_note: Option<String>,
    /// Items it took out of the mirror, as the job follows the source's
    /// deletions.
    pub taken_out: u64,
}

/// Verified bytes a file had before its source changed, kept in the mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The asset.
    pub asset: i64,
    /// Where the bytes are kept, relative to the destination.
    pub path: String,
    /// Their size.
    pub size: u64,
    /// Their checksum (multihash, hex).
    pub checksum: String,
    /// When they were set aside (RFC 3339, UTC).
    pub kept_at: String,
}

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// `runs.rechecked` of a run that asks the source about nothing (not a
/// sync's); 0 is a sync's that has yet to ask, 1 one that has asked.
const ASKS_NOTHING: i64 = 2;

impl Store {
    /// The run of job `job_id` that is not over (its plan or its copying
    /// was stopped half-way), else a new one: a `sync` when the job has
    /// copied before, else its first `mirror`.
    pub fn open_run(&self, job_id: i64) -> Result<i64> {
        self.savepoint(|| {
            let open: Option<i64> = self
                .conn()
                .prepare_cached(
                    "SELECT id FROM runs WHERE job_id = ?1 AND finished_at IS NULL
                     ORDER BY id DESC LIMIT 1",
                )?
                .query_row([job_id], |r| r.get(0))
                .optional()?;
            if let Some(run) = open {
                return Ok(run);
            }
            // A job recorded before runs were kept has copied if it has items.
            let before: bool = self.conn().query_row(
                "SELECT EXISTS (SELECT 1 FROM runs WHERE job_id = ?1)
                     OR EXISTS (SELECT 1 FROM items WHERE job_id = ?1 AND state = 'written')",
                [job_id],
                |r| r.get(0),
            )?;
            let kind = if before { "sync" } else { "mirror" };
            // A search left half-way before this run (by a Cairn that kept
            // no runs) starts again from its first page: every item this
            // run's plan does not find is then truly gone.
            self.conn()
                .execute("DELETE FROM cursors WHERE job_id = ?1", [job_id])?;
            // (It asks the source about nothing unless a sync makes it its
            // own: see `Store::sync_asks`.)
            Ok(self.conn().query_row(
                &format!(
                    "INSERT INTO runs (job_id, kind, rechecked) VALUES (?1, ?2, {ASKS_NOTHING})
                     RETURNING id"
                ),
                params![job_id, kind],
                |r| r.get(0),
            )?)
        })
    }

    /// The sync run of job `job_id` that is not over and has not yet asked
    /// the source about the files verified before (stopped before it did:
    /// its resumption asks), if there is one.
    pub fn sync_to_ask(&self, job_id: i64) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id FROM runs WHERE job_id = ?1 AND finished_at IS NULL AND kind = 'sync'
                   AND rechecked = 0
                 ORDER BY id DESC LIMIT 1",
                [job_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Makes job `job_id`'s open run (a new one if none is) a sync's: it
    /// asks the source about the files verified before once its plan is
    /// read (see [`Store::set_rechecks`]), and so does its resumption
    /// should it stop first, unless it has asked already.
    pub fn sync_asks(&self, job_id: i64) -> Result<i64> {
        let run = self.open_run(job_id)?;
        self.conn().execute(
            &format!("UPDATE runs SET rechecked = 0 WHERE id = ?1 AND rechecked = {ASKS_NOTHING}"),
            [run],
        )?;
        Ok(run)
    }

    /// Whether job `job_id` has run to its end before (a run of it
    /// finished, or, for a job recorded before runs were kept, it wrote
    /// items): running it again is then a sync.
    pub fn has_copied(&self, job_id: i64) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE job_id = ?1 AND finished_at IS NOT NULL)
                 OR (NOT EXISTS (SELECT 1 FROM runs WHERE job_id = ?1)
                     AND EXISTS (SELECT 1 FROM items WHERE job_id = ?1 AND state = 'written'))",
            [job_id],
            |r| r.get(0),
        )?)
    }

    /// A file a sync asked about is unchanged at its source: it is done
    /// again with the bytes verified before, if its source and place are
    /// those it was claimed with (else it is fetched, compared with those
    /// bytes); a plan that waited for it then takes effect. Returns whether
    /// it was kept.
    pub fn keep_prior(&self, id: i64, href: &str, path: &str) -> Result<bool> {
        let kept = self
            .conn()
            .prepare_cached(
                "UPDATE assets SET state = 'done', size = prior_size, checksum = prior_checksum,
                 bytes_done = prior_size, failure = NULL, validator = NULL,
                 prior_size = NULL, prior_checksum = NULL, recheck = 0,
                 updated_at = ?4
             WHERE id = ?1 AND href = ?2 AND path = ?3 AND expected_checksum IS NULL
               AND prior_checksum IS NOT NULL",
            )?
            .execute(params![id, href, path, stamp()])?;
        // Not kept: the transfer goes on holding the asset, and fetches it.
        self.apply_replan(id)?;
        Ok(kept == 1)
    }

    /// Sets a sync's verified files to be asked about again, once per run:
    /// those whose checksum the catalog does not give (a catalog's checksum
    /// speaks for its bytes; a change of it is found by the plan). The
    /// bytes they had are kept for comparison. Returns how many.
    pub fn set_rechecks(&self, run: i64) -> Result<usize> {
        self.savepoint(|| {
            let due: Option<i64> = self
                .conn()
                .query_row(
                    "UPDATE runs SET rechecked = 1
                     WHERE id = ?1 AND kind = 'sync' AND rechecked = 0 RETURNING job_id",
                    [run],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(job_id) = due else { return Ok(0) };
            Ok(self.conn().execute(
                "UPDATE assets SET state = 'pending', recheck = 1, prior_size = size,
                     prior_checksum = checksum, size = NULL, checksum = NULL, bytes_done = 0,
                     validator = NULL
                 WHERE state IN ('done', 'skipped') AND expected_checksum IS NULL AND checksum IS NOT NULL
                   AND item_row IN (SELECT id FROM items WHERE job_id = ?1 AND removed_at IS NULL)",
                [job_id],
            )?)
        })
    }

    /// Marks the items of `run`'s job its plan did not find as removed
    /// upstream (now), once the plan has read the whole source; they stay
    /// in the mirror and are written again with the mark. Returns how many.
    pub fn mark_removed(&self, run: i64) -> Result<usize> {
        self.savepoint(|| {
            let removed = self.conn().execute(
                &format!(
                    "UPDATE items SET removed_at = {NOW}, state = 'pending', doc_checksum = NULL
                     WHERE job_id = (SELECT job_id FROM runs WHERE id = ?1)
                       AND removed_at IS NULL AND seen_run IS NOT ?1"
                ),
                [run],
            )?;
            // Their files are not asked about: the source no longer lists them.
            self.conn().execute(
                "UPDATE assets SET state = 'done', size = prior_size, checksum = prior_checksum,
                     bytes_done = prior_size, prior_size = NULL, prior_checksum = NULL, recheck = 0,
                     replan = NULL
                 WHERE recheck = 1 AND state = 'pending'
                   AND item_row IN (SELECT id FROM items
                                    WHERE job_id = (SELECT job_id FROM runs WHERE id = ?1)
                                      AND removed_at IS NOT NULL)",
                [run],
            )?;
            self.conn().execute(
                "UPDATE runs SET removals_checked = 1, removals_note = NULL,
                     removed_items = removed_items + ?2 WHERE id = ?1",
                params![run, removed as i64],
            )?;
            Ok(removed)
        })
    }

    /// The items of job `job_id` marked as removed upstream, to take out of
    /// the mirror: (row, folder, the files Cairn copied for it and the
    /// previous versions it kept). A file found already in place (not
    /// copied by Cairn) or also recorded by another item of the same mirror
    /// stays.
    pub fn removed_items(&self, job_id: i64) -> Result<Vec<(i64, String, Vec<String>)>> {
        // An item whose folder another job into the same mirror also
        // uses stays (its document and link are that job's too).
        let mut statement = self.conn().prepare(
            "SELECT i.id, i.dir FROM items i
             WHERE i.job_id = ?1 AND i.removed_at IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM items o JOIN jobs oj ON oj.id = o.job_id
                               WHERE o.dir = i.dir AND o.id != i.id
                                 AND oj.destination = (SELECT destination FROM jobs WHERE id = ?1))
             ORDER BY i.id",
        )?;
        let items: Vec<(i64, String)> = statement
            .query_map([job_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut files = self.conn().prepare_cached(
            "SELECT a.path FROM assets a WHERE a.item_row = ?1 AND a.state = 'done'
               AND NOT EXISTS (SELECT 1 FROM assets b JOIN items bi ON bi.id = b.item_row
                               JOIN jobs bj ON bj.id = bi.job_id
                               WHERE b.path = a.path AND b.id != a.id
                                 AND bj.destination = (SELECT j.destination FROM items i
                                     JOIN jobs j ON j.id = i.job_id WHERE i.id = ?1))
             UNION ALL
             SELECT v.path FROM versions v JOIN assets a ON a.id = v.asset_id WHERE a.item_row = ?1",
        )?;
        items
            .into_iter()
            .map(|(row, dir)| {
                let paths = files
                    .query_map([row], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok((row, dir, paths))
            })
            .collect()
    }

    /// Keeps item row `row`, taken out of the mirror, out of what is
    /// written (its document is gone) until it is forgotten; its assets
    /// (their files gone too) are forgotten now, so that nothing counts
    /// them as in the mirror, and an item that comes back upstream
    /// meanwhile has them planned, and fetched, anew.
    /// Returns whether it was not held already (a pass over items taken
    /// out meets those held again until their collection is rewritten).
    pub fn hold_taken_out(&self, row: i64) -> Result<bool> {
        let forgotten = self
            .conn()
            .prepare_cached("DELETE FROM assets WHERE item_row = ?1")?
            .execute([row])?;
        let held = self
            .conn()
            .prepare_cached(
                "UPDATE items SET state = 'written' WHERE id = ?1 AND state <> 'written'",
            )?
            .execute([row])?;
        // Held already: its assets were forgotten then, and it was written.
        Ok(forgotten > 0 || held > 0)
    }

    /// Forgets item row `row` (taken out of the mirror), with its assets;
    /// whether it was there to forget.
    pub fn forget_item(&self, row: i64) -> Result<bool> {
        let forgotten = self
            .conn()
            .prepare_cached("DELETE FROM items WHERE id = ?1")?
            .execute([row])?;
        Ok(forgotten > 0)
    }

    /// Records why `run` did not look for items removed upstream.
    pub fn note_removals_unchecked(&self, run: i64, why: &str) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE runs SET removals_note = ?2 WHERE id = ?1")?
            .execute(params![run, why])?;
        Ok(())
    }

    /// Adds to what the open run of job `job_id` fetched: `bytes`, and one
    /// changed file if `changed`.
    pub fn count_in_run(&self, job_id: i64, bytes: u64, changed: bool) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE runs SET bytes = bytes + ?2, changed_assets = changed_assets + ?3
                 WHERE id = (SELECT max(id) FROM runs WHERE job_id = ?1 AND finished_at IS NULL)",
            )?
            .execute(params![job_id, bytes as i64, changed as i64])?;
        Ok(())
    }

    /// Ends the open run of job `job_id` (its copying is over): counts what
    /// it found. Returns it, if there was one.
    ///
    /// `tallies`, when given, are what [`Store::tally_run`] counted once
    /// the run's changes were all made (the counting reads every row of
    /// the job); else they are counted here.
    pub fn close_run(
        &self,
        job_id: i64,
        failures: u64,
        tallies: Option<Tallies>,
    ) -> Result<Option<Run>> {
        // Counted here, or the counts given (`?3` to `?5`).
        let (new_items, changed_items, new_assets) = match tallies {
            Some(_) => ("?3", "?4", "?5"),
            None => (NEW_ITEMS, CHANGED_ITEMS, NEW_ASSETS),
        };
        let sql = format!(
            "UPDATE runs SET finished_at = {NOW}, failures = ?2,
                 new_items = {new_items}, changed_items = {changed_items}, new_assets = {new_assets}
             WHERE id = (SELECT max(id) FROM runs WHERE job_id = ?1 AND finished_at IS NULL)
             RETURNING id"
        );
        let failures = failures as i64;
        let conn = self.conn();
        let closed: Option<i64> = match tallies {
            Some(t) => conn.query_row(
                &sql,
                params![
                    job_id,
                    failures,
                    t.new_items as i64,
                    t.changed_items as i64,
                    t.new_assets as i64
                ],
                |r| r.get(0),
            ),
            None => conn.query_row(&sql, params![job_id, failures], |r| r.get(0)),
        }
        .optional()?;
        match closed {
            Some(id) => self.run(id),
            None => Ok(None),
        }
    }

    /// What the open run of job `job_id` brought so far, counted (see
    /// [`Store::close_run`]); `None` when no run is open.
    pub fn tally_run(&self, job_id: i64) -> Result<Option<Tallies>> {
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {NEW_ITEMS}, {CHANGED_ITEMS}, {NEW_ASSETS} FROM runs
                     WHERE id = (SELECT max(id) FROM runs WHERE job_id = ?1 AND finished_at IS NULL)"
                ),
                [job_id],
                |r| {
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| v as u64);
                    Ok(Tallies {
                        new_items: n(0)?,
                        changed_items: n(1)?,
                        new_assets: n(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Run `id`.
    pub fn run(&self, id: i64) -> Result<Option<Run>> {
        Ok(self
            .conn()
            .query_row(&format!("{SELECT_RUN} WHERE id = ?1"), [id], row_to_run)
            .optional()?)
    }

    /// The runs of job `job_id`, the latest first: its history.
    pub fn runs(&self, job_id: i64) -> Result<Vec<Run>> {
        let mut statement = self
            .conn()
            .prepare(&format!("{SELECT_RUN} WHERE job_id = ?1 ORDER BY id DESC"))?;
        let runs = statement
            .query_map([job_id], row_to_run)?
            .collect::<Result<_, _>>()?;
        Ok(runs)
    }

    /// Counts an item taken out of job `job_id`'s mirror by its open run
    /// (a repair opens none, and counts nothing).
    pub fn count_taken_out(&self, job_id: i64) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE runs SET taken_out = taken_out + 1
                 WHERE id = (SELECT max(id) FROM runs WHERE job_id = ?1 AND finished_at IS NULL)",
            )?
            .execute([job_id])?;
        Ok(())
    }

    /// Records verified bytes of asset `asset` set aside at `path`.
    pub fn keep_version(&self, asset: i64, path: &str, size: u64, checksum: &str) -> Result<()> {
        self.conn()
            .prepare_cached(
                "INSERT INTO versions (asset_id, path, size, checksum, provenance)
                 SELECT ?1, ?2, ?3, ?4, provenance FROM assets WHERE id = ?1",
            )?
            .execute(params![asset, path, size as i64, checksum])?;
        Ok(())
    }

    /// Whether the state file keeps any previous version of a file (most
    /// keep none: then no item need be asked for its own).
    pub fn any_versions(&self) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM versions)")?
            .query_row([], |r| r.get(0))?)
    }

    /// The kept versions of the assets of item row `item_row`, oldest first.
    pub fn versions_of_item(&self, item_row: i64) -> Result<Vec<(String, Version)>> {
        let mut statement = self.conn().prepare_cached(
            "SELECT a.key, v.asset_id, v.path, v.size, v.checksum, v.kept_at
             FROM versions v JOIN assets a ON a.id = v.asset_id
             WHERE a.item_row = ?1 ORDER BY v.id",
        )?;
        let versions = statement
            .query_map([item_row], |r| {
                Ok((
                    r.get(0)?,
                    Version {
                        asset: r.get(1)?,
                        path: r.get(2)?,
                        size: r.get::<_, i64>(3)? as u64,
                        checksum: r.get(4)?,
                        kept_at: r.get(5)?,
                    },
                ))
            })?
            .collect::<Result<_, _>>()?;
        Ok(versions)
    }
}

const SELECT_RUN: &str = "SELECT id, job_id, kind, started_at, finished_at, new_items,
    changed_items, removed_items, new_assets, changed_assets, bytes, failures,
    removals_checked, removals_note, taken_out FROM runs";

fn row_to_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    let count = |i: usize| -> rusqlite::Result<u64> {
        Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64)
    };
    Ok(Run {
        id: r.get(0)?,
        job: r.get(1)?,
        kind: r.get(2)?,
        started_at: r.get(3)?,
        finished_at: r.get(4)?,
        new_items: count(5)?,
        changed_items: count(6)?,
        removed_items: count(7)?,
        new_assets: count(8)?,
        changed_assets: count(9)?,
        bytes: count(10)?,
        failures: count(11)?,
        removals_checked: r.get(12)?,
        removals_note: r.get(13)?,
        taken_out: count(14)?,
    })
}
