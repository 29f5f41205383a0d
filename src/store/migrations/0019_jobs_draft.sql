-- A job the app estimated but the person has not started yet: planned so
-- that Start can copy at once, and not in the list of jobs. Drafts are
-- forgotten when another estimate is made and when the app starts.
ALTER TABLE jobs ADD COLUMN draft INTEGER NOT NULL DEFAULT 0 CHECK (draft IN (0, 1));
-- Why a job stopped on its own (the source could not be read, the disk is
-- full, the destination refused it): kept until the job runs again, so
-- that it reads as needing attention rather than as paused by the person.
ALTER TABLE jobs ADD COLUMN stop_reason TEXT;
-- Whether the job's plan was read whole and nothing ran since (an
-- estimate): its first run copies it without reading the source again.
ALTER TABLE jobs ADD COLUMN plan_fresh INTEGER NOT NULL DEFAULT 0 CHECK (plan_fresh IN (0, 1));
-- What the person called the job (the app offers the collection's title).
ALTER TABLE jobs ADD COLUMN name TEXT;
