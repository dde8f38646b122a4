-- A batch whose runner died (a crash, a kill -9, a lost machine) or stopped on an error ends
-- 'interrupted' rather than 'running' for ever; 'queued' is the state of an import job that
-- no runner has taken yet (API.md: the report's status is queued|running|done|interrupted).
-- Who runs a batch is not a column: the runner holds a session advisory lock on the batch
-- (sql/queries/imports.sql, import-hold-batch), which PostgreSQL drops when its session ends.
ALTER TABLE import_batches
    DROP CONSTRAINT import_batches_status_check,
    ADD CONSTRAINT import_batches_status_check
        CHECK (status IN ('queued', 'running', 'done', 'interrupted'));
