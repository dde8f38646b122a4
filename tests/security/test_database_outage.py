"""A database outage (issue 11): 503 ``unavailable`` everywhere, /img answers what it holds.

The database here is a private PostgreSQL cluster (pgserver's binaries, a project dependency)
that the test starts, stops with ``pg_ctl stop -m immediate`` and starts again, under a real
server on a real port. Nothing is mocked: the errors are the ones asyncpg raises.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from ecogram import db, keys
from ecogram.app import create_app
from ecogram.auth.guard import SESSION_COOKIE
from ecogram.settings import Settings
from tests.conftest import PASSWORD, TEST_SECRET, assert_error
from tests.views.cdn_support import fixture_bytes, publish

pgserver = pytest.importorskip("pgserver", reason="pgserver (a project dependency) is needed "
                               "for a private PostgreSQL cluster the test can stop")

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


class Cluster:
    """A private PostgreSQL cluster: its URL, and stop/start as an operator would."""

    def __init__(self, server) -> None:
        self.server = server
        self.url = server.get_uri()

    def stop(self) -> None:
        pgserver.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.server.pgdata,
                        user=self.server.system_user, timeout=30)

    def start(self) -> None:
        self.server.ensure_postgres_running()
        assert self.server.get_uri() == self.url


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    parent = Path(tempfile.mkdtemp(prefix="ecogram-outage-"))
    server = pgserver.get_server(parent / "pg", cleanup_mode="delete")
    try:
        yield Cluster(server)
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)




def _lines(caplog, event: str) -> list[tuple[logging.LogRecord, dict]]:
    found = []
    for record in caplog.records:
        try:
            line = json.loads(record.getMessage())
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("event") == event:
            found.append((record, line))
    return found


async def _token(client, email: str) -> str:
    response = await client.post("/api/v1/auth/login",
                                 json={"email": email, "password": PASSWORD})
    assert response.status == 200, await response.text()
    return (await response.json())["access_token"]


@pytest.mark.server_fault
async def test_database_outage_is_503_and_img_serves_what_it_holds(
    aiohttp_client, cluster, tmp_path, redis_prefix, caplog
):
    caplog.set_level(logging.INFO)
    settings = Settings.from_env(
        {}, database_url=cluster.url, secret_key=TEST_SECRET, data_dir=tmp_path / "data",
        # No calibration: one finishing after the warm-up would re-key the variants held.
        min_side=10, allowed_sizes=None, eager_widths=(), channels=(), db_timeout=2.0,
        quality_target=0,
        # Sources are not kept in memory here, so a variant not held needs the database.
        masters_cache_mb=0, redis_url=REDIS_URL, redis_prefix=redis_prefix,
    )
    client = await aiohttp_client(create_app(settings))
    delivery = client.app[keys.delivery]
    assert delivery.listener is not None and delivery.listener.connected

    response = await client.post("/api/v1/auth/register", json={
        "email": "admin@example.com", "name": "Ada Admin", "password": PASSWORD})
    assert response.status == 201
    token = await _token(client, "admin@example.com")
    bearer = {"Authorization": f"Bearer {token}"}

    async def login_as(role: str = "admin") -> dict[str, str]:
        return bearer  # the first user is admin: it may import and review

    await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "OUT-1")
    warm = "/img/OUT-1?w=120&fmt=webp"
    in_redis = "/img/OUT-1/1?w=100&fmt=webp"
    cold = "/img/OUT-1?w=140&fmt=webp"
    first = await client.get(warm)
    assert first.status == 200 and first.headers["X-Content-Type-Options"] == "nosniff"
    body = await first.read()
    assert (await client.get(warm)).status == 200  # now a replay
    held = {key for key, _ in delivery.variants.items()}
    shared = await client.get(in_redis)
    assert shared.status == 200
    shared_body = await shared.read()
    await delivery.redis.flush()
    # Only Redis holds that one now.
    assert delivery.variants.discard_where(lambda key: key not in held) == 1
    # A photo served, then deleted: what was known of it is gone with it, though Redis still
    # holds its variant under the same version.
    gone = await publish(client, login_as, fixture_bytes("valid/hopper.jpg"), "OUT-2")
    assert (await client.get("/img/OUT-2?w=120&fmt=webp")).status == 200
    await delivery.redis.flush()
    response = await client.delete(f"/api/v1/images/{gone['id']}", headers=bearer)
    assert response.status in (200, 204), await response.text()
    assert (await client.get("/img/OUT-2?w=120&fmt=webp")).status == 404

    await asyncio.to_thread(cluster.stop)
    caplog.clear()

    # /img: what memory or Redis holds is still served, from the last known resolution.
    for _ in range(3):
        response = await client.get(warm)
        assert response.status == 200
        assert await response.read() == body
    response = await client.get(in_redis)
    assert response.status == 200
    assert await response.read() == shared_body
    placeholder = await client.get("/img/OUT-1/placeholder")
    assert placeholder.status == 200

    # /img: what is not held needs the database: 503 with Retry-After, in the JSON shape.
    for url in (cold, "/img/NEVER-SEEN?w=120", "/img/OUT-2?w=120&fmt=webp"):
        response = await client.get(url)
        assert response.status == 503, url
        assert response.headers["Retry-After"] == str(db.RETRY_AFTER)
        assert response.headers["Cache-Control"] == "no-store"
        assert_error(await response.json(), "unavailable")

    # Everything else that needs the database: 503, JSON for the API, a page for people.
    response = await client.get("/api/v1/images", headers=bearer)
    assert response.status == 503
    assert response.headers["Retry-After"] == str(db.RETRY_AFTER)
    assert_error(await response.json(), "unavailable")
    response = await client.get("/admin", cookies={SESSION_COOKIE: token},
                                allow_redirects=False)
    assert response.status == 503
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.headers["Retry-After"] == str(db.RETRY_AFTER)
    assert "Traceback" not in await response.text()
    response = await client.post("/api/v1/auth/login",
                                 json={"email": "admin@example.com", "password": PASSWORD})
    assert response.status == 503
    assert_error(await response.json(), "unavailable")

    # Operations: not ready, but alive.
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200

    # The log: one warning line per failure, no traceback, no 500 anywhere.
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    statuses = [line["status"] for _, line in _lines(caplog, "request")]
    assert 500 not in statuses and statuses.count(503) == 7
    unavailable = _lines(caplog, "database_unavailable")
    assert len(unavailable) == 6  # /readyz answers for itself
    for record, line in unavailable:
        assert record.levelno == logging.WARNING
        assert set(line) == {"event", "request_id", "method", "path", "error"}

    # The database comes back: the same process answers again, without a restart.
    await asyncio.to_thread(cluster.start)
    for _ in range(75):  # the pool reconnects on its next acquire
        if (await client.get("/readyz")).status == 200:
            break
        await asyncio.sleep(0.2)
    else:
        pytest.fail("/readyz did not come back within 15 s")
    assert (await client.get("/api/v1/images", headers=bearer)).status == 200
    response = await client.get(cold)
    assert response.status == 200 and response.headers["Content-Type"] == "image/webp"
    assert (await client.get("/admin", cookies={SESSION_COOKIE: token},
                             allow_redirects=False)).status == 200
    async with asyncio.timeout(10):  # LISTEN again: the resolution cache is trusted again
        await delivery.listener.wait_for(lambda: delivery.listener.connected)


async def test_only_connection_level_errors_count_as_unavailable(clean_db):
    """The classification: what a dead database raises, not what any other code raises."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError) as refused:
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", timeout=2)
    assert db.is_unavailable(refused.value)

    pool = await db.create_pool(clean_db, 1, 1, wait=0.3)
    try:
        async with pool.acquire() as conn:
            with pytest.raises(TimeoutError) as waited:
                async with pool.acquire():
                    pass
            assert db.is_unavailable(waited.value)  # a saturated pool answers within its wait
            with pytest.raises(asyncpg.UniqueViolationError) as duplicate:
                await conn.execute("CREATE TEMP TABLE t (x int PRIMARY KEY);"
                                   "INSERT INTO t VALUES (1), (1)")
            assert not db.is_unavailable(duplicate.value)  # a query's own error
            with pytest.raises(asyncpg.UndefinedTableError) as missing:
                await conn.fetch("SELECT * FROM no_such_table")
            assert not db.is_unavailable(missing.value)
    finally:
        await pool.close()

    async def terminate(conn: asyncpg.Connection) -> None:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        admin = await asyncpg.connect(clean_db)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()

    busy = await asyncpg.connect(clean_db)
    pid = await busy.fetchval("SELECT pg_backend_pid()")
    sleeping = asyncio.ensure_future(busy.fetchval("SELECT pg_sleep(10)"))
    admin = await asyncpg.connect(clean_db)
    try:
        for _ in range(100):  # until the query runs
            if await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", pid
            ):
                break
            await asyncio.sleep(0.05)
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    with pytest.raises(asyncpg.PostgresError) as mid_query:
        await sleeping
    assert db.is_unavailable(mid_query.value), repr(mid_query.value)  # died under a query

    idle = await asyncpg.connect(clean_db)
    await terminate(idle)
    for _ in range(100):  # until the client has seen the server go
        if idle.is_closed():
            break
        await asyncio.sleep(0.05)
    with pytest.raises(asyncpg.InterfaceError) as closed:
        await idle.fetchval("SELECT 1")
    assert db.is_unavailable(closed.value), repr(closed.value)  # died between two queries

    # The same classes raised outside the driver are not the database's.
    for error in (ConnectionResetError("peer"), TimeoutError(), FileNotFoundError("x")):
        try:
            raise error
        except OSError as caught:
            assert not db.is_unavailable(caught)
