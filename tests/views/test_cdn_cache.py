"""/img caching: single flight, back-pressure, eager presets, invalidation across workers."""

from __future__ import annotations

import asyncio
import threading

import aiohttp
import pytest

from ecogram import keys
from ecogram.app import create_app
from tests.conftest import assert_error
from tests.views.cdn_support import (
    CHROMIUM_ACCEPT,
    decode,
    fixture_bytes,
    publish,
    review,
)
from tests.views.test_cdn import render_count, served_count


@pytest.fixture
def settings(settings):
    return settings.replace(min_side=10, eager_widths=(), channels=())


def _block_pool(app, threads: int) -> threading.Event:
    """Occupy every libvips thread until the returned event is set."""
    release = threading.Event()
    for _ in range(threads):
        app[keys.vips_executor].submit(release.wait, 30)
    return release


async def test_concurrent_identical_requests_share_one_render(client, login_as):
    await publish(client, login_as, fixture_bytes("valid/xmp_test.jpg"), "SF-1")
    before = render_count(client)
    responses = await asyncio.gather(
        *(client.get("/img/SF-1?w=640&fmt=avif") for _ in range(25))
    )
    bodies = {await r.read() for r in responses}
    assert all(r.status == 200 for r in responses)
    assert len(bodies) == 1
    assert render_count(client) == before + 1


@pytest.mark.server_fault
async def test_a_full_render_queue_answers_503_with_retry_after(aiohttp_client, settings):
    client = await aiohttp_client(create_app(
        settings.replace(render_threads=1, render_queue=2, render_timeout=20)))
    login = _login_for(client)
    await publish(client, login, fixture_bytes("valid/hopper.jpg"), "BP-1")
    release = _block_pool(client.app, 1)
    try:
        # Capacity is 1 thread + 2 queued: three distinct renders are taken, the rest refused.
        tasks = [asyncio.create_task(client.get(f"/img/BP-1?w={w}&fmt=jpeg"))
                 for w in (48, 64, 96, 100, 120, 150)]
        await asyncio.sleep(0.5)
        done = [t for t in tasks if t.done()]
        assert len(done) == 3
        for task in done:
            response = task.result()
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
            assert response.headers["Cache-Control"] == "no-store"
            assert_error(await response.json(), "overloaded")
        assert client.app[keys.metrics].sample("ecogram_img_render_queue_depth") == 3
    finally:
        release.set()
    waited = await asyncio.gather(*tasks)
    assert sorted(r.status for r in waited) == [200, 200, 200, 503, 503, 503]
    metrics = client.app[keys.metrics]
    assert metrics.sample("ecogram_img_render_rejections_total", reason="queue_full") == 3
    # The queue drains and the server answers again.
    assert (await client.get("/img/BP-1?w=160&fmt=jpeg")).status == 200
    assert client.app[keys.metrics].sample("ecogram_img_render_queue_depth") == 0


@pytest.mark.server_fault
async def test_a_render_over_the_time_limit_is_a_503(aiohttp_client, settings):
    client = await aiohttp_client(create_app(
        settings.replace(render_threads=1, render_queue=4, render_timeout=0.3)))
    login = _login_for(client)
    await publish(client, login, fixture_bytes("valid/hopper.jpg"), "TO-1")
    release = _block_pool(client.app, 1)
    try:
        response = await client.get("/img/TO-1?w=64&fmt=jpeg")
        assert response.status == 503
        assert_error(await response.json(), "render_timeout")
        assert "Retry-After" in response.headers
    finally:
        release.set()
    metrics = client.app[keys.metrics]
    assert metrics.sample("ecogram_img_render_rejections_total", reason="timeout") == 1
    assert (await client.get("/img/TO-1?w=64&fmt=jpeg")).status == 200


def _login_for(client):
    """login_as for a client built inside the test (the fixture is bound to ``client``)."""
    from tests.conftest import PASSWORD

    tokens: dict[str, dict[str, str]] = {}

    async def token_for(email):
        response = await client.post("/api/v1/auth/login",
                                     json={"email": email, "password": PASSWORD})
        assert response.status == 200
        return {"Authorization": f"Bearer {(await response.json())['access_token']}"}

    async def login(role="admin"):
        if role in tokens:
            return tokens[role]
        if "admin" not in tokens:
            response = await client.post("/api/v1/auth/register", json={
                "email": "admin@example.com", "name": "Admin", "password": PASSWORD})
            assert response.status == 201
            tokens["admin"] = await token_for("admin@example.com")
        if role != "admin":
            response = await client.post("/api/v1/auth/register", json={
                "email": f"{role}@example.com", "name": role, "password": PASSWORD})
            user = await response.json()
            await client.patch(f"/api/v1/users/{user['id']}", json={"role": role},
                               headers=tokens["admin"])
            tokens[role] = await token_for(f"{role}@example.com")
        return tokens[role]

    return login


async def test_approval_renders_the_presets_in_the_background(aiohttp_client, settings):
    client = await aiohttp_client(create_app(
        settings.replace(eager_widths=(400, 800), eager_formats=("avif", "webp"))))
    login = _login_for(client)
    await publish(client, login, fixture_bytes("valid/xmp_test.jpg"), "EAGER-1")
    delivery = client.app[keys.delivery]
    async with asyncio.timeout(60):
        await delivery.eager_idle()
    metrics = client.app[keys.metrics]
    assert metrics.sample("ecogram_img_eager_total", outcome="rendered") == 4
    renders = render_count(client)
    assert renders == 4
    for accept, width, content_type in ((CHROMIUM_ACCEPT, 400, "image/avif"),
                                        ("image/webp,*/*", 800, "image/webp")):
        before = served_count(client, "memory")
        response = await client.get(f"/img/EAGER-1?w={width}", headers={"Accept": accept})
        assert response.status == 200
        assert response.headers["Content-Type"] == content_type
        assert decode(await response.read()).width == width
        assert served_count(client, "memory") == before + 1  # the first shopper: a hit
    assert render_count(client) == renders


async def test_the_approve_response_does_not_wait_for_the_presets(aiohttp_client, settings):
    client = await aiohttp_client(create_app(
        settings.replace(render_threads=1, eager_widths=(400,), eager_formats=("avif",))))
    login = _login_for(client)
    from tests.views.cdn_support import import_photo

    record = await import_photo(client, login, fixture_bytes("valid/hopper.jpg"), "EAGER-2")
    release = _block_pool(client.app, 1)  # presets cannot render until released
    try:
        approved = await asyncio.wait_for(review(client, login, record["id"]), 10)
        assert approved["status"] == "approved"
        assert render_count(client) == 0
    finally:
        release.set()
    async with asyncio.timeout(30):
        await client.app[keys.delivery].eager_idle()
    assert render_count(client) == 1


# --- invalidation -------------------------------------------------------------------------

async def _wait_notified(app, before: int) -> None:
    listener = app[keys.delivery].listener
    async with asyncio.timeout(5):
        await listener.wait_for(lambda: listener.notifications > before)


async def test_changes_reach_the_very_next_request_in_this_and_another_worker(
    client, login_as, aiohttp_client, settings
):
    other = await aiohttp_client(create_app(settings))  # a second worker on the same database
    other_listener = other.app[keys.delivery].listener
    assert other_listener.connected and client.app[keys.delivery].listener.connected

    first = await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "INV-1")
    second = await publish(client, login_as, fixture_bytes("valid/hopper.png"), "INV-1",
                           filename="h.png")
    url = "/img/INV-1?w=64&fmt=png"
    for app_client in (client, other):
        response = await app_client.get(url)
        assert response.status == 200
        assert response.headers["ETag"].startswith(f'"{first["id"]}:{first["version"]}:')
    # Warm: the second request resolves from the in-process cache, no database round trip.
    metrics = other.app[keys.metrics]
    hits = metrics.sample("ecogram_img_resolution_lookups_total", result="hit")
    assert (await other.get(url)).status == 200
    assert metrics.sample("ecogram_img_resolution_lookups_total", result="hit") == hits + 1

    # Replace the first photo: it goes back to pending with a new version.
    seen = other_listener.notifications
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("file", fixture_bytes("valid/hopper.webp"), filename="new.webp",
                   content_type="application/octet-stream")
    replaced = await client.put(f"/api/v1/images/{first['id']}/file", data=form,
                                headers=await login_as("importer"))
    assert replaced.status == 200, await replaced.text()
    response = await client.get(url)  # this worker: its hook dropped the entry already
    assert response.headers["ETag"].startswith(f'"{second["id"]}:'), "serves position 2 now"
    await _wait_notified(other.app, seen)
    response = await other.get(url)
    assert response.headers["ETag"].startswith(f'"{second["id"]}:')
    assert (await other.get("/img/INV-1/1")).status == 404  # position 1 is pending

    # Approve the new photo: served again, under its new version.
    seen = other_listener.notifications
    new = await review(client, login_as, first["id"])
    assert new["version"] != first["version"]
    await _wait_notified(other.app, seen)
    for app_client in (client, other):
        response = await app_client.get(url)
        assert response.headers["ETag"].startswith(f'"{first["id"]}:{new["version"]}:')
        assert decode(await response.read()).width == 64

    # Delete both: 404 everywhere, at once.
    admin = await login_as("admin")
    for image in (first, second):
        seen = other_listener.notifications
        deleted = await client.delete(f"/api/v1/images/{image['id']}", headers=admin)
        assert deleted.status in (200, 204)
        await _wait_notified(other.app, seen)
    for app_client in (client, other):
        assert (await app_client.get(url)).status == 404
        assert (await app_client.get("/img/INV-1/placeholder")).status == 404


async def test_a_reorder_changes_what_a_position_serves(client, login_as):
    a = await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "ORD-1")
    b = await publish(client, login_as, fixture_bytes("valid/hopper.png"), "ORD-1",
                      filename="h.png")
    first = await client.get("/img/ORD-1/1?w=64&fmt=png")
    assert first.headers["ETag"].startswith(f'"{a["id"]}:')
    moved = await client.patch(f"/api/v1/images/{b['id']}", json={"position": 1},
                               headers=await login_as("importer"))
    assert moved.status == 200, await moved.text()
    response = await client.get("/img/ORD-1/1?w=64&fmt=png")
    assert response.headers["ETag"].startswith(f'"{b["id"]}:')
    response = await client.get("/img/ORD-1?w=64&fmt=png")
    assert response.headers["ETag"].startswith(f'"{b["id"]}:')


async def test_a_lost_listener_stops_the_resolution_cache_until_it_is_back(
    client, login_as, conn
):
    await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "LST-1")
    delivery = client.app[keys.delivery]
    listener = delivery.listener
    # The import's and the approval's NOTIFYs may arrive after the first lookup and drop it:
    # ask again until the cache holds the address (it does once they are in).
    async with asyncio.timeout(10):
        while True:
            assert (await client.get("/img/LST-1?w=64")).status == 200
            if len(delivery.resolutions) == 1:
                break
            await asyncio.sleep(0.05)
    connections = listener.connections
    pid = listener._conn.get_server_pid()
    await conn.execute("SELECT pg_terminate_backend($1)", pid)
    async with asyncio.timeout(10):
        await listener.wait_for(lambda: not delivery.resolutions.enabled)
    # Meanwhile every request asks the database: correct, only slower.
    metrics = client.app[keys.metrics]
    misses = metrics.sample("ecogram_img_resolution_lookups_total", result="miss")
    assert (await client.get("/img/LST-1?w=64")).status == 200
    assert metrics.sample("ecogram_img_resolution_lookups_total", result="miss") >= misses + 1
    async with asyncio.timeout(10):
        await listener.wait_for(lambda: listener.connections > connections)
    assert delivery.resolutions.enabled and listener.connected
    assert (await client.get("/img/LST-1?w=64")).status == 200


# --- the recent-answers memo: a repeated request skips the work, never the checks -----------

async def test_a_repeated_request_is_replayed_and_holds_no_bytes_of_its_own(client, login_as):
    await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "RPT-1")
    delivery = client.app[keys.delivery]
    url = "/img/RPT-1?w=64&fmt=webp"
    first = await client.get(url)
    second = await client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status == 304
    assert len(delivery.recent) == 1
    # The memo keeps what the request means, not the bytes: once the variant leaves the
    # memory cache, the next answer is a render again, with the same headers.
    delivery.variants.clear()
    renders = render_count(client)
    third = await client.get(url)
    assert third.status == 200 and render_count(client) == renders + 1
    assert await third.read() == await first.read()
    assert third.headers["ETag"] == first.headers["ETag"]


async def test_a_replayed_address_answers_404_the_moment_its_photo_is_deleted(
    client, login_as
):
    record = await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "RPT-2")
    for _ in range(3):
        assert (await client.get("/img/RPT-2?w=64&fmt=webp")).status == 200
    deleted = await client.delete(f"/api/v1/images/{record['id']}",
                                  headers=await login_as("admin"))
    assert deleted.status in (200, 204)
    response = await client.get("/img/RPT-2?w=64&fmt=webp")
    assert response.status == 404
    assert_error(await response.json(), "not_found")


async def test_the_recent_answers_memo_is_bounded(client, login_as, monkeypatch):
    from ecogram.catalog import delivery as delivery_module

    monkeypatch.setattr(delivery_module, "RECENT_MEMO", 4)
    await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "RPT-3")
    for n in range(10):  # ten browsers' Accept headers: ten requests that mean one variant
        response = await client.get("/img/RPT-3?w=64",
                                    headers={"Accept": f"image/webp,image/x-{n};q=0.1"})
        assert response.status == 200
    assert len(client.app[keys.delivery].recent) == 4
