-- The admin pages (issue 7): dashboard figures, the review queue's neighbours, staff previews.

-- name: admin-status-counts
SELECT status, count(*) AS count, coalesce(sum(file_size), 0)::bigint AS bytes
  FROM images
 WHERE deleted_at IS NULL
 GROUP BY status;

-- name: admin-imports-per-day
-- One row per calendar day (in the viewer's time zone) from :first_day to :last_day, zero
-- included, so the chart has no holes.
SELECT day::date AS day, count(i.id) AS count
  FROM generate_series(:first_day::date, :last_day::date, interval '1 day') AS day
  LEFT JOIN images i
    ON (i.imported_at AT TIME ZONE :tz)::date = day::date
   AND i.imported_at >= (:first_day::date - 1)::timestamp AT TIME ZONE 'UTC'
 GROUP BY day
 ORDER BY day;

-- name: admin-storage^
-- Bytes of the originals as uploaded, and what originals and masters take in PostgreSQL (none
-- of their bytes when they are in an object store).
SELECT (SELECT coalesce(sum(file_size), 0) FROM images WHERE deleted_at IS NULL)::bigint
           AS originals_bytes,
       (pg_total_relation_size('originals') + pg_total_relation_size('blobs'))::bigint
           AS stored_bytes;

-- name: admin-pending-next^
SELECT id FROM images
 WHERE status = 'pending' AND deleted_at IS NULL
   AND (imported_at, id) > (:imported_at::timestamptz, :id::bigint)
 ORDER BY imported_at, id
 LIMIT 1;

-- name: admin-pending-prev^
SELECT id FROM images
 WHERE status = 'pending' AND deleted_at IS NULL
   AND (imported_at, id) < (:imported_at::timestamptz, :id::bigint)
 ORDER BY imported_at DESC, id DESC
 LIMIT 1;

-- name: admin-pending-first^
SELECT id FROM images
 WHERE status = 'pending' AND deleted_at IS NULL
 ORDER BY imported_at, id
 LIMIT 1;

-- name: admin-pending-rank$
-- 1-based place of a photo in the queue (oldest first).
SELECT count(*) FROM images
 WHERE status = 'pending' AND deleted_at IS NULL
   AND (imported_at, id) <= (:imported_at::timestamptz, :id::bigint);

-- name: admin-get-master^
SELECT i.id, i.version, i.has_alpha, o.store, o.master_sha256, o.master_format,
       o.master_width, o.master_height
  FROM images i JOIN originals o ON o.image_id = i.id
 WHERE i.id = :id AND i.deleted_at IS NULL;
