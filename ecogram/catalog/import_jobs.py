"""Import jobs: an archive or manifest import queued at once, run by a job worker.

``submit`` checks the upload as ``POST /imports`` always has (a damaged ZIP or manifest is
refused whole, 4xx, before anything is queued), then either imports it in the request, or — when
asked to (``Prefer: respond-async``) or when it is large — stores the upload in PostgreSQL
(``import_uploads``, in chunks) and enqueues a job, in one transaction: the batch reads
``queued`` and the request is answered ``202`` at once.

``run_job`` is what a worker does with that job, on any machine: take the batch's lease (the
same one an import run in its request holds, ``imports._Leases``), restore the upload to a
temporary file, and import the files that have no line in the batch yet. A worker that died
mid-way (even by SIGKILL) left every stored file with its line (both land in one transaction),
so the job, handed to another worker by the queue, goes on where the dead one stopped: every
file is imported once and counted once, in the same batch. A worker asked to stop (SIGTERM)
stores the files in hand and gives the batch back to the queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import asyncpg

from ecogram import db
from ecogram.auth.identity import Identity
from ecogram.catalog import imports
from ecogram.catalog.imports import DONE, INTERRUPTED, ImportRun
from ecogram.catalog.sources import ZipArchive, parse_manifest
from ecogram.errors import AppError
from ecogram.settings import Settings

log = logging.getLogger("ecogram.import")

CHUNK_BYTES = 4 * 1024 * 1024  # one row of import_uploads
# A batch started this many times without reaching its end (its worker died each time: a photo
# that kills the process, a machine out of memory) is ended 'interrupted' rather than retried on.
MAX_ATTEMPTS = 5

# What run_job reports to the worker.
STOPPED = "stopped"  # asked to stop: the batch is queued again, the job must be retried
BUSY = "busy"  # another live runner holds the batch: retry later
ENDED = "ended"  # the batch had already ended: nothing to do

Enqueue = Callable[[asyncpg.Connection, int], Awaitable[int]]


async def submit(
    pool: asyncpg.Pool,
    settings: Settings,
    executor: Executor,
    actor: Identity,
    archive_path: Path | None,
    manifest: bytes | None,
    *,
    prefer_async: bool,
    enqueue: Enqueue,
) -> tuple[dict[str, Any], bool]:
    """``POST /imports``: the report, and whether the import was queued (202) rather than run.

    It runs as a job when the client prefers it, or when it holds more than
    ``ECOGRAM_IMPORT_ASYNC_FILES`` files or its archive more than ``ECOGRAM_IMPORT_ASYNC_MB``.
    """
    rows = parse_manifest(manifest, settings.zip_max_members) if manifest is not None else None
    archive = (
        await asyncio.to_thread(imports.open_archive, archive_path, settings)
        if archive_path is not None else None
    )
    source = "archive" if archive is not None else "manifest"
    try:
        items = imports.archive_items(archive, rows, settings.max_upload_bytes)
        size = (await asyncio.to_thread(archive_path.stat)).st_size if archive_path else 0
        large = (len(items) > settings.import_async_files
                 or size > settings.import_async_mb * 1024 * 1024)
        if not (prefer_async or large):
            run = ImportRun(pool, settings, executor, actor, source)
            return await run.run(items), False
    finally:
        if archive is not None:
            archive.close()
    batch_id = await _queue(pool, actor, source, archive_path, manifest, len(items), enqueue)
    log.info(json.dumps({"event": "import_queued", "batch_id": batch_id, "files": len(items),
                         "bytes": size}))
    async with pool.acquire() as conn:
        report = await imports.batch_report(conn, batch_id, settings.public_url)
    assert report is not None
    return report, True


async def _queue(
    pool: asyncpg.Pool, actor: Identity, source: str, archive_path: Path | None,
    manifest: bytes | None, files: int, enqueue: Enqueue,
) -> int:
    """The batch, its upload and its job, in one transaction: all of them or none."""
    q = db.queries
    async with pool.acquire() as conn, conn.transaction():
        batch_id = await q.import_job_create_batch(
            conn, source=source, importer_id=actor.id, importer=actor.name, files=files,
            actor={"id": actor.id, "email": actor.email, "name": actor.name,
                   "role": actor.role},
        )
        if archive_path is not None:
            with archive_path.open("rb") as handle:
                chunk = 0
                while data := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                    await q.import_job_add_chunk(conn, batch_id=batch_id, part="archive",
                                                 chunk=chunk, data=data)
                    chunk += 1
        if manifest is not None:
            await q.import_job_add_chunk(conn, batch_id=batch_id, part="manifest", chunk=0,
                                         data=manifest)
        job_id = await enqueue(conn, batch_id)
        await q.import_job_set_job(conn, id=batch_id, job_id=job_id)
    return batch_id


async def run_job(
    pool: asyncpg.Pool,
    settings: Settings,
    executor: Executor,
    batch_id: int,
    stop: asyncio.Event | None = None,
) -> str:
    """Run (or resume) a queued batch: ``done``, ``interrupted``, ``stopped``, ``busy`` or
    ``ended``. An exception leaves the batch to be retried (``queued`` once its lease is
    free)."""
    if not await imports.hold_batch(pool, settings, batch_id):
        return BUSY
    try:
        return await _run_held(pool, settings, executor, batch_id, stop)
    finally:
        await imports.release_batch(pool, settings, batch_id)


async def _run_held(
    pool: asyncpg.Pool, settings: Settings, executor: Executor, batch_id: int,
    stop: asyncio.Event | None,
) -> str:
    q = db.queries
    async with pool.acquire() as conn:
        started = await q.import_job_start(conn, id=batch_id)
    if started is None:
        return ENDED
    actor = Identity(**started["actor"])
    run = ImportRun(pool, settings, executor, actor, started["source"])
    run.batch_id = batch_id
    if started["attempts"] > MAX_ATTEMPTS:
        await _interrupt(pool, run, f"The import was started {MAX_ATTEMPTS} times and stopped "
                         "each time before its end (its worker died); it is not tried again.")
        return INTERRUPTED
    with tempfile.TemporaryDirectory(prefix="ecogram-job-") as tmp:
        try:
            archive, rows = await _restore(pool, settings, batch_id, Path(tmp))
        except AppError as error:
            await _interrupt(pool, run, error.message)
            return INTERRUPTED
        completed = False
        stopped_cleanly = False
        try:
            items = imports.archive_items(archive, rows, settings.max_upload_bytes)
            async with pool.acquire() as conn:
                seen = {r["seq"] async for r in q.import_job_seen(conn, batch_id=batch_id)}
            completed = await run.resume(batch_id, items, seen, stop)
            stopped_cleanly = not completed
        finally:
            if archive is not None:
                archive.close()
            async with pool.acquire() as conn, conn.transaction():
                if completed:
                    await run.finish(conn, DONE)
                    await q.import_job_drop_upload(conn, id=batch_id)
                else:
                    # Stopped, or failed (the database went away...): the queue retries it.
                    await q.import_job_requeue(conn, id=batch_id,
                                               refund=1 if stopped_cleanly else 0)
    return DONE if completed else STOPPED


async def _interrupt(pool: asyncpg.Pool, run: ImportRun, reason: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await db.queries.import_job_interrupt(conn, id=run.batch_id, reason=reason)
        await run.finish(conn, INTERRUPTED)
        await db.queries.import_job_drop_upload(conn, id=run.batch_id)


async def _restore(
    pool: asyncpg.Pool, settings: Settings, batch_id: int, folder: Path
) -> tuple[ZipArchive | None, list | None]:
    """The stored upload: the archive as a temporary file (a ZIP is read by seeking), the
    manifest parsed. Raises ``AppError`` when it is gone or cannot be read."""
    path = folder / "archive.zip"
    chunks = 0
    with path.open("wb") as handle:
        while True:
            async with pool.acquire() as conn:
                data = await db.queries.import_job_chunk(conn, batch_id=batch_id,
                                                         part="archive", chunk=chunks)
            if data is None:
                break
            await asyncio.to_thread(handle.write, data)
            chunks += 1
    async with pool.acquire() as conn:
        manifest = await db.queries.import_job_chunk(conn, batch_id=batch_id, part="manifest",
                                                     chunk=0)
    if chunks == 0 and manifest is None:
        raise AppError(410, "upload_gone", "The uploaded archive is no longer stored.")
    rows = parse_manifest(manifest, settings.zip_max_members) if manifest is not None else None
    archive = await asyncio.to_thread(imports.open_archive, path, settings) if chunks else None
    return archive, rows
