"""The shared Redis tier of /img, against the real Redis (REDIS_URL or 127.0.0.1:6379)."""

from __future__ import annotations

import os
import secrets

import pytest
import redis.asyncio as aioredis

from ecogram import keys
from ecogram.app import create_app
from tests.views.cdn_support import decode, fixture_bytes, publish
from tests.views.test_cdn import render_count, served_count

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def prefix():
    """A key namespace of this test only, removed afterwards."""
    name = f"ecogram-test-{secrets.token_hex(6)}"
    yield name
    client = aioredis.from_url(REDIS_URL)
    try:
        keys_ = [key async for key in client.scan_iter(f"{name}:*")]
        if keys_:
            await client.delete(*keys_)
    finally:
        await client.aclose()


@pytest.fixture
def settings(settings, prefix):
    return settings.replace(min_side=10, eager_widths=(), redis_url=REDIS_URL,
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
    # A port where nothing listens: every Redis call fails fast; /img still answers 200.
    broken = await aiohttp_client(create_app(settings.replace(redis_url="redis://127.0.0.1:1/0")))
    await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "RED-2")
    for width in (64, 100, 64):
        response = await broken.get(f"/img/RED-2?w={width}&fmt=png")
        assert response.status == 200
        assert decode(await response.read()).width == width
    metrics = broken.app[keys.metrics]
    assert metrics.sample("ecogram_img_cache_lookups_total", tier="redis", result="error") >= 1
    assert render_count(broken) == 2 and served_count(broken, "memory") == 1
