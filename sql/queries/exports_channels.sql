-- Channel exports (ecogram/catalog/exports/channel.py): what a batch of export rows needs
-- besides the rows themselves, read on the same connection in the same snapshot (the batch is
-- read in one REPEATABLE READ transaction).

-- name: export-channel-geometry
-- The measured geometry of the batch's photos, for their current file only (a replaced photo's
-- old measurement is not its geometry): the rendition's width and height are planned from it.
SELECT g.image_id, g.background, g.fill, g.box_left, g.box_top, g.box_width, g.box_height,
       g.border
  FROM image_geometry g
  JOIN images i ON i.id = g.image_id AND i.sha256 = g.sha256
 WHERE g.image_id = ANY(:ids::bigint[]);

-- name: export-channel-ids
-- The products' own ids on the channel (channel_product_ids), where there are some.
SELECT code, external_id
  FROM channel_product_ids
 WHERE channel = :channel AND code = ANY(:codes::text[]);
