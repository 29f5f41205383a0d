//! The `sources` table: catalogs the user has opened or bookmarked.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::Store;
use crate::Result;

/// A catalog the user has opened or bookmarked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Row id.
    pub id: i64,
    /// The address it was opened from.
    pub url: String,
    /// Its title, when known.
    pub title: Option<String>,
    /// What it is (catalog, collection, api...), when known.
    pub kind: Option<String>,
    /// Whether the user bookmarked it.
    pub bookmarked: bool,
}

impl Store {
    /// Records that `url` was opened, updating its title and kind.
    pub fn touch_source(&self, url: &str, title: Option<&str>, kind: Option<&str>) -> Result<i64> {
        let id = self.conn().query_row(
            "INSERT INTO sources (url, title, kind, last_opened_at)
             VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
             ON CONFLICT (url) DO UPDATE SET
                 title = coalesce(excluded.title, title),
                 kind = coalesce(excluded.kind, kind),
                 last_opened_at = excluded.last_opened_at
             RETURNING id",
            params![url, title, kind],
            |row| row.get(0),
        )?;
        Ok(id)
    }

    /// Bookmarks (or un-bookmarks) a source, adding it if needed.
    pub fn set_bookmark(&self, url: &str, bookmarked: bool) -> Result<i64> {
        let id = self.conn().query_row(
            "INSERT INTO sources (url, bookmarked) VALUES (?1, ?2)
             ON CONFLICT (url) DO UPDATE SET bookmarked = excluded.bookmarked
             RETURNING id",
            params![url, bookmarked],
            |row| row.get(0),
        )?;
        Ok(id)
    }

    /// One source by address.
    pub fn source(&self, url: &str) -> Result<Option<Source>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, url, title, kind, bookmarked FROM sources WHERE url = ?1",
                [url],
                row_to_source,
            )
            .optional()?)
    }

    /// Every known source, bookmarks first, then the most recently opened.
    pub fn sources(&self) -> Result<Vec<Source>> {
        let mut statement = self.conn().prepare(
            "SELECT id, url, title, kind, bookmarked FROM sources
             ORDER BY bookmarked DESC, last_opened_at DESC, id",
        )?;
        let rows = statement.query_map([], row_to_source)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn row_to_source(row: &rusqlite::Row<'_>) -> rusqlite::Result<Source> {
    Ok(Source {
        id: row.get(0)?,
        url: row.get(1)?,
        title: row.get(2)?,
        kind: row.get(3)?,
        bookmarked: row.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_recorded_once_and_bookmarks_sort_first() {
        let store = Store::open_in_memory().unwrap();
        let a = store
            .touch_source("https://a.test/catalog.json", Some("A"), Some("catalog"))
            .unwrap();
        let again = store
            .touch_source("https://a.test/catalog.json", None, None)
            .unwrap();
        assert_eq!(a, again);
        store.set_bookmark("https://b.test/", true).unwrap();
        let all = store.sources().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].url, "https://b.test/");
        assert!(all[0].bookmarked);
        let a = store
            .source("https://a.test/catalog.json")
            .unwrap()
            .unwrap();
        assert_eq!(a.title.as_deref(), Some("A"));
        assert_eq!(a.kind.as_deref(), Some("catalog"));
    }
}
