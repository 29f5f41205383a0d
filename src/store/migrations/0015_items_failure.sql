-- Why an item's own document could not be written into the mirror (a folder
-- or a link planted at its name...). Such an item waits for a retry; its
-- verified assets stay recorded.
ALTER TABLE items ADD COLUMN failure TEXT;
