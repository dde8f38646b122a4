"""A batch whose runner is gone reads as ``interrupted``, with the counts of what landed.

The runner holds a lease on its batch (a PostgreSQL session advisory lock) for the batch's life;
PostgreSQL drops it when the runner's session ends, so a reader can tell a live runner from a
dead one exactly. These tests kill a real ``ecogram import`` with SIGKILL mid-batch.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from ecogram import db
from ecogram.catalog import imports
from ecogram.catalog.sources import ImportItem
from tests.catalog.photos import make_photo
from tests.catalog.test_imports import executor, importer, item, pool, run  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
BATCH = 60  # photos in the killed import: enough to be killed well before its end


def tallies(report: dict) -> dict[str, int]:
    """The counts the report's own lines add up to."""
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for line in report["items"]:
        counts[line["outcome"]] += 1
    return counts


def counts(report: dict) -> dict[str, int]:
    return {k: report[k] for k in ("accepted", "duplicate", "rejected")}


async def wait_for(conn, sql: str, *args, at_least: int = 1, seconds: float = 60.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = await conn.fetchval(sql, *args)
        if value is not None and value >= at_least:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {sql}")


async def test_killed_import_reads_as_interrupted_with_real_counts(
    client, login_as, conn, settings, tmp_path
):
    headers = await login_as("importer")
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(BATCH):
        (folder / f"KILL-{n:03}.jpg").write_bytes(make_photo(n, 900, 900))
    (folder / "KILL-BAD.jpg").write_bytes(b"not a photo")  # a rejected line among them
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": settings.database_url,
           "ECOGRAM_MIN_SIDE": "100", "ECOGRAM_DATA_DIR": str(tmp_path / "data"),
           "ECOGRAM_LOG_LEVEL": "warning"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ecogram", "import", str(folder), "--as", "importer@example.com",
        env=env, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        batch_id = await wait_for(conn, "SELECT max(id) FROM import_batches")
        await wait_for(conn, "SELECT count(*) FROM import_items WHERE batch_id = $1 "
                       "AND outcome = 'accepted'", batch_id, at_least=3)
        # While the runner lives, its batch is running, and counts what has landed so far.
        live = await (await client.get(f"/api/v1/imports/{batch_id}", headers=headers)).json()
        assert live["status"] == "running" and live["finished_at"] is None
        assert live["accepted"] >= 3
        assert process.returncode is None, "the import ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), 30)
    assert process.returncode == -signal.SIGKILL

    # PostgreSQL ends the dead process's sessions (and drops the lease) as soon as it reads the
    # closed socket: a matter of milliseconds, which the reader may beat; hence the short wait.
    deadline = time.monotonic() + 10
    while True:
        response = await client.get(f"/api/v1/imports/{batch_id}", headers=headers)
        assert response.status == 200
        report = await response.json()
        if report["status"] != "running" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert report["status"] == "interrupted"
    assert report["finished_at"] is not None
    assert counts(report) == tallies(report)
    assert report["accepted"] >= 3
    landed = await conn.fetchval("SELECT count(*) FROM images WHERE batch_id = $1", batch_id)
    assert report["accepted"] == landed
    assert len(report["items"]) < BATCH + 1  # killed mid-way: not every file was seen
    # Settled once, in the table too: the stored counts are the real ones.
    row = await conn.fetchrow("SELECT * FROM import_batches WHERE id = $1", batch_id)
    assert (row["status"], row["accepted"], row["duplicate"], row["rejected"]) == (
        "interrupted", *counts(report).values())
    again = await (await client.get(f"/api/v1/imports/{batch_id}", headers=headers)).json()
    assert again == report


async def test_a_live_runner_keeps_its_batch_running(pool, settings, executor, importer, conn):  # noqa: F811
    """A reader never takes a slow batch for a dead one: running, real counts, then done."""
    gate = threading.Event()

    def held() -> bytes:
        assert gate.wait(30)
        return make_photo(3)

    items = [item("LIVE-1.jpg", make_photo(1)), item("LIVE-2.jpg", make_photo(2)),
             ImportItem(filename="LIVE-3.jpg", load=held)]
    task = asyncio.create_task(run(pool, settings, executor, importer, items))
    try:
        batch_id = await wait_for(conn, "SELECT max(id) FROM import_batches")
        await wait_for(conn, "SELECT count(*) FROM import_items WHERE batch_id = $1",
                       batch_id, at_least=2)
        for _ in range(3):  # and reading again changes nothing
            report = await imports.batch_report(conn, batch_id, "")
            assert report["status"] == "running"
            assert counts(report) == {"accepted": 2, "duplicate": 0, "rejected": 0}
    finally:
        gate.set()
    report = await task
    assert report["status"] == "done"
    assert counts(report) == tallies(report) == {"accepted": 3, "duplicate": 0, "rejected": 0}


async def test_a_run_stopped_by_an_error_ends_interrupted(pool, settings, executor, importer,  # noqa: F811
                                                          conn):
    def items():
        yield item("ERR-1.jpg", make_photo(1))
        yield item("ERR-2.jpg", make_photo(2))
        raise OSError("the disk went away")

    with pytest.raises(OSError):
        await run(pool, settings, executor, importer, items())
    batch_id = await conn.fetchval("SELECT max(id) FROM import_batches")
    report = await imports.batch_report(conn, batch_id, "")
    assert report["status"] == "interrupted"
    assert counts(report) == tallies(report)
    assert report["accepted"] == await conn.fetchval(
        "SELECT count(*) FROM images WHERE batch_id = $1", batch_id)


async def test_a_batch_left_running_before_the_lease_existed_is_interrupted(conn, importer):  # noqa: F811
    """Rows a crashed older version left 'running' (with 0/0/0 stored) read as interrupted."""
    batch_id = await conn.fetchval(
        "INSERT INTO import_batches (source, importer_id, importer) "
        "VALUES ('cli', $1, 'Ida Importer') RETURNING id", importer.id)
    await conn.execute(
        "INSERT INTO import_items (batch_id, seq, filename, outcome, code, message, status) "
        "VALUES ($1, 1, 'a.jpg', 'rejected', 'unsupported_type', 'no', 415), "
        "       ($1, 2, 'b.jpg', 'rejected', 'too_small', 'no', 422)", batch_id)
    report = await imports.batch_report(conn, batch_id, "")
    assert report["status"] == "interrupted"
    assert counts(report) == {"accepted": 0, "duplicate": 0, "rejected": 2}


@pytest.mark.parametrize("pool_size", [1, 2])
async def test_concurrent_batches_do_not_starve_the_pool(settings, executor, importer,  # noqa: F811
                                                         pool_size):
    """Every running batch is held, yet eight at once finish on a pool of two (or one): the
    leases share one connection, never one each."""
    small = await db.create_pool(settings.database_url, 1, pool_size)
    try:
        runs = [run(small, settings, executor, importer, [item(f"POOL-{n}.jpg", make_photo(n))])
                for n in range(8)]
        reports = await asyncio.wait_for(asyncio.gather(*runs), 60)
    finally:
        await small.close()
    assert [r["status"] for r in reports] == ["done"] * 8
    assert all(r["accepted"] == 1 for r in reports)


async def test_a_lost_lease_connection_is_replaced(pool, settings, executor, importer, conn):  # noqa: F811
    """The lease's session killed under a running batch (a server restart, a DBA's
    pg_terminate_backend): readers see the batch as interrupted, since nothing proves a runner;
    the runner still ends it as done, and the next batch gets a new lease."""
    gate = threading.Event()

    def held() -> bytes:
        assert gate.wait(30)
        return make_photo(2)

    task = asyncio.create_task(run(pool, settings, executor, importer, [
        item("LOST-1.jpg", make_photo(1)), ImportItem(filename="LOST-2.jpg", load=held)]))
    try:
        batch_id = await wait_for(conn, "SELECT max(id) FROM import_batches")
        await wait_for(conn, "SELECT count(*) FROM import_items WHERE batch_id = $1", batch_id)
        assert await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks, "
            "     hashtextextended('ecogram.batch:' || $1, 0) AS key "
            "WHERE locktype = 'advisory' AND objsubid = 1 "
            "  AND classid::text::bigint = (key >> 32) & 4294967295 "
            "  AND objid::text::bigint = key & 4294967295", str(batch_id)) == 1
        deadline = time.monotonic() + 10
        while (await imports.batch_report(conn, batch_id, ""))["status"] == "running":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert (await imports.batch_report(conn, batch_id, ""))["status"] == "interrupted"
    finally:
        gate.set()
    report = await task
    assert (report["status"], report["accepted"]) == ("done", 2)
    following = await run(pool, settings, executor, importer, [item("LOST-3.jpg", make_photo(3))])
    assert following["status"] == "done"
