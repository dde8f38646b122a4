"""Originals and masters in an S3-compatible object store (a real SeaweedFS, tests/storage/
conftest.py): import, /img, the original, replace, export and purge work with no bytes of them in
PostgreSQL; objects are named by their sha256 and nothing is left behind."""

from __future__ import annotations

import io
import zipfile

import aiohttp
import pytest
import pyvips

from ecogram import keys, storage
from ecogram.catalog import originals
from tests.catalog.photos import make_photo
from tests.storage.conftest import BUCKET, list_objects, sha256


@pytest.fixture
def settings(settings, seaweed, prefix):
    """The suite's settings, with originals in this test's prefix of the bucket."""
    return settings.replace(storage_url=f"s3://{BUCKET}/{prefix}")


async def upload(client, headers, code: str, photo: bytes, name: str = "p.jpg"):
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("file", photo, filename=name, content_type="application/octet-stream")
    form.add_field("code", code)
    return await client.post("/api/v1/images", data=form, headers=headers)


async def stored_names(conn) -> set[str]:
    """The object names the records give (originals and masters)."""
    rows = await conn.fetch("SELECT i.sha256, o.master_sha256 FROM images i "
                            "JOIN originals o ON o.image_id = i.id")
    return {name for row in rows for name in row}


async def test_photo_lifecycle_with_originals_in_the_object_store(
    client, login_as, conn, seaweed, prefix, settings
):
    importer, reviewer = await login_as("importer"), await login_as("reviewer")
    admin = await login_as("admin")
    photo = make_photo(1, 900, 600)
    response = await upload(client, importer, "S3-1", photo)
    body = await response.json()
    assert response.status == 201, body
    record = body["items"][0]["record"]

    # The record says where its objects are; PostgreSQL holds none of their bytes.
    row = await conn.fetchrow("SELECT * FROM originals WHERE image_id = $1", record["id"])
    assert row["store"] == f"s3://{BUCKET}/{prefix}"
    assert await conn.fetchval("SELECT count(*) FROM blobs") == 0
    objects = await list_objects(seaweed.endpoint, prefix)
    assert set(objects) == {sha256(photo), row["master_sha256"]}
    assert all(sha256(data) == name for name, data in objects.items())  # content-addressed
    assert objects[sha256(photo)] == photo

    # The original as uploaded, through the API.
    response = await client.get(f"/api/v1/images/{record['id']}/original", headers=importer)
    assert response.status == 200 and await response.read() == photo

    # /img renders from the master read from the object store (a cold size), and from the
    # original for a size beyond the master... here the master is the original's size.
    response = await client.post(f"/api/v1/images/{record['id']}/approve", json={},
                                 headers=reviewer)
    assert response.status == 200, await response.text()
    response = await client.get("/img/S3-1?w=300&fmt=webp")
    assert response.status == 200, await response.text()
    rendered = pyvips.Image.new_from_buffer(await response.read(), "")
    assert (rendered.width, rendered.height) == (300, 200)

    # The staff preview reads the master too.
    response = await client.get(f"/admin/images/{record['id']}/preview?w=320", headers=reviewer)
    assert response.status == 200, await response.text()

    # Replace: the new photo's objects in, the old ones (named by no record now) out.
    new_photo = make_photo(2, 800, 800)
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("file", new_photo, filename="new.jpg", content_type="image/jpeg")
    response = await client.put(f"/api/v1/images/{record['id']}/file", data=form,
                                headers=importer)
    assert response.status == 200, await response.text()
    objects = await list_objects(seaweed.endpoint, prefix)
    assert set(objects) == await stored_names(conn)
    assert sha256(new_photo) in objects and sha256(photo) not in objects
    assert await conn.fetchval("SELECT count(*) FROM blobs") == 0

    # The ZIP export carries the original read from the object store.
    response = await client.post(f"/api/v1/images/{record['id']}/approve", json={},
                                 headers=reviewer)
    assert response.status == 200, await response.text()
    response = await client.get("/api/v1/exports/zip", headers=reviewer)
    assert response.status == 200, await response.text()
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    assert archive.read("S3-1_1.jpg") == new_photo

    # Purge: the record goes, and its objects with it.
    response = await client.delete(f"/api/v1/images/{record['id']}?purge=true", headers=admin)
    assert response.status == 204, await response.text()
    assert await list_objects(seaweed.endpoint, prefix) == {}
    assert await conn.fetchval("SELECT count(*) FROM originals") == 0


async def test_an_object_two_records_name_stays_until_both_are_gone(
    client, login_as, conn, seaweed, prefix
):
    importer, admin = await login_as("importer"), await login_as("admin")
    photo = make_photo(3)
    first = (await (await upload(client, importer, "TWIN-A", photo)).json())["items"][0]
    second = (await (await upload(client, importer, "TWIN-B", photo)).json())["items"][0]
    assert len(await list_objects(seaweed.endpoint, prefix)) == 2  # one original, one master
    response = await client.delete(f"/api/v1/images/{first['image_id']}?purge=true",
                                   headers=admin)
    assert response.status == 204
    assert sha256(photo) in await list_objects(seaweed.endpoint, prefix)  # TWIN-B names it
    response = await client.get(f"/api/v1/images/{second['image_id']}/original",
                                headers=importer)
    assert await response.read() == photo
    response = await client.delete(f"/api/v1/images/{second['image_id']}?purge=true",
                                   headers=admin)
    assert response.status == 204
    assert await list_objects(seaweed.endpoint, prefix) == {}


async def test_sweep_removes_only_old_objects_no_record_names(
    client, login_as, conn, seaweed, prefix, settings
):
    importer = await login_as("importer")
    response = await upload(client, importer, "KEEP-1", make_photo(4))
    assert response.status == 201
    # An object written by an import whose commit never came.
    orphan = make_photo(5)
    pool = client.server.app[keys.db_pool]
    async with pool.acquire() as own, own.transaction():
        await storage.put(own, settings.storage_url, sha256(orphan), orphan)
    assert sha256(orphan) in await list_objects(seaweed.endpoint, prefix)

    # Younger than a day: kept (its record may still be on its way).
    assert await originals.sweep(pool, settings.storage_url) == 0
    assert sha256(orphan) in await list_objects(seaweed.endpoint, prefix)
    # Old enough: removed; what records name stays.
    assert await originals.sweep(pool, settings.storage_url, min_age=0) == 1
    assert set(await list_objects(seaweed.endpoint, prefix)) == await stored_names(conn)
