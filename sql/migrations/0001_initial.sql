-- The whole E-co Gram data model. Times are timestamptz (stored in UTC).

CREATE TABLE users (
    id              bigserial PRIMARY KEY,
    email           text NOT NULL CHECK (email <> ''),
    name            text NOT NULL,
    password_hash   text NOT NULL,
    role            text NOT NULL DEFAULT 'viewer'
                    CHECK (role IN ('viewer', 'importer', 'reviewer', 'admin')),
    disabled        boolean NOT NULL DEFAULT false,
    -- Bumped on password, role or disabled changes: tokens carrying an older value stop working.
    token_version   integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Access tokens revoked before they expire (logout).
CREATE TABLE revoked_tokens (
    jti         text PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);

-- Failed logins, counted per e-mail and per client address for throttling.
CREATE TABLE login_failures (
    id          bigserial PRIMARY KEY,
    email       text NOT NULL,
    client      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email_at ON login_failures (lower(email), at);
CREATE INDEX login_failures_client_at ON login_failures (client, at);

CREATE TABLE import_batches (
    id            bigserial PRIMARY KEY,
    source        text NOT NULL,              -- upload, archive, manifest, folder, cli, demo
    importer_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    importer      text NOT NULL,
    status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
    accepted      integer NOT NULL DEFAULT 0,
    duplicate     integer NOT NULL DEFAULT 0,
    rejected      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);

-- Image versions come from one sequence, so a version number is never reused by another
-- photo: `v` in /img URLs (cached immutably by CDNs) then always names one picture, even
-- after a delete and a new import at the same code and position.
CREATE SEQUENCE images_version_seq AS integer;

CREATE TABLE images (
    id            bigserial PRIMARY KEY,
    code          text NOT NULL CHECK (code <> ''),
    product       text NOT NULL DEFAULT '',
    position      integer NOT NULL CHECK (position >= 1),
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'approved', 'rejected')),
    filename      text NOT NULL,
    format        text NOT NULL,
    mime          text NOT NULL,
    width         integer NOT NULL CHECK (width > 0),
    height        integer NOT NULL CHECK (height > 0),
    file_size     bigint NOT NULL CHECK (file_size > 0),
    sha256        text NOT NULL,
    phash         bigint NOT NULL,
    blurhash      text NOT NULL,
    color         text NOT NULL,
    has_alpha     boolean NOT NULL DEFAULT false,
    qc            jsonb NOT NULL DEFAULT '{}'::jsonb,
    alt           text NOT NULL DEFAULT '',
    importer_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    importer      text NOT NULL,
    batch_id      bigint REFERENCES import_batches (id) ON DELETE SET NULL,
    imported_at   timestamptz NOT NULL DEFAULT now(),
    reviewer_id   bigint REFERENCES users (id) ON DELETE SET NULL,
    reviewer      text,
    reviewed_at   timestamptz,
    review_note   text,
    version       integer NOT NULL DEFAULT nextval('images_version_seq'),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    exported_at   timestamptz,
    deleted_at    timestamptz,
    -- Positions of a live code are unique; deferred so a reorder can shift them in one transaction.
    CONSTRAINT images_code_position_unique
        EXCLUDE USING btree (code WITH =, position WITH =) WHERE (deleted_at IS NULL)
        DEFERRABLE INITIALLY DEFERRED
);
-- The same bytes under the same code is a duplicate, even when two imports race.
CREATE UNIQUE INDEX images_code_sha256_live ON images (code, sha256) WHERE deleted_at IS NULL;
CREATE INDEX images_sha256 ON images (sha256);
CREATE INDEX images_code ON images (code, position) WHERE deleted_at IS NULL;
CREATE INDEX images_status ON images (status, imported_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX images_importer ON images (importer_id, imported_at DESC);
CREATE INDEX images_imported_at ON images (imported_at DESC);
CREATE INDEX images_batch ON images (batch_id);
-- Management listing: sorts and filters that staff use at shop scale (bench/list_bench.py).
CREATE INDEX images_live_updated ON images (updated_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX images_live_file_size ON images (file_size DESC) WHERE deleted_at IS NULL;
-- Text search `q` (ILIKE '%q%' over code and product) uses trigram indexes where pg_trgm exists:
-- the Debian/Docker PostgreSQL has it, pgserver's embedded build does not, and there the same
-- query simply scans (a few tens of ms at 100,000 photos).
DO $trgm$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE INDEX images_search_trgm ON images
            USING gin (code gin_trgm_ops, product gin_trgm_ops) WHERE deleted_at IS NULL;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'pg_trgm not installed (insufficient privilege): text search will scan';
END;
$trgm$;

-- Blobs in their own table, so listing images never reads them. The master is the upright,
-- sRGB, size-capped rendition made once at import; /img renders from it.
CREATE TABLE originals (
    image_id       bigint PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    data           bytea NOT NULL,
    master         bytea NOT NULL,
    master_format  text NOT NULL,
    master_width   integer NOT NULL,
    master_height  integer NOT NULL
);
-- Images are already compressed: don't spend time trying to compress them again.
ALTER TABLE originals ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE originals ALTER COLUMN master SET STORAGE EXTERNAL;

-- One row per file of a batch: its outcome, kept for the batch report.
CREATE TABLE import_items (
    batch_id    bigint NOT NULL REFERENCES import_batches (id) ON DELETE CASCADE,
    seq         integer NOT NULL,
    filename    text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('accepted', 'duplicate', 'rejected')),
    image_id    bigint,
    code        text,                         -- the error code when rejected
    message     text,
    status      integer,                      -- the HTTP status a single upload would get
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (batch_id, seq)
);

CREATE TABLE exports (
    id          bigserial PRIMARY KEY,
    actor_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    actor       text NOT NULL,
    format      text NOT NULL,
    filters     jsonb NOT NULL DEFAULT '{}'::jsonb,
    count       integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Append-only: who did what, when, with the before/after of changed fields.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    bigint,
    actor       text NOT NULL,
    action      text NOT NULL,
    image_id    bigint,
    target      text,
    client      text,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at DESC);
CREATE INDEX audit_log_image ON audit_log (image_id, at DESC);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at DESC);
CREATE INDEX audit_log_action ON audit_log (action, at DESC);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- Delivery keeps a small in-process cache of what each /img/{code} address serves; every change
-- that can alter it is announced on channel ecogram_images (payload: the product code), so every
-- worker drops that code at once. A trigger, so no writer can forget; NOTIFY is sent at commit.
CREATE FUNCTION images_notify_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('ecogram_images', OLD.code);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.code IS DISTINCT FROM OLD.code) THEN
        PERFORM pg_notify('ecogram_images', NEW.code);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER images_notify_delivery_change AFTER INSERT OR DELETE ON images
    FOR EACH ROW EXECUTE FUNCTION images_notify_delivery();
-- Updates that leave what /img serves alone (exported_at, qc, alt, product) stay silent.
CREATE TRIGGER images_notify_delivery_update AFTER UPDATE ON images
    FOR EACH ROW
    WHEN ((OLD.code, OLD.position, OLD.status, OLD.version, OLD.deleted_at, OLD.width,
           OLD.height, OLD.has_alpha, OLD.blurhash, OLD.color)
          IS DISTINCT FROM
          (NEW.code, NEW.position, NEW.status, NEW.version, NEW.deleted_at, NEW.width,
           NEW.height, NEW.has_alpha, NEW.blurhash, NEW.color))
    EXECUTE FUNCTION images_notify_delivery();
