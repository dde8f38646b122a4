-- Calibrated quality per output width (calibration VERSION 3, docs/delivery.md "Calibrated
-- quality"): which width needs the higher q differs by photo, so each calibrated width keeps its
-- own q and /img picks the one for the width it renders (ecogram.imaging.quality.for_width).
-- Rows of earlier calibrations (one q for every width) get width 0, which stands for every
-- width, and keep serving until `ecogram calibrate --stale` replaces them.
ALTER TABLE image_quality ADD COLUMN width integer NOT NULL DEFAULT 0 CHECK (width >= 0);
ALTER TABLE image_quality ALTER COLUMN width DROP DEFAULT;
ALTER TABLE image_quality DROP CONSTRAINT image_quality_pkey;
ALTER TABLE image_quality ADD PRIMARY KEY (image_id, version, format, width);
