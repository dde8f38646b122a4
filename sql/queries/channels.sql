-- Sales channels (ecogram/catalog/channels.py): the photos' measured geometry, and readiness of
-- every product for one channel profile, computed from stored facts so a page is fast at shop
-- scale (bench/readiness_bench.py).

-- name: channels-unmeasured
-- Live photos whose current file (sha256) has no geometry yet, by id from :after: the backfill
-- walks these in batches and can stop and start again at any point.
SELECT i.id
  FROM images i
  LEFT JOIN image_geometry g ON g.image_id = i.id AND g.sha256 = i.sha256
 WHERE i.deleted_at IS NULL AND i.id > :after AND g.image_id IS NULL
 ORDER BY i.id
 LIMIT :limit;

-- name: channels-count-unmeasured$
SELECT count(*)
  FROM images i
  LEFT JOIN image_geometry g ON g.image_id = i.id AND g.sha256 = i.sha256
 WHERE i.deleted_at IS NULL AND g.image_id IS NULL;

-- name: channels-photo-to-measure^
-- The original of a live photo that has no geometry for its current file (else no row).
SELECT i.id, i.sha256, o.data
  FROM images i
  JOIN originals o ON o.image_id = i.id
  LEFT JOIN image_geometry g ON g.image_id = i.id AND g.sha256 = i.sha256
 WHERE i.id = :id AND i.deleted_at IS NULL AND g.image_id IS NULL;

-- name: channels-save-geometry$
-- Kept only while the photo is still the one measured: a replacement meanwhile (new sha256)
-- leaves nothing stale behind. Returns the image id when a row was written.
INSERT INTO image_geometry (image_id, sha256, background, fill, box_left, box_top, box_width,
                            box_height, border)
SELECT id, sha256, :background, :fill, :box_left, :box_top, :box_width, :box_height, :border
  FROM images WHERE id = :id AND sha256 = :sha256
    ON CONFLICT (image_id) DO UPDATE
   SET sha256 = excluded.sha256, background = excluded.background, fill = excluded.fill,
       box_left = excluded.box_left, box_top = excluded.box_top,
       box_width = excluded.box_width, box_height = excluded.box_height,
       border = excluded.border, measured_at = now()
RETURNING image_id;

-- name: channels-readiness^
-- One row: the number of products matching (after :ready), a summary (products and photos per
-- finding mask, before :ready) and the page's products with their counted photos.
-- A photo's mask has one bit per finding (ecogram/catalog/channels.py FINDINGS says which bit
-- is which and which are fixable); a product's mask is its photos' masks and the photo count
-- bits. The main photo is the first counted one by position. A NULL figure (the channel sets
-- no such rule) makes its comparison NULL, which is no finding.
WITH live AS (
    SELECT i.id, i.code, i.product, i.position, i.width, i.height, i.format, i.file_size,
           g.background, g.fill,
           (:status::text IS NULL OR i.status = :status) AS counted
      FROM images i
      LEFT JOIN image_geometry g ON g.image_id = i.id AND g.sha256 = i.sha256
     WHERE i.deleted_at IS NULL
       AND (:codes::text[] IS NULL OR i.code = ANY(:codes))
), ranked AS (
    SELECT l.*,
           coalesce(l.counted AND l.position = min(l.position) FILTER (WHERE l.counted)
                                               OVER (PARTITION BY l.code), false) AS main
      FROM live l
), judged AS (
    SELECT r.*, CASE WHEN NOT r.counted THEN 0 ELSE
          (CASE WHEN (CASE WHEN :square::boolean THEN greatest(r.width, r.height)
                           ELSE least(r.width, r.height) END) < :min_side::int THEN 1 ELSE 0 END)
        | (CASE WHEN greatest(r.width, r.height) > :max_side::int THEN 2 ELSE 0 END)
        | (CASE WHEN r.width::bigint * r.height > :max_pixels::bigint THEN 4 ELSE 0 END)
        | (CASE WHEN :square::boolean AND r.width <> r.height THEN 8 ELSE 0 END)
        | (CASE WHEN r.format <> ALL(:formats::text[]) THEN 16 ELSE 0 END)
        | (CASE WHEN r.file_size > :max_bytes::bigint THEN 32 ELSE 0 END)
        | (CASE WHEN r.file_size < :min_bytes::bigint THEN 64 ELSE 0 END)
        | (CASE WHEN NOT r.main THEN 0
                WHEN r.background IS NULL
                     AND (:white_main::boolean OR :fill::real IS NOT NULL) THEN 2048
                WHEN :white_main::boolean AND r.background = 'near_white' THEN 128
                WHEN :white_main::boolean AND r.background = 'other' THEN 256
                ELSE 0 END)
        | (CASE WHEN r.main AND r.background IN ('white', 'near_white')
                     AND r.fill < :fill::real THEN 512 ELSE 0 END)
        END AS mask
      FROM ranked r
), products AS (
    SELECT j.code, max(j.product) AS product, count(*) FILTER (WHERE j.counted) AS photos,
           bit_or(j.mask) AS mask
      FROM judged j
     GROUP BY j.code
), verdicts AS (
    SELECT p.code, p.product, p.photos,
           p.mask | (CASE WHEN p.photos < :min_photos::int THEN 4096 ELSE 0 END)
                  | (CASE WHEN p.photos > :max_photos::int THEN 8192 ELSE 0 END) AS mask
      FROM products p
), filtered AS (
    SELECT v.* FROM verdicts v
     WHERE :ready::boolean IS NULL OR ((v.mask & ~:fixable::int) = 0) = :ready::boolean
), page AS (
    SELECT f.* FROM filtered f ORDER BY f.code LIMIT :limit OFFSET :offset
), page_photos AS (
    SELECT j.code, jsonb_agg(jsonb_build_object(
               'id', j.id, 'position', j.position, 'mask', j.mask, 'width', j.width,
               'height', j.height, 'format', j.format, 'file_size', j.file_size,
               'background', j.background, 'fill', j.fill, 'main', j.main)
               ORDER BY j.position) AS images
      FROM judged j JOIN page p ON p.code = j.code
     WHERE j.counted
     GROUP BY j.code
)
SELECT (SELECT count(*) FROM filtered) AS total,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('mask', s.mask, 'products', s.products,
                                                     'photos', s.photos)), '[]'::jsonb)
          FROM (SELECT v.mask, count(*) AS products, sum(v.photos) AS photos
                  FROM verdicts v GROUP BY v.mask) s) AS summary,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'code', p.code, 'product', p.product, 'photos', p.photos, 'mask', p.mask,
                   'images', coalesce(pp.images, '[]'::jsonb)) ORDER BY p.code), '[]'::jsonb)
          FROM page p LEFT JOIN page_photos pp ON pp.code = p.code) AS items;
