"""Records and their objects: releasing what no record names, the sweep, moving between stores.

Objects (originals and masters, named by their sha256) live behind ``ecogram.storage``; a record
says where its two are (``originals.store``). Three rules keep records and objects in step:

- an object is written before the record that names it commits (``storage.put``, inside the
  record's transaction, under a shared lock on the name), so a record never names a missing
  object;
- an object is deleted only under the exclusive lock on its name, after checking that no record
  at that store names it (``release``): a write in flight holds the shared lock until its
  record commits, so it is never deleted under it;
- the objects of a failed commit (written to S3, the record rolled back) are named by nobody:
  ``sweep`` removes those older than a day (``ecogram storage sweep``; ``serve`` runs it every
  ECOGRAM_STORAGE_SWEEP_INTERVAL seconds, one instance at a time).

``migrate`` moves every record's objects to another store, one record at a time: copy, check the
sha256 of what the target gives back, point the record at the target, release the source. An
interrupted run is simply run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ecogram import db, storage

log = logging.getLogger("ecogram.storage")

ORPHAN_AGE = 24 * 3600  # seconds an object nobody names is kept (a commit may still be coming)
MIGRATE_PAGE = 50
SWEEP_PAGE = 1000  # object names checked against the records in one query


async def release(pool: asyncpg.Pool | asyncpg.Connection, where: str, keys: Iterable[str]) -> int:
    """Delete the objects ``keys`` at ``where`` that no record at ``where`` names (after a purge,
    a replace or a move). A store that is away leaves them to the sweep. Returns how many went."""
    gone = 0
    for key in dict.fromkeys(keys):
        try:
            if await _release_one(pool, where, key):
                gone += 1
        except storage.StoreUnavailable:
            log.warning(json.dumps({"event": "storage_release_deferred", "store": where}))
            break
    return gone


async def _release_one(pool: Any, where: str, key: str) -> bool:
    async with _connection(pool) as conn, conn.transaction():
        await db.queries.storage_lock(conn, key=key)
        if await db.queries.storage_referenced(conn, key=key, store=where):
            return False
        await storage.delete(conn, where, key)
        return True


@contextlib.asynccontextmanager
async def _connection(pool_or_conn: Any) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the pool, or the connection given (a use case's own)."""
    if isinstance(pool_or_conn, asyncpg.Pool):
        async with pool_or_conn.acquire() as conn:
            yield conn
    else:
        yield pool_or_conn


async def refs_of(conn: asyncpg.Connection, image_id: int) -> asyncpg.Record | None:
    """Where an image's objects are, and their names (store, sha256, master_sha256)."""
    return await db.queries.storage_refs_of(conn, id=image_id)


def keys_of(refs: asyncpg.Record | None) -> list[str]:
    return [] if refs is None else [refs["sha256"], refs["master_sha256"]]


# --- the sweep ---------------------------------------------------------------------------------

async def sweep(pool: asyncpg.Pool, configured: str, min_age: float = ORPHAN_AGE) -> int:
    """Remove the objects older than ``min_age`` seconds that no record names, in every store a
    record names and in the configured one. Returns how many were removed."""
    async with pool.acquire() as conn:
        wheres = {r["store"] async for r in db.queries.storage_locations(conn)}
    removed = 0
    for where in sorted(wheres | {configured}):
        page: list[str] = []
        async for key in storage.older_than(pool, where, min_age):
            page.append(key)
            if len(page) == SWEEP_PAGE:
                removed += await _sweep_page(pool, where, page)
                page = []
        removed += await _sweep_page(pool, where, page)
    log.info(json.dumps({"event": "storage_sweep", "removed": removed}))
    return removed


async def _sweep_page(pool: asyncpg.Pool, where: str, keys: list[str]) -> int:
    """One query finds which of a page of names records use; only the others are released
    (each checked again under its lock)."""
    if not keys:
        return 0
    async with pool.acquire() as conn:
        named = {r["key"] async for r in db.queries.storage_named(conn, keys=keys, store=where)}
    return await release(pool, where, [key for key in keys if key not in named])


async def sweep_once(
    pool: asyncpg.Pool, configured: str, min_age: float = ORPHAN_AGE
) -> int | None:
    """``sweep`` unless another process is sweeping now (None then)."""
    async with pool.acquire() as conn:
        if not await db.queries.storage_sweep_try_lock(conn):
            return None
        try:
            return await sweep(pool, configured, min_age)
        finally:
            await db.queries.storage_sweep_unlock(conn)


async def sweep_forever(pool: asyncpg.Pool, configured: str, interval: float) -> None:
    """``serve``'s background sweep: every ``interval`` seconds, one process at a time."""
    while True:
        await asyncio.sleep(interval)
        try:
            await sweep_once(pool, configured)
        except Exception as exc:
            line = json.dumps({"event": "storage_sweep_failed", "error": type(exc).__name__})
            if db.is_unavailable(exc) or isinstance(exc, storage.StoreUnavailable):
                log.warning(line)
            else:
                log.exception(line)


# --- moving between stores ---------------------------------------------------------------------

@dataclass
class Moved:
    total: int
    moved: int = 0
    skipped: list[int] = field(default_factory=list)  # changed meanwhile: moved by a next run


async def migrate(
    pool: asyncpg.Pool, target: str, on_progress: Callable[[Moved], None] | None = None
) -> Moved:
    """Move every record's objects to ``target``; safe to interrupt and run again."""
    async with pool.acquire() as conn:
        report = Moved(await db.queries.storage_pending_count(conn, target=target))
    after = 0
    while True:
        async with pool.acquire() as conn:
            page = [r async for r in db.queries.storage_pending(
                conn, target=target, after=after, limit=MIGRATE_PAGE)]
        if not page:
            return report
        for row in page:
            if await _move(pool, row, target):
                report.moved += 1
            else:
                report.skipped.append(row["image_id"])
            if on_progress is not None:
                on_progress(report)
        after = page[-1]["image_id"]


async def _move(pool: asyncpg.Pool, row: asyncpg.Record, target: str) -> bool:
    source = row["store"]
    keys = [row["sha256"], row["master_sha256"]]
    objects = await storage.get_many(pool, source, keys)
    for key, data in objects.items():
        _check(key, data, source)
    async with pool.acquire() as conn, conn.transaction():
        for key, data in objects.items():
            await storage.put(conn, target, key, data)
        # What the target gives back must be what was read, before the record points at it.
        for key, data in (await storage.get_many(conn, target, keys)).items():
            _check(key, data, target)
        moved = await db.queries.storage_move(
            conn, id=row["image_id"], source=source, target=target, sha256=row["sha256"],
            master_sha256=row["master_sha256"])
    if moved is None:
        return False
    await release(pool, source, keys)
    return True


def _check(key: str, data: bytes, where: str) -> None:
    if hashlib.sha256(data).hexdigest() != key:
        raise storage.MissingObject(f"{where}: object {key} does not hash to its name")
