//! The `assets` table: every asset to copy, moving through
//! `pending -> active -> done`, or `failed` with a reason, or `skipped` when
//! already present and verified.

use rusqlite::params;
use serde::Serialize;

use super::{Store, stamp};
use crate::Result;

/// Where an asset is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetState {
    /// Waiting to be copied.
    Pending,
    /// Being copied.
    Active,
    /// Verified, not yet in place: what state files of earlier versions
    /// hold (an `active` row with a size and checksum is the same now).
    Verifying,
    /// Copied and verified.
    Done,
    /// Gave up, with a reason.
    Failed,
    /// Already present and verified.
    Skipped,
}

/// An asset claimed for copying.
#[derive(Debug, Clone, PartialEq)]
pub struct AssetRow {
    /// Row id.
    pub id: i64,
    /// The item row it belongs to.
    pub item_row: i64,
    /// The asset's key.
    pub key: String,
    /// Where its bytes come from.
    pub href: String,
    /// Where it goes, relative to the destination.
    pub path: String,
    /// `file:size`, when given.
    pub expected_size: Option<u64>,
    /// `file:checksum`, when given.
    pub expected_checksum: Option<String>,
    /// The media type the catalog gives.
    pub media_type: Option<String>,
    /// Attempts so far.
    pub attempts: u32,
    /// The validator a partial file was fetched under.
    pub validator: Option<String>,
    /// Size and checksum recorded when this job verified the file, if the
    /// process stopped before the row was marked done.
    pub verified: Option<(u64, String)>,
    /// The checksum a repair must match (what the file had when verified).
    pub repair_checksum: Option<String>,
    /// The verified bytes in place before the source changed, or before a
    /// sync asks whether it changed.
    pub prior: Option<Prior>,
}

/// Verified bytes of an asset that a new copy may replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prior {
    /// Their size.
    pub size: u64,
    /// Their checksum (multihash, hex).
    pub checksum: String,
    /// Whether the source is only to be asked whether it changed (with
    /// the validators it gave then).
    pub recheck: bool,
    /// The ETag the bytes were served with.
    pub etag: Option<String>,
    /// The Last-Modified they were served with.
    pub last_modified: Option<String>,
}

/// How far a job is.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Items planned.
    pub items: u64,
    /// Assets planned.
    pub assets: u64,
    /// Assets done (copied and verified).
    pub done: u64,
    /// Assets already present and verified.
    pub skipped: u64,
    /// Assets that failed.
    pub failed: u64,
    /// Assets not finished yet.
    pub pending: u64,
    /// Bytes the catalog announced, for the assets that give a size.
    pub bytes_expected: u64,
    /// Bytes verified (done and skipped).
    pub bytes_done: u64,
    /// Bytes of unfinished downloads kept for the next run to continue
    /// from (as they stood when the transfers last stopped).
    pub bytes_kept: u64,
    /// Items whose own document (item JSON) could not be written.
    pub items_failed: u64,
}

/// A file another job of the same mirror copied and verified, which an
/// asset of this job would fetch again (see [`Store::verified_elsewhere`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedElsewhere {
    /// The asset row of this job.
    pub id: i64,
    /// Where the file is, relative to the destination.
    pub path: String,
    /// Its size when it was verified.
    pub size: u64,
    /// Its checksum then (hex multihash).
    pub checksum: String,
    /// Its modification time then (nanoseconds since 1970).
    pub mtime: i64,
    /// Where its bytes came from, as recorded then.
    pub provenance: Option<String>,
    /// Its change time then (nanoseconds), if recorded.
    pub changed: Option<i64>,
}

/// The assets of an item that ended (see [`Store::ended_assets`]).
#[derive(Debug, Default)]
pub struct EndedAssets {
    /// Done or skipped: verified in the mirror.
    pub finished: Vec<VerifiedAsset>,
    /// Failed for good: each one's key and why.
    pub failed: Vec<(String, String)>,
}

/// An asset whose bytes were verified: where it is and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAsset {
    /// Row id.
    pub id: i64,
    /// The asset's key in its item.
    pub key: String,
    /// Where it is, relative to the destination.
    pub path: String,
    /// Its verified size.
    pub size: u64,
    /// Its checksum (hex multihash).
    pub checksum: String,
    /// Where its bytes came from.
    pub href: String,
}

/// What is recorded with a verified file beside its size and checksum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileRecord {
    /// Where the bytes came from and what the server said (JSON of
    /// [`crate::provenance::Provenance`]), when they were fetched.
    pub provenance: Option<String>,
    /// The file's modification time (nanoseconds since 1970) when verified
    /// in a folder.
    pub mtime: Option<i64>,
    /// Its change time then (nanoseconds), where the system keeps one.
    pub changed: Option<i64>,
}

/// A verified file of a mirror, as a job recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredFile {
    /// The asset's row.
    pub id: i64,
    /// Where it is, relative to the destination.
    pub path: String,
    /// The asset's key in its item.
    pub key: String,
    /// The item's collection, if it has one.
    pub collection: Option<String>,
    /// The item's id.
    pub item_id: String,
    /// Where its bytes came from, as the catalog gave it.
    pub href: String,
    /// Its verified size.
    pub size: u64,
    /// Its checksum (hex multihash).
    pub checksum: String,
    /// Where the bytes came from and what the server said (JSON), if recorded.
    pub provenance: Option<String>,
    /// The file's modification time when verified (nanoseconds), if recorded.
    pub mtime: Option<i64>,
    /// Its change time then (nanoseconds), if recorded.
    pub changed: Option<i64>,
    /// When it was verified (RFC 3339).
    pub verified_at: String,
    /// The job that recorded it.
    pub job_id: i64,
}

/// The columns of a [`MirroredFile`], read by [`mirrored_file_of`].
const MIRRORED: &str = "SELECT a.path, a.key, i.collection, i.item_id, a.href, a.size, a.checksum,
        a.provenance, a.verified_mtime, a.updated_at, j.id, a.id, a.verified_ctime
     FROM assets a JOIN items i ON i.id = a.item_row JOIN jobs j ON j.id = i.job_id";

fn mirrored_file_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<MirroredFile> {
    Ok(MirroredFile {
        path: row.get(0)?,
        key: row.get(1)?,
        collection: row.get(2)?,
        item_id: row.get(3)?,
        href: row.get(4)?,
        size: row.get::<_, i64>(5)? as u64,
        checksum: row.get(6)?,
        provenance: row.get(7)?,
        mtime: row.get(8)?,
        verified_at: row.get(9)?,
        job_id: row.get(10)?,
        id: row.get(11)?,
        changed: row.get(12)?,
    })
}

/// A failed asset and why.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The asset's source.
    pub href: String,
    /// Where it would have gone.
    pub path: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why it failed, in plain words.
    pub reason: String,
}

impl Store {
    /// Takes the next pending asset of a job and marks it active.
    pub fn claim_asset(&self, job_id: i64) -> Result<Option<AssetRow>> {
        Ok(self.claim_assets(job_id, 1)?.pop())
    }

    /// Takes up to `limit` pending assets of a job, in plan order, and marks
    /// them active.
    pub fn claim_assets(&self, job_id: i64, limit: usize) -> Result<Vec<AssetRow>> {
        self.claim_assets_where(job_id, limit, "")
    }

    /// As [`Store::claim_assets`], only the assets a repair reopened.
    pub fn claim_repairs(&self, job_id: i64, limit: usize) -> Result<Vec<AssetRow>> {
        self.claim_assets_where(job_id, limit, "AND a.repair_checksum IS NOT NULL")
    }

    fn claim_assets_where(&self, job_id: i64, limit: usize, only: &str) -> Result<Vec<AssetRow>> {
        let mut statement = self.conn().prepare_cached(&claim_sql(only, limit))?;
        let rows = statement.query_map(params![job_id, stamp()], |row| {
            Ok(AssetRow {
                id: row.get(0)?,
                item_row: row.get(1)?,
                key: row.get(2)?,
                href: row.get(3)?,
                path: row.get(4)?,
                expected_size: row.get::<_, Option<i64>>(5)?.map(|s| s as u64),
                expected_checksum: row.get(6)?,
                media_type: row.get(11)?,
                attempts: row.get(7)?,
                validator: row.get(8)?,
                verified: match (row.get::<_, Option<i64>>(9)?, row.get(10)?) {
                    (Some(size), Some(checksum)) => Some((size as u64, checksum)),
                    _ => None,
                },
                repair_checksum: row.get(12)?,
                prior: match (row.get::<_, Option<i64>>(13)?, row.get(14)?) {
                    (Some(size), Some(checksum)) => Some(Prior {
                        size: size as u64,
                        checksum,
                        recheck: row.get(15)?,
                        etag: row.get(16)?,
                        last_modified: row.get(17)?,
                    }),
                    _ => None,
                },
            })
        })?;
        let mut claimed: Vec<AssetRow> = rows.collect::<Result<_, _>>()?;
        claimed.sort_by_key(|a| a.id);
        Ok(claimed)
    }

    /// Records the validator a download runs under, so a crash can resume it.
    pub fn set_asset_validator(&self, id: i64, validator: Option<&str>) -> Result<()> {
        self.conn()
            .prepare_cached("UPDATE assets SET validator = ?2 WHERE id = ?1")?
            .execute(params![id, validator])?;
        Ok(())
    }

    /// Records the size and checksum of a verified copy before it is moved into
    /// place, so that a crash in between does not cost a second download.
    /// The row stays `active` (held by its transfer, as a `verifying` one
    /// is): its state, and with it the two indexes of states, is changed
    /// once, when the copy is done.
    pub fn set_asset_verifying(&self, id: i64, size: u64, checksum: &str) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE assets SET size = ?2, checksum = ?3, updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id, size as i64, checksum, stamp()])?;
        Ok(())
    }

    /// Marks an asset done (verified) or skipped (already present and verified).
    pub fn finish_asset(
        &self,
        id: i64,
        state: AssetState,
        size: u64,
        checksum: &str,
    ) -> Result<()> {
        self.finish_asset_with(id, state, size, checksum, &FileRecord::default())
    }

    /// [`Self::finish_asset`], recording where the bytes came from and the
    /// file's modification time too. A file found already in place keeps the
    /// provenance an earlier copy recorded.
    pub fn finish_asset_with(
        &self,
        id: i64,
        state: AssetState,
        size: u64,
        checksum: &str,
        record: &FileRecord,
    ) -> Result<()> {
        let state = match state {
            AssetState::Skipped => "skipped",
            _ => "done",
        };
        let now = stamp();
        // One text for both runs (`?8`: no plan waits for the asset).
        let update = |unplanned: bool| -> Result<usize> {
            Ok(self
                .conn()
                .prepare_cached(
                    "UPDATE assets SET state = ?2, size = ?3, checksum = ?4, bytes_done = ?3,
                         failure = NULL, validator = NULL, attempts = attempts + 1,
                         provenance = coalesce(?5, provenance),
                         verified_mtime = coalesce(?6, verified_mtime),
                         verified_ctime = CASE WHEN ?6 IS NULL THEN verified_ctime ELSE ?9 END,
                         repair_checksum = NULL, prior_size = NULL, prior_checksum = NULL,
                         recheck = 0, updated_at = ?7
                     WHERE id = ?1 AND (replan IS NULL) = ?8",
                )?
                .execute(params![
                    id,
                    state,
                    size as i64,
                    checksum,
                    record.provenance,
                    record.mtime,
                    now,
                    unplanned,
                    record.changed
                ])?)
        };
        // Nearly always no plan waits for the asset: one statement, with
        // nothing to return. Planned anew while it was copied: the bytes
        // just recorded are those of its old source, compared with the new
        // one's.
        if update(true)? == 0 && update(false)? == 1 {
            self.apply_replan(id)?;
        }
        Ok(())
    }

    /// Calls `each` with every verified file of the mirror at `destination`
    /// that some job of this state file recorded, in the order of their
    /// paths, once per path (its latest record).
    pub fn each_mirrored_file(
        &self,
        destination: &str,
        mut each: impl FnMut(&MirroredFile) -> Result<()>,
    ) -> Result<()> {
        let mut statement = self.conn().prepare(&format!(
            "{MIRRORED} WHERE j.destination = ?1 AND a.state IN ('done', 'skipped') AND j.draft = 0
             ORDER BY a.path, a.updated_at DESC"
        ))?;
        let mut rows = statement.query([destination])?;
        // The latest record of each path; its provenance, or that of an
        // earlier record of the same bytes (a file found already in place
        // keeps where it first came from).
        let mut current: Option<MirroredFile> = None;
        while let Some(row) = rows.next()? {
            let file = mirrored_file_of(row)?;
            match &mut current {
                Some(latest) if latest.path == file.path => {
                    if latest.provenance.is_none() && latest.checksum == file.checksum {
                        latest.provenance = file.provenance;
                    }
                }
                _ => {
                    if let Some(done) = current.replace(file) {
                        each(&done)?;
                    }
                }
            }
        }
        if let Some(done) = current {
            each(&done)?;
        }
        Ok(())
    }

    /// How many files jobs of this state file verified into `destination`
    /// (each path once).
    pub fn count_mirrored_files(&self, destination: &str) -> Result<u64> {
        Ok(self.conn().query_row(
            "SELECT count(DISTINCT a.path)
             FROM assets a JOIN items i ON i.id = a.item_row JOIN jobs j ON j.id = i.job_id
             WHERE j.destination = ?1 AND a.state IN ('done', 'skipped') AND j.draft = 0",
            [destination],
            |row| row.get::<_, i64>(0).map(|n| n as u64),
        )?)
    }

    /// What was recorded when the file at `path` of the mirror at
    /// `destination` was last verified there, if a job of this state file did.
    pub fn mirrored_file(&self, destination: &str, path: &str) -> Result<Option<MirroredFile>> {
        let mut statement = self.conn().prepare_cached(&format!(
            "{MIRRORED} WHERE a.path = ?2 AND j.destination = ?1 AND a.state IN ('done', 'skipped')
               AND j.draft = 0
             ORDER BY a.updated_at DESC LIMIT 1"
        ))?;
        let mut rows = statement.query(params![destination, path])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        Ok(Some(mirrored_file_of(row)?))
    }

    /// Records a failed attempt: back to pending while attempts remain, else
    /// failed. Returns whether a plan that waited for the asset put it back
    /// in the queue (from its new source: the failure was the old one's).
    pub fn fail_attempt(&self, id: i64, reason: &str, give_up: bool) -> Result<bool> {
        self.conn()
            .prepare_cached(
                "UPDATE assets SET state = CASE WHEN ?3 THEN 'failed' ELSE 'pending' END,
                 failure = ?2, attempts = attempts + 1, updated_at = ?4
             WHERE id = ?1",
            )?
            .execute(params![id, reason, give_up, stamp()])?;
        self.apply_replan(id)
    }

    /// Records a failed attempt that will be tried again by the same transfer.
    pub fn note_attempt(&self, id: i64, reason: &str) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE assets SET failure = ?2, attempts = attempts + 1, updated_at = ?3
             WHERE id = ?1",
            )?
            .execute(params![id, reason, stamp()])?;
        Ok(())
    }

    /// Puts an interrupted asset back in the queue without counting an attempt.
    pub fn release_asset(&self, id: i64, kept: Option<u64>) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE assets SET state = 'pending', bytes_done = coalesce(?2, bytes_done)
                 WHERE id = ?1 AND state IN ('active', 'verifying')",
            )?
            .execute(params![id, kept.map(|k| k as i64)])?;
        self.apply_replan(id)?;
        Ok(())
    }

    /// After a crash: assets left active go back to pending (and take the
    /// plans that waited for them, unless they hold verified bytes). Returns
    /// how many.
    pub fn reconcile_job(&self, job_id: i64) -> Result<usize> {
        let ids: Vec<i64> = self
            .conn()
            .prepare_cached(
                "UPDATE assets SET state = 'pending'
             WHERE state IN ('active', 'verifying')
               AND item_row IN (SELECT id FROM items WHERE job_id = ?1)
             RETURNING id",
            )?
            .query_map([job_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for &id in &ids {
            self.apply_replan(id)?;
        }
        Ok(ids.len())
    }

    /// Assets marked done at or after the job's last flush to disk: after a
    /// crash, their files are checked before they count.
    pub fn unflushed_done(&self, job_id: i64) -> Result<Vec<VerifiedAsset>> {
        self.verified_assets(
            "JOIN items i ON i.id = a.item_row
             WHERE i.job_id = ?1 AND a.state = 'done'
               AND a.updated_at >= coalesce((SELECT flushed_at FROM jobs WHERE id = ?1), '')",
            job_id,
        )
    }

    /// A done asset whose file turned out missing or damaged goes back to
    /// pending, forgetting what was verified.
    pub fn reopen_asset(&self, id: i64) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE assets SET state = 'pending', size = NULL, checksum = NULL,
                     bytes_done = 0, validator = NULL WHERE id = ?1",
            )?
            .execute([id])?;
        Ok(())
    }

    /// A done asset whose file a check found missing or damaged goes back
    /// to pending for a repair, which must bring back the bytes verified
    /// before (their checksum is kept for it), with a fresh set of attempts.
    pub fn reopen_for_repair(&self, id: i64) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE assets SET state = 'pending', repair_checksum = coalesce(checksum, repair_checksum),
                     size = NULL, checksum = NULL, bytes_done = 0, validator = NULL, attempts = 0
                 WHERE id = ?1 AND state IN ('done', 'skipped', 'failed')",
            )?
            .execute([id])?;
        Ok(())
    }

    /// Whether the file at `path` (of asset `id`'s mirror) was put there by a
    /// job of this state file: asset `id` itself in an earlier attempt, or
    /// another job into the same destination.
    pub fn placed_by_a_job(&self, id: i64, path: &str) -> Result<bool> {
        let found: i64 = self.conn().query_row(
            "SELECT EXISTS (
                 SELECT 1 FROM assets a JOIN items i ON i.id = a.item_row JOIN jobs j ON j.id = i.job_id
                 WHERE a.path = ?2 AND (a.attempts > 0 OR (a.id != ?1 AND a.state IN ('done', 'skipped')))
                   AND j.destination = (SELECT j2.destination FROM assets a2
                       JOIN items i2 ON i2.id = a2.item_row JOIN jobs j2 ON j2.id = i2.job_id
                       WHERE a2.id = ?1))",
            params![id, path],
            |r| r.get(0),
        )?;
        Ok(found == 1)
    }

    /// The files job `job_id` verified (the first `limit` after asset row
    /// `after`): asset row, path and size. Not those of items removed
    /// upstream: the source no longer lists them.
    pub fn verified_files(
        &self,
        job_id: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String, u64)>> {
        let mut statement = self.conn().prepare_cached(
            "SELECT a.id, a.path, a.size FROM assets a JOIN items i ON i.id = a.item_row
             WHERE i.job_id = ?1 AND a.id > ?2 AND a.state IN ('done', 'skipped')
               AND a.size IS NOT NULL AND i.removed_at IS NULL
             ORDER BY a.id LIMIT ?3",
        )?;
        let rows = statement.query_map(params![job_id, after, limit as i64], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Asset `id`, verified before, whose file is no longer in the mirror:
    /// it is fetched again as a new file would be, and its item's document
    /// written again. (Its attempts stay counted: the file it gets is one
    /// a job placed.)
    pub fn forget_lost(&self, id: i64) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE items SET state = 'pending', doc_checksum = NULL
                 WHERE id = (SELECT item_row FROM assets WHERE id = ?1)",
            )?
            .execute([id])?;
        self.conn()
            .prepare_cached(
                "UPDATE assets SET state = 'pending', size = NULL, checksum = NULL, bytes_done = 0,
                     validator = NULL, provenance = NULL, verified_mtime = NULL,
                     verified_ctime = NULL, prior_size = NULL, prior_checksum = NULL,
                     recheck = 0, repair_checksum = NULL, failure = NULL, updated_at = ?2
                 WHERE id = ?1 AND state IN ('done', 'skipped')",
            )?
            .execute(params![id, stamp()])?;
        Ok(())
    }

    /// The files job `job_id` has yet to fetch (the first `limit` after
    /// asset row `after`) that another job into the same mirror copied from
    /// the same address into the same place and verified, as that job last
    /// recorded them, flushed to disk and not seen changed by the watcher
    /// since.
    pub fn verified_elsewhere(
        &self,
        job_id: i64,
        after: i64,
        limit: usize,
    ) -> Result<Vec<VerifiedElsewhere>> {
        // Most jobs are alone in their mirror: nothing to look up then.
        let shared: bool = self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM jobs j JOIN jobs me ON me.id = ?1
                 WHERE j.destination = me.destination AND j.id != me.id AND j.draft = 0)",
            [job_id],
            |r| r.get(0),
        )?;
        if !shared {
            return Ok(Vec::new());
        }
        let mut statement = self.conn().prepare_cached(&format!(
            "SELECT a.id, a.path, o.size, o.checksum, o.verified_mtime, o.provenance, o.verified_ctime
             FROM assets a JOIN items i ON i.id = a.item_row JOIN jobs me ON me.id = i.job_id
             JOIN assets o ON o.id = (
                 SELECT o2.id FROM assets o2 JOIN items oi ON oi.id = o2.item_row
                     JOIN jobs oj ON oj.id = oi.job_id
                 WHERE o2.path = a.path AND o2.id != a.id AND oj.id != me.id AND oj.draft = 0
                   AND oj.destination = me.destination AND o2.state IN ('done', 'skipped')
                 ORDER BY o2.updated_at DESC, o2.id DESC LIMIT 1)
             JOIN items oi ON oi.id = o.item_row JOIN jobs oj ON oj.id = oi.job_id
             WHERE i.job_id = ?1 AND a.id > ?2 AND a.state = 'pending' AND a.attempts = 0
               AND a.bytes_done = 0 AND a.repair_checksum IS NULL AND a.prior_checksum IS NULL
               AND a.recheck = 0
               AND o.href = a.href AND o.size IS NOT NULL AND o.checksum IS NOT NULL
               AND o.verified_mtime IS NOT NULL
               AND oj.flushed_at IS NOT NULL AND o.updated_at <= oj.flushed_at
               AND (a.expected_size IS NULL OR a.expected_size = o.size)
               AND (a.expected_checksum IS NULL OR a.expected_checksum = o.checksum)
               AND NOT EXISTS (SELECT 1 FROM flags f WHERE f.destination = me.destination AND f.path = a.path)
             ORDER BY a.id LIMIT {limit}",
        ))?;
        let rows = statement.query_map(params![job_id, after], |row| {
            Ok(VerifiedElsewhere {
                id: row.get(0)?,
                path: row.get(1)?,
                size: row.get::<_, i64>(2)? as u64,
                checksum: row.get(3)?,
                mtime: row.get(4)?,
                provenance: row.get(5)?,
                changed: row.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Asset `found.id` is already in the mirror, copied and verified by
    /// another job: it is already there (skipped), with that job's record.
    pub fn adopt_verified(&self, found: &VerifiedElsewhere) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE assets SET state = 'skipped', size = ?2, checksum = ?3, bytes_done = ?2,
                     verified_mtime = ?4, provenance = ?5, failure = NULL, validator = NULL,
                     updated_at = ?6, verified_ctime = ?7
                 WHERE id = ?1 AND state = 'pending' AND attempts = 0 AND repair_checksum IS NULL
                   AND replan IS NULL",
            )?
            .execute(params![
                found.id,
                found.size as i64,
                found.checksum,
                found.mtime,
                found.provenance,
                stamp(),
                found.changed
            ])?;
        Ok(())
    }

    /// Failed assets go back to pending with fresh attempts (the "retry"
    /// button); bytes verified before they failed never took their place,
    /// and are forgotten.
    pub fn retry_failed(&self, job_id: i64) -> Result<usize> {
        // Their items are written again once the assets are in, and items
        // whose documents could not be written are tried again.
        self.conn()
            .prepare_cached(
                "UPDATE items SET failure = NULL WHERE job_id = ?1 AND failure IS NOT NULL",
            )?
            .execute([job_id])?;
        self.conn()
            .prepare_cached(
                "UPDATE items SET state = 'pending' WHERE job_id = ?1 AND state = 'written'
                 AND id IN (SELECT item_row FROM assets WHERE state = 'failed')",
            )?
            .execute([job_id])?;
        Ok(self
            .conn()
            .prepare_cached(
                "UPDATE assets SET state = 'pending', attempts = 0, size = NULL, checksum = NULL
             WHERE state = 'failed' AND item_row IN (SELECT id FROM items WHERE job_id = ?1)",
            )?
            .execute([job_id])?)
    }

    /// How far a job is.
    pub fn job_counts(&self, job_id: i64) -> Result<Counts> {
        Ok(self.conn().query_row(
            "SELECT (SELECT count(*) FROM items WHERE job_id = ?1),
                    count(a.id),
                    count(*) FILTER (WHERE a.state = 'done'),
                    count(*) FILTER (WHERE a.state = 'skipped'),
                    count(*) FILTER (WHERE a.state = 'failed'),
                    count(*) FILTER (WHERE a.state IN ('pending', 'active', 'verifying')),
                    CAST(total(a.expected_size) AS INTEGER),
                    CAST(total(a.size) FILTER (WHERE a.state IN ('done', 'skipped')) AS INTEGER),
                    (SELECT count(*) FROM items WHERE job_id = ?1 AND failure IS NOT NULL),
                    CAST(total(a.bytes_done) FILTER (WHERE a.state IN ('pending', 'active', 'verifying')) AS INTEGER)
             FROM assets a JOIN items i ON i.id = a.item_row WHERE i.job_id = ?1",
            [job_id],
            |row| {
                let n = |i: usize| row.get::<_, i64>(i).map(|v| v as u64);
                Ok(Counts {
                    items: n(0)?,
                    assets: n(1)?,
                    done: n(2)?,
                    skipped: n(3)?,
                    failed: n(4)?,
                    pending: n(5)?,
                    bytes_expected: n(6)?,
                    bytes_done: n(7)?,
                    items_failed: n(8)?,
                    bytes_kept: n(9)?,
                })
            },
        )?)
    }

    /// The failed assets of a job, with their reasons, then the items whose
    /// documents could not be written.
    pub fn failures(&self, job_id: i64) -> Result<Vec<Failure>> {
        let mut statement = self.conn().prepare(
            "SELECT a.href, a.path, a.attempts, coalesce(a.failure, '')
             FROM assets a JOIN items i ON i.id = a.item_row
             WHERE i.job_id = ?1 AND a.state = 'failed' ORDER BY a.id",
        )?;
        let rows = statement.query_map([job_id], |row| {
            Ok(Failure {
                // Said without credentials or a signature.
                href: crate::provenance::redact(&row.get::<_, String>(0)?),
                path: row.get(1)?,
                attempts: row.get(2)?,
                reason: row.get(3)?,
            })
        })?;
        let mut failures = rows.collect::<Result<Vec<_>, _>>()?;
        failures.extend(self.item_failures(job_id)?);
        Ok(failures)
    }

    /// The assets of the items `item_rows` that ended, for writing them
    /// out, in the order of `item_rows`: the done (or skipped) ones, and the
    /// failed ones with why, each in the order they were planned. One
    /// statement for them all (the rows are handed over as a JSON array):
    /// items are written a slice at a time, and each item's own statement
    /// cost more than its row.
    pub fn ended_assets(&self, item_rows: &[i64]) -> Result<Vec<EndedAssets>> {
        let rows = super::json_array(item_rows);
        let mut statement = self.conn().prepare_cached(
            "SELECT a.id, a.key, a.path, a.size, a.checksum, a.href, a.state = 'failed',
                    coalesce(a.failure, ''), a.item_row
             FROM assets a WHERE a.item_row IN (SELECT value FROM json_each(?1))
                 AND a.state IN ('done', 'skipped', 'failed')
             ORDER BY a.item_row, a.id",
        )?;
        let mut found = std::collections::HashMap::<i64, EndedAssets>::new();
        let mut rows = statement.query([rows])?;
        while let Some(row) = rows.next()? {
            let ended = found.entry(row.get(8)?).or_default();
            if row.get(6)? {
                ended.failed.push((row.get(1)?, row.get(7)?));
            } else {
                ended.finished.push(verified_asset_of(row)?);
            }
        }
        Ok(item_rows
            .iter()
            .map(|row| found.remove(row).unwrap_or_default())
            .collect())
    }

    fn verified_assets(&self, filter: &str, id: i64) -> Result<Vec<VerifiedAsset>> {
        let mut statement = self.conn().prepare_cached(&format!(
            "SELECT a.id, a.key, a.path, a.size, a.checksum, a.href FROM assets a {filter} ORDER BY a.id"
        ))?;
        let rows = statement.query_map([id], verified_asset_of)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A [`VerifiedAsset`] from a row that starts with `a.id, a.key, a.path,
/// a.size, a.checksum, a.href`.
fn verified_asset_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<VerifiedAsset> {
    Ok(VerifiedAsset {
        id: row.get(0)?,
        key: row.get(1)?,
        path: row.get(2)?,
        size: row.get::<_, i64>(3)? as u64,
        checksum: row.get(4)?,
        href: row.get(5)?,
    })
}

/// The statement that claims up to `limit` pending assets of a job (`?1`),
/// `only` those it adds to the filter. The limit is written into the text:
/// given as a parameter, SQLite (which plans with the value bound) would
/// prepare the statement again at every claim.
fn claim_sql(only: &str, limit: usize) -> String {
    format!(
        "UPDATE assets SET state = 'active', updated_at = ?2
             WHERE id IN (SELECT a.id FROM assets a JOIN items i ON i.id = a.item_row
                          WHERE i.job_id = ?1 AND a.state = 'pending' {only} ORDER BY a.id LIMIT {limit})
             RETURNING id, item_row, key, href, path, expected_size, expected_checksum,
                       attempts, validator, size, checksum, media_type, repair_checksum,
                       prior_size, prior_checksum, recheck,
                       json_extract(provenance, '$.headers.etag'),
                       json_extract(provenance, '$.headers.\"last-modified\"')"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::items::{NewAsset, NewItem};
    use serde_json::json;

    fn plan(store: &Store, job: i64, checksum: Option<&str>) -> i64 {
        store
            .plan_item(&NewItem {
                job_id: job,
                collection: Some("c".into()),
                item_id: "i".into(),
                href: "https://x.test/i.json".into(),
                dir: "c/i".into(),
                renamed: None,
                document: json!({"id": "i"}).to_string(),
                assets: vec![NewAsset {
                    key: "data".into(),
                    href: "https://x.test/data.tif".into(),
                    path: "c/i/data.tif".into(),
                    expected_size: Some(10),
                    expected_checksum: checksum.map(str::to_string),
                    media_type: None,
                }],
                run: None,
            })
            .unwrap()
    }

    /// A store with one job, nothing planned yet.
    fn new_job() -> (Store, i64) {
        let store = Store::open_in_memory().unwrap();
        let job = store
            .create_job(&crate::store::jobs::tests::new_job())
            .unwrap();
        (store, job)
    }

    #[test]
    fn claiming_again_does_not_prepare_the_statement_again() {
        let (store, job) = new_job();
        for n in 0..3 {
            store
                .plan_item(&NewItem {
                    job_id: job,
                    collection: Some("c".into()),
                    item_id: format!("i{n}"),
                    href: format!("https://x.test/i{n}.json"),
                    dir: format!("c/i{n}"),
                    renamed: None,
                    document: json!({"id": format!("i{n}")}).to_string(),
                    assets: vec![NewAsset {
                        key: "data".into(),
                        href: format!("https://x.test/i{n}.tif"),
                        path: format!("c/i{n}/i{n}.tif"),
                        expected_size: None,
                        expected_checksum: None,
                        media_type: None,
                    }],
                    run: None,
                })
                .unwrap();
        }
        for _ in 0..3 {
            assert_eq!(store.claim_assets(job, 1).unwrap().len(), 1);
        }
        let statement = store.conn().prepare_cached(&claim_sql("", 1)).unwrap();
        assert_eq!(
            statement.get_status(rusqlite::StatementStatus::RePrepare),
            0,
            "a claim's limit given as a parameter makes SQLite prepare it at every claim"
        );
    }

    #[test]
    fn an_asset_moves_through_its_states() {
        let (store, job) = new_job();
        let item = plan(&store, job, None);
        let asset = store.claim_asset(job).unwrap().unwrap();
        assert_eq!(asset.item_row, item);
        assert!(
            store.claim_asset(job).unwrap().is_none(),
            "an active asset is not claimed twice"
        );
        store
            .fail_attempt(asset.id, "the server is busy", false)
            .unwrap();
        let again = store.claim_asset(job).unwrap().unwrap();
        assert_eq!(again.attempts, 1);
        store.set_asset_validator(again.id, Some("\"v1\"")).unwrap();
        // A crash: the active row goes back to pending, validator kept.
        assert_eq!(store.reconcile_job(job).unwrap(), 1);
        let again = store.claim_asset(job).unwrap().unwrap();
        assert_eq!(again.validator.as_deref(), Some("\"v1\""));
        assert!(store.items_to_write(job, 0, 10).unwrap().is_empty());
        assert!(store.items_ready(job, &[item]).unwrap().is_empty());
        store
            .finish_asset(again.id, AssetState::Done, 10, "1220ab")
            .unwrap();
        let counts = store.job_counts(job).unwrap();
        assert_eq!(
            (counts.items, counts.assets, counts.done, counts.pending),
            (1, 1, 1, 0)
        );
        assert_eq!((counts.bytes_expected, counts.bytes_done), (10, 10));
        assert_eq!(store.items_to_write(job, 0, 10).unwrap().len(), 1);
        assert!(store.items_to_write(job, item, 10).unwrap().is_empty());
        assert_eq!(store.items_ready(job, &[item, item + 1]).unwrap().len(), 1);
        assert!(store.items_ready(job + 1, &[item]).unwrap().is_empty());
        // An item whose document could not be written waits for a retry.
        store
            .fail_item(item, "a folder stands at its name")
            .unwrap();
        assert!(store.items_to_write(job, 0, 10).unwrap().is_empty());
        assert_eq!(store.job_counts(job).unwrap().items_failed, 1);
        assert_eq!(
            store.failures(job).unwrap()[0].reason,
            "a folder stands at its name"
        );
        store.retry_failed(job).unwrap();
        assert_eq!(store.items_ready(job, &[item]).unwrap().len(), 1);
        store.mark_item_written(item).unwrap();
        assert!(store.items_to_write(job, 0, 10).unwrap().is_empty());
        assert_eq!(store.written_items(job).unwrap().len(), 1);
    }

    #[test]
    fn planning_again_keeps_done_assets_unless_the_source_changed() {
        let (store, job) = new_job();
        plan(&store, job, Some("1220aa"));
        let asset = store.claim_asset(job).unwrap().unwrap();
        store
            .finish_asset(asset.id, AssetState::Done, 10, "1220aa")
            .unwrap();
        plan(&store, job, Some("1220aa"));
        assert_eq!(store.job_counts(job).unwrap().done, 1);
        plan(&store, job, Some("1220bb"));
        assert_eq!(store.job_counts(job).unwrap().pending, 1);
    }

    #[test]
    fn a_copy_verified_before_a_crash_is_remembered_until_its_source_changes() {
        let (store, job) = new_job();
        plan(&store, job, None);
        let asset = store.claim_asset(job).unwrap().unwrap();
        assert_eq!(asset.verified, None);
        store.set_asset_verifying(asset.id, 10, "1220ab").unwrap();
        assert_eq!(store.job_counts(job).unwrap().pending, 1, "not done yet");
        // A crash between the verification and the rename.
        assert_eq!(store.reconcile_job(job).unwrap(), 1);
        let again = store.claim_asset(job).unwrap().unwrap();
        assert_eq!(again.verified, Some((10, "1220ab".to_string())));
        store.release_asset(again.id, None).unwrap();
        // Planned again unchanged: the record stays.
        plan(&store, job, None);
        let again = store.claim_asset(job).unwrap().unwrap();
        assert!(again.verified.is_some());
        store.release_asset(again.id, None).unwrap();
        // Changed: the recorded bytes (perhaps in place already) are
        // settled first, as Cairn's own; then the new plan applies and
        // they are what the new copy is compared with.
        plan(&store, job, Some("1220cc"));
        let again = store.claim_asset(job).unwrap().unwrap();
        assert_eq!(again.verified, Some((10, "1220ab".to_string())));
        assert_eq!(again.expected_checksum, None);
        store
            .finish_asset(again.id, AssetState::Done, 10, "1220ab")
            .unwrap();
        let again = store.claim_asset(job).unwrap().unwrap();
        assert_eq!(again.verified, None);
        assert_eq!(again.expected_checksum.as_deref(), Some("1220cc"));
        assert_eq!(again.prior.map(|p| p.checksum).as_deref(), Some("1220ab"));
    }

    #[test]
    fn bytes_verified_before_a_failure_are_forgotten_when_it_is_retried() {
        let (store, job) = new_job();
        plan(&store, job, None);
        let asset = store.claim_asset(job).unwrap().unwrap();
        store.set_asset_verifying(asset.id, 10, "1220ab").unwrap();
        // They never took their place (the move into it failed).
        assert!(!store.fail_attempt(asset.id, "no room", true).unwrap());
        store.retry_failed(job).unwrap();
        let again = store.claim_asset(job).unwrap().unwrap();
        assert_eq!(again.verified, None);
        // So a new plan of it applies at once: no transfer holds it.
        store.release_asset(again.id, None).unwrap();
        plan(&store, job, Some("1220cc"));
        let again = store.claim_asset(job).unwrap().unwrap();
        assert_eq!(again.expected_checksum.as_deref(), Some("1220cc"));
    }

    #[test]
    fn files_done_since_the_last_flush_are_the_ones_to_check_again() {
        let (store, job) = new_job();
        plan(&store, job, None);
        let asset = store.claim_asset(job).unwrap().unwrap();
        store
            .finish_asset(asset.id, AssetState::Done, 10, "1220ab")
            .unwrap();
        // Never flushed: it is a suspect.
        let suspects = store.unflushed_done(job).unwrap();
        assert_eq!(
            suspects,
            vec![VerifiedAsset {
                id: asset.id,
                key: "data".into(),
                path: "c/i/data.tif".into(),
                size: 10,
                checksum: "1220ab".into(),
                href: asset.href.clone(),
            }]
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
        store.set_job_flushed(job, &store.now()).unwrap();
        assert!(store.unflushed_done(job).unwrap().is_empty());
        // Found damaged: back to pending, with nothing verified remembered.
        store.reopen_asset(asset.id).unwrap();
        let again = store.claim_asset(job).unwrap().unwrap();
        assert_eq!(again.verified, None);
        assert_eq!(store.job_counts(job).unwrap().done, 0);
    }

    #[test]
    fn failures_keep_their_reason_and_can_be_retried() {
        let (store, job) = new_job();
        plan(&store, job, None);
        let asset = store.claim_asset(job).unwrap().unwrap();
        store
            .fail_attempt(asset.id, "the checksum does not match", true)
            .unwrap();
        let failures = store.failures(job).unwrap();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].reason, "the checksum does not match");
        assert_eq!(store.job_counts(job).unwrap().failed, 1);
        assert_eq!(store.retry_failed(job).unwrap(), 1);
        assert_eq!(store.claim_asset(job).unwrap().unwrap().attempts, 0);
    }
}
