"""``POST /api/v1/imports`` as a job: 202 with the batch's URL at once, then its report goes
queued → running → done with counts that grow, run by the worker inside the server process."""

from __future__ import annotations

import asyncio
import time
import zipfile

import aiohttp

from ecogram.app import create_app
from tests.catalog.photos import make_photo, make_zip
from tests.conftest import assert_error


def archive_form(count: int, prefix: str = "JOB") -> aiohttp.FormData:
    data = aiohttp.FormData()
    archive = make_zip({f"{prefix}-{n:03}.jpg": make_photo(n, 400, 400) for n in range(count)},
                       zipfile.ZIP_STORED)
    data.add_field("archive", archive, filename="batch.zip", content_type="application/zip")
    return data


async def test_prefer_respond_async_answers_202_and_the_report_shows_progress(
    client, login_as, conn
):
    headers = await login_as("importer")
    response = await client.post("/api/v1/imports", data=archive_form(60),
                                 headers={**headers, "Prefer": "wait=5, respond-async"})
    body = await response.json()
    assert response.status == 202, body
    assert response.headers["Location"] == f"/api/v1/imports/{body['id']}"
    assert response.headers["Preference-Applied"] == "respond-async"
    assert body["status"] in ("queued", "running")  # the in-process worker may be quick
    assert body["files"] == 60 and body["source"] == "archive"

    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + 120
    while True:
        polled = await client.get(response.headers["Location"], headers=headers)
        assert polled.status == 200
        report = await polled.json()
        seen.append((report["status"], report["accepted"]))
        if report["status"] == "done":
            break
        assert report["status"] in ("queued", "running"), report
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    statuses = [status for status, _ in seen]
    assert "running" in statuses
    assert statuses == sorted(statuses, key=("queued", "running", "done").index)
    accepted = [n for _, n in seen]
    assert accepted == sorted(accepted) and len(set(accepted)) > 2  # counts grow as files land
    assert (report["accepted"], report["duplicate"], report["rejected"]) == (60, 0, 0)
    assert len(report["items"]) == 60 and report["reason"] is None
    assert await conn.fetchval("SELECT count(*) FROM images") == 60
    assert await conn.fetchval("SELECT count(*) FROM import_uploads") == 0


async def test_without_prefer_a_small_import_answers_201_and_a_large_one_202(
    aiohttp_client, settings, conn
):
    client = await aiohttp_client(create_app(settings.replace(import_async_files=3,
                                                                job_workers=0)))
    headers = await _admin(client)
    small = await client.post("/api/v1/imports", data=archive_form(3, "SML"), headers=headers)
    assert small.status == 201, await small.text()
    assert "Location" not in small.headers
    large = await client.post("/api/v1/imports", data=archive_form(4, "LRG"), headers=headers)
    body = await large.json()
    assert large.status == 202, body
    assert large.headers["Location"] == f"/api/v1/imports/{body['id']}"
    assert "Preference-Applied" not in large.headers
    # No worker in this process (ECOGRAM_JOB_WORKERS=0): it waits in the queue.
    await asyncio.sleep(0.3)
    report = await (await client.get(large.headers["Location"], headers=headers)).json()
    assert (report["status"], report["files"], report["accepted"]) == ("queued", 4, 0)
    assert await conn.fetchval("SELECT count(*) FROM import_uploads WHERE batch_id = $1",
                               body["id"]) >= 1


async def test_a_damaged_archive_is_refused_at_once_even_as_a_job(client, login_as, conn):
    headers = await login_as("importer")
    data = aiohttp.FormData()
    data.add_field("archive", b"PK\x03\x04 not really a zip", filename="x.zip",
                   content_type="application/zip")
    response = await client.post("/api/v1/imports", data=data,
                                 headers={**headers, "Prefer": "respond-async"})
    assert response.status == 422
    assert_error(await response.json(), "invalid_archive")
    assert await conn.fetchval("SELECT count(*) FROM import_batches") == 0


async def _admin(client) -> dict[str, str]:
    """The first account registered is admin (who may import)."""
    password = "correct horse battery staple"
    response = await client.post("/api/v1/auth/register", json={
        "email": "admin@example.com", "name": "Ada Admin", "password": password})
    assert response.status == 201, await response.text()
    login = await client.post("/api/v1/auth/login", json={"email": "admin@example.com",
                                                          "password": password})
    return {"Authorization": f"Bearer {(await login.json())['access_token']}"}
