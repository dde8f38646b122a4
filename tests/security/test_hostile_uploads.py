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


async def test_damaged_jpegs_are_refused_and_the_batch_keeps_the_rest(client, login_as, conn):
    """The issue's three damaged JPEGs (cut short with the end marker put back, flipped bytes,
    a header claiming rows the data lacks) are each a 422 damaged_image line; the good files of
    the batch land, and nothing of the damaged ones is stored or served."""
    from tests.imaging.test_probe import DAMAGED

    damaged = ["jpeg cut short, end marker appended", "jpeg with flipped bytes",
               "jpeg claiming more rows than it has"]
    headers = await login_as("importer")
    files = [("SKU-1.jpg", make_photo(1))]
    files += [(f"SKU-BAD-{n}.jpg", DAMAGED[name]) for n, name in enumerate(damaged, 1)]
    files += [("SKU-2.jpg", make_photo(2))]
    response = await client.post("/api/v1/images", data=form(*files), headers=headers)
    assert response.status == 201
    body = await response.json()
    lines = body["items"]
    assert [line["outcome"] for line in lines] == ["accepted"] + ["rejected"] * 3 + ["accepted"]
    for line in lines[1:4]:
        assert (line["status"], line["code"]) == (422, "damaged_image")
        assert line["message"] == (
            "The file is damaged or incomplete and cannot be read as an image."
        )
    assert (body["accepted"], body["rejected"]) == (2, 3)
    codes = {r["code"] for r in await conn.fetch("SELECT code FROM images")}
    assert codes == {"SKU-1", "SKU-2"}
    for n in range(1, 4):
        assert (await client.get(f"/img/SKU-BAD-{n}")).status == 404


async def test_strict_decoding_accepts_every_valid_fixture(client, login_as):
    """Strictness refuses damage, not the odd-but-valid: CMYK, 16-bit quantisation tables, a
    big ICC profile, an animated GIF, AVIF with alpha... all land in one batch (only the ones
    under the test's 100-pixel minimum side are refused, as too small)."""
    from tests.imaging.test_probe import VALID

    headers = await login_as("importer")
    names = sorted(VALID)
    files = [(f"VALID-{n}.{name.rsplit('.', 1)[1]}", (IMAGES / "valid" / name).read_bytes())
             for n, name in enumerate(names)]
    response = await client.post("/api/v1/images", data=form(*files), headers=headers)
    assert response.status == 201
    lines = (await response.json())["items"]
    for name, line in zip(names, lines, strict=True):
        if min(VALID[name][2:4]) < 100:
            assert line["code"] == "too_small", (name, line)
        else:
            assert line["outcome"] == "accepted", (name, line)
