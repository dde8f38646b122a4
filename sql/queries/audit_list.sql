-- Reading the audit trail (GET /api/v1/audit). Nothing here writes: the log is append-only.

-- name: audit-list
SELECT id, at, actor_id, actor, action, image_id, target, client, details
  FROM audit_log
 WHERE (:image_id::bigint IS NULL OR image_id = :image_id)
   AND (:actor_id::bigint IS NULL OR actor_id = :actor_id)
   AND (:actor::text IS NULL OR lower(actor) = lower(:actor))
   AND (:action::text IS NULL OR action = :action)
   AND (:since::timestamptz IS NULL OR at >= :since)
   AND (:until::timestamptz IS NULL OR at < :until)
 ORDER BY at DESC, id DESC
 LIMIT :limit OFFSET :offset;

-- name: audit-count$
SELECT count(*) FROM audit_log
 WHERE (:image_id::bigint IS NULL OR image_id = :image_id)
   AND (:actor_id::bigint IS NULL OR actor_id = :actor_id)
   AND (:actor::text IS NULL OR lower(actor) = lower(:actor))
   AND (:action::text IS NULL OR action = :action)
   AND (:since::timestamptz IS NULL OR at >= :since)
   AND (:until::timestamptz IS NULL OR at < :until);
