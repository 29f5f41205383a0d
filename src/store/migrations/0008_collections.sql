-- The collections a job's items belong to, as read from the source, to be
-- written at the destination beside their items.
CREATE TABLE collections (
    id            INTEGER PRIMARY KEY,
    job_id        INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    collection_id TEXT NOT NULL,
    href          TEXT NOT NULL,
    dir           TEXT NOT NULL,
    document      TEXT NOT NULL,
    UNIQUE (job_id, collection_id)
) STRICT;
