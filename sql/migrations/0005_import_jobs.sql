-- Import jobs (ecogram/jobs.py): an archive or manifest import that runs on the job queue.
--
-- The upload is kept here, in PostgreSQL, from the moment the request is answered 202 until its
-- batch is done, so any worker on any machine can read it: in chunks of a few MB (a bytea row
-- each, so no single value nears PostgreSQL's 1 GB limit and a worker streams it to a temporary
-- file without holding it in memory). Deleted with the batch's end ('done' or 'interrupted').
CREATE TABLE import_uploads (
    batch_id    bigint NOT NULL REFERENCES import_batches (id) ON DELETE CASCADE,
    part        text NOT NULL CHECK (part IN ('archive', 'manifest')),
    chunk       integer NOT NULL CHECK (chunk >= 0),
    data        bytea NOT NULL,
    PRIMARY KEY (batch_id, part, chunk)
);

-- A batch run as a job: its job in the queue (the queue library's id, none for an import run in
-- its request), the number of files it holds (known when it is queued, so a report can say
-- "40 of 200"), how many times a runner started it (a run that keeps dying stops being
-- retried), the actor the job imports as, and why it ended 'interrupted' when it did.
ALTER TABLE import_batches
    ADD COLUMN job_id    bigint,
    ADD COLUMN files     integer,
    ADD COLUMN attempts  integer NOT NULL DEFAULT 0,
    ADD COLUMN actor     jsonb,
    ADD COLUMN reason    text;
