-- Catalogs the user has opened or bookmarked.
CREATE TABLE sources (
    id             INTEGER PRIMARY KEY,
    url            TEXT NOT NULL UNIQUE,
    title          TEXT,
    kind           TEXT,
    bookmarked     INTEGER NOT NULL DEFAULT 0 CHECK (bookmarked IN (0, 1)),
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_opened_at TEXT
) STRICT;
