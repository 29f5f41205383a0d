//! The `collections` table: the collections of a job's items, as read.

use rusqlite::params;
use serde_json::Value;

use super::Store;
use crate::Result;

/// A collection as stored for a job.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionRow {
    /// Its id in the source.
    pub collection_id: String,
    /// Where it was read from.
    pub href: String,
    /// Its folder at the destination, relative.
    pub dir: String,
    /// The source document.
    pub document: Value,
}

impl Store {
    /// Records (or refreshes) a collection of a job.
    pub fn plan_collection(&self, job_id: i64, row: &CollectionRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO collections (job_id, collection_id, href, dir, document)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (job_id, collection_id) DO UPDATE SET
                 href = excluded.href, dir = excluded.dir, document = excluded.document",
            params![
                job_id,
                row.collection_id,
                row.href,
                row.dir,
                row.document.to_string()
            ],
        )?;
        Ok(())
    }

    /// The collections of a job.
    pub fn job_collections(&self, job_id: i64) -> Result<Vec<CollectionRow>> {
        let mut statement = self.conn().prepare(
            "SELECT collection_id, href, dir, document FROM collections WHERE job_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map([job_id], |row| {
            Ok(CollectionRow {
                collection_id: row.get(0)?,
                href: row.get(1)?,
                dir: row.get(2)?,
                document: super::json_column(row, 3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
