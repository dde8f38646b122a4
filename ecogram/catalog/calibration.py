"""``ecogram calibrate``: calibrated quality for photos approved before it existed, or found by
an older calibration (``quality.VERSION``) or for another ECOGRAM_QUALITY_TARGET.

The same search and the same stored rows as at approval (``delivery.calibrate_timed``,
``delivery.store_calibration``; docs/delivery.md "Calibrated quality"), one photo at a time in
id order, in keyset batches. Idempotent and resumable: what a run stored is current, so the
next run (without ``everything``) starts with what is still missing. Running servers pick the
new q up through the NOTIFY each photo's results send.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable
from concurrent.futures import Executor

import asyncpg

from ecogram import db, storage
from ecogram.catalog.delivery import (
    Resolved,
    calibrate_timed,
    calibration_fields,
    store_calibration,
)
from ecogram.imaging import quality
from ecogram.settings import Settings

log = logging.getLogger("ecogram.calibration")

BATCH = 50


async def _stale(pool: asyncpg.Pool, settings: Settings, *, after: int, everything: bool,
                 limit: int | None) -> list[int]:
    async with pool.acquire() as conn:
        return [row["id"] async for row in db.queries.quality_stale(
            conn, after=after, everything=everything, formats=list(settings.quality_bounds),
            calibration=quality.VERSION, target=settings.quality_target, limit=limit)]


async def _load(pool: asyncpg.Pool, resolved: Resolved, kind: str) -> bytes | None:
    """This version's master or original; None when the photo changed meanwhile."""
    query = db.queries.delivery_master if kind == "master" else db.queries.delivery_original
    async with pool.acquire() as conn:
        row = await query(conn, id=resolved.id, version=resolved.version)
    return None if row is None else await storage.get(pool, row["store"], row["key"])


async def calibrate_one(pool: asyncpg.Pool, executor: Executor | None, settings: Settings,
                        image_id: int) -> str:
    """Calibrate and store one photo: "calibrated", or "skipped" when it is no longer an
    approved live photo or changed while being read."""
    async with pool.acquire() as conn:
        row = await db.queries.delivery_resolve_id(conn, id=image_id)
    if row is None or row["status"] != "approved":
        return "skipped"
    resolved = Resolved.from_row(row)
    master = await _load(pool, resolved, "master")
    original = await _load(pool, resolved, "original")
    if master is None or original is None:
        return "skipped"
    job = functools.partial(
        calibrate_timed, original=original, resolved=resolved,
        formats=tuple(settings.quality_bounds), target=settings.quality_target,
        bounds=settings.quality_bounds, widths=settings.quality_widths,
    )
    found, seconds, _ = await asyncio.get_running_loop().run_in_executor(executor, job, master)
    # Replaced meanwhile: these rows are an older version's, never read (resolutions ask for
    # the current version) and removed when the new version's results are stored.
    await store_calibration(pool, resolved, found, settings.quality_target)
    log.info(json.dumps({
        "event": "quality_calibrated", "image_id": resolved.id, "version": resolved.version,
        **calibration_fields(found), "seconds": round(seconds, 2),
    }))
    return "calibrated"


async def backfill(pool: asyncpg.Pool, executor: Executor | None, settings: Settings, *,
                   everything: bool = False, batch: int = BATCH,
                   on_progress: Callable[[str, int, int], None] | None = None
                   ) -> dict[str, int]:
    """Calibrate every approved photo lacking a current result (every one with
    ``everything``), in id order; ``on_progress(outcome, image id, total)`` after each."""
    if not settings.quality_bounds or settings.quality_target <= 0:
        raise ValueError("calibration is off (ECOGRAM_QUALITY_TARGET=0 or no bounds)")
    total = len(await _stale(pool, settings, after=0, everything=everything, limit=None))
    counts = {"calibrated": 0, "skipped": 0, "failed": 0}
    after = 0
    while ids := await _stale(pool, settings, after=after, everything=everything, limit=batch):
        for image_id in ids:
            try:
                outcome = await calibrate_one(pool, executor, settings, image_id)
            except Exception as exc:
                if db.is_unavailable(exc) or isinstance(exc, storage.StoreUnavailable):
                    raise  # nothing else will work either: stop, a run later resumes
                log.exception(json.dumps({"event": "quality_calibration_failed",
                                          "image_id": image_id, "error": type(exc).__name__}))
                outcome = "failed"
            counts[outcome] += 1
            if on_progress:
                on_progress(outcome, image_id, total)
        after = ids[-1]  # failures stay stale: never fetched again in this run
    return counts
