"""The app's one Redis client (ecogram.redis_client) against a real Redis and real faults."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time

import pytest
import redis.asyncio as aioredis

from ecogram.redis_client import RedisUnavailable, SharedRedis
from ecogram.settings import Settings
from tests.faults import closed_port, hung_server

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def prefix(redis_prefix):
    """This test's Redis key prefix (tests/conftest.py removes its keys)."""
    return redis_prefix


@pytest.fixture
async def make():
    made: list[SharedRedis] = []

    def build(url: str, prefix: str = "ecogram-test", **options) -> SharedRedis:
        redis = SharedRedis(url, prefix, **{"timeout": 0.3, **options})
        made.append(redis)
        return redis

    yield build
    for redis in made:
        await redis.close()


def _events(caplog, name: str) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records
            if r.name == "ecogram.redis" and json.loads(r.getMessage())["event"] == name]


def test_settings_build_one_client_with_the_prefix_and_the_deadline():
    assert SharedRedis.from_settings(Settings.from_env({})) is None  # no REDIS_URL: no Redis
    settings = Settings.from_env({"REDIS_URL": REDIS_URL, "ECOGRAM_REDIS_PREFIX": "shop-a",
                                  "ECOGRAM_REDIS_TIMEOUT": "0.75"})
    redis = SharedRedis.from_settings(settings)
    assert redis is not None
    assert redis.prefix == "shop-a" and redis.timeout == 0.75
    assert redis.key("login", "email", "a@b.c") == "shop-a:login:email:a@b.c"
    # Every socket operation is bounded too, not only the calls made through call().
    options = redis.client.connection_pool.connection_kwargs
    assert options["socket_timeout"] == 0.75 and options["socket_connect_timeout"] == 0.75


async def test_keys_are_written_under_the_prefix(make, prefix):
    redis = make(REDIS_URL, prefix)
    key = redis.key("probe", "1")
    await redis.call("set", lambda client: client.set(key, b"x", ex=60))
    raw = aioredis.from_url(REDIS_URL)
    try:
        assert [k async for k in raw.scan_iter(f"{prefix}:*")] == [f"{prefix}:probe:1".encode()]
        # The connection says whose it is (CLIENT LIST), by the same prefix.
        names = [c["name"] for c in await raw.client_list()]
        assert prefix in names
    finally:
        await raw.aclose()


async def test_a_hung_redis_costs_one_deadline_then_nothing_until_the_cooldown(make, caplog):
    caplog.set_level(logging.INFO, "ecogram.redis")
    with hung_server() as port:
        redis = make(f"redis://127.0.0.1:{port}/0", timeout=0.3, cooldown=30)
        start = time.monotonic()
        with pytest.raises(RedisUnavailable):
            await redis.call("get", lambda client: client.get("k"))
        assert 0.25 <= time.monotonic() - start < 0.8
        assert not redis.available
        start = time.monotonic()
        with pytest.raises(RedisUnavailable):
            await redis.call("get", lambda client: client.get("k"))
        assert time.monotonic() - start < 0.05  # not asked: the circuit is open
        start = time.monotonic()
        await redis.close()
        assert time.monotonic() - start < 1
    [event] = _events(caplog, "redis_unavailable")
    assert event["op"] == "get" and event["error"] == "TimeoutError"
    assert all(r.exc_info is None for r in caplog.records)


async def test_after_the_cooldown_redis_is_asked_again(make):
    with hung_server() as port:
        redis = make(f"redis://127.0.0.1:{port}/0", timeout=0.2, cooldown=0.1)
        for _ in range(2):
            start = time.monotonic()
            with pytest.raises(RedisUnavailable):
                await redis.call("ping", lambda client: client.ping())
            assert 0.15 <= time.monotonic() - start < 0.6
            await asyncio.sleep(0.15)


async def test_a_port_with_nothing_behind_it_fails_at_once(make, caplog):
    caplog.set_level(logging.INFO, "ecogram.redis")
    with closed_port() as port:
        redis = make(f"redis://127.0.0.1:{port}/0", timeout=5, cooldown=0)
        for _ in range(3):
            start = time.monotonic()
            with pytest.raises(RedisUnavailable):
                await redis.call("ping", lambda client: client.ping())
            assert time.monotonic() - start < 0.5  # refused: no need to wait for the deadline
    # One outage, one line, however many calls failed during it.
    [event] = _events(caplog, "redis_unavailable")
    assert event["error"] == "ConnectionError"


async def test_a_connection_redis_dropped_is_replaced_without_an_outage(make, prefix, caplog):
    caplog.set_level(logging.INFO, "ecogram.redis")
    redis = make(REDIS_URL, prefix)
    first = await redis.call("id", lambda client: client.client_id())
    raw = aioredis.from_url(REDIS_URL)
    try:
        await raw.client_kill_filter(_id=first)  # as after a Redis restart or an idle timeout
    finally:
        await raw.aclose()
    second = await redis.call("id", lambda client: client.client_id())
    assert second != first
    assert redis.available
    assert _events(caplog, "redis_unavailable") == []


async def test_the_end_of_an_outage_is_logged(make, prefix, caplog):
    caplog.set_level(logging.INFO, "ecogram.redis")
    redis = make(REDIS_URL, prefix, cooldown=0)
    with pytest.raises(RedisUnavailable):
        # A command Redis refuses counts like any other failure of the store.
        await redis.call("bad", lambda client: client.execute_command("NO-SUCH-COMMAND"))
    assert await redis.call("ping", lambda client: client.ping())
    assert [e["event"] for e in _events(caplog, "redis_unavailable")
            + _events(caplog, "redis_available")] == ["redis_unavailable", "redis_available"]
