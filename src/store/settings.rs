//! The `settings` table: what the person chose in the app, by name, as JSON.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Store;
use crate::{Error, Result};

impl Store {
    /// The setting `name`, if it was ever saved. A value this Cairn cannot
    /// read (written by another version, or damaged) is `None`: the defaults
    /// hold and the next save writes it anew.
    pub fn setting<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT value FROM settings WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()?;
        Ok(text.and_then(|text| match serde_json::from_str(&text) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::warn!(name, %error, "a saved setting could not be read; the defaults hold");
                None
            }
        }))
    }

    /// Saves the setting `name`.
    pub fn set_setting<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string(value).map_err(|e| Error::invalid_input(e.to_string()))?;
        self.conn().execute(
            "INSERT INTO settings (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![name, text],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_is_kept_and_a_damaged_one_reads_as_unset() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        assert_eq!(store.setting::<Vec<u32>>("app").unwrap(), None);
        store.set_setting("app", &vec![1u32, 2]).unwrap();
        store.set_setting("app", &vec![3u32]).unwrap();
        drop(store);
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        assert_eq!(store.setting::<Vec<u32>>("app").unwrap(), Some(vec![3]));
        store
            .conn()
            .execute(
                "UPDATE settings SET value = '{not json' WHERE name = 'app'",
                [],
            )
            .unwrap();
        assert_eq!(store.setting::<Vec<u32>>("app").unwrap(), None);
    }
}
