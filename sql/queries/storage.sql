-- Originals and masters as objects named by their sha256 (ecogram/storage, ecogram/catalog/
-- originals.py). The PostgreSQL store keeps them in blobs; each record says in originals.store
-- where its two objects are (the original's name is images.sha256, the master's
-- originals.master_sha256).

-- name: storage-lock-shared!
-- Taken (until the transaction ends) by every write of an object that a record is about to name:
-- the release of an unreferenced object takes the same key exclusively, so it never deletes an
-- object between its write and the commit of the record that names it.
SELECT pg_advisory_xact_lock_shared(hashtextextended('ecogram.blob:' || :key, 0));

-- name: storage-lock!
SELECT pg_advisory_xact_lock(hashtextextended('ecogram.blob:' || :key, 0));

-- name: storage-referenced$
-- Whether a record whose objects are at :store names the object :key (as original or master).
SELECT EXISTS (SELECT 1 FROM images i JOIN originals o ON o.image_id = i.id
                WHERE i.sha256 = :key AND o.store = :store)
    OR EXISTS (SELECT 1 FROM originals WHERE master_sha256 = :key AND store = :store);

-- name: storage-refs-of^
-- Where an image's two objects are and their names.
SELECT o.store, i.sha256, o.master_sha256
  FROM originals o JOIN images i ON i.id = o.image_id
 WHERE o.image_id = :id;

-- name: storage-locations
-- Every store some record names.
SELECT DISTINCT store FROM originals;

-- name: storage-pending-count$
SELECT count(*) FROM originals WHERE store <> :target;

-- name: storage-pending
-- Records whose objects are not at :target yet, in id order after :after.
SELECT o.image_id, o.store, i.sha256, o.master_sha256
  FROM originals o JOIN images i ON i.id = o.image_id
 WHERE o.store <> :target AND o.image_id > :after
 ORDER BY o.image_id
 LIMIT :limit;

-- name: storage-move$
-- Point the record at :target, unless its photo was replaced (or it moved) meanwhile.
UPDATE originals o
   SET store = :target
  FROM images i
 WHERE o.image_id = :id AND i.id = o.image_id AND o.store = :source
   AND i.sha256 = :sha256 AND o.master_sha256 = :master_sha256
RETURNING o.image_id;

-- name: blob-put!
INSERT INTO blobs (sha256, data) VALUES (:sha256, :data)
    ON CONFLICT (sha256) DO NOTHING;

-- name: blob-get$
SELECT data FROM blobs WHERE sha256 = :sha256;

-- name: blob-get-many
SELECT sha256, data FROM blobs WHERE sha256 = ANY(:keys::text[]);

-- name: blob-delete!
DELETE FROM blobs WHERE sha256 = :sha256;

-- name: blob-older-than
-- Object names written more than :age seconds ago, in name order after :after.
SELECT sha256 FROM blobs
 WHERE created_at < now() - make_interval(secs => :age) AND sha256 > :after
 ORDER BY sha256
 LIMIT :limit;

-- name: storage-sweep-try-lock$
-- One sweeper at a time across processes (a session lock: dropped if the process dies).
SELECT pg_try_advisory_lock(hashtextextended('ecogram.storage.sweep', 0));

-- name: storage-sweep-unlock$
SELECT pg_advisory_unlock(hashtextextended('ecogram.storage.sweep', 0));

-- name: storage-named
-- Which of :keys a record at :store names (the sweep's first, cheap pass over a page of names).
SELECT k.key
  FROM unnest(:keys::text[]) AS k(key)
 WHERE EXISTS (SELECT 1 FROM images i JOIN originals o ON o.image_id = i.id
                WHERE i.sha256 = k.key AND o.store = :store)
    OR EXISTS (SELECT 1 FROM originals o WHERE o.master_sha256 = k.key AND o.store = :store);
