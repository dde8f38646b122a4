-- A product's own id on a sales channel (ecogram/catalog/channel_ids.py; table
-- channel_product_ids, sql/migrations/0007_channel_ids.sql).

-- name: channel-id-get^
SELECT channel, code, external_id, updated_at
  FROM channel_product_ids
 WHERE channel = :channel AND code = :code;

-- name: channel-id-list
-- One page of a channel's ids in code order, optionally only some codes.
SELECT channel, code, external_id, updated_at, count(*) OVER () AS total
  FROM channel_product_ids
 WHERE channel = :channel AND (:codes::text[] IS NULL OR code = ANY(:codes))
 ORDER BY code
 LIMIT :limit OFFSET :offset;

-- name: channel-id-put^
-- Set (insert or replace) one id; returns the row with the id it had before (NULL: none):
-- `before` reads the statement's snapshot, so it sees the row as it was (no FOR UPDATE: a row
-- this very statement updates is not there to lock).
WITH before AS (
    SELECT external_id FROM channel_product_ids WHERE channel = :channel AND code = :code
)
INSERT INTO channel_product_ids AS t (channel, code, external_id)
VALUES (:channel, :code, :external_id)
    ON CONFLICT (channel, code) DO UPDATE
   SET external_id = excluded.external_id, updated_at = now()
RETURNING t.channel, t.code, t.external_id, t.updated_at,
          (SELECT external_id FROM before) AS previous;

-- name: channel-id-delete^
DELETE FROM channel_product_ids
 WHERE channel = :channel AND code = :code
RETURNING channel, code, external_id;

-- name: channel-id-import^
-- A whole CSV in one statement: rows with an id are set, rows with an empty id removed.
-- Returns how many were set (new or changed), unchanged and removed.
WITH incoming AS (
    SELECT * FROM unnest(:codes::text[], :ids::text[]) AS x (code, external_id)
), removed AS (
    DELETE FROM channel_product_ids t USING incoming i
     WHERE t.channel = :channel AND t.code = i.code AND i.external_id = ''
    RETURNING t.code
), changed AS (
    INSERT INTO channel_product_ids AS t (channel, code, external_id)
    SELECT :channel, code, external_id FROM incoming WHERE external_id <> ''
        ON CONFLICT (channel, code) DO UPDATE
       SET external_id = excluded.external_id, updated_at = now()
     WHERE t.external_id IS DISTINCT FROM excluded.external_id
    RETURNING t.code
)
SELECT (SELECT count(*) FROM changed) AS set,
       (SELECT count(*) FROM incoming WHERE external_id <> '')
         - (SELECT count(*) FROM changed) AS unchanged,
       (SELECT count(*) FROM removed) AS removed;
