-- Review transitions (ecogram/catalog/review.py). Each is one conditional UPDATE: of two
-- reviewers racing on one photo, exactly one finds it pending.

-- name: review-transition
UPDATE images
   SET status = :status, reviewer_id = :reviewer_id, reviewer = :reviewer,
       reviewed_at = now(), review_note = :note, updated_at = now()
 WHERE id = ANY(:ids::bigint[]) AND status = 'pending' AND deleted_at IS NULL
RETURNING *;

-- name: review-states
-- Why the others were not transitioned (read after the write, only to explain the refusal).
SELECT id, status FROM images WHERE id = ANY(:ids::bigint[]) AND deleted_at IS NULL;
