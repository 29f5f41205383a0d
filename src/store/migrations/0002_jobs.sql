-- One mirror job: a selection from a source, copied to a destination.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    source_url  TEXT NOT NULL,
    destination TEXT NOT NULL,
    -- JSON: collections, bbox, datetime, asset filters.
    selection   TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'planning'
                CHECK (state IN ('planning', 'ready', 'running', 'paused', 'finished', 'failed', 'cancelled')),
    -- Bytes per second; NULL means no limit. Changed while the job runs.
    limit_rate  INTEGER CHECK (limit_rate IS NULL OR limit_rate > 0),
    concurrency INTEGER NOT NULL DEFAULT 8 CHECK (concurrency > 0),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at TEXT
) STRICT;
