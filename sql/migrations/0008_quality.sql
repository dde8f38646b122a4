-- Calibrated quality (docs/delivery.md, "Calibrated quality"): per photo version and output
-- format, the lowest encoder quality whose output still reaches the SSIMULACRA2 target against
-- the source, found once at approval (ecogram.imaging.quality). /img renders without `q` use it.
-- Keyed by version: a replaced photo is a new version and is calibrated anew; rows of older
-- versions are removed when a newer one is stored.
CREATE TABLE image_quality (
    image_id     bigint NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    version      integer NOT NULL,
    format       text NOT NULL CHECK (format IN ('webp', 'avif', 'jpeg')),
    q            smallint NOT NULL CHECK (q BETWEEN 1 AND 100),
    score        real NOT NULL,        -- SSIMULACRA2 of the output at q
    target       real NOT NULL,        -- ECOGRAM_QUALITY_TARGET when it was found
    calibration  smallint NOT NULL,    -- ecogram.imaging.quality.VERSION
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (image_id, version, format)
);
