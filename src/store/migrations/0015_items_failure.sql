-- Why an item's own document could not be written into the mirror (a folder
-- or a link planted at its name...). Such an item waits for a retry; its
-- verified assets stay recorded.
ALTER TABLE items ADD COLUMN failure TEXT;
-- Counted with a job's progress: found without reading every item.
CREATE INDEX items_failed ON items (job_id) WHERE failure IS NOT NULL;
