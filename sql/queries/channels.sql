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
-- Where the original of a live photo without geometry for its current file is (else no row):
-- its object is named by its sha256 at the store the record says (ecogram.storage).
SELECT i.id, i.sha256, o.store
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

-- name: channels-catch-up$
-- Rebuild channel_products for the codes changed since the last reader (migration 0006).
SELECT channel_products_catch_up();

-- name: channels-readiness^
-- One row: the number of products matching (after :ready), a summary (products and photos per
-- finding mask, before :ready) and the page's products with their counted photos.
-- Findings are bits (ecogram/catalog/channels.py FINDINGS says which bit is which and which
-- are fixable). A product's mask comes from its channel_products row for :status (see
-- sql/migrations/0006_channels.sql; channels-catch-up first), so the totals read one row per
-- product; the
-- page's photos are then judged one by one with the same rules (`photos` below), and a test
-- checks that a product's mask is its photos' masks together. The main photo is the first
-- counted one by position. A NULL figure (the channel sets no such rule) makes its comparison
-- NULL, which is no finding.
WITH products AS (
    SELECT s.code, s.product, s.photos, s.main_position,
             (CASE WHEN (CASE WHEN :square::boolean THEN s.min_long ELSE s.min_short END)
                        < :min_side::int THEN 1 ELSE 0 END)
           | (CASE WHEN s.max_long > :max_side::int THEN 2 ELSE 0 END)
           | (CASE WHEN s.max_pixels > :max_pixels::bigint THEN 4 ELSE 0 END)
           | (CASE WHEN :square::boolean AND s.oblong THEN 8 ELSE 0 END)
           | (CASE WHEN NOT s.formats <@ :formats::text[] THEN 16 ELSE 0 END)
           | (CASE WHEN s.max_bytes > :max_bytes::bigint THEN 32 ELSE 0 END)
           | (CASE WHEN s.min_bytes < :min_bytes::bigint THEN 64 ELSE 0 END)
           | (CASE WHEN s.photos = 0 THEN 0
                   WHEN s.main_background IS NULL
                        AND (:white_main::boolean OR :fill::real IS NOT NULL) THEN 2048
                   WHEN :white_main::boolean AND s.main_background = 'near_white' THEN 128
                   WHEN :white_main::boolean AND s.main_background = 'other' THEN 256
                   ELSE 0 END)
           | (CASE WHEN s.main_background IN ('white', 'near_white')
                        AND s.main_fill < :fill::real THEN 512 ELSE 0 END)
           | (CASE WHEN s.photos < :min_photos::int THEN 4096 ELSE 0 END)
           | (CASE WHEN s.photos > :max_photos::int THEN 8192 ELSE 0 END) AS mask
      FROM channel_products s
     WHERE s.status = :status
       AND (:codes::text[] IS NULL OR s.code = ANY(:codes))
), filtered AS (
    SELECT p.* FROM products p
     WHERE :ready::boolean IS NULL OR ((p.mask & ~:fixable::int) = 0) = :ready::boolean
), page AS (
    SELECT f.* FROM filtered f ORDER BY f.code LIMIT :limit OFFSET :offset
), photos AS (
    SELECT i.code, i.id, i.position, i.width, i.height, i.format, i.file_size,
           g.background, g.fill, i.position = p.main_position AS main,
             (CASE WHEN (CASE WHEN :square::boolean THEN greatest(i.width, i.height)
                              ELSE least(i.width, i.height) END) < :min_side::int
                   THEN 1 ELSE 0 END)
           | (CASE WHEN greatest(i.width, i.height) > :max_side::int THEN 2 ELSE 0 END)
           | (CASE WHEN i.width::bigint * i.height > :max_pixels::bigint THEN 4 ELSE 0 END)
           | (CASE WHEN :square::boolean AND i.width <> i.height THEN 8 ELSE 0 END)
           | (CASE WHEN i.format <> ALL(:formats::text[]) THEN 16 ELSE 0 END)
           | (CASE WHEN i.file_size > :max_bytes::bigint THEN 32 ELSE 0 END)
           | (CASE WHEN i.file_size < :min_bytes::bigint THEN 64 ELSE 0 END)
           | (CASE WHEN i.position <> p.main_position THEN 0
                   WHEN g.background IS NULL
                        AND (:white_main::boolean OR :fill::real IS NOT NULL) THEN 2048
                   WHEN :white_main::boolean AND g.background = 'near_white' THEN 128
                   WHEN :white_main::boolean AND g.background = 'other' THEN 256
                   ELSE 0 END)
           | (CASE WHEN i.position = p.main_position AND g.background IN ('white', 'near_white')
                        AND g.fill < :fill::real THEN 512 ELSE 0 END) AS mask
      FROM page p
      JOIN images i ON i.code = p.code AND i.deleted_at IS NULL
                   AND (:status = 'all' OR i.status = :status)
      LEFT JOIN image_geometry g ON g.image_id = i.id AND g.sha256 = i.sha256
), page_photos AS (
    SELECT ph.code, jsonb_agg(jsonb_build_object(
               'id', ph.id, 'position', ph.position, 'main', ph.main, 'mask', ph.mask,
               'width', ph.width, 'height', ph.height, 'format', ph.format,
               'file_size', ph.file_size, 'background', ph.background, 'fill', ph.fill)
               ORDER BY ph.position) AS images
      FROM photos ph
     GROUP BY ph.code
)
SELECT (SELECT count(*) FROM filtered) AS total,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('mask', s.mask, 'products', s.products,
                                                     'photos', s.photos)), '[]'::jsonb)
          FROM (SELECT p.mask, count(*) AS products, sum(p.photos) AS photos
                  FROM products p GROUP BY p.mask) s) AS summary,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'code', p.code, 'product', p.product, 'photos', p.photos, 'mask', p.mask,
                   'images', coalesce(pp.images, '[]'::jsonb)) ORDER BY p.code), '[]'::jsonb)
          FROM page p LEFT JOIN page_photos pp ON pp.code = p.code) AS items;
