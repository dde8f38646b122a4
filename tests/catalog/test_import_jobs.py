"""Import jobs: queued with their upload, run by `ecogram worker` processes, resumed after a
worker's death, each photo imported exactly once.

The worker tests start real ``ecogram worker`` processes on the test database and kill them
(SIGKILL) or stop them (SIGTERM) mid-job; the queue (pgqueuer) hands a dead worker's job to the
next worker after ECOGRAM_JOB_STALL_SECONDS (2 here).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import zipfile
from pathlib import Path

import pytest

from ecogram import db, jobs
from ecogram.catalog import import_jobs, imports
from ecogram.errors import AppError
from tests.catalog.photos import make_photo, make_zip
from tests.catalog.test_imports import executor, importer, pool  # noqa: F401
from tests.catalog.test_imports_interrupted import counts, tallies, wait_for

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = 200


def photo_zip(prefix: str, count: int, side: int = 400) -> bytes:
    return make_zip({f"{prefix}-{n:03}.jpg": make_photo(n, side, side) for n in range(count)},
                    zipfile.ZIP_STORED)


async def queue(pool, settings, executor, importer, tmp_path, data: bytes,  # noqa: F811
                manifest: bytes | None = None) -> int:
    path = tmp_path / f"upload-{time.monotonic_ns()}.zip"
    path.write_bytes(data)
    report, queued = await import_jobs.submit(
        pool, settings, executor, importer, path, manifest, prefer_async=True,
        enqueue=jobs.enqueue_import)
    assert queued and report["status"] == "queued"
    return report["id"]


class Workers:
    """`ecogram worker` processes on the test database; their output in files."""

    def __init__(self, settings, tmp_path: Path) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": settings.database_url,
                    "ECOGRAM_MIN_SIDE": "100", "ECOGRAM_DATA_DIR": str(tmp_path / "data"),
                    "ECOGRAM_LOG_LEVEL": "warning", "ECOGRAM_JOB_STALL_SECONDS": "2"}
        self.tmp_path = tmp_path
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self) -> asyncio.subprocess.Process:
        log = (self.tmp_path / f"worker-{len(self.processes)}.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ecogram", "worker", env=self.env, cwd=ROOT,
            stdout=log, stderr=log)
        log.close()
        self.processes.append(process)
        return process

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted(self.tmp_path.glob("worker-*.log")))

    async def stop_all(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
            await asyncio.wait_for(process.wait(), 30)


async def report_of(conn, batch_id: int) -> dict:
    report = await imports.batch_report(conn, batch_id, "")
    assert report is not None
    return report


async def wait_status(conn, batch_id: int, status: str, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        report = await report_of(conn, batch_id)
        if report["status"] == status:
            return report
        assert time.monotonic() < deadline, f"batch {batch_id} still {report['status']}"
        await asyncio.sleep(0.05)


async def assert_imported_once(conn, batch_id: int, count: int, by_queue: bool = True) -> dict:
    """The batch is done, with one line per file, and every photo stored exactly once."""
    report = await report_of(conn, batch_id)
    assert report["status"] == "done"
    assert counts(report) == tallies(report) == {"accepted": count, "duplicate": 0,
                                                 "rejected": 0}
    assert sorted(line["seq"] for line in report["items"]) == list(range(1, count + 1))
    row = await conn.fetchrow(
        "SELECT count(*) AS images, count(DISTINCT i.sha256) AS distinct_files, "
        "       count(o.image_id) AS originals "
        "  FROM images AS i LEFT JOIN originals AS o ON o.image_id = i.id "
        " WHERE i.batch_id = $1", batch_id)
    assert dict(row) == {"images": count, "distinct_files": count, "originals": count}
    stored = await conn.fetchrow("SELECT * FROM import_batches WHERE id = $1", batch_id)
    assert (stored["accepted"], stored["duplicate"], stored["rejected"]) == (count, 0, 0)
    assert stored["finished_at"] is not None
    # The upload is gone with the job's end, and so is the job (when a worker ran it).
    assert await conn.fetchval("SELECT count(*) FROM import_uploads WHERE batch_id = $1",
                               batch_id) == 0
    if by_queue:
        assert await conn.fetchval("SELECT count(*) FROM pgqueuer WHERE id = $1",
                                   stored["job_id"]) == 0
    assert await conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'import.batch' AND target = $1",
        f"batch:{batch_id}") == 1
    return report


# --- real workers ------------------------------------------------------------------------------


async def test_a_worker_killed_mid_job_is_resumed_and_every_photo_imported_once(
    pool, settings, executor, importer, conn, tmp_path  # noqa: F811
):
    batch_id = await queue(pool, settings, executor, importer, tmp_path,
                           photo_zip("KILL", PHOTOS))
    report = await report_of(conn, batch_id)
    assert (report["status"], report["files"], counts(report)) == (
        "queued", PHOTOS, {"accepted": 0, "duplicate": 0, "rejected": 0})
    assert await conn.fetchval("SELECT count(*) FROM import_uploads WHERE batch_id = $1",
                               batch_id) >= 1

    workers = Workers(settings, tmp_path)
    try:
        first = await workers.start()
        lines = "SELECT count(*) FROM import_items WHERE batch_id = $1"
        await wait_for(conn, lines, batch_id, at_least=20, seconds=90)
        live = await report_of(conn, batch_id)
        assert live["status"] == "running"
        await wait_for(conn, lines, batch_id, at_least=len(live["items"]) + 5)
        grown = await report_of(conn, batch_id)
        assert grown["accepted"] > live["accepted"]  # the counts grow as files land
        assert first.returncode is None, "the job ended before its worker could be killed"
        first.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(first.wait(), 30) == -signal.SIGKILL

        landed = await conn.fetchval("SELECT count(*) FROM images WHERE batch_id = $1",
                                     batch_id)
        assert 20 <= landed < PHOTOS
        # The dead worker's lease is gone: the batch waits in the queue for another worker,
        # with the true counts of what landed.
        waiting = await wait_status(conn, batch_id, "queued", seconds=10)
        assert counts(waiting) == tallies(waiting)
        assert waiting["accepted"] == landed and waiting["finished_at"] is None

        second = await workers.start()
        await wait_status(conn, batch_id, "done")
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0
    finally:
        await workers.stop_all()
    await assert_imported_once(conn, batch_id, PHOTOS)
    # Started twice: by the killed worker and by the one that finished it.
    assert await conn.fetchval("SELECT attempts FROM import_batches WHERE id = $1",
                               batch_id) == 2
    assert "Traceback" not in workers.output()


async def test_sigterm_stores_the_files_in_hand_and_gives_the_job_back(
    pool, settings, executor, importer, conn, tmp_path  # noqa: F811
):
    batch_id = await queue(pool, settings, executor, importer, tmp_path,
                           photo_zip("TERM", PHOTOS))
    workers = Workers(settings, tmp_path)
    try:
        first = await workers.start()
        await wait_for(conn, "SELECT count(*) FROM import_items WHERE batch_id = $1",
                       batch_id, at_least=20, seconds=90)
        assert first.returncode is None, "the job ended before its worker could be stopped"
        first.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.wait(), 30) == 0
        # Given back at once (no stall to wait out): queued, every file it took in hand stored
        # with its line, the start not counted against the batch.
        stopped = await report_of(conn, batch_id)
        assert stopped["status"] == "queued"
        assert counts(stopped) == tallies(stopped)
        landed = await conn.fetchval("SELECT count(*) FROM images WHERE batch_id = $1",
                                     batch_id)
        assert stopped["accepted"] == landed < PHOTOS
        job = await conn.fetchrow(
            "SELECT q.status, b.attempts FROM import_batches AS b JOIN pgqueuer AS q "
            "ON q.id = b.job_id WHERE b.id = $1", batch_id)
        assert (job["status"], job["attempts"]) == ("queued", 0)

        await workers.start()
        await wait_status(conn, batch_id, "done")
    finally:
        await workers.stop_all()
    await assert_imported_once(conn, batch_id, PHOTOS)


async def test_two_workers_run_each_job_once(pool, settings, executor, importer, conn,  # noqa: F811
                                             tmp_path):
    batches = [await queue(pool, settings, executor, importer, tmp_path,
                           photo_zip(f"TWO{n}", 40, side=240)) for n in range(4)]
    workers = Workers(settings, tmp_path)
    try:
        await workers.start()
        await workers.start()
        for batch_id in batches:
            await wait_status(conn, batch_id, "done")
    finally:
        await workers.stop_all()
    for batch_id in batches:
        await assert_imported_once(conn, batch_id, 40)
    started = await conn.fetch("SELECT attempts FROM import_batches WHERE id = ANY($1)", batches)
    assert [r["attempts"] for r in started] == [1, 1, 1, 1]
    assert await conn.fetchval("SELECT count(*) FROM images") == 160


# --- the job's own cases, run in this process ----------------------------------------------


async def test_a_batch_held_by_a_live_runner_is_not_run_twice(
    pool, settings, executor, importer, conn, tmp_path  # noqa: F811
):
    """Two processes given the same job (a heartbeat late under load): the batch's lease lets
    one run it; the other is told it is busy and imports nothing."""
    batch_id = await queue(pool, settings, executor, importer, tmp_path,
                           photo_zip("BUSY", 30, side=240))
    other = await db.create_pool(settings.database_url, 1, 6)  # another process's pool
    try:
        results = await asyncio.gather(
            import_jobs.run_job(pool, settings, executor, batch_id),
            import_jobs.run_job(other, settings, executor, batch_id),
        )
    finally:
        await other.close()
    assert sorted(results) in (["busy", "done"], ["done", "ended"])
    await assert_imported_once(conn, batch_id, 30, by_queue=False)
    # Once the batch is done, the job given again has nothing to do.
    assert await import_jobs.run_job(pool, settings, executor, batch_id) == "ended"


async def test_damaged_members_end_done_with_their_rejected_lines(
    pool, settings, executor, importer, conn, tmp_path  # noqa: F811
):
    good, bad = make_photo(1), make_photo(2)
    data = bytearray(make_zip({"DMG-1.jpg": good, "DMG-2.jpg": bad, "notes.txt": b"text"},
                              zipfile.ZIP_STORED))
    middle = bytes(data).find(bad) + len(bad) // 2
    data[middle] ^= 0xFF  # the member's CRC no longer matches
    batch_id = await queue(pool, settings, executor, importer, tmp_path, bytes(data))
    assert await import_jobs.run_job(pool, settings, executor, batch_id) == "done"
    report = await report_of(conn, batch_id)
    assert report["status"] == "done" and report["reason"] is None
    assert {line["filename"]: (line["outcome"], line.get("code"))
            for line in report["items"]} == {
        "DMG-1.jpg": ("accepted", None),
        "DMG-2.jpg": ("rejected", "damaged_member"),
        "notes.txt": ("rejected", "unsupported_type"),
    }


async def test_an_upload_that_cannot_be_read_ends_interrupted_with_the_reason(
    pool, settings, executor, importer, conn, tmp_path  # noqa: F811
):
    batch_id = await queue(pool, settings, executor, importer, tmp_path,
                           photo_zip("GONE", 3, side=240))
    await conn.execute("UPDATE import_uploads SET data = 'not a zip any more' "
                       "WHERE batch_id = $1", batch_id)
    assert await import_jobs.run_job(pool, settings, executor, batch_id) == "interrupted"
    report = await report_of(conn, batch_id)
    assert report["status"] == "interrupted"
    assert report["reason"] == "The archive is not a ZIP file."
    assert report["finished_at"] is not None and report["items"] == []
    assert await conn.fetchval("SELECT count(*) FROM import_uploads WHERE batch_id = $1",
                               batch_id) == 0


async def test_a_batch_that_keeps_dying_is_not_retried_for_ever(
    pool, settings, executor, importer, conn, tmp_path  # noqa: F811
):
    batch_id = await queue(pool, settings, executor, importer, tmp_path,
                           photo_zip("DIE", 3, side=240))
    await conn.execute("UPDATE import_batches SET attempts = $2 WHERE id = $1", batch_id,
                       import_jobs.MAX_ATTEMPTS)
    assert await import_jobs.run_job(pool, settings, executor, batch_id) == "interrupted"
    report = await report_of(conn, batch_id)
    assert report["status"] == "interrupted"
    assert "started 5 times" in report["reason"]
    assert await conn.fetchval("SELECT count(*) FROM images") == 0


async def test_a_damaged_archive_is_refused_whole_before_anything_is_queued(
    pool, settings, executor, importer, conn, tmp_path  # noqa: F811
):
    path = tmp_path / "broken.zip"
    path.write_bytes(photo_zip("BRK", 3, side=240)[:-30])  # the central directory cut off
    with pytest.raises(AppError) as refused:
        await import_jobs.submit(pool, settings, executor, importer, path, None,
                                 prefer_async=True, enqueue=jobs.enqueue_import)
    assert (refused.value.status, refused.value.code) == (422, "invalid_archive")
    assert await conn.fetchval("SELECT count(*) FROM import_batches") == 0
    assert await conn.fetchval("SELECT count(*) FROM pgqueuer") == 0


async def test_small_imports_run_in_the_request_large_ones_are_queued(
    pool, settings, executor, importer, conn, tmp_path  # noqa: F811
):
    small = settings.replace(import_async_files=3)
    path = tmp_path / "three.zip"
    path.write_bytes(photo_zip("SML", 3, side=240))
    report, queued = await import_jobs.submit(pool, small, executor, importer, path, None,
                                              prefer_async=False, enqueue=jobs.enqueue_import)
    assert not queued and report["status"] == "done" and report["accepted"] == 3
    path.write_bytes(photo_zip("BIG", 4, side=240))
    report, queued = await import_jobs.submit(pool, small, executor, importer, path, None,
                                              prefer_async=False, enqueue=jobs.enqueue_import)
    assert queued and (report["status"], report["files"]) == ("queued", 4)
    by_size = settings.replace(import_async_mb=1)
    path.write_bytes(make_zip({"MB-1.jpg": make_photo(1), "pad.bin": os.urandom(1_100_000)},
                              zipfile.ZIP_STORED))
    report, queued = await import_jobs.submit(pool, by_size, executor, importer, path, None,
                                              prefer_async=False, enqueue=jobs.enqueue_import)
    assert queued
