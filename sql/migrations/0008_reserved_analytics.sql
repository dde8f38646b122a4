-- Placeholder: migration 0008 is another branch's; this keeps the numbering continuous on the
-- analytics branch and is replaced by that migration when the branches are merged.
SELECT 1;
