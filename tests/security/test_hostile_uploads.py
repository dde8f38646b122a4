"""Every hostile fixture is refused with the right 4xx, alone or among good files."""

from __future__ import annotations

import aiohttp
import pytest

from tests.catalog.photos import make_photo
from tests.conftest import IMAGES, assert_error
from tests.imaging.test_probe import HOSTILE as PROBE_HOSTILE

# What the probe refuses each hostile image with (tests/imaging/test_probe.py), over HTTP too;
# archives sent as a photo are judged by their bytes like anything else.
HOSTILE = {
    **PROBE_HOSTILE,
    "zip-bomb.zip": (415, "unsupported_type"),
    "zip-slip.zip": (415, "unsupported_type"),
}


def test_every_hostile_fixture_is_covered():
    assert {p.name for p in (IMAGES / "hostile").iterdir() if p.name != ".gitkeep"} == set(HOSTILE)


def form(*files: tuple[str, bytes]) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for name, content in files:
        data.add_field("file", content, filename=name, content_type="image/jpeg")
    return data


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_file_alone_is_refused(client, login_as, conn, name):
    status, code = HOSTILE[name]
    headers = await login_as("importer")
    data = (IMAGES / "hostile" / name).read_bytes()
    response = await client.post("/api/v1/images", data=form((name, data)), headers=headers)
    assert response.status == status
    body = await response.json()
    assert_error(body, code)
    assert body["error"]["details"]["report"]["items"][0]["code"] == code
    assert await conn.fetchval("SELECT count(*) FROM images") == 0
    assert await conn.fetchval("SELECT count(*) FROM originals") == 0
    assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_file_among_good_ones_loses_nothing(client, login_as, conn, name):
    status, code = HOSTILE[name]
    headers = await login_as("importer")
    data = (IMAGES / "hostile" / name).read_bytes()
    response = await client.post(
        "/api/v1/images",
        data=form(("SKU-1.jpg", make_photo(1)), (name, data), ("SKU-2.jpg", make_photo(2))),
        headers=headers,
    )
    assert response.status == 201
    body = await response.json()
    lines = body["items"]
    assert [line["outcome"] for line in lines] == ["accepted", "rejected", "accepted"]
    assert (lines[1]["status"], lines[1]["code"]) == (status, code)
    assert lines[1]["message"]
    codes = {r["code"] for r in await conn.fetch("SELECT code FROM images")}
    assert codes == {"SKU-1", "SKU-2"}
    assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize("path", ["/api/v1/images", "/api/v1/imports"])
@pytest.mark.parametrize("body, content_type", [
    (b'--b\r\nContent-Disposition: form-data; name="\x03\xc2\x90"\r\n\r\nx\r\n--b--\r\n',
     "multipart/form-data; boundary=b"),
    (b"no boundary at all", "multipart/form-data"),
    (b"--b\r\nContent-Disposition: form-data; name=file\r\n\r\ntruncated",
     "multipart/form-data; boundary=b"),
])
async def test_malformed_multipart_is_a_client_error(client, login_as, path, body,
                                                     content_type):
    headers = {**await login_as("importer"), "Content-Type": content_type}
    response = await client.post(path, data=body, headers=headers)
    assert 400 <= response.status < 500
    assert_error(await response.json())
    assert (await client.get("/healthz")).status == 200
