"""Channel renditions on /img (issue 13): ``?preset={channel}`` and
``/img/{code}/{position}/{channel}.{ext}``, through the real import and review API, the real
libvips, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import urllib.parse

import aiohttp
import pytest
import pyvips

from ecogram import db, keys
from ecogram.app import create_app
from ecogram.imaging import product
from ecogram.settings import Settings
from tests.conftest import PASSWORD, TEST_SECRET, assert_error
from tests.security.test_database_outage import cluster  # noqa: F401 (a fixture)
from tests.views.cdn_support import decode, import_photo, publish, review
from tests.views.test_cdn import render_count, served_count
from tests.views.test_cdn_cache import _block_pool, _login_for

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
OFF_WHITE = (242, 241, 238)  # near_white: a lit paper sweep, not pure white


@pytest.fixture
def settings(settings):
    # No eager work unless a test asks for it: counts of renders stay exact.
    return settings.replace(min_side=10, eager_widths=(), channels=())


def product_photo(width: int = 2000, height: int = 1500, product_size: tuple[int, int] = (1300,
                  1000), background: tuple[int, int, int] = OFF_WHITE) -> bytes:
    """A product (a dark red block) centred on an off-white background, as a camera JPEG."""
    image = (pyvips.Image.black(width, height, bands=3) + list(background)).cast("uchar")
    pw, ph = product_size
    image = image.draw_rect([150, 30, 40], (width - pw) // 2, (height - ph) // 2, pw, ph,
                            fill=True)
    return image.jpegsave_buffer(Q=92)


def pixel(image: pyvips.Image, x: int, y: int) -> list[float]:
    return image(x, y)[:3]


async def test_preset_and_path_form_give_one_square_white_jpeg_at_the_channels_size(
    client, login_as
):
    await publish(client, login_as, product_photo(), "CH-1")
    by_query = await client.get("/img/CH-1?preset=mercadolivre")
    assert by_query.status == 200, await by_query.text()
    body = await by_query.read()
    by_path = await client.get("/img/CH-1/1/mercadolivre.jpg")
    assert by_path.status == 200
    assert await by_path.read() == body
    for response in (by_query, by_path):
        assert response.headers["Content-Type"] == "image/jpeg"
        assert response.headers["Content-Disposition"] == (
            'inline; filename="CH-1_1_mercadolivre.jpg"')
        assert "Vary" not in response.headers  # the format is the channel's, not negotiated
        assert response.headers["ETag"] == by_query.headers["ETag"]
    image = decode(body)
    assert (image.width, image.height) == (1200, 1200)  # Mercado Livre's recommended side
    assert image.interpretation == "srgb" and image.bands == 3
    assert not {"exif-data", "xmp-data", "icc-profile-data"} & set(image.get_fields())
    for x, y in ((0, 0), (1199, 0), (0, 1199), (1199, 1199), (600, 5)):
        assert min(pixel(image, x, y)) >= 253, (x, y)  # the off-white sweep is pure white now
    centre = pixel(image, 600, 600)
    assert centre[0] > 120 and centre[1] < 70  # the product is still there
    # Mercado Livre: the product fills 95 % of the frame (its long side, 1300 px → 1140).
    row = [pixel(image, x, 600)[1] for x in range(0, 1200, 4)]
    covered = sum(4 for green in row if green < 150)
    assert abs(covered - 1140) <= 12
    # The ETag names the image, its version and the rendition (profile digest included).
    key = product.rendition_key(client.app[keys.settings].channel_profiles["mercadolivre"],
                                main=True)
    assert by_query.headers["ETag"].endswith(f':{key}"')


async def test_the_channels_byte_limit_and_findings_header(client, login_as, tmp_path,
                                                           aiohttp_client, settings):
    # A channel of the shop's own with a tight byte limit and a square white main photo.
    extra = tmp_path / "channels.toml"
    extra.write_text('[tiny]\nname = "Tiny"\nrecommended = 800\nmax_bytes = 150000\n'
                     'min_side = 700\nsquare = true\nwhite_main = true\nfill = 0.9\n')
    app = await aiohttp_client(create_app(settings.replace(channels_file=extra)))
    login = _login_for(app)
    bands = [pyvips.Image.gaussnoise(1000, 1000, sigma=25, mean=128) for _ in range(3)]
    noisy = bands[0].bandjoin(bands[1:]).cast("uchar").jpegsave_buffer(Q=95)
    await publish(app, login, noisy, "CH-BYTES")
    response = await app.get("/img/CH-BYTES?preset=tiny")
    assert response.status == 200
    body = await response.read()
    assert len(body) <= 150_000  # at quality 90 it is about 570 KB: quality was lowered
    assert decode(body).width == 800
    assert response.headers["X-Ecogram-Findings"] == "background_not_white"
    # A noise photo has no white background, and 600 px would enlarge: both said to staff.
    small = product_photo(600, 600, (500, 500), (128, 128, 128))
    await publish(app, login, small, "CH-SMALL")
    response = await app.get("/img/CH-SMALL/1/tiny.jpg")
    assert response.status == 200
    findings = response.headers["X-Ecogram-Findings"].split(",")
    assert "too_small" in findings
    assert decode(await response.read()).width <= 600  # never enlarged


async def test_etag_304_immutable_with_v_and_head(client, login_as):
    record = await publish(client, login_as, product_photo(), "CH-2")
    url = f"/img/CH-2/1/google.jpg?v={record['version']}"
    first = await client.get(url)
    assert first.status == 200
    assert "immutable" in first.headers["Cache-Control"]
    assert "immutable" not in (await client.get("/img/CH-2?preset=google")).headers[
        "Cache-Control"]
    again = await client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    assert again.headers["ETag"] == first.headers["ETag"]
    query_form = await client.get("/img/CH-2?preset=google",
                                  headers={"If-None-Match": f'W/{first.headers["ETag"]}'})
    assert query_form.status == 304
    head = await client.head(url)
    assert head.status == 200
    assert head.headers["Content-Length"] == str(len(await first.read()))


async def test_a_second_request_is_served_from_memory(client, login_as):
    await publish(client, login_as, product_photo(), "CH-3")
    renders = render_count(client)
    assert (await client.get("/img/CH-3?preset=amazon_br")).status == 200
    assert render_count(client) == renders + 1
    memory = served_count(client, "memory")
    for url in ("/img/CH-3?preset=amazon_br", "/img/CH-3?preset=amazon_br",
                "/img/CH-3/1?preset=amazon_br", "/img/CH-3/1/amazon_br.jpg"):
        response = await client.get(url)
        assert response.status == 200
    assert served_count(client, "memory") == memory + 4
    assert render_count(client) == renders + 1


async def test_concurrent_requests_share_one_render(client, login_as):
    await publish(client, login_as, product_photo(), "CH-SF")
    renders = render_count(client)
    responses = await asyncio.gather(*(
        client.get("/img/CH-SF/1/magalu.jpg" if i % 2 else "/img/CH-SF?preset=magalu")
        for i in range(6)
    ))
    bodies = {await response.read() for response in responses}
    assert {response.status for response in responses} == {200}
    assert len(bodies) == 1
    assert render_count(client) == renders + 1


async def test_a_replaced_photo_gets_a_new_rendition(client, login_as):
    first = await publish(client, login_as, product_photo(), "CH-4")
    before = await client.get("/img/CH-4?preset=shopee")
    old = await before.read()
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("file", product_photo(1600, 1600, (900, 1300)), filename="new.jpg",
                   content_type="application/octet-stream")
    replaced = await client.put(f"/api/v1/images/{first['id']}/file", data=form,
                                headers=await login_as("importer"))
    assert replaced.status == 200, await replaced.text()
    assert (await client.get("/img/CH-4?preset=shopee")).status == 404  # pending again
    new = await review(client, login_as, first["id"])
    after = await client.get("/img/CH-4?preset=shopee")
    assert after.status == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.headers["ETag"].startswith(f'"{first["id"]}:{new["version"]}:')
    assert await after.read() != old


@pytest.fixture
def prefix(redis_prefix):
    """This test's Redis key prefix (tests/conftest.py removes its keys)."""
    return redis_prefix


async def test_redis_is_shared_and_a_changed_profile_changes_the_key(
    aiohttp_client, settings, prefix, tmp_path
):
    shared = settings.replace(redis_url=REDIS_URL, redis_prefix=prefix)
    one = await aiohttp_client(create_app(shared))
    login = _login_for(one)
    await publish(one, login, product_photo(), "CH-5")
    first = await one.get("/img/CH-5?preset=mercadolivre")
    body = await first.read()
    await one.app[keys.delivery].redis.flush()

    two = await aiohttp_client(create_app(shared))  # another worker: empty memory, same Redis
    response = await two.get("/img/CH-5/1/mercadolivre.jpg")
    assert response.status == 200
    assert await response.read() == body
    assert response.headers["ETag"] == first.headers["ETag"]
    assert served_count(two, "redis") == 1 and render_count(two) == 0

    # The operator changes Mercado Livre's profile and restarts: a new key, a new rendition,
    # never the one Redis still holds for the old profile.
    extra = tmp_path / "channels.toml"
    extra.write_text("[mercadolivre]\nrecommended = 800\n")
    three = await aiohttp_client(create_app(shared.replace(channels_file=extra)))
    response = await three.get("/img/CH-5?preset=mercadolivre")
    assert response.status == 200
    assert response.headers["ETag"] != first.headers["ETag"]
    assert decode(await response.read()).width == 800
    assert served_count(three, "redis") == 0 and render_count(three) == 1


async def test_bad_parameters_are_400_naming_them(client, login_as):
    await publish(client, login_as, product_photo(400, 300, (300, 200)), "CH-6")
    cases = {
        "/img/CH-6?preset=mercadolivre&w=400": "w",
        "/img/CH-6?preset=mercadolivre&fmt=webp": "fmt",
        "/img/CH-6?q=80&preset=mercadolivre": "q",
        "/img/CH-6?preset=mercadolivre&s=abc": "s",
        "/img/CH-6?preset=mercadolivre&bogus=1": "bogus",
        "/img/CH-6?preset=mercadolivre&preset=google": "preset",
        "/img/CH-6?preset=ebay": "preset",
        "/img/CH-6?preset=": "preset",
        "/img/CH-6?preset=google&v=abc": "v",
        "/img/CH-6/1/google.jpg?w=400": "w",
        "/img/CH-6/1/google.jpg?v=1&v=2": "v",
    }
    for url, name in cases.items():
        response = await client.get(url)
        assert response.status == 400, url
        body = await response.json()
        assert_error(body)
        assert body["error"]["details"]["parameter"] == name, url
    unknown = await (await client.get("/img/CH-6?preset=ebay")).json()
    assert "mercadolivre" in unknown["error"]["details"]["channels"]


async def test_the_path_form_is_404_for_an_unknown_channel_or_another_format(client, login_as):
    await publish(client, login_as, product_photo(400, 300, (300, 200)), "CH-7")
    assert (await client.get("/img/CH-7/1/google.jpeg")).status == 200  # both JPEG names
    for url in ("/img/CH-7/1/ebay.jpg", "/img/CH-7/1/google.png", "/img/CH-7/1/google.webp",
                "/img/CH-7/1/Google.jpg", "/img/CH-7/1/google.jpg.jpg", "/img/CH-7/2/google.jpg"):
        response = await client.get(url)
        assert response.status == 404, url
        assert_error(await response.json(), "not_found")
    # The placeholder is still the placeholder.
    placeholder = await client.get("/img/CH-7/1/placeholder")
    assert placeholder.status == 200
    assert placeholder.headers["Content-Type"] == "application/json"


async def test_a_disabled_channel_still_renders_on_demand(client, login_as):
    assert "vtex" not in client.app[keys.settings].channels
    await publish(client, login_as, product_photo(), "CH-8")
    response = await client.get("/img/CH-8?preset=vtex")
    assert response.status == 200
    assert decode(await response.read()).width == 1200


async def test_not_approved_is_404_and_staff_preview_it(client, login_as):
    pending = await import_photo(client, login_as, product_photo(), "CH-9")
    for url in ("/img/CH-9?preset=google", "/img/CH-9/1/google.jpg"):
        response = await client.get(url)
        assert response.status == 404
        assert_error(await response.json(), "not_found")
    preview = f"/admin/images/{pending['id']}/channel/mercadolivre"
    anonymous = await client.get(preview, allow_redirects=False)
    assert anonymous.status in (302, 303, 401)
    staff = await client.get(preview, headers=await login_as("viewer"))
    assert staff.status == 200
    assert staff.headers["Content-Type"] == "image/jpeg"
    assert staff.headers["Cache-Control"] == "private, no-cache"
    assert decode(await staff.read()).width == 1200
    again = await client.get(preview, headers={**await login_as("viewer"),
                                               "If-None-Match": staff.headers["ETag"]})
    assert again.status == 304
    missing = await client.get(f"/admin/images/{pending['id']}/channel/ebay",
                               headers=await login_as("viewer"))
    assert missing.status == 404
    # Approved, the public address serves the very bytes the preview showed.
    await review(client, login_as, pending["id"])
    public = await client.get("/img/CH-9/1/mercadolivre.jpg")
    assert public.headers["ETag"] == staff.headers["ETag"]


async def test_the_main_photo_and_the_others_have_their_own_keys(client, login_as):
    await publish(client, login_as, product_photo(), "CH-10", position=1)
    await publish(client, login_as, product_photo(1500, 1500, (1000, 1000)), "CH-10",
                  position=2)
    main = await client.get("/img/CH-10?preset=amazon_br")
    other = await client.get("/img/CH-10/2?preset=amazon_br")
    assert "-main-" in main.headers["ETag"] and "-other-" in other.headers["ETag"]
    assert other.headers["Content-Disposition"] == 'inline; filename="CH-10_2_amazon_br.jpg"'


async def test_approval_renders_the_enabled_channels_in_the_background(aiohttp_client,
                                                                       settings):
    app = await aiohttp_client(create_app(settings.replace(channels=("mercadolivre", "google"))))
    login = _login_for(app)
    await publish(app, login, product_photo(), "CH-EAGER")
    delivery = app.app[keys.delivery]
    async with asyncio.timeout(60):
        await delivery.eager_idle()
    metrics = app.app[keys.metrics]
    assert metrics.sample("ecogram_img_eager_total", outcome="rendered") == 2
    renders = render_count(app)
    assert renders == 2
    for url in ("/img/CH-EAGER?preset=mercadolivre", "/img/CH-EAGER/1/google.jpg"):
        before = served_count(app, "memory")
        response = await app.get(url)
        assert response.status == 200
        assert served_count(app, "memory") == before + 1  # the first request: a hit
    assert (await app.get("/img/CH-EAGER?preset=shopee")).status == 200  # not enabled
    assert render_count(app) == renders + 1


@pytest.mark.parametrize("code", ["ÇÃO-1", 'A"B', "A;B"])
async def test_the_file_name_of_an_unusual_code(client, login_as, code):
    await publish(client, login_as, product_photo(400, 300, (300, 200)), code)
    response = await client.get(f"/img/{urllib.parse.quote(code, safe='')}?preset=google")
    assert response.status == 200, await response.text()
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('inline; filename="')
    assert disposition.count('"') == 2  # the code's own quote never ends the name early
    assert disposition.endswith("filename*=UTF-8''" + urllib.parse.quote(
        f"{code}_1_google.jpg", safe=""))


@pytest.mark.server_fault
async def test_renditions_share_the_render_queue_and_its_time_limit(aiohttp_client, settings):
    app = await aiohttp_client(create_app(
        settings.replace(render_threads=1, render_queue=1, render_timeout=20)))
    login = _login_for(app)
    await publish(app, login, product_photo(800, 600, (500, 400)), "CH-BP")
    release = _block_pool(app.app, 1)
    try:
        # Capacity is 1 thread + 1 queued: two distinct renditions are taken, the rest refused.
        tasks = [asyncio.create_task(app.get(f"/img/CH-BP?preset={channel}"))
                 for channel in ("mercadolivre", "google", "shopee", "magalu")]
        await asyncio.sleep(0.5)
        done = [task for task in tasks if task.done()]
        assert len(done) == 2
        for task in done:
            assert task.result().status == 503
            assert_error(await task.result().json(), "overloaded")
    finally:
        release.set()
    assert sorted(r.status for r in await asyncio.gather(*tasks)) == [200, 200, 503, 503]

    slow = await aiohttp_client(create_app(
        settings.replace(render_threads=1, render_queue=4, render_timeout=0.3)))
    release = _block_pool(slow.app, 1)
    try:
        response = await slow.get("/img/CH-BP/1/vtex.jpg")
        assert response.status == 503
        assert_error(await response.json(), "render_timeout")
    finally:
        release.set()
    assert (await slow.get("/img/CH-BP/1/vtex.jpg")).status == 200


@pytest.mark.server_fault
async def test_while_the_database_is_away_held_renditions_are_still_served(
    aiohttp_client, cluster, tmp_path  # noqa: F811 (the fixture)
):
    settings = Settings.from_env(
        {}, database_url=cluster.url, secret_key=TEST_SECRET, data_dir=tmp_path / "data",
        min_side=10, eager_widths=(), channels=(), db_timeout=2.0, masters_cache_mb=0,
        quality_target=0,
    )
    app = await aiohttp_client(create_app(settings))
    response = await app.post("/api/v1/auth/register", json={
        "email": "admin@example.com", "name": "Ada Admin", "password": PASSWORD})
    assert response.status == 201
    login = await app.post("/api/v1/auth/login",
                           json={"email": "admin@example.com", "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {(await login.json())['access_token']}"}

    async def login_as(role: str = "admin") -> dict[str, str]:
        return bearer  # the first user is admin: it may import and review

    record = await publish(app, login_as, product_photo(800, 600, (500, 400)), "CH-OUT")
    held = {}
    for url in ("/img/CH-OUT?preset=google", "/img/CH-OUT/1/mercadolivre.jpg"):
        response = await app.get(url)
        assert response.status == 200
        held[url] = await response.read()
    await asyncio.to_thread(cluster.stop)
    # Other addresses of the same renditions: not replays, resolved from what was known.
    for url, same in ((f"/img/CH-OUT?preset=google&v={record['version']}",
                       "/img/CH-OUT?preset=google"),
                      ("/img/CH-OUT/1/mercadolivre.jpeg", "/img/CH-OUT/1/mercadolivre.jpg")):
        response = await app.get(url)
        assert response.status == 200, url
        assert await response.read() == held[same]
    # A rendition nobody holds needs the original: 503 unavailable, never a 500.
    response = await app.get("/img/CH-OUT?preset=shopee")
    assert response.status == 503
    assert response.headers["Retry-After"] == str(db.RETRY_AFTER)
    assert_error(await response.json(), "unavailable")
