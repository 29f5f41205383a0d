-- Each check of a mirror ("Check the copy", `cairn verify`): when, how many
-- files matched their checksums, and how many problems were left.
CREATE TABLE checks (
    id          INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    checked_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    files       INTEGER NOT NULL,
    verified    INTEGER NOT NULL,
    problems    INTEGER NOT NULL
) STRICT;
CREATE INDEX checks_by_destination ON checks (destination, id);
-- The mirrors list gathers the jobs by where they copy to.
CREATE INDEX jobs_by_destination ON jobs (destination);
