-- Delivery analytics (ecogram.catalog.analytics): a worker's flush, and the reports.

-- name: analytics-add!
-- One flush: the counts of one day per image, added to what is there. Rows of images that no
-- longer exist are dropped (the JOIN); bytes saved are reckoned against the original's size.
INSERT INTO delivery_stats AS s
       (image_id, day, requests, bytes_sent, bytes_saved, hits, renders, render_ms)
SELECT u.image_id, u.day, u.requests, u.bytes_sent, u.requests * i.file_size - u.bytes_sent,
       u.hits, u.renders, u.render_ms
  FROM unnest(:image_ids::bigint[], :days::date[], :requests::bigint[], :bytes_sent::bigint[],
              :hits::bigint[], :renders::bigint[], :render_ms::float8[])
       AS u(image_id, day, requests, bytes_sent, hits, renders, render_ms)
  JOIN images i ON i.id = u.image_id
    ON CONFLICT (image_id, day) DO UPDATE
   SET requests = s.requests + EXCLUDED.requests,
       bytes_sent = s.bytes_sent + EXCLUDED.bytes_sent,
       bytes_saved = s.bytes_saved + EXCLUDED.bytes_saved,
       hits = s.hits + EXCLUDED.hits,
       renders = s.renders + EXCLUDED.renders,
       render_ms = s.render_ms + EXCLUDED.render_ms;

-- name: analytics-rows
-- Per photo (group 'photo') or per product code (group 'product') over [since, until).
WITH per AS (
    SELECT CASE WHEN :group::text = 'product' THEN NULL ELSE s.image_id END AS image_id,
           i.code,
           CASE WHEN :group::text = 'product' THEN NULL ELSE i.position END AS position,
           sum(s.requests) AS requests, sum(s.bytes_sent) AS bytes_sent,
           sum(s.bytes_saved) AS bytes_saved, sum(s.hits) AS hits,
           sum(s.renders) AS renders, sum(s.render_ms) AS render_ms,
           count(*) OVER () AS total
      FROM delivery_stats s
      JOIN images i ON i.id = s.image_id
     WHERE s.day >= :since::date AND s.day < :until::date
       AND (:codes::text[] IS NULL OR i.code = ANY(:codes))
     GROUP BY 1, i.code, 3
)
SELECT *,
       CASE WHEN requests > 0 THEN bytes_sent::float8 / requests END AS bytes_per_request,
       CASE WHEN requests > 0 THEN hits::float8 / requests END AS hit_ratio
  FROM per
 ORDER BY CASE :sort::text
            WHEN 'requests' THEN requests::float8 WHEN 'bytes_sent' THEN bytes_sent::float8
            WHEN 'bytes_saved' THEN bytes_saved::float8 WHEN 'renders' THEN renders::float8
            WHEN 'render_ms' THEN render_ms
            WHEN 'bytes_per_request' THEN coalesce(bytes_sent::float8 / nullif(requests, 0), 0)
          END * CASE WHEN :descending::bool THEN -1 ELSE 1 END NULLS LAST,
          CASE WHEN :sort::text = 'code' AND NOT :descending::bool THEN code END ASC,
          CASE WHEN :sort::text = 'code' AND :descending::bool THEN code END DESC,
          code, position
 LIMIT :limit OFFSET :offset;

-- name: analytics-days
-- Totals per day over [since, until) (every photo, or the codes asked).
SELECT s.day, sum(s.requests) AS requests, sum(s.bytes_sent) AS bytes_sent,
       sum(s.bytes_saved) AS bytes_saved, sum(s.hits) AS hits, sum(s.renders) AS renders,
       sum(s.render_ms) AS render_ms
  FROM delivery_stats s
  JOIN images i ON i.id = s.image_id
 WHERE s.day >= :since::date AND s.day < :until::date
   AND (:codes::text[] IS NULL OR i.code = ANY(:codes))
 GROUP BY s.day
 ORDER BY s.day;
