"""Login throttling against both real stores, PostgreSQL and Redis, and with Redis away."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid

import pytest
import redis.asyncio as aioredis

from ecogram import db, keys
from ecogram.app import create_app
from ecogram.auth.throttle import PostgresThrottle, RedisThrottle
from ecogram.errors import AppError
from ecogram.redis_client import SharedRedis
from tests.conftest import PASSWORD, assert_error
from tests.faults import closed_port, hung_server

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_prefix():
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"ecogram-test-{uuid.uuid4().hex}"
    yield prefix
    client = aioredis.from_url(REDIS_URL)
    keys_left = [key async for key in client.scan_iter(match=f"{prefix}:*")]
    if keys_left:
        await client.delete(*keys_left)
    await client.aclose()


@pytest.fixture(params=["postgres", "redis", "redis_away"])
async def make_throttle(request, clean_db, redis_prefix):
    """``redis_away``: a Redis port with nothing behind it, so PostgreSQL counts instead."""
    made = []
    pool = await db.create_pool(clean_db, 1, 20)
    with contextlib.ExitStack() as stack:
        url = REDIS_URL
        if request.param == "redis_away":
            url = f"redis://127.0.0.1:{stack.enter_context(closed_port())}/0"
        redis = SharedRedis(url, redis_prefix, timeout=0.5, cooldown=0)

        def make(max_failures: int = 3, window: int = 900):
            if request.param == "postgres":
                throttle = PostgresThrottle(pool, max_failures, window)
            else:
                throttle = RedisThrottle(redis, pool, max_failures, window)
            made.append(throttle)
            return throttle

        yield make
        for throttle in made:
            await throttle.close()
        await redis.close()
    await pool.close()


async def fail(throttle, email: str, client: str) -> None:
    """An attempt that turns out to be a failure: its record simply stays."""
    await throttle.begin(email, client)


async def test_an_email_is_throttled_across_clients(make_throttle):
    throttle = make_throttle(max_failures=3)
    for n in range(3):
        await fail(throttle, "Victim@Example.com", f"10.0.0.{n}")
    with pytest.raises(AppError) as caught:
        await throttle.begin("victim@example.com", "10.0.0.99")
    error = caught.value
    assert error.status == 429 and error.code == "too_many_attempts"
    assert 1 <= int(error.headers["Retry-After"]) <= 900
    # Another e-mail from another address is not affected.
    await throttle.begin("someone-else@example.com", "10.0.0.100")


async def test_a_client_is_throttled_across_emails(make_throttle):
    throttle = make_throttle(max_failures=3)
    for n in range(3):
        await fail(throttle, f"guess{n}@example.com", "192.0.2.7")
    with pytest.raises(AppError) as caught:
        await throttle.begin("fresh@example.com", "192.0.2.7")
    assert caught.value.status == 429
    await throttle.begin("fresh@example.com", "192.0.2.8")


async def test_concurrent_attempts_cannot_slip_under_the_limit(make_throttle):
    throttle = make_throttle(max_failures=5)
    results = await asyncio.gather(
        *(throttle.begin("target@example.com", f"198.51.100.{n}") for n in range(30)),
        return_exceptions=True,
    )
    allowed = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, AppError) and r.status == 429]
    assert len(allowed) == 5
    assert len(refused) == 25


async def test_a_success_forgives_the_emails_failures(make_throttle):
    throttle = make_throttle(max_failures=3)
    for _ in range(2):
        await fail(throttle, "user@example.com", "203.0.113.1")
    attempt = await throttle.begin("user@example.com", "203.0.113.1")
    await throttle.succeeded(attempt)
    for _ in range(3):
        await fail(throttle, "user@example.com", "203.0.113.2")
    with pytest.raises(AppError):
        await throttle.begin("user@example.com", "203.0.113.3")


async def test_the_lock_lifts_when_the_window_passes(make_throttle):
    throttle = make_throttle(max_failures=2, window=1)
    for _ in range(2):
        await fail(throttle, "user@example.com", "203.0.113.9")
    with pytest.raises(AppError) as caught:
        await throttle.begin("user@example.com", "203.0.113.9")
    assert caught.value.headers["Retry-After"] == "1"
    await asyncio.sleep(1.2)
    await throttle.begin("user@example.com", "203.0.113.9")


async def test_refused_attempts_do_not_extend_the_lock(make_throttle):
    throttle = make_throttle(max_failures=2, window=2)
    for _ in range(2):
        await fail(throttle, "user@example.com", "203.0.113.5")
    for _ in range(5):
        with pytest.raises(AppError):
            await throttle.begin("user@example.com", "203.0.113.5")
    await asyncio.sleep(2.2)
    await throttle.begin("user@example.com", "203.0.113.5")


async def _register(client, email: str) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "name": "N", "password": PASSWORD}
    )
    assert response.status == 201


async def _throttled_through_the_api(client, email: str = "ada@example.com") -> None:
    await _register(client, email)
    for _ in range(3):
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": "wrong guess!"}
        )
        assert response.status == 401
        assert_error(await response.json(), "invalid_credentials")
    # Even the right password is refused while the lock holds.
    response = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert response.status == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 900
    body = await response.json()
    assert_error(body, "too_many_attempts")
    assert body["error"]["details"]["retry_after"] == int(response.headers["Retry-After"])
    assert "access_token" not in body
    # The same client address is locked for other e-mails too.
    other = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever it is"}
    )
    assert other.status == 429
    assert (await client.get("/healthz")).status == 200


async def test_throttling_through_the_api_in_postgresql(aiohttp_client, settings, conn):
    client = await aiohttp_client(create_app(settings.replace(login_max_failures=3)))
    await _throttled_through_the_api(client)
    assert await conn.fetchval("SELECT count(*) FROM login_failures") == 3
    assert await conn.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'login.failed'"
    ) == 3  # refused attempts are not audited one by one


async def test_throttling_through_the_api_in_redis_under_the_prefix(
    aiohttp_client, settings, conn, redis_prefix
):
    # The app's own configuration (ECOGRAM_REDIS_PREFIX), nothing preinstalled.
    app = create_app(settings.replace(login_max_failures=3, redis_url=REDIS_URL,
                                      redis_prefix=redis_prefix))
    client = await aiohttp_client(app)
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    await _throttled_through_the_api(client, email)
    assert await conn.fetchval("SELECT count(*) FROM login_failures") == 0
    redis = aioredis.from_url(REDIS_URL)
    try:
        stored = {key.decode() async for key in redis.scan_iter(match=f"{redis_prefix}:*")}
        assert stored == {f"{redis_prefix}:login:email:{email}",
                          f"{redis_prefix}:login:client:127.0.0.1"}
        assert await redis.zcard(f"{redis_prefix}:login:email:{email}") == 3
        assert not await redis.exists(f"ecogram:login:email:{email}")  # not the fixed prefix
    finally:
        await redis.aclose()


def _no_traceback(caplog) -> None:
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize("fault", ["closed_port", "hung_server"])
async def test_sign_in_answers_in_time_while_redis_is_away(
    aiohttp_client, settings, conn, caplog, fault
):
    """A refused port, or a server that accepts and never answers: sign-in neither hangs nor
    fails nor goes unthrottled; PostgreSQL counts the attempts."""
    caplog.set_level(logging.INFO)
    with (closed_port() if fault == "closed_port" else hung_server()) as port:
        app = create_app(settings.replace(
            login_max_failures=3, redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout=0.5))
        client = await aiohttp_client(app)
        slowest = 0.0
        real_post = client.post

        async def timed_post(*args, **kwargs):
            nonlocal slowest
            start = time.monotonic()
            response = await real_post(*args, **kwargs)
            await response.read()
            slowest = max(slowest, time.monotonic() - start)
            return response

        client.post = timed_post
        await _throttled_through_the_api(client)
        assert slowest < 1.5  # a deadline at most (0.5 s) plus the password hash, no hang
        # Redis is asked again after its cooldown: a right password still signs in meanwhile.
        await _register(client, "grace@example.com")
        response = await client.post(
            "/api/v1/auth/login", json={"email": "grace@example.com", "password": PASSWORD})
        assert response.status == 429  # the client address is still locked, by PostgreSQL
    assert await conn.fetchval("SELECT count(*) FROM login_failures") == 3
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "ecogram.redis"]
    assert [e["event"] for e in events] == ["redis_unavailable"]
    _no_traceback(caplog)


async def test_a_success_while_redis_is_away_forgives_in_postgresql(
    aiohttp_client, settings, conn
):
    with hung_server() as port:
        app = create_app(settings.replace(
            login_max_failures=3, redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout=0.3))
        client = await aiohttp_client(app)
        await _register(client, "ada@example.com")
        for password in ("wrong guess!", "wrong guess!", PASSWORD):
            await client.post(
                "/api/v1/auth/login", json={"email": "ada@example.com", "password": password})
        assert await conn.fetchval("SELECT count(*) FROM login_failures") == 0


async def test_redis_url_selects_the_redis_store(aiohttp_client, settings):
    app = create_app(settings.replace(redis_url=REDIS_URL))
    client = await aiohttp_client(app)
    assert isinstance(app[keys.login_throttle], RedisThrottle)
    assert app[keys.login_throttle].redis is app[keys.redis]  # the app's one client
    await _register(client, "ada@example.com")
    response = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status == 200


async def test_the_default_store_is_postgresql(client):
    assert isinstance(client.app[keys.login_throttle], PostgresThrottle)


async def test_a_successful_login_clears_its_own_record(client, conn):
    await _register(client, "ada@example.com")
    response = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status == 200
    assert await conn.fetchval("SELECT count(*) FROM login_failures") == 0
