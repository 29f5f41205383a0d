-- Every asset to copy. A row is 'done' only for bytes whose size and checksum
-- were verified.
CREATE TABLE assets (
    id                INTEGER PRIMARY KEY,
    item_row          INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    key               TEXT NOT NULL,
    href              TEXT NOT NULL,
    -- Where the asset goes, relative to the destination.
    path              TEXT NOT NULL,
    expected_size     INTEGER,
    -- Multihash, hex, as the catalog gave it.
    expected_checksum TEXT,
    state             TEXT NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'active', 'verifying', 'done', 'failed', 'skipped')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    bytes_done        INTEGER NOT NULL DEFAULT 0,
    -- ETag or Last-Modified of a partial download, for If-Range.
    validator         TEXT,
    -- sha2-256 multihash of the verified bytes.
    checksum          TEXT,
    failure           TEXT,
    updated_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (item_row, key)
) STRICT;
CREATE INDEX assets_by_state ON assets (state);
