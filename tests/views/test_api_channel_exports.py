"""Exports per sales channel (issue 13), each parsed back and checked column by column: VTEX's
images spreadsheet (openpyxl), Google's supplemental TSV, Mercado Livre's and Nuvemshop's JSON
lines, and the renditions CSV of any channel; the products' own ids on a channel (API and CSV
import) that fill them in. Photos go in through the real import API and are approved; the
approval hooks measure their geometry (readiness reads it)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import urllib.parse

import aiohttp
import openpyxl
import pytest

from ecogram import keys
from ecogram.catalog.exports import rendition_url
from ecogram.catalog.exports.feeds import GOOGLE_HEADER, RENDITIONS_HEADER
from ecogram.catalog.exports.spreadsheet import VTEX_HEADER
from ecogram.imaging.product import render_for_channel
from tests.catalog.test_channels import product_photo
from tests.conftest import assert_error
from tests.views.test_export_streaming import _slow_read, _start_stalled, seed_bulk

PUBLIC = "http://127.0.0.1:8080"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def settings(settings, request):
    """The shared settings; with a parameter, a pool of three and room for that many exports."""
    bound = getattr(request, "param", None)
    if bound is None:
        return settings
    return settings.replace(db_pool_min=1, db_pool_max=3, max_exports=bound)


@pytest.fixture
def add(make_image, client):
    """``await add(code, photo=..., status=..., alt=...)``: imported, reviewed, measured."""
    seeds = iter(range(1, 10_000))

    async def go(code: str, photo: bytes | None = None, *, status: str = "approved",
                 alt: str = "", product: str | None = None) -> dict:
        record = await make_image(code, status=status, alt=alt,
                                  product=f"Product {code}" if product is None else product,
                                  photo=photo or product_photo(next(seeds)))
        await client.app[keys.geometry].drain()
        return record

    return go


async def fetch(client, headers, path: str, status: int = 200):
    response = await client.get(path, headers=headers)
    assert response.status == status, await response.text()
    return response


def url_of(record: dict, channel: str, ext: str = "jpg") -> str:
    code = urllib.parse.quote(record["code"], safe="")
    return f"{PUBLIC}/img/{code}/{record['position']}/{channel}.{ext}?v={record['version']}"


async def catalogue(add) -> dict[str, list[dict]]:
    """Two ready products (two photos and one), one not ready anywhere (300 px)."""
    shoe = [await add("SHOE-1", alt="Frente do sapato"), await add("SHOE-1", alt="")]
    bag = [await add("BAG-7", product="Bolsa Café")]
    small = [await add("MUG-2", product_photo(900, 300, 300))]
    return {"SHOE-1": shoe, "BAG-7": bag, "MUG-2": small}


def test_rendition_url_is_the_form_img_serves():
    from ecogram.channels import load_profiles

    profiles = load_profiles()
    assert rendition_url("A B/1", 2, 7, profiles["vtex"], PUBLIC) == (
        f"{PUBLIC}/img/A%20B%2F1/2/vtex.jpg?v=7")
    webp = profiles["google"].__class__(**{**profiles["google"].as_dict(), "output": "webp",
                                           "formats": ("jpeg", "webp")})
    assert rendition_url("X", 1, 3, webp, PUBLIC).endswith("/img/X/1/google.webp?v=3")


async def test_vtex_spreadsheet_column_by_column(client, login_as, add, conn):
    made = await catalogue(add)
    # The approval hooks measured every photo (readiness and the planned sizes read this).
    measured = await conn.fetchval(
        "SELECT count(*) FROM image_geometry g JOIN images i ON i.id = g.image_id "
        "AND i.sha256 = g.sha256")
    assert measured == 4
    reviewer = await login_as("reviewer")
    response = await client.put("/api/v1/channels/vtex/products/SHOE-1",
                                json={"external_id": "1234"}, headers=reviewer)
    assert response.status == 200, await response.text()
    response = await fetch(client, reviewer, "/api/v1/exports/vtex")
    assert response.headers["Content-Type"] == XLSX
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="ecogram-vtex-')
    assert disposition.endswith('.xlsx"')
    book = openpyxl.load_workbook(io.BytesIO(await response.read()), read_only=True)
    rows = [list(r) for r in book.active.iter_rows(values_only=True)]
    assert rows[0] == VTEX_HEADER == ["URL", "NomeImagem", "TextoImagem", "Label", "IdSku",
                                      "CodigoreferenciaSku"]
    body = [dict(zip(VTEX_HEADER, r, strict=True)) for r in rows[1:]]
    # MUG-2 is not ready for VTEX (300 px): left out. Codes in order, positions in order.
    assert [(r["CodigoreferenciaSku"], r["Label"]) for r in body] == [
        ("BAG-7", "foto1"), ("SHOE-1", "foto1"), ("SHOE-1", "foto2")]
    bag, shoe1, shoe2 = body
    assert bag["URL"] == url_of(made["BAG-7"][0], "vtex")
    assert [shoe1["URL"], shoe2["URL"]] == [url_of(r, "vtex") for r in made["SHOE-1"]]
    assert [bag["NomeImagem"], shoe1["NomeImagem"], shoe2["NomeImagem"]] == [
        "bag-7-1.jpg", "shoe-1-1.jpg", "shoe-1-2.jpg"]
    # Alt text without accents or special characters; no alt: the product name.
    assert shoe1["TextoImagem"] == "Frente do sapato"
    assert shoe2["TextoImagem"] == "Product SHOE 1"
    assert bag["TextoImagem"] == "Bolsa Cafe"
    # The SKU id where the mapping has one (a number), else empty.
    assert shoe1["IdSku"] == shoe2["IdSku"] == 1234
    assert bag["IdSku"] is None
    # Recorded, audited and stamped like the other exports.
    export = await conn.fetchrow("SELECT * FROM exports")
    assert (export["format"], export["count"], export["actor"]) == ("vtex", 3, "Reviewer User")
    assert export["filters"]["channel"] == "vtex"
    assert export["filters"]["include_not_ready"] is False
    entry = await conn.fetchrow("SELECT * FROM audit_log WHERE action = 'export'")
    assert entry["target"] == "vtex" and entry["details"]["count"] == 3
    assert entry["details"]["export_id"] == export["id"]
    stamped = {r["id"] for r in await conn.fetch(
        "SELECT id FROM images WHERE exported_at IS NOT NULL")}
    assert stamped == {r["id"] for r in made["SHOE-1"] + made["BAG-7"]}


async def test_vtex_include_not_ready_names_the_findings(client, login_as, add):
    made = await catalogue(add)
    await add("EQ-1", product="=HYPERLINK(\"x\")")
    response = await fetch(client, await login_as("reviewer"),
                           "/api/v1/exports/vtex?include_not_ready=true")
    book = openpyxl.load_workbook(io.BytesIO(await response.read()))
    sheet = book.active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == [*VTEX_HEADER, "ready", "findings"]
    by_code = {r[5]: r for r in rows[1:]}
    assert by_code["MUG-2"][0] == url_of(made["MUG-2"][0], "vtex")
    assert by_code["MUG-2"][6:] == ["false", "too_small"]
    assert by_code["BAG-7"][6:] == ["true", None]
    # Text that looks like a formula stays text (and VTEX's text field has no '=' anyway).
    assert by_code["EQ-1"][2] == "HYPERLINK x"
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


async def test_google_supplemental_feed(client, login_as, add):
    made = await catalogue(add)
    third = await add("SHOE-1")
    reviewer = await login_as("reviewer")
    response = await client.put("/api/v1/channels/google/products/BAG-7",
                                json={"external_id": "online:pt:BR:BAG-7"}, headers=reviewer)
    assert response.status == 200
    response = await fetch(client, reviewer, "/api/v1/exports/google")
    assert response.headers["Content-Type"].startswith("text/tab-separated-values")
    rows = list(csv.reader(io.StringIO(await response.text()), delimiter="\t"))
    assert rows[0] == GOOGLE_HEADER == ["id", "image_link", "additional_image_link"]
    body = {r[0]: dict(zip(GOOGLE_HEADER, r, strict=True)) for r in rows[1:]}
    assert list(body) == ["online:pt:BR:BAG-7", "SHOE-1"]  # the mapped id; MUG-2 not ready
    assert body["online:pt:BR:BAG-7"]["image_link"] == url_of(made["BAG-7"][0], "google")
    assert body["online:pt:BR:BAG-7"]["additional_image_link"] == ""
    shoe = body["SHOE-1"]
    assert shoe["image_link"] == url_of(made["SHOE-1"][0], "google")
    assert shoe["additional_image_link"].split(",") == [
        url_of(made["SHOE-1"][1], "google"), url_of(third, "google")]


async def test_photo_counts_are_capped_per_channel(client, login_as, add, conn):
    """Google takes 1 + 10 photos, Mercado Livre 10: a product of 12 is not ready (too many
    photos); with include_not_ready it comes capped, naming the finding."""
    many = [await add("MANY-1") for _ in range(12)]
    one = await add("ONE-1")
    reviewer = await login_as("reviewer")

    rows = list(csv.reader(io.StringIO(await (await fetch(
        client, reviewer, "/api/v1/exports/google")).text()), delimiter="\t"))
    assert [r[0] for r in rows[1:]] == ["ONE-1"]
    rows = list(csv.reader(io.StringIO(await (await fetch(
        client, reviewer, "/api/v1/exports/google?include_not_ready=true")).text()),
        delimiter="\t"))
    assert rows[0] == [*GOOGLE_HEADER, "ready", "findings"]
    row = dict(zip(rows[0], next(r for r in rows[1:] if r[0] == "MANY-1"), strict=True))
    assert row["image_link"] == url_of(many[0], "google")
    assert row["additional_image_link"].split(",") == [url_of(r, "google") for r in many[1:11]]
    assert (row["ready"], row["findings"]) == ("false", "too_many_photos")
    assert await conn.fetchval("SELECT count FROM exports ORDER BY id DESC LIMIT 1") == 12

    lines = (await (await fetch(client, reviewer, "/api/v1/exports/mercadolivre")).text())
    assert [json.loads(line)["code"] for line in lines.splitlines()] == ["ONE-1"]
    lines = (await (await fetch(
        client, reviewer, "/api/v1/exports/mercadolivre?include_not_ready=true")).text())
    items = {item["code"]: item for item in map(json.loads, lines.splitlines())}
    assert items["MANY-1"]["pictures"] == [{"source": url_of(r, "mercadolivre")}
                                           for r in many[:10]]
    assert (items["MANY-1"]["ready"], items["MANY-1"]["findings"]) == (False,
                                                                       ["too_many_photos"])
    assert items["ONE-1"] == {"code": "ONE-1", "item_id": None, "ready": True, "findings": [],
                              "pictures": [{"source": url_of(one, "mercadolivre")}]}
    assert await conn.fetchval("SELECT count FROM exports ORDER BY id DESC LIMIT 1") == 11


async def test_mercadolivre_json_lines(client, login_as, add):
    made = await catalogue(add)
    reviewer = await login_as("reviewer")
    response = await client.put("/api/v1/channels/mercadolivre/products/SHOE-1",
                                json={"external_id": "MLB1234567890"}, headers=reviewer)
    assert response.status == 200
    response = await fetch(client, reviewer, "/api/v1/exports/mercadolivre")
    assert response.headers["Content-Type"] == "application/x-ndjson"
    assert 'filename="ecogram-mercadolivre-' in response.headers["Content-Disposition"]
    text = await response.text()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines == [
        {"code": "BAG-7", "item_id": None,
         "pictures": [{"source": url_of(made["BAG-7"][0], "mercadolivre")}]},
        {"code": "SHOE-1", "item_id": "MLB1234567890",
         "pictures": [{"source": url_of(r, "mercadolivre")} for r in made["SHOE-1"]]},
    ]


async def test_nuvemshop_json_lines(client, login_as, add):
    made = await catalogue(add)
    reviewer = await login_as("reviewer")
    response = await client.put("/api/v1/channels/nuvemshop/products/BAG-7",
                                json={"external_id": "987654"}, headers=reviewer)
    assert response.status == 200
    text = await (await fetch(client, reviewer,
                              "/api/v1/exports/nuvemshop?include_not_ready=true")).text()
    lines = {line["code"]: line for line in map(json.loads, text.splitlines())}
    assert list(lines) == ["BAG-7", "MUG-2", "SHOE-1"]
    assert lines["BAG-7"] == {
        "code": "BAG-7", "product_id": "987654", "ready": True, "findings": [],
        "images": [{"src": url_of(made["BAG-7"][0], "nuvemshop"), "position": 1,
                    "alt": "Bolsa Café"}]}
    assert lines["SHOE-1"]["images"] == [
        {"src": url_of(made["SHOE-1"][0], "nuvemshop"), "position": 1,
         "alt": "Frente do sapato"},
        {"src": url_of(made["SHOE-1"][1], "nuvemshop"), "position": 2, "alt": "Product SHOE-1"}]
    assert (lines["MUG-2"]["ready"], lines["MUG-2"]["findings"]) == (False, ["too_small"])


async def test_renditions_csv_of_any_channel(client, login_as, add, conn, settings):
    """Per photo: URL, alt and the size planned from the stored geometry — the size a real
    render gives; bytes left empty (known only once rendered)."""
    big = product_photo(77, 1400, 1400)
    shoe = [await add("SHOE-1", big, alt="=1+1"), await add("SHOE-1")]
    small = await add("MUG-2", product_photo(900, 300, 300))
    reviewer = await login_as("reviewer")
    response = await fetch(client, reviewer, "/api/v1/exports/renditions?channel=mercadolivre")
    assert response.headers["Content-Type"].startswith("text/csv")
    assert 'filename="ecogram-renditions-mercadolivre-' in response.headers[
        "Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == RENDITIONS_HEADER == ["code", "product", "position", "url", "alt",
                                            "width", "height", "bytes"]
    body = [dict(zip(RENDITIONS_HEADER, r, strict=True)) for r in rows[1:]]
    assert [(r["code"], r["position"]) for r in body] == [("SHOE-1", "1"), ("SHOE-1", "2")]
    first, second = body
    assert first["product"] == "Product SHOE-1"
    assert first["url"] == url_of(shoe[0], "mercadolivre")
    assert second["url"] == url_of(shoe[1], "mercadolivre")
    assert first["alt"] == "'=1+1"  # neutralised for spreadsheets
    profile = settings.channel_profiles["mercadolivre"]
    rendered = render_for_channel(big, profile, main=True)
    assert (int(first["width"]), int(first["height"])) == (rendered.width,
                                                           rendered.height) == (1200, 1200)
    assert first["bytes"] == second["bytes"] == ""
    # A photo not measured yet has no planned size: it is left empty, not guessed.
    await conn.execute("DELETE FROM image_geometry WHERE image_id = $1", shoe[1]["id"])
    rows = list(csv.reader(io.StringIO(await (await fetch(
        client, reviewer,
        "/api/v1/exports/renditions?channel=nuvemshop&include_not_ready=true")).text())))
    assert rows[0] == [*RENDITIONS_HEADER, "ready", "findings"]
    body = {(r[0], r[2]): dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert body["SHOE-1", "2"]["width"] == body["SHOE-1", "2"]["height"] == ""
    assert body["SHOE-1", "2"]["url"] == url_of(shoe[1], "nuvemshop")
    assert (body["MUG-2", "1"]["ready"], body["MUG-2", "1"]["findings"]) == ("false",
                                                                             "too_small")
    assert body["MUG-2", "1"]["url"] == url_of(small, "nuvemshop")
    entry = await conn.fetchrow(
        "SELECT * FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 1")
    assert entry["target"] == "renditions"
    assert entry["details"]["filters"]["channel"] == "nuvemshop"
    assert entry["details"]["count"] == 3


async def test_filters_code_and_status(client, login_as, add):
    await catalogue(add)
    await add("PEND-1", status="pending")
    reviewer = await login_as("reviewer")
    text = await (await fetch(client, reviewer,
                              "/api/v1/exports/mercadolivre?code=BAG-7,NOPE")).text()
    assert [json.loads(line)["code"] for line in text.splitlines()] == ["BAG-7"]
    # Pending photos are not measured (the hooks measure on approval): not ready for a
    # channel that judges the main photo's background, ready for Google, which does not.
    text = await (await fetch(client, reviewer,
                              "/api/v1/exports/mercadolivre?status=pending")).text()
    assert text == ""
    text = await (await fetch(client, reviewer, "/api/v1/exports/mercadolivre"
                              "?status=pending&include_not_ready=true")).text()
    (line,) = map(json.loads, text.splitlines())
    assert (line["code"], line["ready"], line["findings"]) == ("PEND-1", False, ["not_measured"])
    text = await (await fetch(client, reviewer, "/api/v1/exports/google?status=pending")).text()
    assert [r.split("\t")[0] for r in text.splitlines()[1:]] == ["PEND-1"]
    assert await (await fetch(client, reviewer,
                              "/api/v1/exports/nuvemshop?code=NOPE")).text() == ""


async def test_an_unknown_channel_is_a_404(client, login_as, conn):
    response = await client.get("/api/v1/exports/renditions?channel=ebay",
                                headers=await login_as("reviewer"))
    assert response.status == 404
    assert_error(await response.json(), "not_found")
    assert await conn.fetchval("SELECT count(*) FROM exports") == 0


@pytest.mark.parametrize(("path", "field"), [
    ("/api/v1/exports/vtex?status=maybe", "status"),
    ("/api/v1/exports/vtex?include_not_ready=yes", "include_not_ready"),
    ("/api/v1/exports/google?since=soon", "since"),
    ("/api/v1/exports/google?channel=mercadolivre", "channel"),
    ("/api/v1/exports/renditions", "channel"),
    ("/api/v1/exports/mercadolivre?code=A%00B", "code"),
    ("/api/v1/exports/renditions?channel=vt%00ex", "channel"),
    ("/api/v1/exports/nuvemshop?status=appr%00oved", "status"),
    ("/api/v1/exports/nuvemshop?include_not_ready=tr%00ue", "include_not_ready"),
])
async def test_bad_parameters_are_422_naming_the_field(client, login_as, path, field, conn):
    response = await client.get(path, headers=await login_as("reviewer"))
    assert response.status == 422, path
    body = await response.json()
    assert_error(body, "invalid_fields")
    assert field in body["error"]["details"]["fields"]
    assert await conn.fetchval("SELECT count(*) FROM exports") == 0


async def test_access(client, login_as):
    for role, status in (("viewer", 403), ("importer", 403), ("reviewer", 200)):
        response = await client.get("/api/v1/exports/google", headers=await login_as(role))
        assert response.status == status, role
    assert (await client.get("/api/v1/exports/google")).status == 401


@pytest.mark.parametrize("settings", [1], indirect=True)
async def test_the_export_bound_applies_to_channel_exports(client, login_as, conn):
    """One export streams (stalled by its client); the channel exports are refused with 429
    before any work, and accepted again once it is done."""
    await seed_bulk(conn)
    reviewer = await login_as("reviewer")
    session, responses = await _start_stalled(client, reviewer, 1)
    try:
        for path in ("/api/v1/exports/vtex", "/api/v1/exports/renditions?channel=google"):
            response = await client.get(path, headers=reviewer)
            assert response.status == 429, path
            assert int(response.headers["Retry-After"]) > 0
            assert_error(await response.json(), "too_many_exports")
        assert await conn.fetchval("SELECT count(*) FROM exports") == 0
        body = await _slow_read(responses[0])
        assert len(body) > 8_000_000
    finally:
        for response in responses:
            response.release()
        await session.close()
    response = await client.get("/api/v1/exports/google?code=BULK-000001", headers=reviewer)
    assert response.status == 200
    assert (await response.text()).splitlines()[1].startswith("BULK-000001\t")
    assert [r["format"] for r in await conn.fetch("SELECT format FROM exports ORDER BY id")] \
        == ["shopify", "google"]


# --- the products' own ids on a channel ---------------------------------------------------------

async def test_channel_ids_through_the_api(client, login_as, conn):
    viewer, reviewer = await login_as("viewer"), await login_as("reviewer")
    path = "/api/v1/channels/mercadolivre/products/SHOE%2F1"
    response = await client.get(path, headers=viewer)
    assert response.status == 404
    assert_error(await response.json(), "not_found")
    response = await client.put(path, json={"external_id": "MLB1"}, headers=viewer)
    assert response.status == 403
    response = await client.put(path, json={"external_id": " MLB1 "}, headers=reviewer)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["channel"], body["code"], body["external_id"]) == ("mercadolivre", "SHOE/1",
                                                                     "MLB1")
    response = await client.get(path, headers=viewer)
    assert (await response.json())["external_id"] == "MLB1"
    await client.put(path, json={"external_id": "MLB2"}, headers=reviewer)
    await client.put(path, json={"external_id": "MLB2"}, headers=reviewer)  # no change
    entries = await conn.fetch(
        "SELECT action, target, details FROM audit_log WHERE action LIKE 'channel_id%' "
        "ORDER BY id")
    assert [(e["action"], e["target"], e["details"]["external_id"]) for e in entries] == [
        ("channel_id.set", "mercadolivre:SHOE/1", {"before": None, "after": "MLB1"}),
        ("channel_id.set", "mercadolivre:SHOE/1", {"before": "MLB1", "after": "MLB2"})]
    response = await client.get("/api/v1/channels/mercadolivre/products", headers=viewer)
    listing = await response.json()
    assert listing["total"] == 1 and listing["items"][0]["code"] == "SHOE/1"
    assert (await client.delete(path, headers=reviewer)).status == 204
    assert (await client.delete(path, headers=reviewer)).status == 404
    assert (await client.get(path, headers=viewer)).status == 404
    assert await conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'channel_id.removed'") == 1
    # Unknown channel: 404; bad ids: 422 naming the field.
    response = await client.put("/api/v1/channels/ebay/products/A", json={"external_id": "1"},
                                headers=reviewer)
    assert response.status == 404
    for bad in ("", "   ", "a\x00b", "x" * 201, 5, None):
        response = await client.put("/api/v1/channels/vtex/products/A",
                                    json={"external_id": bad}, headers=reviewer)
        assert response.status == 422, bad
        body = await response.json()
        assert_error(body, "invalid_fields")
        assert "external_id" in body["error"]["details"]["fields"]
    response = await client.get("/api/v1/channels/vtex/products?code=A%00B", headers=viewer)
    assert response.status == 422
    assert "code" in (await response.json())["error"]["details"]["fields"]
    response = await client.get("/api/v1/channels/vtex/products?per_page=0", headers=viewer)
    assert response.status == 422


async def test_channel_ids_csv_import(client, login_as, conn):
    reviewer = await login_as("reviewer")
    path = "/api/v1/channels/vtex/products"
    csv_text = "code,external_id\r\nSHOE-1,101\r\nBAG-7,102\r\n\r\nMUG-2,103\r\n"
    response = await client.post(path, data=csv_text.encode(),
                                 headers={**reviewer, "Content-Type": "text/csv"})
    assert response.status == 200, await response.text()
    assert await response.json() == {"channel": "vtex", "rows": 3, "set": 3, "unchanged": 0,
                                     "removed": 0}
    # Multipart, with a BOM: one changed, one unchanged, one removed (empty id).
    form = aiohttp.FormData()
    form.add_field("file", "\ufeffcode,external_id\nSHOE-1,201\nBAG-7,102\nMUG-2,\n".encode(),
                   filename="ids.csv", content_type="text/csv")
    response = await client.post(path, data=form, headers=reviewer)
    assert response.status == 200, await response.text()
    assert await response.json() == {"channel": "vtex", "rows": 3, "set": 1, "unchanged": 1,
                                     "removed": 1}
    rows = await conn.fetch("SELECT code, external_id FROM channel_product_ids ORDER BY code")
    assert [tuple(r) for r in rows] == [("BAG-7", "102"), ("SHOE-1", "201")]
    entries = await conn.fetch(
        "SELECT target, details FROM audit_log WHERE action = 'channel_ids.imported' "
        "ORDER BY id")
    assert [e["details"]["set"] for e in entries] == [3, 1] and entries[0]["target"] == "vtex"
    # Bad lines: nothing imported, the lines named.
    bad = "code,external_id\nOK-1,1\n,2\nDUP,3\nDUP,4\nA,B,C\n"
    response = await client.post(path, data=bad.encode(),
                                 headers={**reviewer, "Content-Type": "text/csv"})
    assert response.status == 422
    body = await response.json()
    assert_error(body, "invalid_fields")
    assert [item["line"] for item in body["error"]["details"]["lines"]] == [3, 5, 6]
    assert await conn.fetchval("SELECT count(*) FROM channel_product_ids") == 2
    for data, content_type in ((b"sku,id\nA,1\n", "text/csv"),
                               (b"code,external_id\nA\x00,1\n", "text/csv"),
                               (b"\xff\xfe", "text/csv")):
        response = await client.post(path, data=data,
                                     headers={**reviewer, "Content-Type": content_type})
        assert response.status == 422, data
        assert "file" in (await response.json())["error"]["details"]["fields"]
    response = await client.post(path, json={"code": "A"}, headers=reviewer)
    assert response.status == 415
    viewer = await login_as("viewer")
    response = await client.post(path, data=b"code,external_id\n",
                                 headers={**viewer, "Content-Type": "text/csv"})
    assert response.status == 403


async def test_cli_exports_a_channel(add, settings, conn, tmp_path, monkeypatch):
    """``ecogram export --format renditions --channel google`` and ``--format mercadolivre``
    write the same files as the API, recorded as the command line."""
    from ecogram.cli import main

    record = await add("SHOE-1")
    target = tmp_path / "r.csv"
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ECOGRAM_DATA_DIR", str(tmp_path / "data"))
    code = await asyncio.to_thread(main, ["export", "--format", "renditions", "--channel",
                                          "google", "-o", str(target)])
    assert code == 0
    rows = list(csv.reader(io.StringIO(target.read_text())))
    assert rows[0] == RENDITIONS_HEADER and rows[1][3] == url_of(record, "google")
    assert (await conn.fetchval("SELECT actor FROM exports")).startswith("command line")
    code = await asyncio.to_thread(main, ["export", "--format", "renditions"])
    assert code == 1


async def test_batches_do_not_change_the_output(client, login_as, add, monkeypatch):
    """One product per batch (readiness, geometry and ids read per batch) or all at once: the
    same rows."""
    from ecogram.catalog import exports

    await catalogue(add)
    reviewer = await login_as("reviewer")
    await client.put("/api/v1/channels/vtex/products/BAG-7", json={"external_id": "55"},
                     headers=reviewer)
    paths = ("/api/v1/exports/vtex?include_not_ready=true", "/api/v1/exports/google",
             "/api/v1/exports/renditions?channel=vtex&include_not_ready=true")

    async def rows(path: str) -> list:
        data = await (await fetch(client, reviewer, path)).read()
        if "vtex?" in path:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
            return [list(r) for r in book.active.iter_rows(values_only=True)]
        return data.decode().splitlines()

    whole = {path: await rows(path) for path in paths}
    assert all(len(found) > 2 for found in whole.values())
    monkeypatch.setattr(exports.walk, "BATCH_ROWS", 1)
    monkeypatch.setattr(exports.spreadsheet, "APPEND_ROWS", 1)  # rows to the thread one by one
    for path, expected in whole.items():
        assert await rows(path) == expected, path
