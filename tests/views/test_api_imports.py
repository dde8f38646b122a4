"""POST /api/v1/images, POST /api/v1/imports and GET /api/v1/imports/{id} over HTTP."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest

from ecogram.catalog.sources import code_from_filename
from ecogram.settings import DEFAULT_FILENAME_PATTERN
from tests.catalog.photos import make_photo, make_zip
from tests.conftest import IMAGES, assert_error

VALID = sorted((IMAGES / "valid").iterdir())

# Upright sizes and formats of the valid fixtures (orientation 6 is square, so its upright
# size is told by the EXIF orientation recorded in qc).
EXPECTED = {
    "hopper.avif": ("avif", 128, 128),
    "hopper.jpg": ("jpeg", 128, 128),
    "hopper.png": ("png", 128, 128),
    "hopper.tif": ("tiff", 128, 128),
    "hopper.webp": ("webp", 128, 128),
    "hopper_16bit_qtables.jpg": ("jpeg", 128, 128),
    "hopper_gray.jpg": ("jpeg", 128, 128),
    "hopper_orientation_6.jpg": ("jpeg", 128, 128),
    "icc_profile_big.jpg": ("jpeg", 425, 250),
    "iss634.gif": ("gif", 245, 245),
    "pil123rgba.png": ("png", 162, 150),
    "pil_sample_cmyk.jpg": ("jpeg", 100, 100),
    "transparency.avif": ("avif", 64, 64),
    "xmp_test.jpg": ("jpeg", 2000, 1072),
}


def form(*files: tuple[str, bytes], **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    for name, content in files:
        data.add_field("file", content, filename=name, content_type="application/octet-stream")
    for key, value in fields.items():
        data.add_field(key, value)
    return data


async def upload(client, headers, *files, status=201, **fields) -> dict:
    response = await client.post("/api/v1/images", data=form(*files, **fields), headers=headers)
    body = await response.json()
    assert response.status == status, body
    return body


@pytest.fixture
def small_ok(settings):
    """The valid fixtures include a 64x64 AVIF: import them with a lower minimum side."""
    return settings.replace(min_side=16)


@pytest.fixture
async def small_client(aiohttp_client, small_ok):
    from ecogram.app import create_app

    return await aiohttp_client(create_app(small_ok))


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
async def test_each_valid_file_imports_with_its_metadata(small_client, conn, path):
    headers = await _login(small_client)
    data = path.read_bytes()
    body = await upload(small_client, headers, (path.name, data))
    assert body["accepted"] == 1 and body["rejected"] == 0
    line = body["items"][0]
    assert line["outcome"] == "accepted"
    record = line["record"]
    fmt, width, height = EXPECTED[path.name]
    assert (record["format"], record["width"], record["height"]) == (fmt, width, height)
    assert record["file_size"] == len(data)
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert record["filename"] == path.name
    assert record["status"] == "pending"
    assert record["importer"] == "Importer User"
    # Code from the file name pattern ("hopper_orientation_6" reads as position 6 of
    # "hopper_orientation"; positions stay gap-free, so it lands at 1).
    code, _ = code_from_filename(path.name, DEFAULT_FILENAME_PATTERN)
    assert record["code"] == code
    assert record["position"] == 1
    assert record["blurhash"] and record["color"].startswith("#")
    assert record["urls"]["src"].endswith(f"/img/{code}/1?v={record['version']}")
    assert "400w" in record["urls"]["srcset"]
    stored = await conn.fetchrow(
        "SELECT d.data, m.data AS master, o.master_width, o.master_height, i.importer_id, "
        "i.batch_id FROM originals o JOIN images i ON i.id = o.image_id "
        "JOIN blobs d ON d.sha256 = i.sha256 JOIN blobs m ON m.sha256 = o.master_sha256 "
        "WHERE i.id = $1", record["id"])
    assert bytes(stored["data"]) == data
    assert len(stored["master"]) > 0
    # The master is upright: its sides have the record's proportions.
    assert (stored["master_width"] >= stored["master_height"]) == (width >= height)
    assert stored["importer_id"] is not None and stored["batch_id"] == body["id"]
    if path.name == "hopper_orientation_6.jpg":
        assert record["qc"]["orientation"] == 6
        assert "exif_orientation" in {w["code"] for w in record["qc"]["warnings"]}
    if path.name == "pil_sample_cmyk.jpg":
        assert "cmyk" in {w["code"] for w in record["qc"]["warnings"]}
    if path.name == "iss634.gif":
        assert "animated" in {w["code"] for w in record["qc"]["warnings"]}
    if path.name in ("pil123rgba.png", "transparency.avif"):
        assert record["has_alpha"] is True


async def _login(client) -> dict[str, str]:
    """login_as for a client other than the default one (same steps, through the API)."""
    from tests.conftest import PASSWORD

    async def post(path, payload, headers=None):
        response = await client.post(path, json=payload, headers=headers)
        assert response.status in (200, 201), await response.text()
        return await response.json()

    await post("/api/v1/auth/register", {"email": "admin@example.com", "name": "Ada Admin",
                                         "password": PASSWORD})
    admin = await post("/api/v1/auth/login", {"email": "admin@example.com", "password": PASSWORD})
    admin_headers = {"Authorization": f"Bearer {admin['access_token']}"}
    user = await post("/api/v1/auth/register", {"email": "importer@example.com",
                                                "name": "Importer User", "password": PASSWORD})
    response = await client.patch(f"/api/v1/users/{user['id']}", json={"role": "importer"},
                                  headers=admin_headers)
    assert response.status == 200, await response.text()
    token = await post("/api/v1/auth/login", {"email": "importer@example.com",
                                              "password": PASSWORD})
    return {"Authorization": f"Bearer {token['access_token']}"}


async def test_fields_apply_to_every_file_and_positions_follow(client, login_as, conn):
    headers = await login_as("importer")
    body = await upload(client, headers, ("a.jpg", make_photo(1)), ("b.jpg", make_photo(2)),
                        code="SHOE-1", product="Red shoe", alt="A red shoe")
    records = [line["record"] for line in body["items"]]
    assert [(r["code"], r["position"], r["product"], r["alt"]) for r in records] == [
        ("SHOE-1", 1, "Red shoe", "A red shoe"), ("SHOE-1", 2, "Red shoe", "A red shoe")]
    # Without a product name the code's existing one is used; an explicit position shifts.
    body = await upload(client, headers, ("c.jpg", make_photo(3)), code="SHOE-1", position="1")
    record = body["items"][0]["record"]
    assert (record["position"], record["product"]) == (1, "Red shoe")
    rows = await conn.fetch("SELECT filename, position FROM images WHERE code = 'SHOE-1' "
                            "ORDER BY position")
    assert [(r["filename"], r["position"]) for r in rows] == [("c.jpg", 1), ("a.jpg", 2),
                                                               ("b.jpg", 3)]


async def test_code_and_position_from_the_file_name(client, login_as):
    headers = await login_as("importer")
    body = await upload(client, headers, ("SKU-123_2.jpg", make_photo(1)),
                        ("SKU-123.jpg", make_photo(2)), ("SKU-9-3.png", make_photo(3, fmt=".png")))
    got = [(line["record"]["code"], line["record"]["position"]) for line in body["items"]]
    # Sent before SKU-123.jpg, SKU-123_2 still gets the position its name asks for.
    assert got == [("SKU-123", 2), ("SKU-123", 1), ("SKU-9", 1)]


async def _positions(conn, code: str) -> list[tuple[str, int]]:
    rows = await conn.fetch("SELECT filename, position FROM images WHERE code = $1 "
                            "AND deleted_at IS NULL ORDER BY position", code)
    return [(r["filename"], r["position"]) for r in rows]


async def test_photo_order_follows_the_names_in_either_order_and_across_requests(
        client, login_as, conn):
    headers = await login_as("importer")
    # One request, both orders.
    await upload(client, headers, ("A-1.jpg", make_photo(1)), ("A-1_2.jpg", make_photo(2)))
    await upload(client, headers, ("B-1_2.jpg", make_photo(3)), ("B-1.jpg", make_photo(4)))
    for code in ("A-1", "B-1"):
        assert await _positions(conn, code) == [(f"{code}.jpg", 1), (f"{code}_2.jpg", 2)]
    # Separate requests: _3, then _2 (before _3, which asked for more), then the bare name.
    for seed, name in enumerate(["C-1_3.jpg", "C-1_2.jpg", "C-1.jpg"], 5):
        await upload(client, headers, (name, make_photo(seed)))
    assert await _positions(conn, "C-1") == [("C-1.jpg", 1), ("C-1_2.jpg", 2), ("C-1_3.jpg", 3)]


async def test_explicit_position_fields_keep_their_order(client, login_as, conn):
    headers = await login_as("importer")
    await upload(client, headers, ("old.jpg", make_photo(1)), code="D-1")
    # One position for the request's files: a block from there, in the request's order.
    await upload(client, headers, ("front.jpg", make_photo(2)), ("back.jpg", make_photo(3)),
                 code="D-1", position="1")
    assert await _positions(conn, "D-1") == [("front.jpg", 1), ("back.jpg", 2), ("old.jpg", 3)]
    # Across requests: position 3 on an empty code, then 2, then 1.
    for seed, position in ((4, "3"), (5, "2"), (6, "1")):
        await upload(client, headers, (f"e{position}.jpg", make_photo(seed)), code="E-1",
                     position=position)
    assert await _positions(conn, "E-1") == [("e1.jpg", 1), ("e2.jpg", 2), ("e3.jpg", 3)]


async def test_duplicates_and_near_duplicates(client, login_as):
    headers = await login_as("importer")
    photo = make_photo(7)
    first = await upload(client, headers, ("SKU-1.jpg", photo))
    first_id = first["items"][0]["image_id"]
    again = await upload(client, headers, ("SKU-1.jpg", photo))
    assert again["duplicate"] == 1
    assert again["items"][0]["outcome"] == "duplicate"
    assert again["items"][0]["image_id"] == first_id

    elsewhere = await upload(client, headers, ("x.jpg", photo), code="SKU-2")
    warnings = elsewhere["items"][0]["record"]["qc"]["warnings"]
    assert {"code": "same_image_elsewhere", "image_id": first_id}.items() <= {
        **next(w for w in warnings if w["code"] == "same_image_elsewhere")}.items()

    near = await upload(client, headers, ("SKU-1_2.jpg", make_photo(7, quality=55)))
    warning = next(w for w in near["items"][0]["record"]["qc"]["warnings"]
                   if w["code"] == "near_duplicate")
    assert warning["image_id"] == first_id and warning["distance"] <= 6
    other = await upload(client, headers, ("SKU-1_3.jpg", make_photo(8)))
    assert "near_duplicate" not in {w["code"] for w in
                                    other["items"][0]["record"]["qc"]["warnings"]}


async def test_single_rejected_file_answers_its_status_with_the_report(client, login_as, conn):
    headers = await login_as("importer")
    response = await client.post("/api/v1/images", headers=headers,
                                 data=form(("SKU-1.jpg", b"hello, not an image")))
    assert response.status == 415
    body = await response.json()
    assert_error(body, "unsupported_type")
    report = body["error"]["details"]["report"]
    assert report["rejected"] == 1 and report["items"][0]["code"] == "unsupported_type"
    # The report is stored and served.
    stored = await client.get(f"/api/v1/imports/{report['id']}", headers=headers)
    assert stored.status == 200
    assert (await stored.json())["items"][0]["outcome"] == "rejected"
    assert await conn.fetchval("SELECT count(*) FROM images") == 0


async def test_several_files_one_bad_answer_201_and_keep_the_good(client, login_as):
    headers = await login_as("importer")
    body = await upload(client, headers, ("SKU-1.jpg", make_photo(1)), ("bad.jpg", b"nope"),
                        ("SKU-2.jpg", make_photo(2)))
    assert [line["outcome"] for line in body["items"]] == ["accepted", "rejected", "accepted"]
    assert body["items"][1]["code"] == "unsupported_type" and body["items"][1]["message"]
    assert (body["accepted"], body["rejected"]) == (2, 1)


async def test_invalid_fields_and_empty_requests(client, login_as):
    headers = await login_as("importer")
    for fields, field in (({"position": "0"}, "position"), ({"position": "x"}, "position"),
                          ({"code": "a/b"}, "code"), ({"code": "has space"}, "code"),
                          ({"code": "NUL\x00"}, "code"), ({"product": "Mug\x00"}, "product")):
        response = await client.post("/api/v1/images", headers=headers,
                                     data=form(("a.jpg", make_photo(1)), **fields))
        assert response.status == 422
        body = await response.json()
        assert_error(body, "invalid_fields")
        assert body["error"]["details"]["field"] == field
    response = await client.post("/api/v1/images", headers=headers, data=form(code="X"))
    assert response.status == 422
    assert_error(await response.json(), "no_files")
    response = await client.post("/api/v1/images", headers=headers, json={"file": "x"})
    assert response.status == 415
    assert_error(await response.json(), "unsupported_type")


async def test_file_over_the_upload_limit_is_413_while_streaming(aiohttp_client, settings):
    from ecogram.app import create_app

    client = await aiohttp_client(create_app(settings.replace(max_upload_mb=1)))
    headers = await _login(client)
    big = b"\xff\xd8\xff" + b"\0" * (1024 * 1024 + 10)
    body = await upload(client, headers, ("big.jpg", big), ("SKU-1.jpg", make_photo(1)))
    assert body["items"][0]["code"] == "file_too_large"
    assert body["items"][0]["status"] == 413
    assert body["items"][1]["outcome"] == "accepted"
    response = await client.post("/api/v1/images", headers=headers, data=form(("big.jpg", big)))
    assert response.status == 413
    assert_error(await response.json(), "file_too_large")


async def test_access_needs_the_importer_role(client, login_as):
    response = await client.post("/api/v1/images", data=form(("a.jpg", make_photo(1))))
    assert response.status == 401
    viewer = await login_as("viewer")
    for method, path in (("POST", "/api/v1/images"), ("POST", "/api/v1/imports"),
                         ("GET", "/api/v1/imports/1")):
        response = await client.request(method, path, headers=viewer)
        assert response.status == 403, path
        assert_error(await response.json())


async def test_unknown_import_is_404(client, login_as):
    headers = await login_as("importer")
    response = await client.get("/api/v1/imports/999999", headers=headers)
    assert response.status == 404
    assert_error(await response.json(), "not_found")


async def test_zip_with_manifest(client, login_as, conn):
    headers = await login_as("importer")
    archive = make_zip({
        "photos/front.jpg": make_photo(1),
        "photos/back.jpg": make_photo(2),
        "SKU-77_1.jpg": make_photo(3),  # not in the manifest: named by the pattern
        "__MACOSX/._front.jpg": b"junk",
        ".DS_Store": b"junk",
        "notes.txt": b"not a photo",
    })
    manifest = (
        "\ufeffcode;product;file;position;alt\n"
        "BAG-1;Leather bag;photos/front.jpg;;Front view\n"
        "BAG-1;;back.jpg;1;Back view\n"
        "BAG-1;;missing.jpg;;\n"
        "BAG-1;;;;\n"
    ).encode()
    data = aiohttp.FormData()
    data.add_field("archive", archive, filename="batch.zip", content_type="application/zip")
    data.add_field("manifest", manifest, filename="m.csv", content_type="text/csv")
    response = await client.post("/api/v1/imports", data=data, headers=headers)
    body = await response.json()
    assert response.status == 201, body
    outcomes = {line["filename"]: (line["outcome"], line.get("code"))
                for line in body["items"]}
    assert outcomes == {
        "front.jpg": ("accepted", None),
        "back.jpg": ("accepted", None),
        "missing.jpg": ("rejected", "file_not_found"),
        "line 5": ("rejected", "missing_file"),
        "SKU-77_1.jpg": ("accepted", None),
        "notes.txt": ("rejected", "unsupported_type"),
    }
    rows = await conn.fetch("SELECT filename, position, product, alt FROM images "
                            "WHERE code = 'BAG-1' ORDER BY position")
    assert [tuple(r) for r in rows] == [("back.jpg", 1, "Leather bag", "Back view"),
                                        ("front.jpg", 2, "Leather bag", "Front view")]
    stored = await client.get(f"/api/v1/imports/{body['id']}", headers=headers)
    assert (await stored.json()) == body
    batch = await conn.fetchrow("SELECT * FROM import_batches WHERE id = $1", body["id"])
    assert (batch["source"], batch["status"], batch["accepted"], batch["rejected"]) == (
        "archive", "done", 3, 3)
    # Audit entries name the importer.
    actors = await conn.fetch("SELECT DISTINCT actor, action FROM audit_log "
                              "WHERE action IN ('image.imported', 'import.batch')")
    assert {(r["actor"], r["action"]) for r in actors} == {
        ("Importer User", "image.imported"), ("Importer User", "import.batch")}


async def test_imports_refuses_bad_archives_and_manifests(client, login_as):
    headers = await login_as("importer")
    cases = [
        ("archive", b"this is no zip", 415, "unsupported_type"),
        ("manifest", b"\xff\xfe not utf-8", 422, "invalid_manifest"),
        ("manifest", b"code,product\nA,B\n", 422, "invalid_manifest"),
    ]
    for part, content, status, code in cases:
        data = aiohttp.FormData()
        data.add_field(part, content, filename="x", content_type="application/octet-stream")
        response = await client.post("/api/v1/imports", data=data, headers=headers)
        assert response.status == status, (part, content)
        assert_error(await response.json(), code)
    empty = aiohttp.FormData({"x": "y"}, default_to_multipart=True)
    response = await client.post("/api/v1/imports", data=empty, headers=headers)
    assert response.status == 422
    assert_error(await response.json(), "no_files")
