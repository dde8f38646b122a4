-- Public delivery (/img): what a code/position serves, and the bytes it renders from.
-- Only approved, live images exist here. No blobs in the resolution: it runs on cache misses of
-- the hot path and feeds the in-process resolution cache (ecogram.cache.Resolutions). The
-- calibrated quality (quality.sql) comes with it: format → {output width → q}, or NULL.

-- name: delivery-resolve^
-- The approved live image at this code and position; without a position, the first by position.
SELECT i.id, i.code, i.position, i.version, i.updated_at, i.width, i.height, i.has_alpha,
       i.blurhash, i.color, o.master_format, o.master_width, o.master_height,
       (SELECT jsonb_object_agg(f.format, f.widths)
          FROM (SELECT q.format, jsonb_object_agg(q.width, q.q) AS widths
                  FROM image_quality q
                 WHERE q.image_id = i.id AND q.version = i.version
                 GROUP BY q.format) f) AS quality
  FROM images i
  JOIN originals o ON o.image_id = i.id
 WHERE i.code = :code
   AND (:position::integer IS NULL OR i.position = :position::integer)
   AND i.status = 'approved'
   AND i.deleted_at IS NULL
 ORDER BY i.position
 LIMIT 1;

-- name: delivery-resolve-id^
-- The same, by image id (eager rendering after an approval; signed URLs).
SELECT i.id, i.code, i.position, i.version, i.updated_at, i.width, i.height, i.has_alpha,
       i.blurhash, i.color, i.status, o.master_format, o.master_width, o.master_height,
       (SELECT jsonb_object_agg(f.format, f.widths)
          FROM (SELECT q.format, jsonb_object_agg(q.width, q.q) AS widths
                  FROM image_quality q
                 WHERE q.image_id = i.id AND q.version = i.version
                 GROUP BY q.format) f) AS quality
  FROM images i
  JOIN originals o ON o.image_id = i.id
 WHERE i.id = :id
   AND i.deleted_at IS NULL;

-- name: delivery-master^
-- The master of this image at this version: nothing when the photo changed meanwhile, so a
-- newer picture is never cached under an older version.
SELECT o.store, o.master_sha256 AS key
  FROM originals o
  JOIN images i ON i.id = o.image_id
 WHERE o.image_id = :id AND i.version = :version;

-- name: delivery-original^
-- The original upload, for sizes the master cannot fill (same version guard).
SELECT o.store, i.sha256 AS key
  FROM originals o
  JOIN images i ON i.id = o.image_id
 WHERE o.image_id = :id AND i.version = :version;
