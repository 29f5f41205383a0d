-- The verified size, beside the verified checksum.
ALTER TABLE assets ADD COLUMN size INTEGER;
CREATE INDEX assets_by_item ON assets (item_row, state);
