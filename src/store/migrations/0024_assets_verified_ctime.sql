-- The file's change time (nanoseconds since 1970) when it was verified in a
-- folder, where the system keeps one. Unlike the modification time, no one
-- can set it back: an export reuses a recorded checksum only while size,
-- modification time and this are all as they were.
ALTER TABLE assets ADD COLUMN verified_ctime INTEGER;
