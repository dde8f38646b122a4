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
