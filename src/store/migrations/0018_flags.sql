-- What the watcher saw happen to a mirror folder's files since they were
-- copied: a verified file gone or changed, an item document edited, a file
-- no job put there. A flag goes once the file is as it was again (a repair).
CREATE TABLE flags (
    id          INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    path        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('missing', 'modified', 'edited', 'added')),
    noticed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (destination, path)
) STRICT;
-- Item documents are looked up by their folder when a change is judged.
CREATE INDEX items_by_dir ON items (dir);
