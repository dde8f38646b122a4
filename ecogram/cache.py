"""The caches behind /img: small pieces, each bounded, each usable alone.

- ``ByteLRU``: an LRU bounded by the bytes of its values (variants, masters).
- ``RedisTier``: the shared variant tier on the app's one Redis client (``redis_client``). Every
  error or slow answer is a miss (and a few seconds of not asking): Redis makes delivery faster,
  never broken.
- ``SingleFlight``: concurrent callers of one key share one run of the work.
- ``Resolutions``: code/position → what it serves, in process, trusted only while the
  ``ImageListener`` holds its LISTEN connection; PostgreSQL's NOTIFY (a trigger on images)
  drops a code the moment a change commits, in every worker.

Nothing here knows about HTTP or SQL text; values are opaque to the caches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg

from ecogram.redis_client import RedisUnavailable, SharedRedis

log = logging.getLogger("ecogram.cache")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")

CHANNEL = "ecogram_images"


@dataclass(frozen=True, slots=True)
class Variant:
    """One rendered answer: the bytes and their media type."""

    data: bytes
    content_type: str


class ByteLRU(Generic[K, V]):
    """Least-recently-used entries, bounded by the sum of their declared sizes in bytes.

    A value larger than ``max_item`` (a quarter of the budget by default) is not kept: one huge
    original must not flush every hot variant.
    """

    # Per-entry bookkeeping (key, node, tuple) counted on top of the value's own bytes.
    OVERHEAD = 160

    def __init__(self, max_bytes: int, max_item: int | None = None) -> None:
        self.max_bytes = max(0, max_bytes)
        self.max_item = self.max_bytes // 4 if max_item is None else max_item
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: K) -> bool:
        return key in self._entries

    def items(self) -> list[tuple[K, V]]:
        """A snapshot, least recently used first (for metrics and tests)."""
        return [(key, value) for key, (value, _) in self._entries.items()]

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: K, value: V, size: int) -> bool:
        size += self.OVERHEAD
        if size > self.max_item or size > self.max_bytes:
            return False
        self.discard(key)
        self._entries[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, old) = self._entries.popitem(last=False)
            self.bytes -= old
        return True

    def discard(self, key: K) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[1]

    def discard_where(self, predicate: Callable[[K], bool]) -> int:
        doomed = [key for key in self._entries if predicate(key)]
        for key in doomed:
            self.discard(key)
        return len(doomed)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0


# --- Redis ------------------------------------------------------------------------------------


def dump_variant(value: Variant) -> bytes:
    """``content-type\\n`` + the bytes: no JSON or pickle round trip of a 30 KB image."""
    return value.content_type.encode("ascii") + b"\n" + value.data


def load_variant(value: bytes | None) -> Variant | None:
    if value is None:
        return None
    head, sep, data = value.partition(b"\n")
    if not sep or not head.startswith(b"image/"):
        return None  # not ours, or damaged: a miss
    return Variant(data, head.decode("ascii"))


class RedisTier:
    """Variants shared by every worker and machine, with a TTL, under ``prefix:namespace:``.

    Goes through the app's ``SharedRedis``: its deadline bounds every read and write, and after
    a failure nobody asks Redis for a few seconds, so a dead Redis costs one timeout, not one per
    request. Every failure is a miss. Writes go in the background, at most
    ``max_pending_writes`` at once (beyond that they are dropped: it is a cache).
    """

    def __init__(
        self,
        redis: SharedRedis,
        namespace: str,
        ttl: int,
        *,
        max_pending_writes: int = 64,
        on_lookup: Callable[[str], None] | None = None,
    ) -> None:
        self.redis = redis
        self.namespace = namespace
        self.ttl = ttl
        self.max_pending_writes = max_pending_writes
        self._on_lookup = on_lookup or (lambda result: None)
        self._writes: set[asyncio.Task] = set()

    def _key(self, key: str) -> str:
        return self.redis.key(self.namespace, key)

    async def get(self, key: str) -> Variant | None:
        name = self._key(key)
        try:
            raw = await self.redis.call("get", lambda client: client.get(name))
        except RedisUnavailable:
            self._on_lookup("error")
            return None
        value = load_variant(raw)
        self._on_lookup("hit" if value is not None else "miss")
        return value

    def put_later(self, key: str, value: Variant) -> None:
        if not self.redis.available or len(self._writes) >= self.max_pending_writes:
            return
        task = asyncio.create_task(self._put(key, value))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _put(self, key: str, value: Variant) -> None:
        name, data = self._key(key), dump_variant(value)
        with contextlib.suppress(RedisUnavailable):  # a lost write is a later miss
            await self.redis.call("set", lambda client: client.set(name, data, ex=self.ttl))

    async def flush(self) -> None:
        """Wait for the background writes (tests, shutdown)."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def close(self) -> None:
        """Finish the writes; the client itself belongs to the app (``redis_context``)."""
        await self.flush()


# --- single flight ----------------------------------------------------------------------------


class SingleFlight(Generic[T]):
    """Concurrent calls for one key share one run of the work.

    The work runs in its own task, so a caller that goes away (a closed connection cancels its
    handler) cancels neither the work nor the other callers.
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._running)

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        future = self._running.get(key)
        if future is None:
            future = asyncio.ensure_future(work())
            self._running[key] = future
            future.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(future)

    async def cancel_all(self) -> None:
        """Stop the work still running (shutdown: nobody will read it)."""
        running = list(self._running.values())
        for future in running:
            future.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _finished(self, key: Hashable, future: asyncio.Future[T]) -> None:
        if self._running.get(key) is future:
            del self._running[key]
        if not future.cancelled():
            future.exception()  # retrieved: no "never retrieved" warning when callers left


# --- code/position resolution ---------------------------------------------------------------

MISSING = object()  # get(): not cached (as opposed to a cached "nothing there", None)


class Resolutions:
    """code → position → value (``None`` caches "nothing there"), for ``ttl`` seconds at most.

    Only used while ``enabled`` (the listener is connected): without NOTIFY there is no way to
    hear about changes, so every lookup goes to the database. ``epoch`` moves on every
    invalidation; a value read from the database before an invalidation is not stored after it
    (``put(..., epoch=)``), so a notification overtaking a slow query cannot be undone by it.
    """

    def __init__(self, max_codes: int = 50_000, ttl: float = 300.0) -> None:
        self.max_codes = max_codes
        self.ttl = ttl
        self.enabled = False
        self.epoch = 0
        self._codes: dict[str, dict[int | None, tuple[float, Any]]] = {}

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._codes.values())

    def get(self, code: str, position: int | None) -> Any:
        entries = self._codes.get(code)
        if entries is None:
            return MISSING
        entry = entries.get(position)
        if entry is None or entry[0] < time.monotonic():
            return MISSING
        return entry[1]

    def put(self, code: str, position: int | None, value: Any, epoch: int) -> None:
        if not self.enabled or epoch != self.epoch:
            return
        entries = self._codes.get(code)
        if entries is None:
            if len(self._codes) >= self.max_codes:
                # Oldest code out (dicts keep insertion order): cheap, and hot codes come back.
                del self._codes[next(iter(self._codes))]
            entries = self._codes[code] = {}
        entries[position] = (time.monotonic() + self.ttl, value)

    def forget(self, code: str) -> None:
        self.epoch += 1
        self._codes.pop(code, None)

    def clear(self) -> None:
        self.epoch += 1
        self._codes.clear()


LISTENER_APPLICATION_NAME = "ecogram-image-listener"


class ImageListener:
    """A dedicated connection LISTENing on ``ecogram_images``; keeps ``Resolutions`` honest.

    On each (re)connection the cache is cleared and then enabled; when the connection is lost
    (termination, or a failed health query every ``check_interval`` seconds) it is disabled and
    cleared until the listener is back. ``notifications`` counts what arrived (tests wait on it).
    """

    def __init__(
        self,
        dsn: str,
        resolutions: Resolutions,
        *,
        channel: str = CHANNEL,
        check_interval: float = 5.0,
        retry_delay: float = 1.0,
        on_notify: Callable[[str], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.resolutions = resolutions
        self.channel = channel
        self.check_interval = check_interval
        self.retry_delay = retry_delay
        self._on_notify = on_notify
        self.notifications = 0
        self.connections = 0
        self._changed = asyncio.Condition()
        self._lost = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._conn: asyncpg.Connection | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed() and self.resolutions.enabled

    async def start(self, wait: float = 5.0) -> None:
        """Start listening; wait up to ``wait`` seconds for the first connection."""
        self._task = asyncio.create_task(self._run(), name="ecogram-image-listener")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self.wait_for(lambda: self.connections > 0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds after a connection or notification (bound it with
        ``asyncio.timeout``)."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    async def _signal(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self.resolutions.forget(payload)
        self.notifications += 1
        if self._on_notify is not None:
            self._on_notify(payload)
        asyncio.get_running_loop().create_task(self._signal())

    def _terminated(self, conn: Any) -> None:
        self._lost.set()

    def _disable(self) -> None:
        self.resolutions.enabled = False
        self.resolutions.clear()

    async def _close(self) -> None:
        self._disable()
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)

    async def _run(self) -> None:
        while True:
            try:
                self._lost.clear()
                # Named, so pg_stat_activity tells an operator (and a test) which it is.
                self._conn = await asyncpg.connect(
                    self.dsn, timeout=5,
                    server_settings={"application_name": LISTENER_APPLICATION_NAME})
                self._conn.add_termination_listener(self._terminated)
                await self._conn.add_listener(self.channel, self._notified)
                # Anything may have changed while nobody listened: start from nothing.
                self.resolutions.clear()
                self.resolutions.enabled = True
                self.connections += 1
                await self._signal()
                log.info(json.dumps({"event": "image_listener_connected",
                                     "connections": self.connections}))
                while True:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._lost.wait(), self.check_interval)
                    if self._lost.is_set() or self._conn.is_closed():
                        raise ConnectionError("listener connection lost")
                    await asyncio.wait_for(self._conn.execute("SELECT 1"), self.check_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: stop trusting, reconnect
                log.warning(json.dumps({"event": "image_listener_lost",
                                        "error": type(exc).__name__}))
                await self._close()
                await self._signal()
                await asyncio.sleep(self.retry_delay)
