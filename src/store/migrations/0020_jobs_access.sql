-- How a job signs in to its source (JSON: the names of its headers, the
-- .netrc file it reads, how it signs blob addresses). Never a secret: the
-- values of the headers are held in memory only.
ALTER TABLE jobs ADD COLUMN access TEXT;
