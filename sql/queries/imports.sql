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
INSERT INTO import_batches (source, importer_id, importer)
VALUES (:source, :importer_id, :importer)
RETURNING id;

-- name: import-finish-batch!
UPDATE import_batches
   SET status = 'done', finished_at = now(),
       accepted = (SELECT count(*) FROM import_items WHERE batch_id = :id AND outcome = 'accepted'),
       duplicate = (SELECT count(*) FROM import_items WHERE batch_id = :id AND outcome = 'duplicate'),
       rejected = (SELECT count(*) FROM import_items WHERE batch_id = :id AND outcome = 'rejected')
 WHERE id = :id;

-- name: import-get-batch^
SELECT id, source, importer_id, importer, status, accepted, duplicate, rejected,
       created_at, finished_at
  FROM import_batches WHERE id = :id;

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
SELECT
    (SELECT id FROM images
      WHERE code = :code AND sha256 = :sha256 AND deleted_at IS NULL) AS same_id,
    (SELECT coalesce(max(position), 0) FROM images
      WHERE code = :code AND deleted_at IS NULL)::int AS last,
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
INSERT INTO images (code, product, position, filename, format, mime, width, height, file_size,
                    sha256, phash, blurhash, color, has_alpha, qc, alt, importer_id, importer,
                    batch_id)
VALUES (:code, :product, :position, :filename, :format, :mime, :width, :height, :file_size,
        :sha256, :phash, :blurhash, :color, :has_alpha, :qc, :alt, :importer_id, :importer,
        :batch_id)
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
INSERT INTO originals (image_id, data, master, master_format, master_width, master_height)
VALUES (:image_id, :data, :master, :master_format, :master_width, :master_height);

-- name: import-get-records
-- Image records (no blobs) for the API, by id.
SELECT id, code, product, position, status, filename, format, mime, width, height, file_size,
       sha256, blurhash, color, has_alpha, qc, alt, importer_id, importer, batch_id,
       imported_at, reviewer, reviewed_at, review_note, version, updated_at
  FROM images WHERE id = ANY(:ids::bigint[]);
