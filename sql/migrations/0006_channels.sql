-- Sales channels (docs/channels.md): what readiness needs to know about a photo beyond its
-- size, format and bytes, measured once per photo by ecogram.imaging.product.measure — the
-- product's box, the background it stands on and how much of the frame it fills. Readiness is
-- then computed in SQL from stored facts (sql/queries/channels.sql), for any channel profile.
-- A row describes the photo whose sha256 it carries: a replaced photo no longer matches and is
-- measured again (the change hooks, or `ecogram channels backfill`).
CREATE TABLE image_geometry (
    image_id     bigint PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    sha256       text NOT NULL,
    background   text NOT NULL CHECK (background IN ('white', 'near_white', 'other')),
    fill         real NOT NULL CHECK (fill >= 0 AND fill <= 1),
    -- The product's box in the upright photo's pixels (the whole frame when background is other).
    box_left     integer NOT NULL CHECK (box_left >= 0),
    box_top      integer NOT NULL CHECK (box_top >= 0),
    box_width    integer NOT NULL CHECK (box_width >= 0),
    box_height   integer NOT NULL CHECK (box_height >= 0),
    border       text NOT NULL,          -- the border's median colour, #rrggbb
    measured_at  timestamptz NOT NULL DEFAULT now()
);

-- Readiness per product has to be fast at shop scale (bench/readiness_bench.py: a page of the
-- board at 100,000 photos): it reads one row per product, not every photo. Each product (code
-- with live photos) has four rows, one per status that can count ('approved', 'pending',
-- 'rejected', and 'all' for every live photo), each holding what any channel profile is checked
-- against: the extremes of those photos' sides, pixels and bytes, their formats, and the main
-- photo (the first by position) with its geometry; a status without photos has photos = 0 and
-- NULLs.
--
-- Keeping them current: statement triggers on images and image_geometry append the codes a
-- statement touched to channel_dirty, in the writer's transaction, so no writer can forget and
-- the mark becomes visible exactly when the change does. Writers take no lock for it (nothing to
-- wait for, nothing to deadlock with their own locks). The readers catch up first
-- (channel_products_catch_up): they take the dirty codes, lock each under a key of its own
-- ('ecogram.channels:' || code, never the imports' code lock, so a reader never waits for an
-- import), and rebuild those codes' rows from what is committed.
CREATE TABLE channel_products (
    code             text NOT NULL,
    status           text NOT NULL CHECK (status IN ('approved', 'pending', 'rejected', 'all')),
    product          text NOT NULL,
    photos           integer NOT NULL,
    min_short        integer,            -- smallest shortest side
    min_long         integer,            -- smallest longest side
    max_long         integer,            -- largest longest side
    max_pixels       bigint,
    min_bytes        bigint,
    max_bytes        bigint,
    oblong           boolean,            -- a photo is not square
    formats          text[],
    main_position    integer,
    main_background  text,               -- NULL: the main photo is not measured yet
    main_fill        real,
    PRIMARY KEY (status, code)
) PARTITION BY LIST (status);
-- A page reads one status: a partition each, so it scans a quarter of the rows' pages.
CREATE TABLE channel_products_approved PARTITION OF channel_products FOR VALUES IN ('approved');
CREATE TABLE channel_products_pending PARTITION OF channel_products FOR VALUES IN ('pending');
CREATE TABLE channel_products_rejected PARTITION OF channel_products FOR VALUES IN ('rejected');
CREATE TABLE channel_products_all PARTITION OF channel_products FOR VALUES IN ('all');
CREATE INDEX channel_products_code ON channel_products (code);

-- Codes whose rows may be stale (duplicates allowed: no unique index, so writers never wait).
CREATE TABLE channel_dirty (
    code  text NOT NULL
);

-- The rows of the codes in p_codes (NULL: every code), from their live photos.
CREATE FUNCTION channel_products_rows(p_codes text[])
RETURNS SETOF channel_products LANGUAGE sql STABLE AS $$
    WITH x AS (
        SELECT i.code, i.product, i.status, i.position, i.width, i.height, i.format,
               i.file_size, g.background, g.fill
          FROM images i
          LEFT JOIN image_geometry g ON g.image_id = i.id AND g.sha256 = i.sha256
         WHERE i.deleted_at IS NULL AND (p_codes IS NULL OR i.code = ANY(p_codes))
    ), agg AS (
        SELECT x.code, s.status, count(*)::int AS photos, min(least(x.width, x.height)) AS ms,
               min(greatest(x.width, x.height)) AS ml, max(greatest(x.width, x.height)) AS xl,
               max(x.width::bigint * x.height) AS xp, min(x.file_size) AS mb,
               max(x.file_size) AS xb, bool_or(x.width <> x.height) AS ob,
               array_agg(DISTINCT x.format) AS fm, min(x.position) AS mp,
               (array_agg(x.background ORDER BY x.position))[1] AS bg,
               (array_agg(x.fill ORDER BY x.position))[1] AS fl
          FROM x CROSS JOIN LATERAL (VALUES (x.status), ('all')) AS s (status)
         GROUP BY x.code, s.status
    ), codes AS (
        SELECT x.code, max(x.product) AS product FROM x GROUP BY x.code
    )
    SELECT c.code, st.status, c.product, coalesce(a.photos, 0), a.ms, a.ml, a.xl, a.xp, a.mb,
           a.xb, a.ob, a.fm, a.mp, a.bg, a.fl
      FROM codes c
     CROSS JOIN (VALUES ('approved'), ('pending'), ('rejected'), ('all')) AS st (status)
      LEFT JOIN agg a ON a.code = c.code AND a.status = st.status;
$$;

-- Rebuild the rows of the dirty codes; returns how many codes. Readers call it before reading.
CREATE FUNCTION channel_products_catch_up() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    codes text[];
    one text;
BEGIN
    WITH taken AS (DELETE FROM channel_dirty RETURNING code)
    SELECT array_agg(DISTINCT code ORDER BY code) INTO codes FROM taken;
    IF codes IS NULL THEN
        RETURN 0;
    END IF;
    IF cardinality(codes) <= 50 THEN
        FOREACH one IN ARRAY codes LOOP  -- in code order: two readers never wait in a circle
            PERFORM pg_advisory_xact_lock(hashtextextended('ecogram.channels:' || one, 0));
        END LOOP;
    ELSE
        -- Many codes (after a bulk load): one lock instead of filling the lock table. It
        -- conflicts only with other readers' rebuilds (their DELETE/INSERT here).
        LOCK TABLE channel_products IN SHARE ROW EXCLUSIVE MODE;
    END IF;
    DELETE FROM channel_products WHERE code = ANY(codes);
    INSERT INTO channel_products SELECT * FROM channel_products_rows(codes);
    RETURN cardinality(codes);
END;
$$;

CREATE FUNCTION channel_products_rebuild() RETURNS void LANGUAGE sql AS $$
    -- Every code at once (this migration; bulk loads that skipped the triggers).
    LOCK TABLE channel_products IN SHARE ROW EXCLUSIVE MODE;
    TRUNCATE channel_dirty;
    TRUNCATE channel_products;
    INSERT INTO channel_products SELECT * FROM channel_products_rows(NULL);
$$;

-- Statement triggers with transition tables: the codes a statement touched, marked once.
CREATE FUNCTION channel_dirty_on_images_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO channel_dirty (code) SELECT DISTINCT code FROM new_rows;
    RETURN NULL;
END;
$$;
CREATE TRIGGER images_channel_dirty_insert AFTER INSERT ON images
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION channel_dirty_on_images_insert();

CREATE FUNCTION channel_dirty_on_images_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO channel_dirty (code) SELECT DISTINCT code FROM old_rows;
    RETURN NULL;
END;
$$;
CREATE TRIGGER images_channel_dirty_delete AFTER DELETE ON images
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION channel_dirty_on_images_delete();

-- Updates that change nothing readiness reads (exported_at, qc, alt, review notes) mark
-- nothing.
CREATE FUNCTION channel_dirty_on_images_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO channel_dirty (code)
    SELECT DISTINCT c.code
      FROM old_rows o JOIN new_rows n ON n.id = o.id
     CROSS JOIN LATERAL (VALUES (o.code), (n.code)) AS c (code)
     WHERE (o.code, o.product, o.position, o.status, o.deleted_at, o.width, o.height, o.format,
            o.file_size, o.sha256)
           IS DISTINCT FROM
           (n.code, n.product, n.position, n.status, n.deleted_at, n.width, n.height, n.format,
            n.file_size, n.sha256);
    RETURN NULL;
END;
$$;
CREATE TRIGGER images_channel_dirty_update AFTER UPDATE ON images
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION channel_dirty_on_images_update();

CREATE FUNCTION channel_dirty_on_geometry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO channel_dirty (code)
        SELECT DISTINCT i.code FROM old_rows r JOIN images i ON i.id = r.image_id;
    ELSE
        INSERT INTO channel_dirty (code)
        SELECT DISTINCT i.code FROM new_rows r JOIN images i ON i.id = r.image_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER image_geometry_channel_dirty_insert AFTER INSERT ON image_geometry
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION channel_dirty_on_geometry();
CREATE TRIGGER image_geometry_channel_dirty_update AFTER UPDATE ON image_geometry
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION channel_dirty_on_geometry();
CREATE TRIGGER image_geometry_channel_dirty_delete AFTER DELETE ON image_geometry
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION channel_dirty_on_geometry();

SELECT channel_products_rebuild();
