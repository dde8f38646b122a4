"""The job queue: import jobs on pgqueuer, a PostgreSQL-backed queue that speaks asyncpg.

Why pgqueuer: the service speaks asyncpg everywhere, and so does pgqueuer (procrastinate needs
psycopg 3, a second driver and a second pool per process); its schema is installed and upgraded
by its own installer, which ``db.migrate`` runs under the migration lock (never by hand); jobs
are taken with ``FOR UPDATE SKIP LOCKED`` (two workers never take the same job); a running job
sends a heartbeat, and a job whose heartbeat stops (its worker died, even by SIGKILL) is handed to
another worker after ``ECOGRAM_JOB_STALL_SECONDS``; a job can ask to be retried
(``RetryRequested``).

A job only carries its batch's id: the work is the catalogue's (``catalog/import_jobs.py``),
which keeps the upload, the batch and its lines in PostgreSQL, and holds the batch's lease while
it runs — so even a job handed out twice (a heartbeat late under load) is run by one worker at
a time.

Workers: each ``ecogram serve`` process runs ``ECOGRAM_JOB_WORKERS`` jobs at once (0: none), and
``ecogram worker`` runs them on other machines. ``Worker.stop()`` (SIGTERM) lets the running
jobs store the files in hand and give their batches back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from concurrent.futures import Executor
from datetime import timedelta

import asyncpg
from pgqueuer import Job, QueueManager, RetryRequested
from pgqueuer.queries import Queries

from ecogram.catalog import import_jobs
from ecogram.settings import Settings

log = logging.getLogger("ecogram.jobs")

IMPORT = "import_batch"  # the one kind of job so far
RETRY_DELAY = timedelta(seconds=5)  # after a failure (the database away...), before trying again


def pool_size(jobs_at_once: int) -> int:
    """Connections a worker's pool needs: per job a few at once (a read, two stores, its
    lease's); one more for the queue's LISTEN, one for its polling."""
    return 4 * jobs_at_once + 2


async def enqueue_import(conn: asyncpg.Connection, batch_id: int) -> int:
    """Queue the import of ``batch_id`` on ``conn``, inside the caller's transaction."""
    payload = json.dumps({"batch_id": batch_id}).encode()
    [job_id] = await Queries.from_asyncpg_connection(conn).enqueue(IMPORT, payload)
    return int(job_id)


class _Manager(QueueManager):
    """pgqueuer's manager, taking at most ``jobs_at_once`` jobs for this process.

    (Its own per-worker cap must be at least twice its batch size; the dequeue query it builds
    takes any cap, so the cap is passed to it here, with batches of one.)
    """

    jobs_at_once: int = 1

    async def fetch_jobs(self, batch_size, global_concurrency_limit, heartbeat_timeout):
        async for job in super().fetch_jobs(1, self.jobs_at_once, heartbeat_timeout):
            yield job


class Worker:
    """Runs import jobs in this process until ``stop()``."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings, executor: Executor,
                 jobs_at_once: int) -> None:
        self.pool = pool
        self.settings = settings
        self.executor = executor
        self.jobs_at_once = jobs_at_once
        self.stopping = asyncio.Event()
        self.manager: _Manager | None = None

    async def run(self) -> None:
        """Take and run jobs until ``stop()``; when the queue's loop fails (the database went
        away), start it again a few seconds later."""
        log.info(json.dumps({"event": "job_worker_started", "jobs_at_once": self.jobs_at_once}))
        while not self.stopping.is_set():
            self.manager = _Manager(Queries.from_asyncpg_pool(self.pool))
            self.manager.jobs_at_once = self.jobs_at_once
            # "hold": a job whose retry could not even be recorded (the database went away
            # at that moment) is parked as failed, for `pgq requeue`, never dropped.
            self.manager.entrypoint(IMPORT, on_failure="hold")(self._import)
            try:
                await self.manager.run(
                    dequeue_timeout=timedelta(seconds=5),
                    batch_size=1,
                    heartbeat_timeout=timedelta(seconds=self.settings.job_stall_seconds),
                )
            except Exception as exc:
                log.warning(json.dumps({"event": "job_worker_failed",
                                        "error": type(exc).__name__}))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), RETRY_DELAY.total_seconds())
        log.info(json.dumps({"event": "job_worker_stopped"}))

    def stop(self) -> None:
        """Take no more jobs; the running ones store the files in hand and are re-queued."""
        self.stopping.set()
        if self.manager is not None:
            self.manager.shutdown.set()

    async def _import(self, job: Job) -> None:
        batch_id = int(json.loads(job.payload or b"{}")["batch_id"])
        try:
            outcome = await import_jobs.run_job(self.pool, self.settings, self.executor,
                                                batch_id, self.stopping)
        except Exception:
            log.exception(json.dumps({"event": "import_job_failed", "batch_id": batch_id}))
            raise RetryRequested(RETRY_DELAY, "the import failed; it is resumed later") from None
        log.info(json.dumps({"event": "import_job", "batch_id": batch_id, "job_id": job.id,
                             "outcome": outcome}))
        if outcome == import_jobs.STOPPED:
            raise RetryRequested(timedelta(0), "the worker stopped; another resumes the import")
        if outcome == import_jobs.BUSY:
            # Another live worker runs it (this job was handed out again while it ran late):
            # look again later; once that worker ends the batch, there is nothing left to do.
            raise RetryRequested(timedelta(seconds=self.settings.job_stall_seconds),
                                 "another worker runs the import")
