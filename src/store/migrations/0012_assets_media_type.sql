-- What the catalog says an asset is (its media type), so that an answer that
-- plainly is something else (a login page for a GeoTIFF) is not saved.
ALTER TABLE assets ADD COLUMN media_type TEXT;
