-- Where each item goes at the destination, relative to it, and what was
-- changed to make its id safe there.
ALTER TABLE items ADD COLUMN dir TEXT NOT NULL DEFAULT '';
ALTER TABLE items ADD COLUMN renamed TEXT;
CREATE INDEX items_by_job ON items (job_id, state);
