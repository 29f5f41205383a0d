-- Where a verified file's bytes came from and what the server said (JSON:
-- the address asked for, the final address, the time, the status and the
-- headers that identify the content), with credentials and signed query
-- strings already taken out. Written into the mirror as provenance.jsonl.
ALTER TABLE assets ADD COLUMN provenance TEXT;
-- The file's modification time (nanoseconds since 1970) when it was
-- verified in a folder: a later export reuses the recorded checksum while
-- size and time still match, and hashes the file again otherwise.
ALTER TABLE assets ADD COLUMN verified_mtime INTEGER;
-- The checksum (sha2-256 multihash, hex) of the item document as written
-- into the mirror: `cairn verify` finds an item JSON edited since.
ALTER TABLE items ADD COLUMN doc_checksum TEXT;
-- When the item document was last written (RFC 3339): the latest write of
-- a path is the one `cairn verify` compares with.
ALTER TABLE items ADD COLUMN written_at TEXT;
-- The checksum a repair must match: the one the file had when it was
-- verified. Set when a repair reopens the asset, cleared once done.
ALTER TABLE assets ADD COLUMN repair_checksum TEXT;
