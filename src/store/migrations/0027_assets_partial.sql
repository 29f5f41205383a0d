-- The computer's boot during which an asset's partial download was
-- written, and how much of it was flushed to disk then: after a restart,
-- only that much of the partial is trusted (a power cut may leave the
-- rest of a file unwritten, or holding other bytes).
ALTER TABLE assets ADD COLUMN partial_boot TEXT;
ALTER TABLE assets ADD COLUMN partial_flushed INTEGER NOT NULL DEFAULT 0;
