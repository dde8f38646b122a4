"""The object store stopped mid-import (a real SeaweedFS killed, then started again): each file
that cannot be stored is refused cleanly (503 `unavailable`), nothing is half-written (no record
names a missing object), the same files go in once it is back; /img serves what its memory tiers
hold meanwhile and answers 503 `unavailable` for the rest."""

from __future__ import annotations

import aiohttp
import pytest

from ecogram import keys
from ecogram.catalog import originals
from tests.catalog.photos import make_photo
from tests.conftest import assert_error
from tests.storage.conftest import BUCKET, list_objects


@pytest.fixture
def settings(settings, own_seaweed, prefix):
    # No eager renders on approval, so a photo's master is only read when /img asks for it.
    return settings.replace(storage_url=f"s3://{BUCKET}/{prefix}", eager_widths=(),
                            storage_timeout=3.0)


def form(*files: tuple[str, bytes]) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    for name, photo in files:
        data.add_field("file", photo, filename=name, content_type="application/octet-stream")
    return data


async def state(conn) -> tuple[set[str], set[str]]:
    """(codes with a record, the object names those records give)."""
    codes = {r["code"] for r in await conn.fetch("SELECT code FROM images")}
    rows = await conn.fetch("SELECT i.sha256, o.master_sha256 FROM images i "
                            "JOIN originals o ON o.image_id = i.id")
    return codes, {name for row in rows for name in row}


@pytest.mark.server_fault
async def test_store_stopped_mid_import_refuses_cleanly_and_retries(
    client, login_as, conn, own_seaweed, prefix
):
    importer, reviewer = await login_as("importer"), await login_as("reviewer")
    photos = {code: make_photo(seed, 600, 400) for seed, code in enumerate(
        ["HOT-1", "COLD-1", "NEW-1", "NEW-2", "NEW-3"], start=40)}
    response = await client.post("/api/v1/images", data=form(
        ("HOT-1.jpg", photos["HOT-1"]), ("COLD-1.jpg", photos["COLD-1"])), headers=importer)
    report = report_before = await response.json()
    assert response.status == 201 and report["accepted"] == 2, report
    for line in report["items"]:
        response = await client.post(f"/api/v1/images/{line['image_id']}/approve", json={},
                                     headers=reviewer)
        assert response.status == 200
    response = await client.get("/img/HOT-1?w=300&fmt=webp")  # rendered: in the memory tier
    assert response.status == 200
    hot = await response.read()

    own_seaweed.stop()

    # One file: refused with the JSON error shape, told when to come back.
    response = await client.post("/api/v1/images", data=form(("NEW-1.jpg", photos["NEW-1"])),
                                 headers=importer)
    body = await response.json()
    assert response.status == 503, body
    assert_error(body, "unavailable")
    assert body["error"]["details"]["retry_after"] == 5
    assert response.headers["Retry-After"] == "5"
    # A batch: each file refused on its own line, nothing stored.
    response = await client.post("/api/v1/images", data=form(
        ("NEW-2.jpg", photos["NEW-2"]), ("NEW-3.jpg", photos["NEW-3"])), headers=importer)
    report = await response.json()
    assert response.status == 201 and report["rejected"] == 2, report
    assert {(line["code"], line["status"]) for line in report["items"]} == {("unavailable", 503)}
    codes, _ = await state(conn)
    assert codes == {"HOT-1", "COLD-1"}  # no record for a file whose objects did not land

    # /img: what the memory tier holds is served; a photo never rendered cannot be.
    response = await client.get("/img/HOT-1?w=300&fmt=webp")
    assert response.status == 200 and await response.read() == hot
    response = await client.get("/img/COLD-1?w=300&fmt=webp")
    assert response.status == 503 and response.headers["Retry-After"] == "5"
    assert_error(await response.json(), "unavailable")
    # The original too.
    cold_id = next(line["image_id"] for line in report_before["items"]
                   if line["filename"] == "COLD-1.jpg")
    response = await client.get(f"/api/v1/images/{cold_id}/original", headers=importer)
    assert response.status == 503
    # A purge still goes through; its objects are left to the sweep.
    hot_id = next(line["image_id"] for line in report_before["items"]
                  if line["filename"] == "HOT-1.jpg")
    response = await client.delete(f"/api/v1/images/{hot_id}?purge=true",
                                   headers=await login_as("admin"))
    assert response.status == 204

    own_seaweed.start()  # the same server, its data kept

    response = await client.post("/api/v1/images", data=form(
        ("NEW-1.jpg", photos["NEW-1"]), ("NEW-2.jpg", photos["NEW-2"]),
        ("NEW-3.jpg", photos["NEW-3"])), headers=importer)
    report = await response.json()
    assert response.status == 201 and report["accepted"] == 3, report
    response = await client.get("/img/COLD-1?w=300&fmt=webp")
    assert response.status == 200
    # Every record's objects are in the store: none names a missing one. The purged photo's
    # objects wait for the sweep (here without the day's grace), which leaves only those.
    codes, names = await state(conn)
    assert codes == {"COLD-1", "NEW-1", "NEW-2", "NEW-3"}
    assert names < set(await list_objects(own_seaweed.endpoint, prefix))
    app = client.server.app
    await originals.sweep(app[keys.db_pool], app[keys.settings].storage_url, min_age=0)
    assert names == set(await list_objects(own_seaweed.endpoint, prefix))
