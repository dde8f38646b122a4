-- Management of image records (ecogram/catalog/images.py): listing, editing, reordering,
-- deleting, purging and replacing the photo. Writers into one product code serialise on
-- manage-lock-code (the same lock as import-lock-code), so positions never race.

-- name: manage-custom-plans!
-- The listing's filters are "parameter IS NULL OR ..." and its sort is a CASE on a parameter:
-- only a plan made for the actual values folds those away and can use the indexes. Without
-- this, PostgreSQL may settle on one generic plan for every combination after five calls.
SET LOCAL plan_cache_mode = force_custom_plan;

-- name: manage-list-images
SELECT * FROM images
 WHERE deleted_at IS NULL
   AND (:status::text IS NULL OR status = :status)
   AND (:codes::text[] IS NULL OR code = ANY(:codes))
   AND (:q::text IS NULL OR code ILIKE :q OR product ILIKE :q)
   AND (:importer_id::bigint IS NULL OR importer_id = :importer_id)
   AND (:importer::text IS NULL OR lower(importer) = lower(:importer))
   AND (:since::timestamptz IS NULL OR imported_at >= :since)
   AND (:until::timestamptz IS NULL OR imported_at < :until)
 ORDER BY
   CASE WHEN :sort = 'imported_at' THEN imported_at END,
   CASE WHEN :sort = '-imported_at' THEN imported_at END DESC,
   CASE WHEN :sort IN ('code', 'position') THEN code END,
   CASE WHEN :sort IN ('-code', '-position') THEN code END DESC,
   CASE WHEN :sort IN ('code', 'position') THEN position END,
   CASE WHEN :sort IN ('-code', '-position') THEN position END DESC,
   CASE WHEN :sort = 'product' THEN product END,
   CASE WHEN :sort = '-product' THEN product END DESC,
   CASE WHEN :sort = 'file_size' THEN file_size END,
   CASE WHEN :sort = '-file_size' THEN file_size END DESC,
   CASE WHEN :sort = 'status' THEN status END,
   CASE WHEN :sort = '-status' THEN status END DESC,
   CASE WHEN :sort = 'reviewed_at' THEN reviewed_at END,
   CASE WHEN :sort = '-reviewed_at' THEN reviewed_at END DESC,
   CASE WHEN :sort = 'updated_at' THEN updated_at END,
   CASE WHEN :sort = '-updated_at' THEN updated_at END DESC,
   CASE WHEN left(:sort, 1) = '-' THEN id END DESC,
   id
 LIMIT :limit OFFSET :offset;

-- name: manage-count-images$
SELECT count(*) FROM images
 WHERE deleted_at IS NULL
   AND (:status::text IS NULL OR status = :status)
   AND (:codes::text[] IS NULL OR code = ANY(:codes))
   AND (:q::text IS NULL OR code ILIKE :q OR product ILIKE :q)
   AND (:importer_id::bigint IS NULL OR importer_id = :importer_id)
   AND (:importer::text IS NULL OR lower(importer) = lower(:importer))
   AND (:since::timestamptz IS NULL OR imported_at >= :since)
   AND (:until::timestamptz IS NULL OR imported_at < :until);

-- name: manage-get-image^
SELECT * FROM images WHERE id = :id AND deleted_at IS NULL;

-- name: manage-get-any-image^
-- Live or soft-deleted: what a purge removes.
SELECT * FROM images WHERE id = :id;

-- name: manage-lock-image^
SELECT * FROM images WHERE id = :id AND deleted_at IS NULL FOR UPDATE;

-- name: manage-lock-code!
-- Same key as import-lock-code: imports and edits of one code take turns.
SELECT pg_advisory_xact_lock(hashtextextended('ecogram.code:' || :code, 0));

-- name: manage-last-position$
SELECT coalesce(max(position), 0)::int FROM images WHERE code = :code AND deleted_at IS NULL;

-- name: manage-shift-positions$
-- Move the live images of a code with positions in [lo, hi] by delta (+1 or -1), except :id.
-- Their /img address changes, so their version (the cache token in URLs) changes too; the
-- deferred exclusion constraint checks the result at commit.
WITH shifted AS (
    UPDATE images
       SET position = position + :delta,
           version = nextval('images_version_seq'),
           updated_at = now()
     WHERE code = :code AND deleted_at IS NULL
       AND position BETWEEN :lo AND :hi AND id <> :id
    RETURNING id
)
SELECT count(*)::int FROM shifted;

-- name: manage-update-image^
-- With :to_review, an approved photo goes back to review (catalog/images.py says when): the
-- approval was for the photo under its old code and name. (Every SET sees the row as it was.)
-- A photo a person moves no longer waits for the position its import asked for.
UPDATE images
   SET code = :code, product = :product, position = :position, alt = :alt,
       requested_position = CASE WHEN code <> :code OR position <> :position THEN NULL
                                 ELSE requested_position END,
       version = CASE WHEN code <> :code OR position <> :position
                      THEN nextval('images_version_seq') ELSE version END,
       status = CASE WHEN :to_review AND status = 'approved' THEN 'pending' ELSE status END,
       reviewer_id = CASE WHEN :to_review AND status = 'approved' THEN NULL ELSE reviewer_id END,
       reviewer = CASE WHEN :to_review AND status = 'approved' THEN NULL ELSE reviewer END,
       reviewed_at = CASE WHEN :to_review AND status = 'approved' THEN NULL ELSE reviewed_at END,
       review_note = CASE WHEN :to_review AND status = 'approved' THEN NULL ELSE review_note END,
       updated_at = now()
 WHERE id = :id AND deleted_at IS NULL
RETURNING *;

-- name: manage-soft-delete^
UPDATE images SET deleted_at = now(), updated_at = now()
 WHERE id = :id AND deleted_at IS NULL
RETURNING *;

-- name: manage-purge^
-- The originals row goes with it (ON DELETE CASCADE); its objects are released after the commit
-- (ecogram.catalog.originals.release). The audit log keeps the story.
DELETE FROM images WHERE id = :id RETURNING *;

-- name: manage-get-original^
SELECT i.id, i.code, i.position, i.filename, i.format, i.mime, i.file_size, i.sha256, o.store
  FROM images i JOIN originals o ON o.image_id = i.id
 WHERE i.id = :id AND i.deleted_at IS NULL;

-- name: manage-find-same-bytes$
SELECT id FROM images
 WHERE code = :code AND sha256 = :sha256 AND deleted_at IS NULL AND id <> :id;

-- name: manage-replace-image^
-- A new photo for the same record: a new version (so every cached variant is orphaned) and a
-- new review, since the approval was for the old picture.
UPDATE images
   SET filename = :filename, format = :format, mime = :mime, width = :width, height = :height,
       file_size = :file_size, sha256 = :sha256, phash = :phash, blurhash = :blurhash,
       color = :color, has_alpha = :has_alpha, qc = :qc,
       status = 'pending', reviewer_id = NULL, reviewer = NULL, reviewed_at = NULL,
       review_note = NULL, version = nextval('images_version_seq'), updated_at = now()
 WHERE id = :id AND deleted_at IS NULL
RETURNING *;

-- name: manage-replace-original!
UPDATE originals
   SET store = :store, master_sha256 = :master_sha256, master_format = :master_format,
       master_width = :master_width, master_height = :master_height
 WHERE image_id = :image_id;

-- name: manage-check-positions!
-- Check the deferred (code, position) exclusion now, inside the use case, not at COMMIT.
SET CONSTRAINTS images_code_position_unique IMMEDIATE;

-- name: manage-find-same-bytes-elsewhere^
SELECT id, code, position FROM images
 WHERE sha256 = :sha256 AND code <> :code AND deleted_at IS NULL
 ORDER BY id LIMIT 1;

-- name: manage-find-near-duplicate^
-- As import-find-near-duplicate, leaving out the record whose photo is being replaced.
SELECT id, code, position, bit_count((phash # :phash)::bit(64)) AS distance
  FROM images
 WHERE code = :code AND deleted_at IS NULL AND id <> :id
   AND bit_count((phash # :phash)::bit(64)) <= :max_distance
 ORDER BY distance, position
 LIMIT 1;
