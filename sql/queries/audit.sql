-- name: add-audit!
-- Append one audit entry; nothing in the service updates or deletes these rows.
INSERT INTO audit_log (actor_id, actor, action, image_id, target, client, details)
VALUES (:actor_id, :actor, :action, :image_id, :target, :client, :details);
