"""Exports streamed at the client's pace hold no pooled connection (issue 11).

A real server with a pool of three connections: ten clients start big exports and stop reading
(a 4 KB receive buffer, so the server's socket and write buffers fill and every export waits on
its client). Meanwhile the pool is free, PostgreSQL shows no open transaction, and ``/img`` and
the API answer. Then the clients read on, in small sips, and every download is whole and equal.
Beyond ``ECOGRAM_MAX_EXPORTS`` an export is refused with ``429 too_many_exports``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import socket
import time

import aiohttp
import pytest

from ecogram import keys
from ecogram.catalog.exports import SHOPIFY_HEADER
from tests.conftest import assert_error

BULK = 10_000  # ~8.5 MB of Shopify CSV: more than loopback's socket buffers (4 MB at most) hold
SLOW = 10


@pytest.fixture
def settings(settings, request):
    """The shared settings with a pool of three and room for ``request.param`` exports; no
    analytics flush, whose own short use of the pool the connection count below would see."""
    return settings.replace(db_pool_min=1, db_pool_max=3, analytics_flush=0,
                            max_exports=getattr(request, "param", SLOW))


async def seed_bulk(conn, count: int = BULK) -> None:
    """``count`` approved one-photo products, written straight to the table (no originals)."""
    await conn.execute(
        "INSERT INTO images (code, product, position, status, filename, format, mime, width, "
        "height, file_size, sha256, phash, blurhash, color, importer) "
        "SELECT 'BULK-' || lpad(g::text, 6, '0'), repeat('Bulk product ', 30) || g, 1, "
        "'approved', 'a.jpg', 'jpeg', 'image/jpeg', 800, 800, 10, md5(g::text), 0, 'L', "
        "'#ffffff', 'seed' "
        "FROM generate_series(1, $1) g", count)
    await conn.execute("ANALYZE images")  # as autovacuum soon would after such a load


def _small_receive_buffer(addr_info) -> socket.socket:
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


async def _held_connections(conn) -> list[str]:
    """States of the test database's other sessions that are not plain idle."""
    rows = await conn.fetch(
        "SELECT state, query FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
        "AND state IS DISTINCT FROM 'idle'")
    return [f"{r['state']}: {r['query'][:80]}" for r in rows]


async def _slow_read(response: aiohttp.ClientResponse) -> bytes:
    parts = []
    while chunk := await response.content.read(8192):
        parts.append(chunk)
        await asyncio.sleep(0.002)
    return b"".join(parts)


async def _timed_get(client, path: str, headers=None) -> float:
    started = time.perf_counter()
    async with asyncio.timeout(10):
        response = await client.get(path, headers=headers)
        assert response.status == 200, await response.text()
        await response.read()
    return time.perf_counter() - started


async def _start_stalled(client, headers, count: int) -> tuple[aiohttp.ClientSession, list]:
    """``count`` Shopify exports whose clients have read the headers and then stop reading."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(socket_factory=_small_receive_buffer, limit=0))
    url = client.make_url("/api/v1/exports/shopify")
    async with asyncio.timeout(30):
        responses = await asyncio.gather(*(session.get(url, headers=headers)
                                           for _ in range(count)))
    assert [r.status for r in responses] == [200] * count
    # The server fills the buffers, then every export waits on its client. Holding no
    # connection while it waits, the pool goes idle (with connections held, this times out).
    pool = client.app[keys.db_pool]
    idle_since = None
    async with asyncio.timeout(60):
        while idle_since is None or time.perf_counter() - idle_since < 0.5:
            await asyncio.sleep(0.01)
            if pool.get_size() != pool.get_idle_size():
                idle_since = None
            elif idle_since is None:
                idle_since = time.perf_counter()
    return session, responses


async def test_ten_slow_exports_leave_the_pool_to_img(client, login_as, make_image, conn):
    photo = await make_image("IMG-1", status="approved")
    await seed_bulk(conn)
    reviewer = await login_as("reviewer")
    session, responses = await _start_stalled(client, reviewer, SLOW)
    try:
        # Every export is mid-stream (none recorded yet), waiting on its client...
        assert await conn.fetchval("SELECT count(*) FROM exports") == 0
        # ...and none holds a connection of the pool or a transaction meanwhile.
        pool = client.app[keys.db_pool]
        assert pool.get_size() - pool.get_idle_size() == 0
        assert await _held_connections(conn) == []
        # /img and the API answer while the ten downloads wait.
        img = f"/img/{photo['code']}/1?w=200"
        times = await asyncio.gather(
            *(_timed_get(client, img) for _ in range(10)),
            *(_timed_get(client, "/api/v1/images?per_page=5", reviewer) for _ in range(5)))
        print(f"/img and /api/v1/images during {SLOW} stalled exports: "
              f"max {max(times) * 1000:.0f} ms")
        # The clients read on, slowly: every download is whole, and all ten are the same.
        # Meanwhile the ten exports share one connection: the other two stay for the rest.
        in_use: list[int] = []

        async def sample() -> None:
            while True:
                in_use.append(pool.get_size() - pool.get_idle_size())
                await asyncio.sleep(0.001)

        sampler = asyncio.create_task(sample())
        bodies = await asyncio.gather(*(_slow_read(r) for r in responses))
        sampler.cancel()
        assert max(in_use) == 1
    finally:
        for response in responses:
            response.release()
        await session.close()
    assert len(set(bodies)) == 1
    rows = list(csv.reader(io.StringIO(bodies[0].decode())))
    assert rows[0] == SHOPIFY_HEADER
    assert len(rows) == 1 + BULK + 1
    assert [r[0] for r in rows[1:4]] == ["bulk-000001", "bulk-000002", "bulk-000003"]
    assert rows[-1][0] == "img-1"
    assert len({r[0] for r in rows[1:]}) == BULK + 1
    # Each export was recorded whole once its last byte went out.
    assert await conn.fetchval("SELECT count(*) FROM exports WHERE count = $1", BULK + 1) == SLOW
    # The same export read at full speed afterwards is byte for byte the same.
    response = await client.get("/api/v1/exports/shopify", headers=reviewer)
    assert await response.read() == bodies[0]


@pytest.mark.parametrize("settings", [2], indirect=True)
async def test_exports_beyond_the_bound_are_refused(client, login_as, conn):
    await seed_bulk(conn)
    reviewer = await login_as("reviewer")
    session, responses = await _start_stalled(client, reviewer, 2)
    try:
        response = await client.get("/api/v1/exports/json", headers=reviewer)
        assert response.status == 429
        assert int(response.headers["Retry-After"]) > 0
        body = await response.json()
        assert_error(body, "too_many_exports")
        assert body["error"]["details"]["limit"] == 2
        # Refused before any work: nothing recorded, no audit entry.
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'export'") == 0
        # A client that hangs up frees its place; its export, cut off, records nothing.
        responses[0].close()
        for _ in range(300):
            response = await client.get("/api/v1/exports/shopify?code=BULK-000001",
                                        headers=reviewer)
            if response.status != 429:
                break
            await asyncio.sleep(0.1)
        assert response.status == 200 and "bulk-000001" in await response.text()
        assert await conn.fetchval("SELECT count(*) FROM exports") == 1
        bodies = await asyncio.gather(*(_slow_read(r) for r in responses[1:]))
        assert all(len(body) > 8_000_000 for body in bodies)
    finally:
        for response in responses:
            response.release()
        await session.close()
    # Once they are done, exports are accepted again.
    response = await client.get("/api/v1/exports/woocommerce?code=BULK-000007", headers=reviewer)
    assert response.status == 200
    assert "BULK-000007" in await response.text()
    assert await conn.fetchval("SELECT count(*) FROM exports") == 3
    pool = client.app[keys.db_pool]
    assert pool.get_size() == pool.get_idle_size()
