-- Calibrated quality (ecogram.imaging.quality, stored by ecogram.catalog.delivery at approval).
-- The resolution queries (delivery.sql) read it back with the image, in the same query.

-- name: quality-forget-formats!
-- This version's results in these formats, before a calibration stores its own (an earlier
-- calibration's rows may be at other widths).
DELETE FROM image_quality
 WHERE image_id = :image_id AND version = :version AND format = ANY(:formats::text[]);

-- name: quality-store!
-- One format's result at one output width for this photo version (again: the newer wins).
INSERT INTO image_quality (image_id, version, format, width, q, score, target, calibration)
VALUES (:image_id, :version, :format, :width, :q, :score, :target, :calibration)
ON CONFLICT (image_id, version, format, width) DO UPDATE
   SET q = EXCLUDED.q, score = EXCLUDED.score, target = EXCLUDED.target,
       calibration = EXCLUDED.calibration, computed_at = now();

-- name: quality-forget-older!
-- Results of versions this photo no longer serves.
DELETE FROM image_quality WHERE image_id = :image_id AND version < :version;

-- name: quality-notify!
-- Other workers' cached resolutions of this code lack the new q: the images channel tells them
-- (as the trigger on images does for a change).
SELECT pg_notify('ecogram_images', :code);

-- name: quality-stale
-- `ecogram calibrate`: approved live photos after :after, in id order, whose current version
-- lacks a current result in one of :formats (none yet, an older calibration VERSION or
-- another target); with :everything, every approved live photo.
SELECT i.id
  FROM images i
 WHERE i.deleted_at IS NULL AND i.status = 'approved' AND i.id > :after
   AND (:everything OR EXISTS (
        SELECT 1 FROM unnest(:formats::text[]) AS f (format)
         WHERE NOT EXISTS (
               SELECT 1 FROM image_quality q
                WHERE q.image_id = i.id AND q.version = i.version AND q.format = f.format
                  AND q.calibration = :calibration AND q.target = :target)))
 ORDER BY i.id
 LIMIT :limit;
