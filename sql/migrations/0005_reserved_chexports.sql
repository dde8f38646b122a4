-- Placeholder on branch h/chexports only: 0005 is taken by another branch. Delete this file when
-- that branch's 0005 is merged (migrations must be numbered 1..n without gaps).
SELECT 1;
