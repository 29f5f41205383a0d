//! The `cursors` table: where each paginated read of a job stands.

use rusqlite::{OptionalExtension, params};

use super::Store;
use crate::catalog::api::Cursor;
use crate::{Error, Result};

impl Store {
    /// Saves where the read `scope` of job `job_id` stands (replacing the last save).
    pub fn save_cursor(&self, job_id: i64, scope: &str, cursor: &Cursor) -> Result<()> {
        let json = serde_json::to_string(cursor)
            .map_err(|e| Error::invalid_input(format!("the cursor cannot be saved: {e}")))?;
        self.conn().execute(
            "INSERT INTO cursors (job_id, scope, cursor) VALUES (?1, ?2, ?3)
             ON CONFLICT (job_id, scope) DO UPDATE SET
                 cursor = excluded.cursor,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            params![job_id, scope, json],
        )?;
        Ok(())
    }

    /// Where the read `scope` of job `job_id` stands, if it was saved.
    pub fn cursor(&self, job_id: i64, scope: &str) -> Result<Option<Cursor>> {
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT cursor FROM cursors WHERE job_id = ?1 AND scope = ?2",
                params![job_id, scope],
                |row| row.get(0),
            )
            .optional()?;
        json.map(|json| {
            serde_json::from_str(&json).map_err(|e| {
                Error::DatabaseVersion(format!("a saved search position is damaged ({e})"))
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::Request;
    use serde_json::json;

    #[test]
    fn cursors_keep_method_body_and_headers() {
        let store = Store::open_in_memory().unwrap();
        let job = store
            .create_job(&crate::store::jobs::tests::new_job())
            .unwrap();
        let mut request = Request::post(
            "https://api.test/search".parse().unwrap(),
            json!({"collections": ["c"], "token": "next:abc"}),
        );
        request.headers.insert("x-page".into(), "2".into());
        let mut cursor = Cursor::start(request, Some(100));
        cursor.pages = 3;
        cursor.delivered = 30;
        store.save_cursor(job, "search", &cursor).unwrap();
        assert_eq!(store.cursor(job, "search").unwrap(), Some(cursor.clone()));
        cursor.next = None;
        store.save_cursor(job, "search", &cursor).unwrap();
        assert!(store.cursor(job, "search").unwrap().unwrap().is_done());
        assert_eq!(store.cursor(job, "other").unwrap(), None);
    }
}
