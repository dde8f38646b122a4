"""Login throttling: failed logins per e-mail and per client address, shared by every worker.

Each attempt is checked and recorded *before* the password is checked, atomically (a Lua script
in Redis; advisory locks per e-mail and per client in PostgreSQL), so a burst of concurrent
guesses cannot all pass a check made before any of them was written. A
successful login removes its own record and forgives the e-mail's earlier failures; a failed one
leaves its record as a failure. Two stores: PostgreSQL (table login_failures, the default) and
Redis (sorted sets, when REDIS_URL is set), which counts in PostgreSQL while Redis is away.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import asyncpg
import redis.asyncio as aioredis
from aiohttp import web

from ecogram import db, keys
from ecogram.auth import passwords
from ecogram.errors import AppError
from ecogram.redis_client import RedisUnavailable, SharedRedis


@dataclass(frozen=True)
class Attempt:
    email: str
    client: str
    handle: str  # the store's id for this attempt's record
    store: str = "postgresql"  # where it is recorded: postgresql or redis


class LoginThrottle(Protocol):
    max_failures: int
    window: int

    async def begin(self, email: str, client: str) -> Attempt:
        """Record an attempt; ``AppError`` 429 with ``Retry-After`` when over the limit."""

    async def succeeded(self, attempt: Attempt) -> None:
        """Forget the attempt and the e-mail's earlier failures."""

    async def close(self) -> None: ...


def too_many(wait: int) -> AppError:
    wait = max(1, int(wait))
    return AppError(
        429,
        "too_many_attempts",
        "Too many failed sign-in attempts. Try again later.",
        {"retry_after": wait},
        headers={"Retry-After": str(wait)},
    )


def _normal(email: str) -> str:
    return email.strip().lower()


def _lock_key(kind: str, value: str) -> int:
    """A stable 32-bit advisory lock key for one e-mail or client (collisions only serialise)."""
    digest = hashlib.sha256(f"{kind}:{value}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


class PostgresThrottle:
    """Attempts as rows of login_failures; works across workers and machines sharing the DB."""

    # A purge of expired rows now and then keeps the table small without a scheduler.
    PURGE_PROBABILITY = 0.02

    def __init__(self, pool: asyncpg.Pool, max_failures: int, window: int) -> None:
        self.pool = pool
        self.max_failures = max_failures
        self.window = window

    async def begin(self, email: str, client: str) -> Attempt:
        email = _normal(email)
        async with self.pool.acquire() as conn:
            if random.random() < self.PURGE_PROBABILITY:
                await db.queries.purge_login_failures(conn, window=float(self.window))
            async with conn.transaction():
                # Always in the same order, so two attempts never wait on each other's lock.
                for key in sorted({_lock_key("email", email), _lock_key("client", client)}):
                    await db.queries.lock_login_key(conn, key=key)
                wait = await db.queries.login_attempts_block(
                    conn, email=email, client=client, window=float(self.window),
                    max_failures=self.max_failures,
                )
                if wait is not None:
                    # Refused attempts are not recorded: the lock lifts on schedule however
                    # hard someone keeps knocking.
                    raise too_many(wait)
                attempt_id = await db.queries.add_login_attempt(conn, email=email, client=client)
        return Attempt(email, client, str(attempt_id))

    async def succeeded(self, attempt: Attempt) -> None:
        async with self.pool.acquire() as conn:
            await db.queries.clear_login_failures(conn, email=attempt.email)

    async def close(self) -> None:
        return None


# Atomic in Redis: prune, check the limit for both keys, then add. The attempt is refused when
# the max-th newest earlier attempt is still in the window; the wait is until it leaves.
_REDIS_BEGIN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local wait = 0
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local r = redis.call('ZREVRANGE', KEYS[i], max - 1, max - 1, 'WITHSCORES')
  if r[2] then
    local w = tonumber(r[2]) + window - now
    if w > wait then wait = w end
  end
end
if wait > 0 then
  return math.max(1, math.ceil(wait))
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[3])
  redis.call('EXPIRE', KEYS[i], math.ceil(window) + 1)
end
return 0
"""


class RedisThrottle:
    """Attempts as members of two sorted sets (per e-mail, per client) scored by time.

    While Redis does not answer (``RedisUnavailable``: refused, failed, past the deadline, or
    cooling down after one of those) attempts are counted in PostgreSQL instead, so sign-in
    neither hangs, nor fails, nor goes unthrottled while Redis is away. Each store counts the
    attempts it saw, so a switch of store lets at most ``max_failures`` more guesses through.
    """

    def __init__(
        self, redis: SharedRedis, pool: asyncpg.Pool, max_failures: int, window: int
    ) -> None:
        self.redis = redis
        self.fallback = PostgresThrottle(pool, max_failures, window)
        self.max_failures = max_failures
        self.window = window
        self._begin = redis.client.register_script(_REDIS_BEGIN)

    def _keys(self, email: str, client: str) -> list[str]:
        return [self.redis.key("login", "email", email), self.redis.key("login", "client", client)]

    async def begin(self, email: str, client: str) -> Attempt:
        email = _normal(email)
        member = secrets.token_hex(12)
        names = self._keys(email, client)
        try:
            wait = await self.redis.call("throttle", lambda _: self._begin(
                keys=names, args=[self.window, self.max_failures, member]))
        except RedisUnavailable:
            return await self.fallback.begin(email, client)
        if int(wait) > 0:
            raise too_many(int(wait))
        return Attempt(email, client, member, store="redis")

    async def succeeded(self, attempt: Attempt) -> None:
        if attempt.store != "redis":  # counted in PostgreSQL while Redis was away
            await self.fallback.succeeded(attempt)
            return
        email_key, client_key = self._keys(attempt.email, attempt.client)

        async def forget(client: aioredis.Redis) -> None:
            async with client.pipeline(transaction=True) as pipe:
                pipe.delete(email_key)
                pipe.zrem(client_key, attempt.handle)
                await pipe.execute()

        # The login itself succeeded; a record left behind only counts against the limit.
        with contextlib.suppress(RedisUnavailable):
            await self.redis.call("throttle_forget", forget)

    async def close(self) -> None:
        """Nothing of its own: the client belongs to the app (``redis_client.redis_context``)."""


async def login_throttle_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the throttle for this app (Redis when REDIS_URL is set, else PostgreSQL).

    Needs the database pool and the app's Redis, so it runs after both contexts.
    """
    settings = app[keys.settings]
    redis = app.get(keys.redis)
    if redis is not None:
        throttle: LoginThrottle = RedisThrottle(
            redis, app[keys.db_pool], settings.login_max_failures, settings.login_window
        )
    else:
        throttle = PostgresThrottle(
            app[keys.db_pool], settings.login_max_failures, settings.login_window
        )
    app[keys.login_throttle] = throttle
    # Made now, so the first login of an unknown e-mail is not the one that pays for it.
    await passwords.verify_dummy("warm-up")
    try:
        yield
    finally:
        await throttle.close()
