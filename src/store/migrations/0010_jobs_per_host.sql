-- Transfers at once from any one server, kept with the job so that resuming
-- it is as polite to the server as starting it was.
ALTER TABLE jobs ADD COLUMN per_host INTEGER NOT NULL DEFAULT 6;
