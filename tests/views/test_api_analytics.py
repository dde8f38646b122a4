"""Delivery analytics (issue 15): /img answers counted in memory by each worker, flushed to
PostgreSQL, reported by GET /api/v1/analytics — exactly, across two workers."""

from __future__ import annotations

import datetime as dt

import asyncpg
import pytest

from ecogram import keys
from ecogram.app import create_app
from ecogram.catalog import analytics
from tests.catalog.photos import make_photo
from tests.conftest import assert_error
from tests.views.cdn_support import CHROMIUM_ACCEPT, publish


@pytest.fixture
def settings(settings):
    # Nothing eager (renders then only come from requests) and no flush by the clock: the
    # test flushes.
    return settings.replace(eager_widths=(), channels=(), analytics_flush=3600.0)


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


_made = iter(range(1, 10_000))


def _photo() -> bytes:
    return make_photo(next(_made))  # a new photo each time: no duplicate refused


async def _get(client, path: str, **headers) -> tuple[int, bytes, dict]:
    response = await client.get(path, headers={"Accept": CHROMIUM_ACCEPT, **headers})
    body = await response.read()
    assert response.status in (200, 304), body
    return response.status, body, response.headers.copy()


async def test_n_answers_from_two_workers_are_counted_exactly_with_their_bytes(
    client, aiohttp_client, settings, login_as
):
    photo = await publish(client, login_as, _photo(), "SKU-1")
    other = await publish(client, login_as, _photo(), "SKU-2")
    second = await aiohttp_client(create_app(settings))  # another worker, same database
    sent = answers = 0
    for worker in (client, second):
        etags = {}
        for query in ("w=200", "w=200", "w=200", "w=300&fmt=jpeg", "w=300&fmt=jpeg"):
            status, body, headers = await _get(worker, f"/img/SKU-1?{query}")
            assert status == 200
            etags[query] = headers["ETag"]
            sent += len(body)
            answers += 1
        status, body, _ = await _get(worker, "/img/SKU-1?w=200",
                                     **{"If-None-Match": etags["w=200"]})
        assert status == 304 and body == b""
        answers += 1
    renders = 4  # each worker rendered each size once, then answered from its memory
    await _get(client, "/img/SKU-2?w=100")
    for worker in (client, second):
        assert await worker.app[keys.analytics].flush()

    response = await client.get("/api/v1/analytics?code=SKU-1", headers=await login_as("viewer"))
    assert response.status == 200, await response.text()
    body = await response.json()
    [row] = body["items"]
    assert row["image_id"] == photo["id"] and row["code"] == "SKU-1" and row["position"] == 1
    assert row["requests"] == answers == 12
    assert row["bytes_sent"] == sent
    assert row["bytes_saved"] == answers * photo["file_size"] - sent
    assert row["renders"] == renders == 4
    assert row["hits"] == answers - renders
    assert row["hit_ratio"] == round((answers - renders) / answers, 4)
    assert row["render_ms"] > 0 and row["bytes_per_request"] == round(sent / answers, 1)
    assert body["total"] == 1
    assert body["totals"]["requests"] == answers
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert [day["day"] for day in body["days"]] == [today]

    # A second round through the same rows: added to them, not written over.
    for _ in range(3):
        await _get(second, "/img/SKU-1?w=200")
    assert await second.app[keys.analytics].flush()
    response = await client.get("/api/v1/analytics", headers=await login_as("viewer"))
    body = await response.json()
    by_code = {item["code"]: item for item in body["items"]}
    assert by_code["SKU-1"]["requests"] == answers + 3
    assert by_code["SKU-2"]["requests"] == 1 and by_code["SKU-2"]["renders"] == 1
    assert body["totals"]["requests"] == answers + 4
    assert [item["code"] for item in body["items"]] == ["SKU-1", "SKU-2"]  # -requests
    assert other["id"] == by_code["SKU-2"]["image_id"]


async def test_counts_a_flush_could_not_write_are_kept_and_written_by_the_next(
    client, settings, login_as, clean_db
):
    await publish(client, login_as, _photo(), "SKU-1")
    flusher = client.app[keys.analytics]
    for _ in range(4):
        await _get(client, "/img/SKU-1?w=200")
    # The database refuses the write (the table locked away from this role for a moment): the
    # flush reports it, raises nothing and keeps the counts.
    conn = await asyncpg.connect(clean_db)
    try:
        await conn.execute("ALTER TABLE delivery_stats RENAME TO delivery_stats_away")
        assert await flusher.flush() is False
        await _get(client, "/img/SKU-1?w=200")
    finally:
        await conn.execute("ALTER TABLE delivery_stats_away RENAME TO delivery_stats")
        await conn.close()
    assert await flusher.flush() is True
    response = await client.get("/api/v1/analytics", headers=await login_as("viewer"))
    [row] = (await response.json())["items"]
    assert row["requests"] == 5 and row["renders"] == 1


async def test_stopping_the_app_flushes_what_was_counted(aiohttp_client, settings, login_as,
                                                         clean_db):
    client = await aiohttp_client(create_app(settings))
    await publish(client, login_as, _photo(), "SKU-1")
    await _get(client, "/img/SKU-1?w=200")
    await client.close()  # the app's cleanup: the last flush
    conn = await asyncpg.connect(clean_db)
    try:
        assert await conn.fetchval("SELECT sum(requests) FROM delivery_stats") == 1
    finally:
        await conn.close()


async def test_filters_group_sort_and_page(client, login_as, conn):
    ids = []
    for code in ("SKU-A", "SKU-B", "SKU-C"):
        ids.append((await publish(client, login_as, _photo(),
                                  code))["id"])
    second = (await publish(client, login_as, _photo(), "SKU-A",
                            position=2))["id"]
    day = dt.date(2026, 3, 10)
    # requests, bytes_sent per image: A1 10 × 1000, B 5 × 5000, C 1 × 100, A2 2 × 300
    for image_id, requests, sent in ((ids[0], 10, 10_000), (ids[1], 5, 25_000),
                                     (ids[2], 1, 100), (second, 2, 600)):
        await conn.execute(
            "INSERT INTO delivery_stats (image_id, day, requests, bytes_sent, bytes_saved, hits,"
            " renders, render_ms) VALUES ($1, $2, $3, $4, 0, $3, 1, 40)",
            image_id, day, requests, sent)
    await conn.execute(
        "INSERT INTO delivery_stats (image_id, day, requests, bytes_sent) VALUES ($1, $2, 7, 7)",
        ids[2], day - dt.timedelta(days=30))
    headers = await login_as("viewer")

    async def get(query: str) -> dict:
        response = await client.get(f"/api/v1/analytics?{query}", headers=headers)
        assert response.status == 200, await response.text()
        return await response.json()

    window = "since=2026-03-01&until=2026-03-31"
    body = await get(window)
    assert [(i["code"], i["position"]) for i in body["items"]] == [
        ("SKU-A", 1), ("SKU-B", 1), ("SKU-A", 2), ("SKU-C", 1)]
    assert body["totals"]["requests"] == 18 and body["total"] == 4
    assert body["days"] == [{"day": "2026-03-10", **body["totals"]}]
    heaviest = await get(window + "&sort=-bytes_per_request")
    assert [i["bytes_per_request"] for i in heaviest["items"]] == [5000.0, 1000.0, 300.0, 100.0]
    products = await get(window + "&group=product&sort=code")
    assert [(i["code"], i["requests"]) for i in products["items"]] == [
        ("SKU-A", 12), ("SKU-B", 5), ("SKU-C", 1)]
    assert "image_id" not in products["items"][0]
    only = await get(window + "&code=SKU-B,SKU-C")
    assert [i["code"] for i in only["items"]] == ["SKU-B", "SKU-C"]
    assert only["totals"]["requests"] == 6
    paged = await get(window + "&per_page=2&page=2")
    assert [i["code"] for i in paged["items"]] == ["SKU-A", "SKU-C"] and paged["total"] == 4
    past = await get(window + "&per_page=2&page=9")
    assert past["items"] == [] and past["total"] == 4
    february = await get("since=2026-02-01&until=2026-03-01")
    assert february["totals"]["requests"] == 7


@pytest.mark.parametrize("query, fields", [
    ("sort=size", {"sort"}),
    ("group=shop&per_page=0", {"group", "per_page"}),
    ("since=yesterday", {"since"}),
    ("page=x", {"page"}),
    ("code=A%00B", {"code"}),
    ("sort=-code%00", {"sort"}),
])
async def test_bad_parameters_are_422_naming_them(client, login_as, query, fields):
    response = await client.get(f"/api/v1/analytics?{query}", headers=await login_as("viewer"))
    assert response.status == 422, await response.text()
    body = await response.json()
    assert_error(body, "invalid_fields")
    assert fields <= set(body["error"]["details"]["fields"]), body


async def test_viewers_and_up_only(client, login_as):
    assert (await client.get("/api/v1/analytics")).status == 401
    response = await client.get("/api/v1/analytics", headers=await login_as("viewer"))
    assert response.status == 200
    body = await response.json()
    assert body["items"] == [] and body["totals"]["requests"] == 0


def test_counting_off_counts_nothing():
    counts = analytics.NoCounts()
    counts.served(1, 100, "memory")
    counts.rendered(1, 0.5)
    assert counts.take() == {}
