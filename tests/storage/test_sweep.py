"""The sweep: objects no record names, older than a day, go; the rest stays; one sweeper at a
time (PostgreSQL store; the object-store sweep is in test_object_store.py)."""

from __future__ import annotations

import asyncio
import hashlib

from ecogram import cli, db
from ecogram.app import create_app
from ecogram.catalog import originals

OLD, FRESH = hashlib.sha256(b"old").hexdigest(), hashlib.sha256(b"fresh").hexdigest()


async def _fill(url: str) -> None:
    conn = await db.connect(url)
    try:
        await conn.execute(
            "INSERT INTO blobs (sha256, data, created_at) VALUES "
            "($1, 'old', now() - interval '2 days'), ($2, 'fresh', now() - interval '2 hours')",
            OLD, FRESH)
    finally:
        await conn.close()


async def _blobs(url: str) -> set[str]:
    conn = await db.connect(url)
    try:
        return {r["sha256"] for r in await conn.fetch("SELECT sha256 FROM blobs")}
    finally:
        await conn.close()


def test_storage_sweep_removes_old_objects_no_record_names(settings, monkeypatch, capsys):
    asyncio.run(_fill(settings.database_url))
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ECOGRAM_LOG_LEVEL", "warning")
    assert cli.main(["storage", "sweep"]) == 0
    assert "1 objects no record names removed" in capsys.readouterr().out
    assert asyncio.run(_blobs(settings.database_url)) == {FRESH}  # younger than a day: kept


async def test_one_sweeper_at_a_time(settings, conn):
    await _fill(settings.database_url)
    pool = await db.create_pool(settings.database_url, 1, 3)
    try:
        assert await db.queries.storage_sweep_try_lock(conn)  # another process sweeping
        assert await originals.sweep_once(pool, "postgres") is None
        assert await db.queries.storage_sweep_unlock(conn)
        assert await originals.sweep_once(pool, "postgres") == 1
    finally:
        await pool.close()


async def test_serve_sweeps_in_the_background(aiohttp_client, settings):
    await _fill(settings.database_url)
    await aiohttp_client(create_app(settings.replace(storage_sweep_interval=1)))
    for _ in range(100):
        if await _blobs(settings.database_url) == {FRESH}:
            break
        await asyncio.sleep(0.1)
    assert await _blobs(settings.database_url) == {FRESH}
