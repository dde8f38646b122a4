-- Import jobs (ecogram/catalog/import_jobs.py): an archive or manifest import queued with its
-- upload, then run (and, after a worker's death, resumed) by a job worker.

-- name: import-job-create-batch$
-- A queued batch: no lease yet (settle only looks at 'running' batches), no lines.
INSERT INTO import_batches (source, importer_id, importer, status, files, actor)
VALUES (:source, :importer_id, :importer, 'queued', :files, :actor)
RETURNING id;

-- name: import-job-add-chunk!
INSERT INTO import_uploads (batch_id, part, chunk, data)
VALUES (:batch_id, :part, :chunk, :data);

-- name: import-job-set-job!
UPDATE import_batches SET job_id = :job_id WHERE id = :id;

-- name: import-job-chunk$
-- One chunk at a time: a worker streams a large archive to a temporary file.
SELECT data FROM import_uploads WHERE batch_id = :batch_id AND part = :part AND chunk = :chunk;

-- name: import-job-drop-upload!
DELETE FROM import_uploads WHERE batch_id = :id;

-- name: import-job-start^
-- The runner holds the batch's lease; one start more. A batch already ended is left alone
-- (a job handed out twice, or resumed after its batch was ended).
UPDATE import_batches
   SET status = 'running', attempts = attempts + 1
 WHERE id = :id AND status IN ('queued', 'running')
RETURNING source, actor, attempts;

-- name: import-job-seen
-- The lines a batch has: a resumed run skips these files (each stored file has its line in the
-- same transaction as its image), so nothing is imported or counted twice.
SELECT seq FROM import_items WHERE batch_id = :batch_id;

-- name: import-job-requeue!
-- A runner asked to stop (SIGTERM) stored the files in hand and gives the batch back to the
-- queue; that start does not count against the batch's attempts.
UPDATE import_batches
   SET status = 'queued', attempts = greatest(attempts - :refund, 0)
 WHERE id = :id AND status = 'running';

-- name: import-job-interrupt!
-- The batch will not go on (its upload cannot be read, or it died too often): why, in words.
UPDATE import_batches SET reason = :reason WHERE id = :id;

-- name: import-try-hold-batch$
-- import-hold-batch without waiting, for a batch that exists already (an import job's): false
-- when a live runner holds it.
SELECT pg_try_advisory_lock(hashtextextended('ecogram.batch:' || :id::bigint::text, 0));
