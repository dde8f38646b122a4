"""The app's one Redis client: built once from the settings, shared by every use of Redis.

``SharedRedis`` holds the one ``redis.asyncio`` client (one connection pool) of a worker, its key
prefix (``ECOGRAM_REDIS_PREFIX``) and its deadline (``ECOGRAM_REDIS_TIMEOUT``). The variant tier
of /img and the login throttle both go through ``call()``, which

- bounds the whole command (connect, handshake, answer) by the deadline; the sockets carry the
  same timeout, and a failed command is retried at most once, at once (a connection Redis
  closed while idle is replaced without anyone noticing);
- turns every failure into ``RedisUnavailable``, and then stops asking for ``cooldown`` seconds,
  so a dead or hung Redis costs one deadline per cooldown, not one per request. The callers
  degrade (a cache miss; sign-in counted in PostgreSQL) and never answer 500;
- logs one line when Redis goes away and one when it is back, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ecogram import keys
from ecogram.settings import Settings

log = logging.getLogger("ecogram.redis")

T = TypeVar("T")

# How long nobody asks Redis after a failure.
COOLDOWN = 5.0


class RedisUnavailable(Exception):
    """Redis refused, failed or did not answer within the deadline (or is cooling down)."""


class SharedRedis:
    """One worker's Redis: the client, the key prefix, the deadline and whether Redis answers."""

    def __init__(
        self, url: str, prefix: str, timeout: float, *, cooldown: float = COOLDOWN
    ) -> None:
        self.prefix = prefix
        self.timeout = timeout
        self.cooldown = cooldown
        self.client: aioredis.Redis = aioredis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            # One immediate retry (a pooled connection Redis dropped); the deadline bounds both.
            retry=Retry(NoBackoff(), 1),
            # CLIENT LIST on the server says whose connections these are.
            client_name=re.sub(r"[^\w.:-]", "_", prefix),
        )
        self._down_until = 0.0
        self._outage = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SharedRedis | None:
        if not settings.redis_url:
            return None
        return cls(settings.redis_url, settings.redis_prefix, settings.redis_timeout)

    def key(self, *parts: str) -> str:
        """``prefix:part:part…``: every key this service writes."""
        return ":".join((self.prefix, *parts))

    @property
    def available(self) -> bool:
        """False while cooling down after a failure: callers need not even ask."""
        return time.monotonic() >= self._down_until

    async def call(self, op: str, command: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """``command(client)`` within the deadline; ``RedisUnavailable`` on any failure."""
        if not self.available:
            raise RedisUnavailable(op)
        try:
            async with asyncio.timeout(self.timeout):
                result = await command(self.client)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(op, exc)
            raise RedisUnavailable(op) from None
        if self._outage:
            self._outage = False
            log.info(json.dumps({"event": "redis_available", "op": op}))
        return result

    def _failed(self, op: str, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self.cooldown
        if not self._outage:  # one line per outage, however many calls fail during it
            self._outage = True
            log.warning(json.dumps({"event": "redis_unavailable", "op": op,
                                    "error": type(exc).__name__, "cooldown_s": self.cooldown}))

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(self.timeout):
                await self.client.aclose()


async def redis_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the app's Redis (``keys.redis``) when REDIS_URL is set.

    Opens no connection yet: a Redis that is away at start-up only means cache misses and
    sign-ins counted in PostgreSQL until it answers.
    """
    redis = SharedRedis.from_settings(app[keys.settings])
    if redis is None:
        yield
        return
    app[keys.redis] = redis
    try:
        yield
    finally:
        await redis.close()
