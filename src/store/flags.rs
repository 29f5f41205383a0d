//! The `flags` table: what the watcher saw happen to a mirror's files.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::Store;
use crate::Result;

/// What happened to a file of a mirror since Cairn copied it.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagKind {
    /// A verified file is gone.
    Missing,
    /// A verified file has another size or modification time.
    Modified,
    /// An item document Cairn wrote was changed.
    Edited,
    /// A file no job put there (left as it is).
    Added,
}

impl FlagKind {
    fn as_str(self) -> &'static str {
        match self {
            FlagKind::Missing => "missing",
            FlagKind::Modified => "modified",
            FlagKind::Edited => "edited",
            FlagKind::Added => "added",
        }
    }

    fn parse(text: &str) -> rusqlite::Result<FlagKind> {
        match text {
            "missing" => Ok(FlagKind::Missing),
            "modified" => Ok(FlagKind::Modified),
            "edited" => Ok(FlagKind::Edited),
            "added" => Ok(FlagKind::Added),
            other => Err(rusqlite::Error::InvalidColumnType(
                0,
                other.to_string(),
                rusqlite::types::Type::Text,
            )),
        }
    }

    /// Whether a repair can put it right (an added file is left alone).
    pub fn repairable(self) -> bool {
        !matches!(self, FlagKind::Added)
    }
}

/// A file of a mirror the watcher flagged.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    /// The file, relative to the mirror.
    pub path: String,
    /// What happened.
    pub kind: FlagKind,
    /// When it was seen (RFC 3339, UTC).
    pub noticed_at: String,
}

impl Store {
    /// Flags `path` of the mirror at `destination`; returns whether that is
    /// news (it was not flagged so before).
    pub fn flag(&self, destination: &str, path: &str, kind: FlagKind) -> Result<bool> {
        let changed = self
            .conn()
            .prepare_cached(
                "INSERT INTO flags (destination, path, kind) VALUES (?1, ?2, ?3)
                 ON CONFLICT (destination, path) DO UPDATE SET kind = excluded.kind,
                     noticed_at = excluded.noticed_at
                 WHERE flags.kind != excluded.kind",
            )?
            .execute(params![destination, path, kind.as_str()])?;
        Ok(changed > 0)
    }

    /// Takes the flag off `path`; returns whether there was one.
    pub fn unflag(&self, destination: &str, path: &str) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached("DELETE FROM flags WHERE destination = ?1 AND path = ?2")?
            .execute(params![destination, path])?
            > 0)
    }

    /// The flagged files of the mirror at `destination`, by path.
    pub fn flags(&self, destination: &str) -> Result<Vec<Flag>> {
        let mut statement = self.conn().prepare_cached(
            "SELECT path, kind, noticed_at FROM flags WHERE destination = ?1 ORDER BY path",
        )?;
        let flags = statement
            .query_map([destination], row_to_flag)?
            .collect::<Result<_, _>>()?;
        Ok(flags)
    }

    /// The first `limit` flags of the mirror at `destination`, and how
    /// many there are in all.
    pub fn some_flags(&self, destination: &str, limit: usize) -> Result<(Vec<Flag>, u64)> {
        let count: i64 = self
            .conn()
            .prepare_cached("SELECT count(*) FROM flags WHERE destination = ?1")?
            .query_row([destination], |r| r.get(0))?;
        if count == 0 {
            return Ok((Vec::new(), 0));
        }
        let mut statement = self.conn().prepare_cached(&format!(
            "SELECT path, kind, noticed_at FROM flags WHERE destination = ?1 ORDER BY path LIMIT {limit}",
        ))?;
        let flags = statement
            .query_map(params![destination], row_to_flag)?
            .collect::<Result<_, _>>()?;
        Ok((flags, count as u64))
    }

    /// Every destination with a flag.
    pub fn flagged_destinations(&self) -> Result<Vec<String>> {
        let mut statement = self
            .conn()
            .prepare_cached("SELECT DISTINCT destination FROM flags ORDER BY destination")?;
        let found = statement
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(found)
    }

    /// Whether a run (of any process) holds a job into the mirror at
    /// `destination` now: its files change under Cairn's own hand.
    pub fn mirror_held(&self, destination: &str) -> Result<bool> {
        Ok(self
            .conn()
            .prepare_cached(&format!(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE destination = ?1 AND holder IS NOT NULL
                 AND {})",
                super::lease::LEASE_HOLDS
            ))?
            .query_row([destination], |r| r.get(0))?)
    }

    /// The job to tell about the mirror at `destination` (the latest into it).
    pub fn job_of_mirror(&self, destination: &str) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT max(id) FROM jobs WHERE destination = ?1 AND draft = 0")?
            .query_row([destination], |r| r.get(0))?)
    }

    /// The files Cairn recorded under the folder `dir` of the mirror at
    /// `destination` (verified files, kept versions, item documents): what
    /// went with a folder that was deleted or moved away. At most `limit`.
    pub fn recorded_under(
        &self,
        destination: &str,
        dir: &str,
        limit: usize,
    ) -> Result<Vec<String>> {
        let (from, to) = (format!("{dir}/"), format!("{dir}0"));
        let mut statement = self.conn().prepare_cached(&format!(
            "SELECT path FROM (
                 SELECT a.path AS path FROM assets a JOIN items i ON i.id = a.item_row
                 JOIN jobs j ON j.id = i.job_id
                 WHERE j.destination = ?1 AND a.state IN ('done', 'skipped')
                   AND a.path > ?2 AND a.path < ?3
                 UNION
                 SELECT v.path FROM versions v JOIN assets a ON a.id = v.asset_id
                 JOIN items i ON i.id = a.item_row JOIN jobs j ON j.id = i.job_id
                 WHERE j.destination = ?1 AND v.path > ?2 AND v.path < ?3
                 UNION
                 SELECT i.dir || '/' || replace(i.dir, rtrim(i.dir, replace(i.dir, '/', '')), '') || '.json'
                 FROM items i JOIN jobs j ON j.id = i.job_id
                 WHERE j.destination = ?1 AND i.state = 'written' AND i.doc_checksum IS NOT NULL
                   AND (i.dir || '/') >= ?2 AND (i.dir || '/') < ?3)
             ORDER BY path LIMIT {limit}",
        ))?;
        let paths = statement
            .query_map(params![destination, from, to], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(paths)
    }

    /// What Cairn knows of the file at `path` of the mirror at
    /// `destination`: a verified file (size, and modification time when
    /// recorded), an item document it wrote (its checksum), a document of
    /// its own it does not track, or nothing.
    pub fn known_file(&self, destination: &str, path: &str) -> Result<Known> {
        if let Some(file) = self.mirrored_file(destination, path)? {
            return Ok(Known::Verified {
                size: file.size,
                mtime: file.mtime,
            });
        }
        let version: Option<i64> = self
            .conn()
            .prepare_cached(
                "SELECT v.size FROM versions v JOIN assets a ON a.id = v.asset_id
                 JOIN items i ON i.id = a.item_row JOIN jobs j ON j.id = i.job_id
                 WHERE j.destination = ?1 AND v.path = ?2 LIMIT 1",
            )?
            .query_row(params![destination, path], |r| r.get(0))
            .optional()?;
        if let Some(size) = version {
            return Ok(Known::Verified {
                size: size as u64,
                mtime: None,
            });
        }
        let item_dir = path
            .strip_suffix(".json")
            .and_then(|p| p.rsplit_once('/'))
            .filter(|(dir, name)| dir.rsplit('/').next() == Some(*name));
        if let Some(dir) = item_dir {
            let document: Option<Option<String>> = self
                .conn()
                .prepare_cached(
                    "SELECT i.doc_checksum FROM items i JOIN jobs j ON j.id = i.job_id
                     WHERE j.destination = ?1 AND i.dir = ?2 AND i.state = 'written'
                     ORDER BY i.written_at DESC LIMIT 1",
                )?
                .query_row(params![destination, dir.0], |r| r.get(0))
                .optional()?;
            if let Some(checksum) = document {
                return Ok(match checksum {
                    Some(checksum) => Known::Document { checksum },
                    None => Known::Own,
                });
            }
        }
        let own = matches!(path, "catalog.json" | "items.parquet" | "provenance.jsonl")
            || path
                .strip_suffix("/collection.json")
                .is_some_and(|dir| !dir.contains('/'));
        Ok(if own { Known::Own } else { Known::Unknown })
    }
}

fn row_to_flag(r: &rusqlite::Row<'_>) -> rusqlite::Result<Flag> {
    Ok(Flag {
        path: r.get(0)?,
        kind: FlagKind::parse(&r.get::<_, String>(1)?)?,
        noticed_at: r.get(2)?,
    })
}

/// What Cairn knows of a file in a mirror (see [`Store::known_file`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// A file a job copied and verified.
    Verified {
        /// Its size.
        size: u64,
        /// Its modification time when verified (nanoseconds), if recorded.
        mtime: Option<i64>,
    },
    /// An item document Cairn wrote, with the checksum it had.
    Document {
        /// Its checksum (multihash, hex).
        checksum: String,
    },
    /// A document of Cairn's own whose content it does not track.
    Own,
    /// A file no job of this state file put there.
    Unknown,
}
