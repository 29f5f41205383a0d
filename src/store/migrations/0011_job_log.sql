-- What happened in a job, in sentences: its plan, problems in the source,
-- starts and stops, assets that failed. Kept so that the story of a job that
-- ran for days survives restarts of the app.
CREATE TABLE job_log (
    id     INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    kind   TEXT NOT NULL CHECK (kind IN ('info', 'problem', 'failed')),
    text   TEXT NOT NULL
) STRICT;

CREATE INDEX job_log_by_job ON job_log (job_id, id);
