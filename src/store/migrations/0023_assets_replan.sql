-- A plan read again while a transfer holds an asset (planning runs beside
-- transfers) does not change the asset under it: its new source, place and
-- promises wait here (a JSON object: href, path, expected_size,
-- expected_checksum), and take effect when the transfer ends.
ALTER TABLE assets ADD COLUMN replan TEXT;
