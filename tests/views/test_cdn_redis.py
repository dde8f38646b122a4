"""The shared Redis tier of /img, against the real Redis (REDIS_URL or 127.0.0.1:6379)."""

from __future__ import annotations

import logging
import os
import time

import pytest
import redis.asyncio as aioredis

from ecogram import keys
from ecogram.app import create_app
from tests.faults import closed_port, hung_server
from tests.views.cdn_support import decode, fixture_bytes, publish
from tests.views.test_cdn import render_count, served_count

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def prefix(redis_prefix):
    """This test's Redis key prefix (tests/conftest.py removes its keys)."""
    return redis_prefix


@pytest.fixture
def settings(settings, prefix):
    return settings.replace(min_side=10, eager_widths=(), channels=(), redis_url=REDIS_URL,
                            redis_prefix=prefix)


async def test_a_variant_rendered_by_one_worker_is_served_from_redis_by_another(
    client, login_as, aiohttp_client, settings, prefix
):
    await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "RED-1")
    url = "/img/RED-1?w=100&fmt=webp"
    first = await client.get(url)
    assert first.status == 200
    body = await first.read()
    await client.app[keys.delivery].redis.flush()  # the write is in the background
    raw = aioredis.from_url(REDIS_URL)
    try:
        stored = [key async for key in raw.scan_iter(f"{prefix}:*")]
        ttl = await raw.ttl(stored[0])
    finally:
        await raw.aclose()
    assert len(stored) == 1 and stored[0].decode().startswith(f"{prefix}:img:")
    assert 0 < ttl <= settings.cache_ttl

    other = await aiohttp_client(create_app(settings))  # empty memory, same Redis
    response = await other.get(url)
    assert response.status == 200
    assert await response.read() == body
    assert response.headers["Content-Type"] == "image/webp"
    assert response.headers["ETag"] == first.headers["ETag"]
    assert served_count(other, "redis") == 1
    assert render_count(other) == 0
    # The Redis hit filled the other worker's memory: the next one is a memory hit.
    assert (await other.get(url)).status == 200
    assert served_count(other, "memory") == 1


async def test_redis_down_degrades_to_rendering(aiohttp_client, settings, login_as, client):
    # A port with nothing behind it: every Redis call fails fast; /img still answers 200.
    with closed_port() as port:
        broken = await aiohttp_client(
            create_app(settings.replace(redis_url=f"redis://127.0.0.1:{port}/0")))
        await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "RED-2")
        for width in (64, 100, 64):
            response = await broken.get(f"/img/RED-2?w={width}&fmt=png")
            assert response.status == 200
            assert decode(await response.read()).width == width
    metrics = broken.app[keys.metrics]
    assert metrics.sample("ecogram_img_cache_lookups_total", tier="redis", result="error") >= 1
    assert render_count(broken) == 2 and served_count(broken, "memory") == 1


async def test_a_hung_redis_does_not_hold_up_img(aiohttp_client, settings, login_as, client,
                                                 caplog):
    """A Redis that accepts connections and never answers costs one deadline, then nothing."""
    caplog.set_level(logging.INFO)
    await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "RED-3")
    with hung_server() as port:
        hung = await aiohttp_client(create_app(settings.replace(
            redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout=0.3)))
        times = []
        for width in (64, 100, 120):
            start = time.monotonic()
            response = await hung.get(f"/img/RED-3?w={width}&fmt=png")
            assert response.status == 200
            assert decode(await response.read()).width == width
            times.append(time.monotonic() - start)
        assert times[0] < 1.5  # the deadline (0.3 s) and a render, no hang
        assert max(times[1:]) < times[0]  # Redis is not asked again during its cooldown
    metrics = hung.app[keys.metrics]
    assert metrics.sample("ecogram_img_cache_lookups_total", tier="redis", result="error") == 3
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_the_whole_app_uses_one_redis_client(client, login_as, settings, prefix):
    """Sign-in and /img through one connection pool, named after ECOGRAM_REDIS_PREFIX."""
    await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "RED-4")
    response = await client.post("/api/v1/auth/login",
                                 json={"email": "admin@example.com", "password": "wrong!"})
    assert response.status == 401  # a failure: its record stays in Redis
    assert (await client.get("/img/RED-4?w=100&fmt=webp")).status == 200
    await client.app[keys.delivery].redis.flush()
    raw = aioredis.from_url(REDIS_URL)
    try:
        ours = [c for c in await raw.client_list() if c["name"] == prefix]
        stored = {key.decode() async for key in raw.scan_iter(f"{prefix}:*")}
    finally:
        await raw.aclose()
    assert len(ours) == 1  # one idle connection served both, one after the other
    assert {key.split(":")[1] for key in stored} == {"img", "login"}
