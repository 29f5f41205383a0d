-- Which process copies a job, and until when its claim holds unless renewed:
-- one job, one copier. A process that died stops renewing; once its lease
-- runs out (or its process is seen gone) another may take the job over.
ALTER TABLE jobs ADD COLUMN holder TEXT;
ALTER TABLE jobs ADD COLUMN held_until TEXT;
