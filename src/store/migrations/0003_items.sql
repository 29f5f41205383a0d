-- Every item a job's plan selected, with the source document to rewrite.
CREATE TABLE items (
    id         INTEGER PRIMARY KEY,
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    collection TEXT,
    item_id    TEXT NOT NULL,
    href       TEXT NOT NULL,
    document   TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'written')),
    UNIQUE (job_id, collection, item_id)
) STRICT;
