"""Exports parsed back: Shopify, WooCommerce, Magento CSV, JSON feed and ZIP."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

import pytest
import pyvips

from ecogram.catalog import exports
from ecogram.catalog.exports import MAGENTO_HEADER, SHOPIFY_HEADER, handle, neutralise
from tests.catalog.photos import make_photo
from tests.conftest import assert_error

PUBLIC = "http://127.0.0.1:8080"
URL = re.compile(r"^http://127\.0\.0\.1:8080/img/([^/?]+)/(\d+)\?v=(\d+)$")


async def catalogue(make_image) -> dict[str, list[dict]]:
    shoe = [await make_image("SHOE-1", product="Red shoe", alt=alt, status="approved")
            for alt in ("Front", "Side", "")]
    await make_image("SHOE-1", product="Red shoe")  # pending: not exported
    bag = [await make_image("Bag 7".replace(" ", "_"), product="=HYPERLINK(\"x\")",
                            status="approved")]
    await make_image("HAT-3", product="Hat", status="rejected")
    return {"SHOE-1": shoe, "Bag_7": bag}


async def fetch(client, headers, fmt: str, query: str = ""):
    response = await client.get(f"/api/v1/exports/{fmt}{query}", headers=headers)
    assert response.status == 200, await response.text()
    return response


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def test_shopify_one_row_per_image(client, login_as, make_image, conn):
    made = await catalogue(make_image)
    reviewer = await login_as("reviewer")
    response = await fetch(client, reviewer, "shopify")
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    rows = rows_of(await response.text())
    assert rows[0] == SHOPIFY_HEADER == ["Handle", "Title", "Image Src", "Image Position",
                                         "Image Alt Text"]
    body = rows[1:]
    assert len(body) == 4  # 3 approved shoe photos + 1 bag; pending and rejected left out
    assert [r[0] for r in body] == ["bag-7", "shoe-1", "shoe-1", "shoe-1"]
    assert body[0][1] == "'=HYPERLINK(\"x\")"  # neutralised formula
    assert [r[1] for r in body[1:]] == ["Red shoe", "", ""]  # Title on the first row only
    assert [r[3] for r in body[1:]] == ["1", "2", "3"]
    assert [r[4] for r in body[1:]] == ["Front", "Side", "Red shoe"]  # no alt: product name
    for row, record in zip(body[1:], made["SHOE-1"], strict=True):
        assert row[2] == f"{PUBLIC}/img/SHOE-1/{record['position']}?v={record['version']}"
    # Recorded, audited, stamped.
    export = await conn.fetchrow("SELECT * FROM exports")
    assert (export["format"], export["count"], export["actor"]) == ("shopify", 4,
                                                                    "Reviewer User")
    assert await conn.fetchval("SELECT count(*) FROM images WHERE exported_at IS NOT NULL") == 4
    entry = await conn.fetchrow("SELECT * FROM audit_log WHERE action = 'export'")
    assert entry["details"]["count"] == 4 and entry["target"] == "shopify"


async def test_woocommerce_featured_image_first(client, login_as, make_image):
    made = await catalogue(make_image)
    rows = rows_of(await (await fetch(client, await login_as("reviewer"), "woocommerce")).text())
    assert rows[0] == ["SKU", "Name", "Images"]
    shoe = next(r for r in rows[1:] if r[0] == "SHOE-1")
    urls = shoe[2].split(", ")
    assert shoe[1] == "Red shoe"
    assert [URL.match(u).group(2) for u in urls] == ["1", "2", "3"]
    assert urls[0].endswith(f"?v={made['SHOE-1'][0]['version']}")
    assert len(rows) == 3


async def test_magento_columns(client, login_as, make_image):
    await catalogue(make_image)
    rows = rows_of(await (await fetch(client, await login_as("admin"), "magento")).text())
    assert rows[0] == MAGENTO_HEADER
    shoe = dict(zip(rows[0], next(r for r in rows[1:] if r[0] == "SHOE-1"), strict=True))
    assert URL.match(shoe["base_image"]).group(2) == "1"
    assert shoe["small_image"] == shoe["thumbnail_image"] == shoe["base_image"]
    assert shoe["base_image_label"] == "Front"
    assert [URL.match(u).group(2) for u in shoe["additional_images"].split(",")] == ["2", "3"]
    assert shoe["additional_image_labels"] == "Side,Red shoe"


async def test_json_feed(client, login_as, make_image):
    made = await catalogue(make_image)
    response = await fetch(client, await login_as("reviewer"), "json")
    feed = json.loads(await response.text())
    assert feed["images_count"] == 4 and feed["products_count"] == 2
    shoe = next(p for p in feed["products"] if p["code"] == "SHOE-1")
    assert shoe["product"] == "Red shoe"
    first = shoe["images"][0]
    assert first["url"] == made["SHOE-1"][0]["urls"]["src"]
    assert first["srcset"] == made["SHOE-1"][0]["urls"]["srcset"]
    for key in ("width", "height", "blurhash", "color", "alt"):
        assert first[key] == made["SHOE-1"][0][key] or key == "alt"
    assert first["alt"] == "Front"


async def test_zip_of_originals_with_manifest(client, login_as, make_image):
    photo = make_photo(31337)
    record = await make_image("ZIP/../1".replace("/", "-"), photo=photo, status="approved")
    await make_image("OTHER", status="approved")
    response = await fetch(client, await login_as("reviewer"), "zip")
    assert response.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    names = archive.namelist()
    assert names[-1] == "manifest.csv"
    name = f"{record['code']}_1.jpg"
    assert name in names and "OTHER_1.jpg" in names
    assert archive.read(name) == photo
    assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert {m["filename"] for m in manifest} == {name, "OTHER_1.jpg"}
    row = next(m for m in manifest if m["filename"] == name)
    assert row["sha256"] == record["sha256"] and row["url"] == record["urls"]["src"]


async def test_filters_by_code_and_since(client, login_as, make_image, conn):
    await catalogue(make_image)
    reviewer = await login_as("reviewer")
    for query in ("?code=Bag_7", "?code=Bag_7,NOPE", "?code=NOPE&code=Bag_7"):
        rows = rows_of(await (await fetch(client, reviewer, "shopify", query)).text())
        assert [r[0] for r in rows[1:]] == ["bag-7"], query
    stamp = await conn.fetchval("SELECT now()")
    late = await make_image("LATE", product="Late", status="approved")
    since = stamp.isoformat().replace("+", "%2B")
    rows = rows_of(await (await fetch(client, reviewer, "woocommerce", f"?since={since}")).text())
    assert [r[0] for r in rows[1:]] == [late["code"]]
    rows = rows_of(await (await fetch(client, reviewer, "shopify", "?status=pending")).text())
    assert len(rows) == 2


async def test_empty_export_is_just_the_header(client, login_as):
    rows = rows_of(await (await fetch(client, await login_as("reviewer"), "shopify")).text())
    assert rows == [SHOPIFY_HEADER]


async def test_export_access_and_bad_parameters(client, login_as):
    response = await client.get("/api/v1/exports/shopify", headers=await login_as("importer"))
    assert response.status == 403
    reviewer = await login_as("reviewer")
    response = await client.get("/api/v1/exports/excel", headers=reviewer)
    assert response.status == 404
    assert_error(await response.json())
    for query in ("?since=soon", "?status=deleted"):
        response = await client.get(f"/api/v1/exports/shopify{query}", headers=reviewer)
        assert response.status == 422, query
        assert_error(await response.json(), "invalid_fields")


@pytest.mark.parametrize("value,expected", [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"),
                                            ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
                                            ("\rx", "'\rx"), ("ok", "ok"), ("", ""),
                                            (None, ""), (3, "3")])
def test_csv_cells_are_neutralised(value, expected):
    assert neutralise(value) == expected


async def test_exported_urls_fetch_the_right_image(client, login_as, make_image):
    """The URLs in an export serve the exported photo through /img (the delivery routes)."""
    if not any(r.get_info().get("formatter", "").startswith("/img/")
               for r in client.app.router.resources()):
        pytest.skip("/img is not served by this build yet (delivery, issue 5)")
    record = await make_image("FETCH-1", status="approved", photo=make_photo(5))
    rows = rows_of(await (await fetch(client, await login_as("reviewer"), "shopify")).text())
    url = rows[1][2]
    assert url == record["urls"]["src"]
    response = await client.get(url.removeprefix(PUBLIC))
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("image/")
    assert "immutable" in response.headers.get("Cache-Control", "")
    served = pyvips.Image.new_from_buffer(await response.read(), "")
    assert (served.width, served.height) == (record["width"], record["height"])
    # Once the photo is unpublished the same URL stops serving it.
    await client.delete(f"/api/v1/images/{record['id']}", headers=await login_as("admin"))
    assert (await client.get(url.removeprefix(PUBLIC))).status == 404


async def test_codes_sharing_a_handle_get_distinct_handles(client, login_as, make_image, conn):
    """``COLL-1``, ``coll_1`` and ``Coll–1`` would be one Shopify product: each gets its own."""
    for code in ("COLL-1", "coll_1", "Coll–1", "COLL-1-2"):  # imported in this order
        await make_image(code, product=f"Product {code}", status="approved")
    reviewer = await login_as("reviewer")
    rows = rows_of(await (await fetch(client, reviewer, "shopify")).text())
    handles = {r[1].removeprefix("Product "): r[0] for r in rows[1:]}  # one photo each
    # The first code keeps its handle; the others take the next suffix no code has.
    assert handles == {"COLL-1": "coll-1", "COLL-1-2": "coll-1-2", "coll_1": "coll-1-3",
                       "Coll–1": "coll-1-4"}
    entry = await conn.fetchrow("SELECT details FROM audit_log WHERE action = 'export'")
    renamed = entry["details"]["renamed"]
    assert (renamed["column"], renamed["count"]) == ("Handle", 2)
    assert sorted(renamed["items"], key=lambda item: item["key"]) == [
        {"code": "coll_1", "key": "coll-1-3", "collides_with": "COLL-1"},
        {"code": "Coll–1", "key": "coll-1-4", "collides_with": "COLL-1"}]
    # The same handle in an incremental export of that code alone.
    rows = rows_of(await (await fetch(client, reviewer, "shopify", "?code=coll_1")).text())
    assert [r[0] for r in rows[1:]] == ["coll-1-3"]
    # A code with no clash exports without a "renamed" entry.
    rows = rows_of(await (await fetch(client, reviewer, "shopify", "?code=COLL-1")).text())
    assert [r[0] for r in rows[1:]] == ["coll-1"]
    last = await conn.fetchval(
        "SELECT details FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 1")
    assert "renamed" not in last


@pytest.mark.parametrize("fmt,column", [("woocommerce", "SKU"), ("magento", "sku")])
async def test_skus_equal_but_for_case_get_distinct_skus(client, login_as, make_image, conn,
                                                         fmt, column):
    """The shops compare SKUs without case or accents: ``Case-1`` and ``CASE-1`` would merge."""
    for code in ("Case-1", "CASE-1", "CAFÉ-9", "cafe-9"):
        await make_image(code, status="approved")
    rows = rows_of(await (await fetch(client, await login_as("reviewer"), fmt)).text())
    assert sorted(r[0] for r in rows[1:]) == sorted(["Case-1", "CASE-1-2", "CAFÉ-9",
                                                     "cafe-9-2"])
    renamed = (await conn.fetchval(
        "SELECT details FROM audit_log WHERE action = 'export'"))["renamed"]
    assert (renamed["column"], renamed["count"]) == (column, 2)
    assert {(i["code"], i["collides_with"]) for i in renamed["items"]} == {
        ("CASE-1", "Case-1"), ("cafe-9", "CAFÉ-9")}


@pytest.mark.parametrize("code,expected", [("COLL-1", "coll-1"), ("coll_1", "coll-1"),
                                           ("Coll–1", "coll-1"), ("ＣＯＬＬ－１", "coll-1"),
                                           ("Café Crème", "cafe-creme"), ("a--b", "a-b")])
def test_handle_spellings(code, expected):
    assert handle(code) == expected


async def test_batches_do_not_change_the_output(client, login_as, make_image, monkeypatch):
    """One product per batch or all at once: the same bytes."""
    await catalogue(make_image)
    await make_image("SHOE-1", status="approved")  # a product bigger than a batch
    reviewer = await login_as("reviewer")
    whole = {fmt: await (await fetch(client, reviewer, fmt)).read()
             for fmt in ("shopify", "woocommerce", "magento")}
    monkeypatch.setattr(exports.walk, "BATCH_ROWS", 1)
    for fmt, expected in whole.items():
        assert await (await fetch(client, reviewer, fmt)).read() == expected, fmt


async def test_zip_of_many_originals_in_small_reads(client, login_as, make_image, conn,
                                                    monkeypatch):
    """Originals read a few at a time, the archive built in a thread: a valid ZIP of them all."""
    monkeypatch.setattr(exports.walk, "BATCH_ROWS", 2)
    monkeypatch.setattr(exports.archive, "ORIGINALS_BYTES", 1)  # one original per read
    photos = {}
    for seed, code in enumerate(["ZIPA", "ZIPA", "zipa", "ZIP-B", "ZIP-C", "ZIP-C"], start=70):
        photo = make_photo(seed, width=300 + seed, height=260)
        record = await make_image(code, photo=photo, status="approved")
        photos[record["id"]] = (record, photo)
    response = await fetch(client, await login_as("reviewer"), "zip")
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    assert archive.testzip() is None  # every member's CRC checks
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert len(manifest) == len(photos) == len(archive.namelist()) - 1
    by_name = {m["filename"]: m for m in manifest}
    for record, photo in photos.values():
        name = next(n for n, m in by_name.items() if m["sha256"] == record["sha256"])
        assert archive.read(name) == photo
    # ZIPA_1.jpg and zipa_1.jpg would be one file on a case-insensitive disk.
    zipa = next(r for r, _ in photos.values() if r["code"] == "zipa")
    assert f"zipa_1-{zipa['id']}.jpg" in by_name and "ZIPA_1.jpg" in by_name
    renamed = (await conn.fetchval(
        "SELECT details FROM audit_log WHERE action = 'export'"))["renamed"]
    assert renamed["column"] == "filename" and renamed["count"] == 1
    assert renamed["items"][0]["key"] == f"zipa_1-{zipa['id']}.jpg"
    assert await conn.fetchval("SELECT count FROM exports") == len(photos)
