-- Exports to the shop platforms (ecogram/catalog/exports.py), read through server-side cursors
-- in code and position order so a product's images arrive together.

-- name: export-images
SELECT * FROM images
 WHERE deleted_at IS NULL AND status = :status
   AND (:codes::text[] IS NULL OR code = ANY(:codes))
   AND (:since::timestamptz IS NULL OR updated_at >= :since OR reviewed_at >= :since)
 ORDER BY code, position;

-- name: export-originals
-- Same rows with the original bytes: fetched one row at a time, never all at once.
SELECT i.*, o.data
  FROM images i JOIN originals o ON o.image_id = i.id
 WHERE i.deleted_at IS NULL AND i.status = :status
   AND (:codes::text[] IS NULL OR i.code = ANY(:codes))
   AND (:since::timestamptz IS NULL OR i.updated_at >= :since OR i.reviewed_at >= :since)
 ORDER BY i.code, i.position;

-- name: export-record$
INSERT INTO exports (actor_id, actor, format, filters, count)
VALUES (:actor_id, :actor, :format, :filters, :count)
RETURNING id;

-- name: export-stamp!
-- Not updated_at: being exported is not a change an incremental export should pick up again.
UPDATE images SET exported_at = now() WHERE id = ANY(:ids::bigint[]);
