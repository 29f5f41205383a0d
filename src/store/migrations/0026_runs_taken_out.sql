-- Items a run took out of the mirror because the source no longer lists
-- them (a job that mirrors deletions): said in the run's summary.
ALTER TABLE runs ADD COLUMN taken_out INTEGER NOT NULL DEFAULT 0;
