-- Originals and masters behind one seam (ecogram/storage): their bytes are objects named by their
-- sha256, kept either in PostgreSQL (the table blobs) or in an S3-compatible object store; each
-- record says where its two objects are (originals.store: 'postgres' or 's3://bucket/prefix').
-- The original's name is images.sha256, the master's originals.master_sha256.
CREATE TABLE blobs (
    sha256      text PRIMARY KEY,
    data        bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Images are already compressed: don't spend time trying to compress them again.
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;

ALTER TABLE originals
    ADD COLUMN store text NOT NULL DEFAULT 'postgres',
    ADD COLUMN master_sha256 text;
UPDATE originals SET master_sha256 = encode(sha256(master), 'hex');
INSERT INTO blobs (sha256, data)
SELECT i.sha256, o.data FROM originals o JOIN images i ON i.id = o.image_id
    ON CONFLICT (sha256) DO NOTHING;
INSERT INTO blobs (sha256, data)
SELECT o.master_sha256, o.master FROM originals o
    ON CONFLICT (sha256) DO NOTHING;
ALTER TABLE originals
    DROP COLUMN data,
    DROP COLUMN master,
    ALTER COLUMN master_sha256 SET NOT NULL;
-- "Does any record at this store still name this object?" (release after a purge, the sweep).
CREATE INDEX originals_master_sha256 ON originals (master_sha256, store);
-- `ecogram storage migrate` walks the records not yet at the target store.
CREATE INDEX originals_store ON originals (store, image_id);
