-- Placeholder on branch h/storage only: 0003 is reserved by another branch. Delete this file when
-- that branch's 0003 is merged (migrations must be numbered 1..n without gaps).
SELECT 1;
