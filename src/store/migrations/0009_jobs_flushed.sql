-- When the job's files were last flushed to disk for good. A file marked done
-- at or after this moment is checked again when the job starts, in case the
-- machine stopped before the file system wrote it.
ALTER TABLE jobs ADD COLUMN flushed_at TEXT;
