-- Import use cases (ecogram/catalog/imports.py). Every per-file write happens in the file's own
-- transaction, after import-lock-code has serialised writers of the same product code.

-- name: import-find-user^
-- The importer named on the command line (ecogram import --as EMAIL).
SELECT id, email, name, role, disabled FROM users WHERE lower(email) = lower(:email);

-- name: import-create-user<!
-- The "demo" user of `ecogram demo`; its password hash is unusable, so nobody can log in as it.
INSERT INTO users (email, name, password_hash, role)
VALUES (:email, :name, :password_hash, :role)
ON CONFLICT DO NOTHING
RETURNING id, email, name, role, disabled;

-- name: import-create-batch$
-- Run in one transaction with import-hold-batch, so no reader ever sees the batch unheld.
INSERT INTO import_batches (source, importer_id, importer)
VALUES (:source, :importer_id, :importer)
RETURNING id;

-- name: import-hold-batch!
-- The runner's lease on its batch: a session lock held, for the batch's life, by a connection
-- of the process that runs it. PostgreSQL drops it when that session ends, however it ends (the
-- run's end, or a process killed mid-way): a free lock on a 'running' batch means its runner is
-- gone (import-settle-batch). Same key space as import-lock-code, another prefix.
SELECT pg_advisory_lock(hashtextextended('ecogram.batch:' || :id::bigint::text, 0));

-- name: import-lease-keepalive!
-- On the lease's connection: a runner whose machine vanished (no socket closed, no FIN) is
-- noticed by TCP keepalive within about a minute, not the kernel's default two hours.
-- (Session settings: asyncpg's reset puts them back when the connection returns to the pool.
-- Ignored on a Unix socket, where a dead peer is seen at once.)
SELECT set_config('tcp_keepalives_idle', '30', false),
       set_config('tcp_keepalives_interval', '10', false),
       set_config('tcp_keepalives_count', '3', false);

-- name: import-release-batch!
SELECT pg_advisory_unlock(hashtextextended('ecogram.batch:' || :id::bigint::text, 0));

-- name: import-finish-batch!
-- The runner's own end: 'done' when every item was seen, 'interrupted' when it stopped early.
-- Unconditional: a runner that outlived its lease (a dropped connection) still says how it ended.
UPDATE import_batches
   SET status = :status, finished_at = now(),
       accepted = (SELECT count(*) FROM import_items WHERE batch_id = :id AND outcome = 'accepted'),
       duplicate = (SELECT count(*) FROM import_items WHERE batch_id = :id AND outcome = 'duplicate'),
       rejected = (SELECT count(*) FROM import_items WHERE batch_id = :id AND outcome = 'rejected')
 WHERE id = :id;

-- name: import-settle-batch!
-- A reader's check: a 'running' batch whose lease is free has no runner any more; it becomes
-- 'interrupted' with the counts of what landed, or 'queued' again when it is a job's (the job
-- queue hands a job whose worker died to another worker, which resumes it). The try-lock is
-- held only to the end of this statement; while the runner lives it fails and nothing changes.
UPDATE import_batches
   SET status = CASE WHEN job_id IS NULL THEN 'interrupted' ELSE 'queued' END,
       finished_at = CASE WHEN job_id IS NULL THEN now() END,
       accepted = (SELECT count(*) FROM import_items WHERE batch_id = :id AND outcome = 'accepted'),
       duplicate = (SELECT count(*) FROM import_items WHERE batch_id = :id AND outcome = 'duplicate'),
       rejected = (SELECT count(*) FROM import_items WHERE batch_id = :id AND outcome = 'rejected')
 WHERE id = :id AND status = 'running'
   AND pg_try_advisory_xact_lock(hashtextextended('ecogram.batch:' || :id::bigint::text, 0));

-- name: import-get-batch^
-- The counts are always those of the batch's lines, so a running batch's report counts what has
-- landed so far (the stored columns are written when the batch ends).
SELECT b.id, b.source, b.importer_id, b.importer, b.status, b.created_at, b.finished_at,
       b.files, b.reason, c.accepted, c.duplicate, c.rejected
  FROM import_batches AS b
 CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE outcome = 'accepted')::int AS accepted,
           count(*) FILTER (WHERE outcome = 'duplicate')::int AS duplicate,
           count(*) FILTER (WHERE outcome = 'rejected')::int AS rejected
      FROM import_items WHERE batch_id = b.id
 ) AS c
 WHERE b.id = :id;

-- name: import-batch-items
SELECT seq, filename, outcome, image_id, code, message, status, details
  FROM import_items WHERE batch_id = :batch_id ORDER BY seq;

-- name: import-add-item!
INSERT INTO import_items (batch_id, seq, filename, outcome, image_id, code, message, status, details)
VALUES (:batch_id, :seq, :filename, :outcome, :image_id, :code, :message, :status, :details);

-- name: import-lock-code!
-- Serialises every import into one product code (across processes) until the transaction ends,
-- so "next free position" and the shift of positions never race.
SELECT pg_advisory_xact_lock(hashtextextended('ecogram.code:' || :code, 0));

-- name: import-find-same-bytes$
SELECT id FROM images
 WHERE code = :code AND sha256 = :sha256 AND deleted_at IS NULL;

-- name: import-checks^
-- Everything the store step needs to know, in one round trip, once import-lock-code is held
-- (a separate statement: this one's snapshot must be taken after the lock is granted):
-- the same bytes already under this code, the code's last position (positions are gap-free, so
-- also its count) and product name, the same bytes under another code, and the nearest image of
-- this code by perceptual hash (Hamming distance counted by PostgreSQL's bit_count, 14+).
-- `before`: the first position held by a photo the new one must go before: one that asked for a
-- later position than :requested, or (when the new photo asks for none) one still waiting for
-- its place (it asked for more than it has: the photos it waits for were missing).
SELECT
    (SELECT id FROM images
      WHERE code = :code AND sha256 = :sha256 AND deleted_at IS NULL) AS same_id,
    (SELECT coalesce(max(position), 0) FROM images
      WHERE code = :code AND deleted_at IS NULL)::int AS last,
    (SELECT min(position) FROM images
      WHERE code = :code AND deleted_at IS NULL
        AND requested_position > coalesce(:requested::int, position))::int AS before,
    (SELECT product FROM images
      WHERE code = :code AND deleted_at IS NULL AND product <> ''
      ORDER BY position LIMIT 1) AS product,
    elsewhere.id AS elsewhere_id, elsewhere.code AS elsewhere_code,
    elsewhere.position AS elsewhere_position,
    near.id AS near_id, near.position AS near_position, near.distance AS near_distance
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT id, code, position FROM images
     WHERE sha256 = :sha256 AND code <> :code AND deleted_at IS NULL
     ORDER BY id LIMIT 1
) AS elsewhere ON true
LEFT JOIN LATERAL (
    SELECT id, position, bit_count((phash # :phash)::bit(64)) AS distance FROM images
     WHERE code = :code AND deleted_at IS NULL
       AND bit_count((phash # :phash)::bit(64)) <= :max_distance
     ORDER BY distance, position LIMIT 1
) AS near ON true;

-- name: import-insert-image<!
-- ON CONFLICT: the same bytes under the same code arrived meanwhile (images_code_sha256_live).
INSERT INTO images (code, product, position, requested_position, filename, format, mime,
                    width, height, file_size, sha256, phash, blurhash, color, has_alpha, qc, alt,
                    importer_id, importer, batch_id)
VALUES (:code, :product, :position, :requested_position, :filename, :format, :mime, :width,
        :height, :file_size, :sha256, :phash, :blurhash, :color, :has_alpha, :qc, :alt,
        :importer_id, :importer, :batch_id)
ON CONFLICT (code, sha256) WHERE deleted_at IS NULL DO NOTHING
RETURNING id;

-- name: import-shift-positions$
-- Make room at :position: the images from there on move one down. The exclusion constraint on
-- (code, position) is deferred, so the transient overlap is checked only at commit. Their /img
-- address changes, so their version (the cache token in URLs) changes too, from the one
-- sequence, so a version is never reused.
WITH shifted AS (
    UPDATE images
       SET position = position + 1, version = nextval('images_version_seq'), updated_at = now()
     WHERE code = :code AND deleted_at IS NULL AND position >= :position AND id <> :id
    RETURNING id
)
SELECT count(*)::int FROM shifted;

-- name: import-insert-original!
-- The objects themselves were written just before, in this transaction (ecogram.storage.put).
INSERT INTO originals (image_id, store, master_sha256, master_format, master_width, master_height)
VALUES (:image_id, :store, :master_sha256, :master_format, :master_width, :master_height);

-- name: import-get-records
-- Image records (no blobs) for the API, by id.
SELECT id, code, product, position, status, filename, format, mime, width, height, file_size,
       sha256, blurhash, color, has_alpha, qc, alt, importer_id, importer, batch_id,
       imported_at, reviewer, reviewed_at, review_note, version, updated_at
  FROM images WHERE id = ANY(:ids::bigint[]);
