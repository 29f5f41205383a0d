-- Which job's file is at a path: looked up for every file found already in place.
CREATE INDEX assets_by_path ON assets (path);
