-- The position a photo asked for when it was imported (by its file name, SKU_3.jpg, or by a
-- `position` field), kept after it landed. Positions stay 1..n, so a photo that asked for a
-- place past the code's end sits at the end, "waiting" (requested_position > position); the
-- photos that later arrive for the places before it go before it (sql/queries/imports.sql,
-- import-checks). NULL when it asked for none, and once a person moves it (their say is final).
ALTER TABLE images ADD COLUMN requested_position integer CHECK (requested_position >= 1);
