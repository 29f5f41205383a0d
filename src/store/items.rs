//! The `items` table: every item a job's plan selected.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use super::{Failure, Store, stamp};
use crate::Result;

/// An asset of a planned item.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAsset {
    /// The asset's key in the item.
    pub key: String,
    /// Where its bytes come from (absolute).
    pub href: String,
    /// Where it goes, relative to the destination.
    pub path: String,
    /// `file:size`, when given.
    pub expected_size: Option<u64>,
    /// `file:checksum` (hex multihash), when given.
    pub expected_checksum: Option<String>,
    /// The media type the catalog gives (`type`), when it does.
    pub media_type: Option<String>,
}

/// An item to record in a job's plan, with the assets to copy.
#[derive(Debug, Clone, PartialEq)]
pub struct NewItem {
    /// The job.
    pub job_id: i64,
    /// The collection it belongs to.
    pub collection: Option<String>,
    /// Its id in the source.
    pub item_id: String,
    /// Where it was read from.
    pub href: String,
    /// Its folder at the destination, relative.
    pub dir: String,
    /// What was changed to make its id or file names safe, if anything.
    pub renamed: Option<String>,
    /// The source document, as JSON text (made by the planner, so that the
    /// state thread only stores it).
    pub document: String,
    /// The selected assets.
    pub assets: Vec<NewAsset>,
    /// The run of the job whose plan read it (see [`Store::open_run`]).
    pub run: Option<i64>,
}

/// The folders earlier plans of a job gave out.
#[derive(Debug, Clone, Default)]
pub struct PlannedPlaces {
    /// (collection id, folder).
    pub collections: Vec<(String, String)>,
    /// (collection id, item id, folder).
    pub items: Vec<(Option<String>, String, String)>,
    /// The job's own items, by (collection id, item id)...
    pub mine: crate::seen::Seen,
    /// ...and by (collection id, item id, document address).
    pub mine_at: crate::seen::Seen,
}

/// A planned item as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRow {
    /// Row id.
    pub id: i64,
    /// The collection it belongs to.
    pub collection: Option<String>,
    /// Its id in the source.
    pub item_id: String,
    /// Where it was read from.
    pub href: String,
    /// Its folder at the destination, relative.
    pub dir: String,
    /// The source document.
    pub document: Value,
    /// When a sync found it gone from the source (it stays in the mirror).
    pub removed_at: Option<String>,
}

/// An item document a job wrote into a mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenDocument {
    /// The item's row.
    pub row: i64,
    /// The job that wrote it.
    pub job_id: i64,
    /// The checksum of the document as written (hex multihash).
    pub checksum: String,
}

/// Where an item stands in the mirrors made from one source.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mirrored {
    /// Every selected asset is copied and verified.
    Done,
    /// Planned; some assets are still to copy.
    Pending,
    /// Some asset could not be copied.
    Failed,
    /// A file of it in the mirror is gone or changed since it was copied
    /// (seen by the watcher).
    Damaged,
}

/// An item of a source and where it stands, for a map.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemMark {
    /// Its collection.
    pub collection: Option<String>,
    /// Its id.
    pub id: String,
    /// Where it stands.
    pub state: Mirrored,
}

/// An asset whose verified bytes a job of Cairn's copied: done by this job,
/// or found done by another job of the mirror (skipped, with no checksum
/// from the catalog; a file found in place by its catalog checksum is not
/// Cairn's own).
const CAIRNS_BYTES: &str = "(assets.state = 'done'
    OR (assets.state = 'skipped' AND assets.expected_checksum IS NULL AND assets.checksum IS NOT NULL))";

/// An asset a transfer holds: claimed, or with verified bytes recorded that
/// are not yet in place or recorded as done (a stop or a crash came in
/// between). Its source, place and promises do not change under it: a new
/// plan of it waits (`replan`) until the transfer ends.
const HELD: &str = "(assets.state IN ('active', 'verifying')
    OR (assets.state = 'pending' AND assets.checksum IS NOT NULL))";

/// Whether an asset planned again has the source, place and promises of
/// its row.
const SAME_ASSET: &str = "(assets.href = excluded.href AND assets.path = excluded.path
    AND assets.expected_size IS excluded.expected_size
    AND assets.expected_checksum IS excluded.expected_checksum)";

/// Applies the plan that waited for asset `?1` once no transfer holds it:
/// it goes back in the queue with its new source, place and promises (a
/// fresh set of attempts if the old source failed for good; else its count
/// goes on, which also tells that the asset placed the bytes it verified).
/// Verified bytes of Cairn's in the same place are what the new copy is
/// compared with, and kept as a previous version (only bytes Cairn copied:
/// a file found in place is not its own; a file whose place changed stays
/// where it is). A partial download of the old source is not resumed.
/// Returns the item row of an asset it changed.
static APPLY_REPLAN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE assets SET state = 'pending',
             prior_size = CASE WHEN assets.path IS NOT replan ->> '$.path' THEN NULL
                 WHEN {CAIRNS_BYTES} THEN assets.size ELSE assets.prior_size END,
             prior_checksum = CASE WHEN assets.path IS NOT replan ->> '$.path' THEN NULL
                 WHEN {CAIRNS_BYTES} THEN assets.checksum ELSE assets.prior_checksum END,
             recheck = 0, size = NULL, checksum = NULL, validator = NULL, bytes_done = 0,
             attempts = CASE WHEN assets.state = 'failed' THEN 0 ELSE assets.attempts END,
             failure = NULL,
             href = replan ->> '$.href', path = replan ->> '$.path',
             expected_size = replan ->> '$.expected_size',
             expected_checksum = replan ->> '$.expected_checksum',
             replan = NULL
         WHERE id = ?1 AND replan IS NOT NULL AND NOT {HELD}
         RETURNING item_row"
    )
});

impl Store {
    /// Records an item and its assets in one transaction. Planning the same item
    /// again keeps what is done, unless its source or promised checksum changed.
    pub fn plan_item(&self, item: &NewItem) -> Result<i64> {
        // A savepoint: its own transaction, or a part of a caller's batch.
        let conn = self.conn();
        conn.prepare_cached("SAVEPOINT plan_item")?.execute([])?;
        let result = self.plan_item_rows(item);
        match &result {
            Ok(_) => {
                conn.prepare_cached("RELEASE plan_item")?.execute([])?;
            }
            Err(_) => self
                .conn()
                .execute_batch("ROLLBACK TO plan_item; RELEASE plan_item")?,
        }
        result
    }

    fn plan_item_rows(&self, item: &NewItem) -> Result<i64> {
        let conn = self.conn();
        let values = params![
            item.job_id,
            item.collection,
            item.item_id,
            item.href,
            item.dir,
            item.renamed,
            item.document,
            item.run
        ];
        let upsert = |sql: &str| {
            conn.prepare_cached(sql)?
                .query_row(values, |r| Ok((r.get(0)?, r.get(1)?)))
        };
        // An item without a collection: the table's UNIQUE constraint takes
        // no two NULLs as equal, so it is looked for by hand.
        let loose: Option<(i64, String)> = match item.collection {
            Some(_) => None,
            None => upsert(
                "UPDATE items SET href = ?4, dir = ?5, renamed = ?6, document = ?7, seen_run = ?8,
                     removed_at = NULL,
                     changed_run = CASE WHEN document IS NOT ?7 THEN ?8 ELSE changed_run END,
                     state = CASE WHEN document IS NOT ?7 OR removed_at IS NOT NULL
                                  THEN 'pending' ELSE state END
                 WHERE id = (SELECT id FROM items
                             WHERE job_id = ?1 AND collection IS ?2 AND item_id = ?3
                             ORDER BY id LIMIT 1)
                 RETURNING id, state",
            )
            .optional()?,
        };
        let (row, state): (i64, String) = match loose {
            Some(found) => found,
            None => upsert(
                "INSERT INTO items (job_id, collection, item_id, href, dir, renamed, document,
                                    first_run, seen_run)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                 ON CONFLICT (job_id, collection, item_id) DO UPDATE SET
                     href = excluded.href, dir = excluded.dir, renamed = excluded.renamed,
                     document = excluded.document, seen_run = excluded.seen_run,
                     removed_at = NULL,
                     changed_run = CASE WHEN items.document IS NOT excluded.document
                                        THEN excluded.seen_run ELSE items.changed_run END,
                     state = CASE WHEN items.document IS NOT excluded.document
                                       OR items.removed_at IS NOT NULL
                                  THEN 'pending' ELSE items.state END
                 RETURNING id, state",
            )?,
        };
        // A plan differing from the asset's row is kept beside it, then
        // applied at once unless a transfer holds the asset (then when the
        // transfer ends); a plan like the row leaves it as it is.
        let mut insert_asset = conn.prepare_cached(&format!(
            "INSERT INTO assets (item_row, key, href, path, expected_size, expected_checksum, media_type, first_run)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (item_row, key) DO UPDATE SET
                     replan = CASE WHEN NOT {SAME_ASSET} THEN json_object(
                         'href', excluded.href, 'path', excluded.path,
                         'expected_size', excluded.expected_size,
                         'expected_checksum', excluded.expected_checksum) END,
                     media_type = excluded.media_type
                 RETURNING id, replan IS NOT NULL"
        ))?;
        let mut apply = conn.prepare_cached(&APPLY_REPLAN)?;
        for asset in &item.assets {
            let (id, replanned): (i64, bool) = insert_asset.query_row(
                params![
                    row,
                    asset.key,
                    asset.href,
                    asset.path,
                    asset.expected_size.map(|s| s as i64),
                    asset.expected_checksum,
                    asset.media_type,
                    item.run
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if replanned {
                apply.query_row([id], |_| Ok(())).optional()?;
            }
        }
        // An item written before is written again once an asset of it is to
        // be copied anew (its source changed, or it failed before). A new
        // item is pending already.
        if state == "written" {
            conn.prepare_cached(
                "UPDATE items SET state = 'pending' WHERE id = ?1
                 AND EXISTS (SELECT 1 FROM assets WHERE item_row = ?1 AND state = 'pending'
                             AND recheck = 0)",
            )?
            .execute([row])?;
        }
        Ok(row)
    }

    /// Applies the plan that waited for asset `id` while a transfer held it
    /// (see [`HELD`]), now that the transfer ended; its item, if written,
    /// is written again once the asset is copied anew. Returns whether it
    /// did.
    pub(super) fn apply_replan(&self, id: i64) -> Result<bool> {
        let conn = self.conn();
        let changed: Option<i64> = conn
            .prepare_cached(&APPLY_REPLAN)?
            .query_row([id], |r| r.get(0))
            .optional()?;
        if let Some(item_row) = changed {
            conn.prepare_cached(
                "UPDATE items SET state = 'pending' WHERE id = ?1 AND state = 'written'",
            )?
            .execute([item_row])?;
        }
        Ok(changed.is_some())
    }

    /// Where a job's collections and items were placed by earlier plans (of
    /// this job last, so that its own places win), and those of the other
    /// jobs into the same destination: planning again gives each the same
    /// folder, and no two jobs give one folder to two items.
    pub fn planned_places(&self, job_id: i64) -> Result<PlannedPlaces> {
        let conn = self.conn();
        // Every job into the same destination: their folders are taken too.
        let same =
            "SELECT id FROM jobs WHERE destination = (SELECT destination FROM jobs WHERE id = ?1)
             AND (draft = 0 OR id = ?1)";
        let mut statement = conn.prepare(&format!(
            "SELECT collection_id, dir FROM collections WHERE job_id IN ({same}) ORDER BY job_id = ?1"
        ))?;
        let collections = statement
            .query_map([job_id], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut statement = conn.prepare(&format!(
            "SELECT collection, item_id, dir, CASE WHEN job_id = ?1 THEN href END
             FROM items WHERE job_id IN ({same}) ORDER BY job_id = ?1"
        ))?;
        let (mut mine, mut mine_at) = (crate::seen::Seen::new(), crate::seen::Seen::new());
        let mut items = Vec::new();
        let mut rows = statement.query([job_id])?;
        while let Some(row) = rows.next()? {
            let (collection, item_id, dir): (Option<String>, String, String) =
                (row.get(0)?, row.get(1)?, row.get(2)?);
            // Hashed as read: no address is held for the whole job.
            if let Some(href) = row.get::<_, Option<String>>(3)? {
                mine.insert(&(collection.as_deref(), item_id.as_str()));
                mine_at.insert(&(collection.as_deref(), item_id.as_str(), href.as_str()));
            }
            items.push((collection, item_id, dir));
        }
        Ok(PlannedPlaces {
            collections,
            items,
            mine,
            mine_at,
        })
    }

    /// Up to `limit` items of a job whose every asset is finished (done,
    /// skipped, or failed for good) and that are not yet written to the
    /// destination. An item is written also when some assets failed: those
    /// keep their original address and say why they are missing.
    ///
    /// Only items after row `after` are looked at: a caller going through
    /// them all passes the last row it was given, and so reads each waiting
    /// item once, not once per slice.
    pub fn items_to_write(&self, job_id: i64, after: i64, limit: usize) -> Result<Vec<ItemRow>> {
        let mut statement = self.conn().prepare_cached(&format!(
            "{SELECT_ITEMS} WHERE {READY} AND i.id > ?2 ORDER BY i.id LIMIT {limit}"
        ))?;
        let rows = statement.query_map(params![job_id, after], item_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Those of the items `rows` of job `job_id` that are ready to write (as
    /// [`Store::items_to_write`]), by row id. One statement for them all
    /// (the rows are handed over as a JSON array).
    pub fn items_ready(&self, job_id: i64, rows: &[i64]) -> Result<Vec<ItemRow>> {
        let rows = super::json_array(rows);
        let mut statement = self.conn().prepare_cached(&format!(
            "{SELECT_ITEMS} WHERE i.id IN (SELECT value FROM json_each(?2)) AND {READY}
             ORDER BY i.id"
        ))?;
        let ready = statement.query_map(params![job_id, rows], item_row)?;
        Ok(ready.collect::<Result<_, _>>()?)
    }

    /// Items of a job already written to the destination.
    pub fn written_items(&self, job_id: i64) -> Result<Vec<ItemRow>> {
        self.select_items(
            "WHERE i.job_id = ?1 AND i.state = 'written' ORDER BY i.id",
            job_id,
        )
    }

    /// Where job `job_id`'s item `item_id` of `collection` was read from.
    pub fn item_href(
        &self,
        job_id: i64,
        collection: Option<&str>,
        item_id: &str,
    ) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT href FROM items WHERE job_id = ?1 AND collection IS ?2 AND item_id = ?3",
            )?
            .query_row(params![job_id, collection, item_id], |row| row.get(0))
            .optional()?)
    }

    /// Calls `each` with the folder of every item of job `job_id` already
    /// written, in the order they were planned, one row at a time.
    pub fn each_written_dir(&self, job_id: i64, mut each: impl FnMut(&str)) -> Result<()> {
        let mut statement = self
            .conn()
            .prepare("SELECT dir FROM items WHERE job_id = ?1 AND state = 'written' ORDER BY id")?;
        let mut rows = statement.query([job_id])?;
        while let Some(row) = rows.next()? {
            let dir: String = row.get(0)?;
            each(&dir);
        }
        Ok(())
    }

    /// Where each item planned from `source` stands, over all its jobs: failed
    /// when an asset failed, done when every asset is, pending otherwise.
    pub fn item_marks(&self, source: &str) -> Result<Vec<ItemMark>> {
        let mut statement = self.conn().prepare(
            "SELECT i.collection, i.item_id,
                    coalesce(max(a.state = 'failed'), 0),
                    coalesce(min(a.state IN ('done', 'skipped')), 0),
                    max(EXISTS (SELECT 1 FROM flags f WHERE f.destination = j.destination
                                AND f.kind != 'added'
                                AND f.path > i.dir || '/' AND f.path < i.dir || '0'))
             FROM items i JOIN jobs j ON j.id = i.job_id
             LEFT JOIN assets a ON a.item_row = i.id
             WHERE j.source_url = ?1 AND j.draft = 0
             GROUP BY i.collection, i.item_id
             ORDER BY i.collection, i.item_id",
        )?;
        let rows = statement.query_map([source], |row| {
            let (failed, done, damaged): (bool, bool, bool) =
                (row.get(2)?, row.get(3)?, row.get(4)?);
            Ok(ItemMark {
                collection: row.get(0)?,
                id: row.get(1)?,
                state: if damaged {
                    Mirrored::Damaged
                } else if failed {
                    Mirrored::Failed
                } else if done {
                    Mirrored::Done
                } else {
                    Mirrored::Pending
                },
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks an item as written to the destination.
    pub fn mark_item_written(&self, row: i64) -> Result<()> {
        self.mark_item_written_as(row, None)
    }

    /// Marks an item as written to the destination, with the checksum of
    /// the document written (hex multihash), by which an edit is found later.
    pub fn mark_item_written_as(&self, row: i64, checksum: Option<&str>) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE items SET state = 'written', doc_checksum = ?2, written_at = ?3
                 WHERE id = ?1",
            )?
            .execute(params![row, checksum, stamp()])?;
        Ok(())
    }

    /// The checksum recorded when a job into `destination` last wrote the
    /// item document at `path`, if `path` is one it wrote.
    pub fn written_document(&self, destination: &str, path: &str) -> Result<Option<String>> {
        let Some((dir, _)) = path.rsplit_once('/') else {
            return Ok(None);
        };
        if crate::layout::item_document(dir) != path {
            return Ok(None);
        }
        // The item that wrote it last, and only if it stands as written
        // (one being written again has no checksum to compare yet).
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT CASE WHEN i.state = 'written' THEN i.doc_checksum END
                 FROM items i JOIN jobs j ON j.id = i.job_id
                 WHERE i.dir = ?2 AND j.destination = ?1
                 ORDER BY i.written_at IS NULL, i.written_at DESC, i.id DESC LIMIT 1",
            )?
            .query_row(params![destination, dir], |row| row.get(0))
            .optional()?
            .flatten())
    }

    /// The checksum of every item document the jobs into `destination`
    /// wrote, by its path in the mirror (the latest write of each path).
    pub fn written_documents(
        &self,
        destination: &str,
    ) -> Result<std::collections::HashMap<String, WrittenDocument>> {
        let mut statement = self.conn().prepare(
            "SELECT i.id, i.job_id, i.dir, i.doc_checksum FROM items i JOIN jobs j ON j.id = i.job_id
             WHERE j.destination = ?1 AND i.state = 'written' AND i.doc_checksum IS NOT NULL
             ORDER BY i.written_at, i.id",
        )?;
        let mut rows = statement.query([destination])?;
        let mut documents = std::collections::HashMap::new();
        while let Some(row) = rows.next()? {
            let dir: String = row.get(2)?;
            documents.insert(
                crate::layout::item_document(&dir),
                WrittenDocument {
                    row: row.get(0)?,
                    job_id: row.get(1)?,
                    checksum: row.get(3)?,
                },
            );
        }
        Ok(documents)
    }

    /// An item whose document in the mirror was edited or lost: written
    /// again by the next run of its job.
    pub fn reopen_item(&self, row: i64) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE items SET state = 'pending', doc_checksum = NULL WHERE id = ?1",
            )?
            .execute([row])?;
        Ok(())
    }

    /// Records why an item's document could not be written: it is not tried
    /// again until the job's failures are retried.
    pub fn fail_item(&self, row: i64, reason: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE items SET failure = ?2 WHERE id = ?1",
            params![row, reason],
        )?;
        Ok(())
    }

    /// The items of a job whose documents could not be written, as failures:
    /// the item's source, the path its document would have had, and why.
    pub fn item_failures(&self, job_id: i64) -> Result<Vec<Failure>> {
        let mut statement = self.conn().prepare(
            "SELECT href, dir, failure FROM items
             WHERE job_id = ?1 AND failure IS NOT NULL ORDER BY id",
        )?;
        let rows = statement.query_map([job_id], |row| {
            Ok(Failure {
                href: row.get(0)?,
                path: crate::layout::item_document(&row.get::<_, String>(1)?),
                attempts: 1,
                reason: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn select_items(&self, filter: &str, job_id: i64) -> Result<Vec<ItemRow>> {
        let mut statement = self.conn().prepare(&format!("{SELECT_ITEMS} {filter}"))?;
        let rows = statement.query_map([job_id], item_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The columns of an [`ItemRow`], of the items `i`.
const SELECT_ITEMS: &str =
    "SELECT i.id, i.collection, i.item_id, i.href, i.dir, i.document, i.removed_at FROM items i";

/// Item `i` of job `?1` is ready to write: not written yet, its document not
/// failed, and every asset finished (done, skipped, or failed for good).
const READY: &str = "i.job_id = ?1 AND i.state = 'pending' AND i.failure IS NULL
    AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.item_row = i.id
                    AND a.state NOT IN ('done', 'skipped', 'failed'))";

/// An [`ItemRow`] from [`SELECT_ITEMS`].
fn item_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ItemRow> {
    Ok(ItemRow {
        id: row.get(0)?,
        collection: row.get(1)?,
        item_id: row.get(2)?,
        href: row.get(3)?,
        dir: row.get(4)?,
        document: super::json_column(row, 5)?,
        removed_at: row.get(6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AssetState, NewJob};
    use serde_json::json;

    fn item(job_id: i64, id: &str, keys: &[&str]) -> NewItem {
        NewItem {
            job_id,
            collection: Some("tiles".into()),
            item_id: id.into(),
            href: format!("http://127.0.0.1/{id}.json"),
            dir: format!("tiles/{id}"),
            renamed: None,
            document: json!({"id": id}).to_string(),
            assets: keys
                .iter()
                .map(|k| NewAsset {
                    key: k.to_string(),
                    href: format!("http://127.0.0.1/{id}/{k}"),
                    path: format!("tiles/{id}/{k}"),
                    expected_size: None,
                    expected_checksum: None,
                    media_type: None,
                })
                .collect(),
            run: None,
        }
    }

    #[test]
    fn items_are_marked_done_pending_or_failed_for_their_source() {
        let store = Store::open_in_memory().unwrap();
        let new_job = |source: &str| NewJob {
            source_url: source.into(),
            ..crate::store::jobs::tests::new_job()
        };
        let job = store
            .create_job(&new_job("http://127.0.0.1/c.json"))
            .unwrap();
        let other = store
            .create_job(&new_job("http://127.0.0.1/other.json"))
            .unwrap();
        for (id, keys) in [("a", &["x", "y"][..]), ("b", &["x"]), ("c", &["x", "y"])] {
            store.plan_item(&item(job, id, keys)).unwrap();
        }
        store.plan_item(&item(other, "z", &["x"])).unwrap();
        let claimed = store.claim_assets(job, 10).unwrap();
        let asset = |item: &str, key: &str| {
            claimed
                .iter()
                .find(|a| a.href.ends_with(&format!("/{item}/{key}")))
                .unwrap()
                .id
        };
        store
            .finish_asset(asset("a", "x"), AssetState::Done, 1, "1220")
            .unwrap();
        store
            .finish_asset(asset("a", "y"), AssetState::Skipped, 1, "1220")
            .unwrap();
        store
            .finish_asset(asset("c", "x"), AssetState::Done, 1, "1220")
            .unwrap();
        store.fail_attempt(asset("c", "y"), "gone", true).unwrap();
        let marks = store.item_marks("http://127.0.0.1/c.json").unwrap();
        let states: Vec<(&str, Mirrored)> =
            marks.iter().map(|m| (m.id.as_str(), m.state)).collect();
        assert_eq!(
            states,
            [
                ("a", Mirrored::Done),
                ("b", Mirrored::Pending),
                ("c", Mirrored::Failed)
            ]
        );
    }

    #[test]
    fn sizes_that_add_up_past_what_a_number_holds_still_count() {
        let store = Store::open_in_memory().unwrap();
        let job = store
            .create_job(&crate::store::jobs::tests::new_job())
            .unwrap();
        // 2^53 bytes each (the largest size the plan believes): 1,100 of
        // them add up past 2^63.
        let keys: Vec<String> = (0..1100).map(|n| format!("k{n}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut big = item(job, "big", &keys);
        for asset in &mut big.assets {
            asset.expected_size = Some(1 << 53);
        }
        store.plan_item(&big).unwrap();
        let counts = store.job_counts(job).unwrap();
        assert_eq!(counts.assets, 1100);
        assert_eq!(counts.bytes_expected, i64::MAX as u64);
    }

    #[test]
    fn an_item_without_a_collection_planned_again_is_the_same_item() {
        let store = Store::open_in_memory().unwrap();
        let job = store
            .create_job(&crate::store::jobs::tests::new_job())
            .unwrap();
        let loose = |href: &str| NewItem {
            collection: None,
            href: href.into(),
            ..item(job, "a", &["x"])
        };
        let first = store
            .plan_item(&loose("http://127.0.0.1/one.json"))
            .unwrap();
        let again = store
            .plan_item(&loose("http://127.0.0.1/two.json"))
            .unwrap();
        assert_eq!(first, again);
        let counts = store.job_counts(job).unwrap();
        assert_eq!((counts.items, counts.assets), (1, 1));
        assert_eq!(
            store.item_href(job, None, "a").unwrap().as_deref(),
            Some("http://127.0.0.1/two.json")
        );
    }

    /// The row of asset `id`: state, href, path, expected checksum, size,
    /// checksum, prior size and checksum, whether a plan waits.
    type Row = (
        String,
        String,
        String,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<i64>,
        Option<String>,
        bool,
    );

    fn row(store: &Store, id: i64) -> Row {
        store
            .conn()
            .query_row(
                "SELECT state, href, path, expected_checksum, size, checksum, prior_size,
                        prior_checksum, replan IS NOT NULL FROM assets WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                },
            )
            .unwrap()
    }

    /// Item `a` with its asset `x` moved to another address with another
    /// promised checksum (the document kept as it was: what changes the
    /// item is the asset alone).
    fn moved(job: i64) -> NewItem {
        let mut moved = item(job, "a", &["x"]);
        moved.assets[0].href = "http://127.0.0.1/moved/a/x".into();
        moved.assets[0].expected_checksum = Some("1220bb".into());
        moved
    }

    fn job(store: &Store) -> i64 {
        store
            .create_job(&crate::store::jobs::tests::new_job())
            .unwrap()
    }

    /// Item `a` planned, and its asset `x` claimed by a transfer.
    fn claimed(store: &Store, job: i64) -> i64 {
        store.plan_item(&item(job, "a", &["x"])).unwrap();
        store.claim_asset(job).unwrap().unwrap().id
    }

    /// As [`claimed`], and copied: done, 5 bytes verified.
    fn copied(store: &Store, job: i64) -> i64 {
        let id = claimed(store, job);
        store
            .finish_asset(id, AssetState::Done, 5, "1220aa")
            .unwrap();
        id
    }

    /// Column `name` of asset `id`.
    fn column<T: rusqlite::types::FromSql>(store: &Store, id: i64, name: &str) -> T {
        store
            .conn()
            .query_row(
                &format!("SELECT {name} FROM assets WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .unwrap()
    }

    #[test]
    fn a_plan_read_again_under_a_transfer_waits_until_the_transfer_ends() {
        let store = Store::open_in_memory().unwrap();
        let job = job(&store);
        let row_a = store.plan_item(&item(job, "a", &["x"])).unwrap();
        store.mark_item_written(row_a).unwrap();
        let claimed = store.claim_asset(job).unwrap().unwrap();
        let id = claimed.id;
        store.plan_item(&moved(job)).unwrap();
        // The transfer's row is the one it claimed: what it records is
        // about the address it fetches and the place it writes.
        let held = row(&store, id);
        assert_eq!(
            (held.0.as_str(), held.1.as_str(), held.2.as_str(), held.8),
            ("active", "http://127.0.0.1/a/x", "tiles/a/x", true)
        );
        store.set_asset_verifying(id, 5, "1220aa").unwrap();
        store.plan_item(&moved(job)).unwrap();
        assert_eq!(row(&store, id).1, "http://127.0.0.1/a/x");
        store
            .finish_asset(id, AssetState::Done, 5, "1220aa")
            .unwrap();
        // Then the new plan: fetched again from the new address, compared
        // with the bytes just verified (kept as the previous version).
        assert_eq!(
            row(&store, id),
            (
                "pending".into(),
                "http://127.0.0.1/moved/a/x".into(),
                "tiles/a/x".into(),
                Some("1220bb".into()),
                None,
                None,
                Some(5),
                Some("1220aa".into()),
                false
            )
        );
        let written = store.written_items(job).unwrap();
        assert!(written.is_empty(), "{written:?}");
        let again = store.claim_asset(job).unwrap().unwrap();
        assert_eq!(again.href, "http://127.0.0.1/moved/a/x");
        assert_eq!(again.path, "tiles/a/x");
        assert_eq!(
            again.prior.map(|p| (p.size, p.checksum)),
            Some((5, "1220aa".into()))
        );
        assert!(again.verified.is_none());
    }

    #[test]
    fn a_plan_that_comes_back_to_the_claimed_asset_changes_nothing() {
        let store = Store::open_in_memory().unwrap();
        let job = job(&store);
        let id = claimed(&store, job);
        store.plan_item(&moved(job)).unwrap();
        store.plan_item(&item(job, "a", &["x"])).unwrap();
        store
            .finish_asset(id, AssetState::Done, 5, "1220aa")
            .unwrap();
        let done = row(&store, id);
        assert_eq!(
            (done.0.as_str(), done.1.as_str(), done.5.as_deref(), done.8),
            ("done", "http://127.0.0.1/a/x", Some("1220aa"), false)
        );
    }

    #[test]
    fn every_end_of_a_transfer_applies_the_plan_that_waited() {
        let store = Store::open_in_memory().unwrap();
        let job = job(&store);
        let new_href = "http://127.0.0.1/moved/a/x".to_string();
        // Given up, stopped, or cut short by a crash: the asset is queued
        // again from its new address, nothing of the old one kept. Its
        // attempts start afresh when the old address failed for good, and
        // go on otherwise (each round makes one more, kept from the last).
        type End<'a> = &'a dyn Fn(&Store, i64);
        let ends: [(&str, End, i64); 3] = [
            (
                "given up",
                &|s, id| assert!(s.fail_attempt(id, "gone", true).unwrap()),
                0,
            ),
            ("stopped", &|s, id| s.release_asset(id, Some(3)).unwrap(), 1),
            (
                "crashed",
                &|s, _| {
                    s.reconcile_job(job).unwrap();
                },
                2,
            ),
        ];
        for (how, end, attempts_after) in ends {
            let id = claimed(&store, job);
            store.set_asset_validator(id, Some("\"v1\"")).unwrap();
            store.note_attempt(id, "the server is busy").unwrap();
            store.plan_item(&moved(job)).unwrap();
            end(&store, id);
            let after = row(&store, id);
            assert_eq!(
                (after.0.as_str(), &after.1, after.8),
                ("pending", &new_href, false),
                "{how}"
            );
            let validator: Option<String> = column(&store, id, "validator");
            let bytes_done: i64 = column(&store, id, "bytes_done");
            assert_eq!((validator, bytes_done), (None, 0), "{how}");
            // The old address's failure is not the new one's.
            let attempts: i64 = column(&store, id, "attempts");
            let failure: Option<String> = column(&store, id, "failure");
            assert_eq!((attempts, failure), (attempts_after, None), "{how}");
            // Back to the first plan for the next round.
            store.plan_item(&item(job, "a", &["x"])).unwrap();
            assert_eq!(row(&store, id).1, "http://127.0.0.1/a/x", "{how}");
        }
    }

    #[test]
    fn verified_bytes_cut_short_by_a_crash_are_settled_before_a_new_plan() {
        let store = Store::open_in_memory().unwrap();
        let job = job(&store);
        let id = claimed(&store, job);
        store.set_asset_verifying(id, 5, "1220aa").unwrap();
        store.plan_item(&moved(job)).unwrap();
        // The bytes may already be in place: the job first settles them
        // under the address they came from.
        store.reconcile_job(job).unwrap();
        let waiting = row(&store, id);
        assert_eq!(
            (waiting.0.as_str(), waiting.1.as_str(), waiting.8),
            ("pending", "http://127.0.0.1/a/x", true)
        );
        // Planned again after the crash: still waiting.
        store.plan_item(&moved(job)).unwrap();
        let claimed = store.claim_asset(job).unwrap().unwrap();
        assert_eq!(claimed.href, "http://127.0.0.1/a/x");
        assert_eq!(claimed.verified, Some((5, "1220aa".into())));
        store
            .finish_asset(id, AssetState::Done, 5, "1220aa")
            .unwrap();
        let after = row(&store, id);
        assert_eq!(
            (after.0.as_str(), after.1.as_str(), after.7.as_deref()),
            ("pending", "http://127.0.0.1/moved/a/x", Some("1220aa"))
        );
    }

    #[test]
    fn an_asset_no_transfer_holds_takes_a_new_plan_at_once() {
        let store = Store::open_in_memory().unwrap();
        let job = job(&store);
        let id = copied(&store, job);
        store.plan_item(&moved(job)).unwrap();
        let after = row(&store, id);
        assert_eq!(
            (
                after.0.as_str(),
                after.1.as_str(),
                after.4,
                after.6,
                after.8
            ),
            (
                "pending",
                "http://127.0.0.1/moved/a/x",
                None,
                Some(5),
                false
            )
        );
        // Its count of attempts goes on: it tells that this asset placed
        // the bytes now in its place (were it moved away and back).
        assert_eq!(column::<i64>(&store, id, "attempts"), 1);
    }

    #[test]
    fn bytes_whose_place_changed_are_not_compared_at_the_new_place() {
        let store = Store::open_in_memory().unwrap();
        let job = job(&store);
        let id = copied(&store, job);
        let mut renamed = moved(job);
        renamed.assets[0].path = "tiles/a/x.tif".into();
        store.plan_item(&renamed).unwrap();
        let after = row(&store, id);
        assert_eq!(
            (after.0.as_str(), after.2.as_str(), after.6, after.7),
            ("pending", "tiles/a/x.tif", None, None)
        );
    }
}
