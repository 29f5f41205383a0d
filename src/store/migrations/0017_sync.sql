-- Each run of a job that reads its source: the first copies (a mirror),
-- each later one brings the copy up to date (a sync). A run is open until
-- its copying ends; a run stopped half-way continues when the job resumes.
CREATE TABLE runs (
    id             INTEGER PRIMARY KEY,
    job_id         INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind           TEXT NOT NULL CHECK (kind IN ('mirror', 'sync')),
    started_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at    TEXT,
    -- Whether the verified files without a checksum from the catalog were
    -- set to be asked about again (a sync asks the server whether they changed).
    rechecked      INTEGER NOT NULL DEFAULT 0,
    -- Whether this run's plan read the whole source, so that items it did
    -- not find could be marked as removed upstream; why not, otherwise.
    removals_checked INTEGER NOT NULL DEFAULT 0,
    removals_note  TEXT,
    removed_items  INTEGER NOT NULL DEFAULT 0,
    changed_assets INTEGER NOT NULL DEFAULT 0,
    bytes          INTEGER NOT NULL DEFAULT 0,
    -- Counted when the run ends.
    new_items      INTEGER,
    changed_items  INTEGER,
    new_assets     INTEGER,
    failures       INTEGER
) STRICT;
CREATE INDEX runs_by_job ON runs (job_id, id);
-- The run whose plan first found an item or asset, last changed an item's
-- document, last read the item; when an item was found gone from the source.
ALTER TABLE items ADD COLUMN first_run INTEGER;
ALTER TABLE items ADD COLUMN changed_run INTEGER;
ALTER TABLE items ADD COLUMN seen_run INTEGER;
ALTER TABLE items ADD COLUMN removed_at TEXT;
ALTER TABLE assets ADD COLUMN first_run INTEGER;
-- A verified file to be replaced only if its source changed: its size and
-- checksum before (the bytes a new copy is compared with, and kept as a
-- previous version when they differ); `recheck` when the source is only to
-- be asked whether it changed (the catalog gave no checksum).
ALTER TABLE assets ADD COLUMN prior_size INTEGER;
ALTER TABLE assets ADD COLUMN prior_checksum TEXT;
ALTER TABLE assets ADD COLUMN recheck INTEGER NOT NULL DEFAULT 0;
-- Verified bytes an asset had before its source changed, kept beside the
-- new file.
CREATE TABLE versions (
    id         INTEGER PRIMARY KEY,
    asset_id   INTEGER NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    checksum   TEXT NOT NULL,
    provenance TEXT,
    kept_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX versions_by_asset ON versions (asset_id);
CREATE INDEX versions_by_path ON versions (path);
-- What a sync does with changes: keep the previous version of a changed
-- file (the default), and keep items removed upstream (the default) or
-- remove them from the mirror too.
ALTER TABLE jobs ADD COLUMN keep_versions INTEGER NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN mirror_deletions INTEGER NOT NULL DEFAULT 0;
