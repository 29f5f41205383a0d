-- 1 while the job's mirror holds changes (files, item documents, removals)
-- that its items.parquet and provenance.jsonl do not have yet: set at a
-- run's first change, cleared once both are written again. A run stopped
-- or killed before its end leaves it set, and the next run writes them
-- even when it changes nothing itself.
ALTER TABLE jobs ADD COLUMN extras_due INTEGER NOT NULL DEFAULT 0;
