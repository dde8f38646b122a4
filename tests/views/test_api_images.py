"""Management API: list, get, edit with reordering, delete, purge, original, replace."""

from __future__ import annotations

import datetime as dt
import urllib.parse

import aiohttp
import pytest

from tests.catalog.photos import make_photo
from tests.conftest import assert_error


async def positions(conn, code: str) -> list[tuple[int, int]]:
    rows = await conn.fetch("SELECT id, position FROM images WHERE code = $1 AND deleted_at IS "
                            "NULL ORDER BY position", code)
    return [(r["id"], r["position"]) for r in rows]


async def test_list_filters_sorts_and_pages(client, login_as, make_image):
    a = await make_image("SHOE-1", product="Red running shoe")
    b = await make_image("SHOE-1", product="Red running shoe", status="approved")
    c = await make_image("BAG-7", product="Leather bag", status="rejected")
    viewer = await login_as("viewer")

    async def ids(query: str) -> list[int]:
        response = await client.get(f"/api/v1/images?{query}", headers=viewer)
        body = await response.json()
        assert response.status == 200, body
        assert set(body) == {"items", "total", "page", "per_page"}
        return [item["id"] for item in body["items"]]

    assert await ids("") == [c["id"], b["id"], a["id"]]  # newest first by default
    assert await ids("status=approved") == [b["id"]]
    assert await ids("code=SHOE-1&sort=position") == [a["id"], b["id"]]
    assert await ids("code=SHOE-1,BAG-7&sort=code") == [c["id"], a["id"], b["id"]]
    assert await ids("code=SHOE-1&code=BAG-7&sort=-code") == [b["id"], a["id"], c["id"]]
    assert await ids("q=leather") == [c["id"]]          # product, any case
    assert await ids("q=shoe-") == [b["id"], a["id"]]   # code
    assert await ids("q=%25") == []                     # a literal %, not a wildcard
    assert await ids("importer=Importer%20User&sort=imported_at") == [a["id"], b["id"], c["id"]]
    assert await ids(f"importer={a['importer_id']}&status=pending") == [a["id"]]
    assert await ids("importer=nobody") == []
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    assert await ids(f"since={future.replace('+', '%2B')}") == []
    assert len(await ids("until=2999-01-01")) == 3
    response = await client.get("/api/v1/images?per_page=2&page=2&sort=imported_at",
                                headers=viewer)
    body = await response.json()
    assert (body["total"], body["page"], body["per_page"]) == (3, 2, 2)
    assert [item["id"] for item in body["items"]] == [c["id"]]
    record = body["items"][0]
    assert record["urls"]["src"].endswith(f"/img/BAG-7/1?v={record['version']}")


@pytest.mark.parametrize("query", ["per_page=101", "per_page=0", "page=0", "page=x",
                                   "sort=password_hash", "sort=id;drop", "status=gone",
                                   "since=yesterday", "since=2021-01-01T00:00", "page=1.0",
                                   "page=1&page=2", "purge=1", "q=" + "x" * 201])
async def test_list_refuses_bad_parameters(client, login_as, query):
    response = await client.get(f"/api/v1/images?{query}", headers=await login_as("viewer"))
    assert response.status == 422, query
    assert_error(await response.json(), "invalid_fields")


async def test_a_range_that_ends_before_it_starts_is_empty(client, login_as, make_image):
    await make_image()
    response = await client.get("/api/v1/images?until=2020-01-01&since=2021-01-01",
                                headers=await login_as("viewer"))
    assert response.status == 200
    assert (await response.json())["total"] == 0


async def test_list_and_get_need_a_token(client, make_image):
    record = await make_image()
    for path in ("/api/v1/images", f"/api/v1/images/{record['id']}"):
        response = await client.get(path)
        assert response.status == 401
        assert_error(await response.json())


async def test_get_one_and_unknown_ids(client, login_as, make_image):
    record = await make_image("SKU-9", product="Lamp", alt="A lamp")
    viewer = await login_as("viewer")
    response = await client.get(f"/api/v1/images/{record['id']}", headers=viewer)
    body = await response.json()
    assert response.status == 200
    assert response.headers["ETag"]
    for key in ("id", "code", "product", "position", "status", "filename", "format", "width",
                "height", "file_size", "sha256", "blurhash", "color", "importer",
                "imported_at", "reviewed_by", "reviewed_at", "review_note", "qc", "alt",
                "urls"):
        assert key in body, key
    assert (body["code"], body["product"], body["alt"]) == ("SKU-9", "Lamp", "A lamp")
    for missing in ("999999", "0", "99999999999999999999999"):
        response = await client.get(f"/api/v1/images/{missing}", headers=viewer)
        assert response.status == 404
        assert_error(await response.json(), "not_found")


async def test_moving_within_a_code_shifts_the_others(client, login_as, make_image, conn):
    one, two, three = [await make_image("SKU-1") for _ in range(3)]
    importer = await login_as("importer")
    response = await client.patch(f"/api/v1/images/{three['id']}", json={"position": 1},
                                  headers=importer)
    body = await response.json()
    assert response.status == 200, body
    assert body["position"] == 1
    assert await positions(conn, "SKU-1") == [(three["id"], 1), (one["id"], 2), (two["id"], 3)]
    # Down again, past the end: clamped to the last position.
    response = await client.patch(f"/api/v1/images/{three['id']}", json={"position": 50},
                                  headers=importer)
    assert (await response.json())["position"] == 3
    assert await positions(conn, "SKU-1") == [(one["id"], 1), (two["id"], 2), (three["id"], 3)]
    # The moved photo's address changed: so did its version (the cache token in its URL).
    assert (await response.json())["version"] != three["version"]


async def test_moving_to_another_code_closes_the_gap(client, login_as, make_image, conn):
    a1, a2, a3 = [await make_image("A") for _ in range(3)]
    b1, b2 = [await make_image("B") for _ in range(2)]
    importer = await login_as("importer")
    response = await client.patch(f"/api/v1/images/{a2['id']}", json={"code": "B"},
                                  headers=importer)
    assert response.status == 200
    assert (await response.json())["position"] == 3  # appended
    assert await positions(conn, "A") == [(a1["id"], 1), (a3["id"], 2)]
    assert await positions(conn, "B") == [(b1["id"], 1), (b2["id"], 2), (a2["id"], 3)]
    response = await client.patch(f"/api/v1/images/{a1['id']}",
                                  json={"code": "B", "position": 1, "alt": "Front"},
                                  headers=importer)
    body = await response.json()
    assert (body["code"], body["position"], body["alt"]) == ("B", 1, "Front")
    assert await positions(conn, "A") == [(a3["id"], 1)]
    assert await positions(conn, "B") == [(a1["id"], 1), (b1["id"], 2), (b2["id"], 3),
                                          (a2["id"], 4)]
    # The audit keeps the before and after of what changed.
    entry = await conn.fetchrow("SELECT * FROM audit_log WHERE action = 'image.edited' AND "
                                "image_id = $1 ORDER BY id DESC LIMIT 1", a1["id"])
    assert entry["actor"] == "Importer User"
    assert entry["details"]["code"] == {"before": "A", "after": "B"}
    assert entry["details"]["alt"] == {"before": "", "after": "Front"}


@pytest.mark.parametrize("payload", [{"code": ""}, {"code": "a/b"}, {"code": "has space"},
                                     {"position": 0}, {"position": "2"}, {"position": True},
                                     {"alt": 5}, {"alt": "x" * 5000}, {"sha256": "x"},
                                     {"status": "approved"}, {}, {"product": "a\x00b"}])
async def test_edit_refuses_bad_fields(client, login_as, make_image, payload, conn):
    record = await make_image()
    response = await client.patch(f"/api/v1/images/{record['id']}", json=payload,
                                  headers=await login_as("importer"))
    assert response.status == 422, payload
    assert_error(await response.json(), "invalid_fields")
    row = await conn.fetchrow("SELECT code, position, alt, status FROM images WHERE id = $1",
                              record["id"])
    assert dict(row) == {"code": "SKU-1", "position": 1, "alt": "", "status": "pending"}


async def test_edit_with_stale_etag_or_version_is_409(client, login_as, make_image):
    record = await make_image()
    importer = await login_as("importer")
    response = await client.get(f"/api/v1/images/{record['id']}", headers=importer)
    etag = response.headers["ETag"]
    response = await client.patch(f"/api/v1/images/{record['id']}", json={"alt": "one"},
                                  headers={**importer, "If-Match": etag})
    assert response.status == 200
    # Someone else's edit happened in between: the old ETag no longer matches.
    response = await client.patch(f"/api/v1/images/{record['id']}", json={"alt": "two"},
                                  headers={**importer, "If-Match": etag})
    assert response.status == 409
    assert_error(await response.json(), "edit_conflict")
    response = await client.patch(f"/api/v1/images/{record['id']}",
                                  json={"alt": "two", "version": record["version"] + 1000},
                                  headers=importer)
    assert response.status == 409
    response = await client.patch(f"/api/v1/images/{record['id']}",
                                  json={"alt": "two", "version": record["version"]},
                                  headers=importer)
    assert (await response.json())["alt"] == "two"


async def test_edit_needs_importer_and_json(client, login_as, make_image):
    record = await make_image()
    response = await client.patch(f"/api/v1/images/{record['id']}", json={"alt": "x"},
                                  headers=await login_as("viewer"))
    assert response.status == 403
    response = await client.patch(f"/api/v1/images/{record['id']}", data="{not json",
                                  headers={**await login_as("importer"),
                                           "Content-Type": "application/json"})
    assert response.status == 400
    assert_error(await response.json())


async def test_delete_is_soft_and_closes_the_gap(client, login_as, make_image, conn):
    one, two, three = [await make_image("SKU-1") for _ in range(3)]
    response = await client.delete(f"/api/v1/images/{one['id']}",
                                   headers=await login_as("reviewer"))
    assert response.status == 403
    admin = await login_as("admin")
    response = await client.delete(f"/api/v1/images/{one['id']}", headers=admin)
    assert response.status == 204
    assert await positions(conn, "SKU-1") == [(two["id"], 1), (three["id"], 2)]
    row = await conn.fetchrow("SELECT deleted_at FROM images WHERE id = $1", one["id"])
    assert row["deleted_at"] is not None  # kept for the audit
    response = await client.get(f"/api/v1/images/{one['id']}", headers=admin)
    assert response.status == 404
    response = await client.delete(f"/api/v1/images/{one['id']}", headers=admin)
    assert response.status == 404
    body = await (await client.get("/api/v1/images", headers=admin)).json()
    assert one["id"] not in [item["id"] for item in body["items"]]
    assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'image.deleted' "
                               "AND image_id = $1", one["id"]) == 1


@pytest.mark.parametrize("how", ["query", "post"])
async def test_purge_removes_row_and_original_but_not_the_audit(client, login_as, make_image,
                                                                conn, how):
    one, two = await make_image("SKU-1"), await make_image("SKU-1")
    admin = await login_as("admin")
    if how == "query":
        response = await client.delete(f"/api/v1/images/{one['id']}?purge=true", headers=admin)
    else:
        response = await client.post(f"/api/v1/images/{one['id']}/purge", headers=admin)
    assert response.status == 204
    assert await conn.fetchval("SELECT count(*) FROM images WHERE id = $1", one["id"]) == 0
    assert await conn.fetchval("SELECT count(*) FROM originals WHERE image_id = $1",
                               one["id"]) == 0
    assert await positions(conn, "SKU-1") == [(two["id"], 1)]
    actions = [r["action"] for r in await conn.fetch(
        "SELECT action FROM audit_log WHERE image_id = $1 ORDER BY id", one["id"])]
    assert actions == ["image.imported", "image.purged"]
    # A soft-deleted photo can be purged too; the importer cannot purge.
    await client.delete(f"/api/v1/images/{two['id']}", headers=admin)
    response = await client.post(f"/api/v1/images/{two['id']}/purge",
                                 headers=await login_as("importer"))
    assert response.status == 403
    response = await client.post(f"/api/v1/images/{two['id']}/purge", headers=admin)
    assert response.status == 204
    response = await client.delete(f"/api/v1/images/{two['id']}?purge=maybe", headers=admin)
    assert response.status == 422


async def test_original_bytes_with_type_and_name(client, login_as, make_image):
    photo = make_photo(77)
    record = await make_image(photo=photo, filename='shoe "front".jpg')
    response = await client.get(f"/api/v1/images/{record['id']}/original",
                                headers=await login_as("viewer"))
    assert response.status == 200
    assert await response.read() == photo
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    disposition = response.headers["Content-Disposition"]
    # The stored name (as the client sent it) in RFC 5987 form, and a safe ASCII fallback
    # with no quote that could end the header's quoted string early.
    stored = record["filename"]
    assert '"' not in disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert disposition.startswith('attachment; filename="shoe')
    assert "filename*=UTF-8''" + urllib.parse.quote(stored, safe="") in disposition
    response = await client.get("/api/v1/images/424242/original",
                                headers=await login_as("viewer"))
    assert response.status == 404


def _file(data: bytes, name: str = "new.jpg") -> aiohttp.FormData:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return form


async def test_replace_bumps_version_and_returns_to_pending(client, login_as, make_image, conn,
                                                            fixture_image):
    record = await make_image(status="approved")
    assert record["status"] == "approved"
    importer = await login_as("importer")
    new_photo = make_photo(4242, width=300, height=200)
    response = await client.put(f"/api/v1/images/{record['id']}/file",
                                data=_file(new_photo), headers=importer)
    body = await response.json()
    assert response.status == 200, body
    assert (body["status"], body["width"], body["height"]) == ("pending", 300, 200)
    assert body["version"] != record["version"]
    assert body["reviewed_by"] is None
    assert body["urls"]["src"].endswith(f"?v={body['version']}")
    stored = await conn.fetchval(
        "SELECT b.data FROM images i JOIN blobs b ON b.sha256 = i.sha256 WHERE i.id = $1",
        record["id"])
    assert bytes(stored) == new_photo
    entry = await conn.fetchrow("SELECT details FROM audit_log WHERE action = 'image.replaced'")
    assert entry["details"]["status"] == {"before": "approved", "after": "pending"}

    # Refused files change nothing: not an image, too small, the sibling's exact bytes.
    sibling = await make_image(photo=make_photo(99))
    for data, status, code in [
        (fixture_image("hostile/not-an-image.jpg"), 415, None),
        (fixture_image("hostile/too-small-40x30.jpg"), 422, "too_small"),
        (make_photo(99), 409, "duplicate"),
    ]:
        response = await client.put(f"/api/v1/images/{record['id']}/file", data=_file(data),
                                    headers=importer)
        assert response.status == status, await response.text()
        assert_error(await response.json(), code)
    after = await conn.fetchrow("SELECT sha256, version FROM images WHERE id = $1", record["id"])
    assert (after["version"], after["sha256"]) == (body["version"], body["sha256"])
    assert sibling["id"] != record["id"]
    response = await client.put(f"/api/v1/images/{record['id']}/file",
                                data=_file(new_photo), headers=await login_as("viewer"))
    assert response.status == 403
    response = await client.put(f"/api/v1/images/{record['id']}/file", json={"file": "x"},
                                headers=importer)
    assert response.status == 415
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("other", "x")
    response = await client.put(f"/api/v1/images/{record['id']}/file", data=form,
                                headers=importer)
    assert response.status == 422


# --- an approved photo's code or product changed: back to review, unless a reviewer did it ------


def _watch_changes(client) -> list[int]:
    """The image ids the app's on_changed hooks hear about (the delivery listens there too)."""
    from ecogram.catalog import events

    heard: list[int] = []

    async def record(image_id: int) -> None:
        heard.append(image_id)

    events.of(client.server.app).on_changed.append(record)
    return heard


async def _edit_entry(conn, image_id: int) -> dict:
    return await conn.fetchval("SELECT details FROM audit_log WHERE action = 'image.edited' "
                               "AND image_id = $1 ORDER BY id DESC LIMIT 1", image_id)


@pytest.mark.parametrize("change", [{"code": "NEW-1"}, {"product": "Another product"},
                                    {"code": "NEW-1", "product": "Another product"}])
async def test_importer_changing_an_approved_photos_code_or_product_sends_it_to_review(
    client, login_as, make_image, conn, change
):
    record = await make_image("OLD-1", status="approved", product="Blue mug")
    assert (await client.get("/img/OLD-1")).status == 200  # live, and in delivery's memory
    heard = _watch_changes(client)
    response = await client.patch(f"/api/v1/images/{record['id']}", json=change,
                                  headers=await login_as("importer"))
    body = await response.json()
    assert response.status == 200, body
    assert body["status"] == "pending"
    assert (body["reviewed_by"], body["reviewed_at"]) == (None, None)
    assert heard == [record["id"]]
    details = await _edit_entry(conn, record["id"])
    assert details["status"] == {"before": "approved", "after": "pending"}
    for field, value in change.items():
        assert details[field]["after"] == value
    # Unpublished at once, under the old code and the new one.
    assert (await client.get("/img/OLD-1")).status == 404
    assert (await client.get(f"/img/{body['code']}")).status == 404
    # Back in the review queue like any new photo: a reviewer approves it where it now is.
    response = await client.post(f"/api/v1/images/{record['id']}/approve", json={},
                                 headers=await login_as("reviewer"))
    assert response.status == 200, await response.text()
    assert (await client.get(f"/img/{body['code']}")).status == 200


@pytest.mark.parametrize("role", ["reviewer", "admin"])
async def test_reviewer_moving_an_approved_photo_keeps_it_live(client, login_as, make_image,
                                                              conn, role):
    record = await make_image("OLD-2", status="approved", product="Blue mug")
    assert (await client.get("/img/OLD-2")).status == 200
    response = await client.patch(f"/api/v1/images/{record['id']}",
                                  json={"code": "NEW-2", "product": "Green mug"},
                                  headers=await login_as(role))
    body = await response.json()
    assert response.status == 200, body
    assert (body["status"], body["reviewed_by"]) == ("approved", record["reviewed_by"])
    assert "status" not in await _edit_entry(conn, record["id"])
    assert (await client.get("/img/OLD-2")).status == 404
    assert (await client.get("/img/NEW-2")).status == 200


async def test_importer_editing_alt_or_position_of_an_approved_photo_keeps_it_live(
    client, login_as, make_image, conn
):
    first = await make_image("KEEP-1", status="approved")
    second = await make_image("KEEP-1", status="approved")
    importer = await login_as("importer")
    for change in ({"alt": "Front view"}, {"position": 1}):
        response = await client.patch(f"/api/v1/images/{second['id']}", json=change,
                                      headers=importer)
        assert response.status == 200
        assert (await response.json())["status"] == "approved"
    statuses = await conn.fetch("SELECT status FROM images WHERE id = ANY($1::bigint[])",
                                [first["id"], second["id"]])
    assert {r["status"] for r in statuses} == {"approved"}
    assert (await client.get("/img/KEEP-1")).status == 200


async def test_importer_moving_a_pending_or_rejected_photo_keeps_its_status(
    client, login_as, make_image
):
    importer = await login_as("importer")
    for status in ("pending", "rejected"):
        record = await make_image(f"ST-{status}", status=status)
        response = await client.patch(f"/api/v1/images/{record['id']}",
                                      json={"code": f"MOVED-{status}"}, headers=importer)
        assert (await response.json())["status"] == status
