-- Exports to the shop platforms (ecogram/catalog/exports/). An export walks the table in
-- keyset batches (by code), each one statement on a connection held only while it runs: the
-- client's pace never holds a connection or a transaction.

-- name: export-batch
-- The next products after :after in code order (:after = '' for the first batch), about :rows
-- images in all and at least one product, every product whole: one statement, so one snapshot
-- per batch. The codes come first, in index order (the LIMIT stops the scan early), then their
-- rows by `code = ANY(ARRAY(...))`: one index probe per code whatever the planner's statistics
-- say (a join here became a nested loop over the whole table on a freshly loaded one).
WITH counted AS (
    SELECT code, count(*) AS n
      FROM images
     WHERE deleted_at IS NULL AND status = :status AND code > :after
       AND (:codes::text[] IS NULL OR code = ANY(:codes))
       AND (:since::timestamptz IS NULL OR updated_at >= :since OR reviewed_at >= :since)
     GROUP BY code
     ORDER BY code
     LIMIT :rows
), chosen AS (
    SELECT code FROM (SELECT code, sum(n) OVER (ORDER BY code) - n AS before FROM counted) c
     WHERE before < :rows
)
SELECT i.*
  FROM images i
 WHERE i.code = ANY(ARRAY(SELECT code FROM chosen))
   AND i.deleted_at IS NULL AND i.status = :status
   AND (:since::timestamptz IS NULL OR i.updated_at >= :since OR i.reviewed_at >= :since)
 ORDER BY i.code, i.position, i.id;

-- name: export-originals
-- Some images of a batch again, with where their originals are: a few MB at a time. The filters are
-- checked again, so a photo deleted or reviewed away since its batch was read is left out, and
-- the manifest row and the bytes come from one snapshot.
SELECT i.*, o.store
  FROM images i JOIN originals o ON o.image_id = i.id
 WHERE i.id = ANY(:ids::bigint[])
   AND i.deleted_at IS NULL AND i.status = :status
   AND (:since::timestamptz IS NULL OR i.updated_at >= :since OR i.reviewed_at >= :since)
 ORDER BY i.code, i.position, i.id;

-- name: export-live-codes
-- Live codes (any status) after :after with their oldest photo: product keys (Shopify handles,
-- SKUs) are made unique over the whole catalogue, the code that came first keeping its own.
SELECT code, min(id) AS first_id
  FROM images
 WHERE deleted_at IS NULL AND code > :after
 GROUP BY code
 ORDER BY code
 LIMIT :rows;

-- name: export-record$
INSERT INTO exports (actor_id, actor, format, filters, count)
VALUES (:actor_id, :actor, :format, :filters, :count)
RETURNING id;

-- name: export-stamp!
-- Not updated_at: being exported is not a change an incremental export should pick up again.
-- Rows are locked in id order, so exports finishing together never deadlock.
UPDATE images SET exported_at = now()
 WHERE id IN (SELECT id FROM images WHERE id = ANY(:ids::bigint[]) ORDER BY id FOR UPDATE);
