-- The admin channels board (ecogram/catalog/channel_board.py).

-- name: channel-board-thumbs
-- The preview facts of the page's main photos: the version keys the preview's cache.
SELECT id, version, blurhash, width, height, alt, product, code
  FROM images
 WHERE id = ANY(:ids::bigint[]) AND deleted_at IS NULL;
