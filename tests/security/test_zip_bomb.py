"""ZIP bombs stop early: per-member size, total inflated size and member count are limited,
whatever the archive declares."""

from __future__ import annotations

import zipfile
from pathlib import Path

import aiohttp
import pytest

from ecogram.catalog.sources import CHUNK, ZipArchive
from ecogram.errors import AppError
from tests.catalog.photos import make_photo, make_zip
from tests.conftest import IMAGES, assert_error

BOMB = IMAGES / "hostile" / "zip-bomb.zip"


async def post_archive(client, headers, archive: bytes):
    data = aiohttp.FormData()
    data.add_field("archive", archive, filename="a.zip", content_type="application/zip")
    response = await client.post("/api/v1/imports", data=data, headers=headers)
    return response.status, await response.json()


def test_member_read_stops_at_the_limit_not_at_its_200_mb():
    archive = ZipArchive(BOMB, max_member=25 * 1024 * 1024, max_total=4096 * 1024 * 1024,
                         max_members=10)
    try:
        (member,) = archive.members()
        with pytest.raises(AppError) as raised:
            archive.read(member)
        assert (raised.value.status, raised.value.code) == (413, "file_too_large")
        # At most one chunk past the limit was inflated, not the 200 MB the member holds.
        assert archive._inflated <= 25 * 1024 * 1024 + CHUNK
    finally:
        archive.close()


def test_declared_sizes_are_not_trusted(tmp_path: Path):
    """A member whose header claims 10 bytes is still read and counted by what it inflates."""
    path = tmp_path / "liar.zip"
    path.write_bytes(make_zip({"SKU-1.jpg": b"\0" * (3 * 1024 * 1024)}))
    # Rewrite the declared uncompressed size (central directory and local header) to 10 bytes.
    raw = bytearray(path.read_bytes())
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24:central + 28] = (10).to_bytes(4, "little")
    raw[22:26] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    archive = ZipArchive(path, max_member=1024 * 1024, max_total=1 << 40, max_members=10)
    try:
        (member,) = archive.members()
        with pytest.raises(AppError) as raised:
            archive.read(member)
        # zipfile stops at the declared size and then fails the CRC: damaged, not imported.
        assert raised.value.status in (413, 422)
    finally:
        archive.close()


async def test_zip_bomb_fixture_over_http(client, login_as, conn):
    headers = await login_as("importer")
    status, body = await post_archive(client, headers, BOMB.read_bytes())
    assert status == 201, body
    (line,) = body["items"]
    assert (line["outcome"], line["status"], line["code"]) == ("rejected", 413, "file_too_large")
    assert await conn.fetchval("SELECT count(*) FROM images") == 0
    assert (await client.get("/healthz")).status == 200


async def test_total_inflated_size_is_limited(aiohttp_client, settings, conn):
    from ecogram.app import create_app
    from tests.views.test_api_imports import _login

    client = await aiohttp_client(create_app(settings.replace(zip_max_total_mb=1)))
    headers = await _login(client)
    archive = make_zip({
        "SKU-1.jpg": make_photo(1),
        "padding.bin": b"\0" * (2 * 1024 * 1024),  # deflates to a few KB
    })
    status, body = await post_archive(client, headers, archive)
    assert status == 201, body
    lines = {line["filename"]: line for line in body["items"]}
    assert (lines["padding.bin"]["status"], lines["padding.bin"]["code"]) == (
        413, "archive_too_large")
    # Members are read concurrently: the photo was read before the limit was crossed (and
    # imported) or after (and refused like every member still unread).
    assert (lines["SKU-1.jpg"]["outcome"], lines["SKU-1.jpg"].get("code")) in (
        ("accepted", None), ("rejected", "archive_too_large"))
    assert (await client.get("/healthz")).status == 200


def test_total_limit_stops_the_rest_of_the_archive(tmp_path: Path):
    path = tmp_path / "a.zip"
    path.write_bytes(make_zip({"SKU-1.jpg": b"x" * 1000, "padding.bin": b"\0" * 3_000_000,
                               "SKU-2.jpg": b"y" * 10}))
    archive = ZipArchive(path, max_member=10_000_000, max_total=2_000_000, max_members=10)
    try:
        first, padding, last = archive.members()
        assert archive.read(first) == b"x" * 1000
        for member in (padding, last):
            with pytest.raises(AppError) as raised:
                archive.read(member)
            assert (raised.value.status, raised.value.code) == (413, "archive_too_large")
        assert archive._inflated <= 2_000_000 + CHUNK  # stopped at the limit, not at 3 MB
    finally:
        archive.close()


async def test_member_count_is_limited_before_anything_is_read(aiohttp_client, settings, conn):
    from ecogram.app import create_app
    from tests.views.test_api_imports import _login

    client = await aiohttp_client(create_app(settings.replace(zip_max_members=3)))
    headers = await _login(client)
    archive = make_zip({f"SKU-{i}.jpg": make_photo(i) for i in range(5)},
                       compression=zipfile.ZIP_STORED)
    status, body = await post_archive(client, headers, archive)
    assert status == 413
    assert_error(body, "too_many_members")
    assert await conn.fetchval("SELECT count(*) FROM images") == 0
    assert (await client.get("/healthz")).status == 200
