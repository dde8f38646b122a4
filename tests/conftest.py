"""Shared fixtures: a real PostgreSQL database per test run, isolated between tests.

PostgreSQL is found as API.md says: ECOGRAM_TEST_DATABASE_URL, else the server at
127.0.0.1:5432 when it answers, else the embedded one (pgserver). Each run creates its own
database, migrates it once, empties it before every test and drops it at the end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from ecogram import db
from ecogram.app import create_app
from ecogram.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
IMAGES = FIXTURES / "images"
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def _with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def _find_server() -> tuple[str, object | None]:
    explicit = os.environ.get("ECOGRAM_TEST_DATABASE_URL")
    if explicit:
        return explicit, None
    if asyncio.run(_answers(LOCAL_POSTGRES)):
        return LOCAL_POSTGRES, None
    import pgserver

    data = Path(tempfile.mkdtemp(prefix="ecogram-test-pg-"))
    server = pgserver.get_server(data, cleanup_mode="delete")
    return server.get_uri(), server


class _ServerErrors(logging.Handler):
    """Collects what the request frame logs as a server failure: a 5xx answer or an unhandled
    exception. Records are the JSON lines of ``ecogram.http``."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = json.loads(record.getMessage())
        except (ValueError, TypeError):
            return
        if not isinstance(line, dict):
            return
        status = line.get("status")
        if line.get("event") == "unhandled_error" or (
            line.get("event") == "request" and isinstance(status, int) and status >= 500
        ):
            self.seen.append(line)


@pytest.fixture(autouse=True)
def no_server_errors(request):
    """No 5xx over the whole suite: every in-process server's request log is watched, and a
    test whose server answered 5xx or logged an unhandled error fails. A test that provokes a
    server-side fault on purpose (a stopped database, a full render queue, a handler that
    raises) says so with ``@pytest.mark.server_fault``; a 500 still fails it unless it is
    marked ``server_fault("500")``."""
    watcher = _ServerErrors()
    logger = logging.getLogger("ecogram.http")
    previous = logger.level
    logger.addHandler(watcher)
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)  # the default ECOGRAM_LOG_LEVEL logs every request
    try:
        yield watcher
    finally:
        logger.removeHandler(watcher)
        logger.setLevel(previous)
    marker = request.node.get_closest_marker("server_fault")
    allowed = set(marker.args) if marker else set()

    def fails(line: dict) -> bool:
        if marker is None:
            return True
        is_500 = line.get("status") == 500 or line.get("event") == "unhandled_error"
        return is_500 and "500" not in allowed

    unexpected = [line for line in watcher.seen if fails(line)]
    if unexpected:
        pytest.fail(f"the server answered 5xx or failed: {unexpected[:5]}", pytrace=False)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    url, server = _find_server()
    yield url
    if server is not None:
        server.cleanup()


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    name = f"ecogram_test_{os.getpid()}_{secrets.token_hex(3)}"

    async def create() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        conn = await db.connect(_with_database(server_url, name))
        try:
            await db.migrate(conn)
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(create())
    yield _with_database(server_url, name)
    asyncio.run(drop())


async def _empty_tables(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'schema_migrations'"
        )
        names = ", ".join(f'"{row["tablename"]}"' for row in tables)
        # Replica mode skips triggers, so the append-only audit log can be emptied between tests.
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture
def clean_db(database_url: str) -> str:
    """The test database, emptied: every test starts from no rows."""
    asyncio.run(_empty_tables(database_url))
    return database_url


@pytest.fixture
def settings(clean_db: str, tmp_path: Path) -> Settings:
    """Settings for one test: the clean test database, a fixed key, nothing from the shell."""
    return Settings.from_env(
        {},
        database_url=clean_db,
        secret_key=TEST_SECRET,
        data_dir=tmp_path / "data",
        min_side=100,
        zoom_side=1000,
        # No quality calibration (seconds of CPU per approval) unless a test asks for it
        # (tests/views/test_cdn_quality.py).
        quality_target=0,
    )


@pytest.fixture
async def client(aiohttp_client, settings: Settings):
    """A test client on a fresh app over the clean database."""
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def conn(clean_db: str):
    """A direct database connection, for checking what the service wrote."""
    connection = await db.connect(clean_db)
    yield connection
    await connection.close()


@pytest.fixture
async def redis_prefix():
    """A Redis key prefix of this test only (ECOGRAM_REDIS_PREFIX); its keys are removed after.
    The local Redis is REDIS_URL, else 127.0.0.1:6379."""
    import redis.asyncio as aioredis

    name = f"ecogram-test-{secrets.token_hex(6)}"
    yield name
    client = aioredis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        left = [key async for key in client.scan_iter(f"{name}:*")]
        if left:
            await client.delete(*left)
    finally:
        await client.aclose()


@pytest.fixture
def fixture_image():
    def read(relative: str) -> bytes:
        return (IMAGES / relative).read_bytes()

    return read


def assert_error(body: dict, code: str | None = None) -> None:
    """The one JSON error shape of API.md."""
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code, error



PASSWORD = "correct horse battery staple"


@pytest.fixture
def login_as(client):
    """``await login_as("importer")`` → Authorization headers for a user of that role.

    Goes through the public API only: the first user registered becomes admin; other roles are
    registered, promoted by that admin, then logged in. One user per role per test.
    """
    tokens: dict[str, dict[str, str]] = {}

    async def token_for(email: str) -> dict[str, str]:
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status == 200, await response.text()
        return {"Authorization": f"Bearer {(await response.json())['access_token']}"}

    async def register(email: str, name: str) -> dict:
        response = await client.post(
            "/api/v1/auth/register", json={"email": email, "name": name, "password": PASSWORD}
        )
        assert response.status == 201, await response.text()
        return await response.json()

    async def login(role: str = "admin") -> dict[str, str]:
        if role in tokens:
            return tokens[role]
        if "admin" not in tokens:
            await register("admin@example.com", "Ada Admin")
            tokens["admin"] = await token_for("admin@example.com")
        if role != "admin":
            email = f"{role}@example.com"
            user = await register(email, f"{role.title()} User")
            response = await client.patch(
                f"/api/v1/users/{user['id']}", json={"role": role}, headers=tokens["admin"]
            )
            assert response.status == 200, await response.text()
            tokens[role] = await token_for(email)
        return tokens[role]

    return login
