"""Archive members with absolute paths or '..' are refused; the rest of the archive imports."""

from __future__ import annotations

import aiohttp

from tests.catalog.photos import make_photo, make_zip
from tests.conftest import IMAGES


async def post_archive(client, headers, archive: bytes) -> tuple[int, dict]:
    data = aiohttp.FormData()
    data.add_field("archive", archive, filename="a.zip", content_type="application/zip")
    response = await client.post("/api/v1/imports", data=data, headers=headers)
    return response.status, await response.json()


async def test_zip_slip_fixture(client, login_as, conn):
    headers = await login_as("importer")
    status, body = await post_archive(
        client, headers, (IMAGES / "hostile" / "zip-slip.zip").read_bytes()
    )
    assert status == 201, body
    lines = {line["filename"]: line for line in body["items"]}
    assert lines["evil.jpg"]["outcome"] == "rejected"
    assert lines["evil.jpg"]["code"] == "unsafe_path"
    assert lines["evil.jpg"]["details"]["member"] == "../../evil.jpg"
    assert lines["SKU-100_1.jpg"]["outcome"] == "accepted"
    assert [tuple(r) for r in await conn.fetch("SELECT code, position FROM images")] == [
        ("SKU-100", 1)]
    assert (await client.get("/healthz")).status == 200


async def test_absolute_and_parent_paths_in_every_spelling(client, login_as, conn):
    headers = await login_as("importer")
    archive = make_zip({
        "/etc/SKU-1.jpg": make_photo(1),
        "C:/temp/SKU-2.jpg": make_photo(2),
        "photos/../../SKU-3.jpg": make_photo(3),
        "photos\\..\\..\\SKU-4.jpg": make_photo(4),
        "photos/SKU-5.jpg": make_photo(5),
    })
    status, body = await post_archive(client, headers, archive)
    assert status == 201, body
    outcomes = [(line["outcome"], line.get("code")) for line in body["items"]]
    assert outcomes == [("rejected", "unsafe_path")] * 4 + [("accepted", None)]
    assert await conn.fetchval("SELECT array_agg(code) FROM images") == ["SKU-5"]
