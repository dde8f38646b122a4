-- Placeholder on branch h/jobs only: 0006 is taken by another branch. Delete this file when
-- that branch's 0006 is merged (migrations must be numbered 1..n without gaps).
SELECT 1;
