"""/img back-pressure before the heaviest read (issue 11).

A cold render reads its source (the master, or the original of up to ECOGRAM_MAX_UPLOAD_MB)
from PostgreSQL. The render queue's capacity is checked before that read, and the render time
limit covers the read as well as the render. The proof is PostgreSQL's own: the test holds an
ACCESS EXCLUSIVE lock on ``originals``, so any read of a source waits for it; a request that
answers while the lock is held did not read.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import pyvips

from ecogram import keys
from ecogram.app import create_app
from ecogram.cache import MISSING
from tests.conftest import assert_error
from tests.views.cdn_support import fixture_bytes, publish
from tests.views.test_cdn_cache import _login_for


@pytest.fixture
def settings(settings):
    # No source kept in memory: every cold size reads its source from the database.
    return settings.replace(min_side=10, eager_widths=(), channels=(), allowed_sizes=None,
                            masters_cache_mb=0)


async def _lock_originals(database_url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(database_url)
    await conn.execute("BEGIN")
    await conn.execute("LOCK TABLE originals IN ACCESS EXCLUSIVE MODE")
    return conn


async def _unlock(conn: asyncpg.Connection) -> None:
    await conn.execute("ROLLBACK")
    await conn.close()


def _source_reads(client) -> float:
    return client.app[keys.metrics].sample("ecogram_img_masters_cache_lookups_total",
                                           result="miss")


async def _publish_and_resolve(client, database_url: str, code: str) -> None:
    await publish(client, _login_for(client), fixture_bytes("valid/hopper.jpg"), code)
    # The import's and the approval's NOTIFYs drop the code from the resolution cache when
    # they arrive; one more, sent now, arrives after them (commit order): once it is in,
    # nothing will drop what the next request resolves.
    delivery = client.app[keys.delivery]
    resolutions = delivery.resolutions
    resolutions.put("settled", None, "marker", resolutions.epoch)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_notify('ecogram_images', 'settled')")
    finally:
        await conn.close()
    async with asyncio.timeout(5):
        await delivery.listener.wait_for(lambda: resolutions.get("settled", None) is MISSING)
    # Resolved once and kept (the listener is connected), so later sizes need no query.
    assert (await client.get(f"/img/{code}?w=64&fmt=jpeg")).status == 200
    assert resolutions.get(code, None) is not MISSING


@pytest.mark.server_fault
async def test_a_full_queue_is_a_503_before_the_source_is_read(aiohttp_client, settings):
    client = await aiohttp_client(create_app(
        settings.replace(render_threads=1, render_queue=1, render_timeout=20)))
    await _publish_and_resolve(client, settings.database_url, "BPR-1")
    metrics = client.app[keys.metrics]
    reads = _source_reads(client)

    lock = await _lock_originals(settings.database_url)
    try:
        # Capacity 1 thread + 1 queued: two cold renders take both places, and both wait on
        # their source (the slow database the lock stands for).
        holders = [asyncio.create_task(client.get(f"/img/BPR-1?w={w}&fmt=jpeg"))
                   for w in (100, 120)]
        for _ in range(100):
            if metrics.sample("ecogram_img_render_queue_depth") == 2:
                break
            await asyncio.sleep(0.02)
        assert metrics.sample("ecogram_img_render_queue_depth") == 2
        assert _source_reads(client) == reads + 2

        # A third cold size: refused at once, without asking for its source.
        async with asyncio.timeout(5):
            response = await client.get("/img/BPR-1?w=150&fmt=jpeg")
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert_error(await response.json(), "overloaded")
        assert _source_reads(client) == reads + 2
        assert not any(task.done() for task in holders)
    finally:
        await _unlock(lock)
    assert [r.status for r in await asyncio.gather(*holders)] == [200, 200]
    assert metrics.sample("ecogram_img_render_rejections_total", reason="queue_full") == 1
    assert metrics.sample("ecogram_img_render_queue_depth") == 0
    assert (await client.get("/img/BPR-1?w=150&fmt=jpeg")).status == 200


@pytest.mark.server_fault
async def test_the_render_time_limit_covers_reading_the_source(aiohttp_client, settings):
    client = await aiohttp_client(create_app(
        settings.replace(render_threads=1, render_queue=4, render_timeout=0.5)))
    await _publish_and_resolve(client, settings.database_url, "BPR-2")
    metrics = client.app[keys.metrics]

    lock = await _lock_originals(settings.database_url)
    try:
        async with asyncio.timeout(5):  # the limit is 0.5 s; the lock would hold it forever
            response = await client.get("/img/BPR-2?w=100&fmt=jpeg")
        assert response.status == 503
        assert "Retry-After" in response.headers
        assert_error(await response.json(), "render_timeout")
        # The slot of a render that never started is given back at once.
        assert metrics.sample("ecogram_img_render_queue_depth") == 0
    finally:
        await _unlock(lock)
    assert metrics.sample("ecogram_img_render_rejections_total", reason="timeout") == 1
    assert (await client.get("/img/BPR-2?w=100&fmt=jpeg")).status == 200


@pytest.mark.server_fault
async def test_a_render_past_its_time_limit_keeps_its_place_until_its_thread_is_done(
    aiohttp_client, settings
):
    # A thread cannot be killed: a render that overruns goes on, and must go on counting, or
    # overruns would pile up beyond ECOGRAM_RENDER_QUEUE.
    client = await aiohttp_client(create_app(
        settings.replace(render_threads=1, render_queue=4, render_timeout=0.5)))
    # Noise is the slowest thing to encode: 2048 x 2048 of it as AVIF takes seconds of libvips
    # work on any machine, while reading its source takes milliseconds, so the deadline always
    # falls in the middle of the render (a photo rendered in ~0.2 s made this test flaky).
    noise = pyvips.Image.gaussnoise(2048, 2048, sigma=60, mean=128).cast("uchar")
    noise = noise.bandjoin([noise.rot90(), noise.rot180()])
    await publish(client, _login_for(client), noise.jpegsave_buffer(Q=95), "BPR-3")
    metrics = client.app[keys.metrics]
    response = await client.get("/img/BPR-3?w=2048&fmt=avif")
    assert response.status == 503
    assert_error(await response.json(), "render_timeout")
    assert metrics.sample("ecogram_img_render_queue_depth") == 1  # still rendering
    for _ in range(300):
        if metrics.sample("ecogram_img_render_queue_depth") == 0:
            break
        await asyncio.sleep(0.05)
    assert metrics.sample("ecogram_img_render_queue_depth") == 0  # done: its place is free
