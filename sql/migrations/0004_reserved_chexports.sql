-- Placeholder on branch h/chexports only: 0004 is taken by another branch. Delete this file when
-- that branch's 0004 is merged (migrations must be numbered 1..n without gaps).
SELECT 1;
