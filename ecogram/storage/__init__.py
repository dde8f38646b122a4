"""Originals and masters: one seam, two stores.

Every original upload and every master is an *object* named by the sha256 of its bytes, kept in
one of two stores: PostgreSQL (the table ``blobs``, the default) or an S3-compatible object store
(``ECOGRAM_STORAGE_URL=s3://bucket/prefix``; endpoint and credentials from the standard
``AWS_*`` variables). A store is named by its *location*: ``postgres`` or the ``s3://`` URL.
Each record says where its objects are (``originals.store``), so reads go where the record says
and writes go where the setting says; the code above this module never asks which store it has.

- ``put(conn, location, key, data)`` inside the caller's transaction, before the record that
  names the object commits: the PostgreSQL store writes with ``conn`` (so the object and the
  record commit or roll back together); the S3 store writes at once (a rolled-back record leaves
  an object nobody names, which the sweep removes after a day). Either way the write holds a
  shared lock on the name until the transaction ends, so a release (``ecogram.catalog.
  originals``) never deletes it between the write and the commit.
- ``get``/``get_many`` take a connection or the pool (S3 reads then hold no connection).
- An object store that cannot be reached raises ``StoreUnavailable``: 503 ``unavailable``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

from ecogram import db
from ecogram.errors import AppError
from ecogram.settings import storage_location

POSTGRES = "postgres"
RETRY_AFTER = 5  # seconds a client is told to wait while the object store is unavailable


class StoreUnavailable(AppError):
    """The object store cannot be reached or used right now (refused, timed out, 5xx)."""

    def __init__(self) -> None:
        super().__init__(
            503, "unavailable",
            "The image store is briefly unavailable; try again in a few seconds.",
            {"retry_after": RETRY_AFTER}, headers={"Retry-After": str(RETRY_AFTER)},
        )


class MissingObject(LookupError):
    """A record names an object its store does not have (never expected: a bug or lost data)."""


class Store(Protocol):
    location: str

    async def put(self, conn: Any, key: str, data: bytes) -> None: ...

    async def get(self, conn: Any, key: str) -> bytes: ...

    async def get_many(self, conn: Any, keys: list[str]) -> dict[str, bytes]: ...

    async def delete(self, conn: Any, key: str) -> None: ...

    def older_than(self, conn: Any, seconds: float) -> AsyncIterator[str]: ...

    async def close(self) -> None: ...


def location(url: str | None) -> str:
    """The location named by ``ECOGRAM_STORAGE_URL`` or ``--to``: ``postgres`` when unset.
    Raises ``ValueError`` (the end of a sentence naming the setting) when it is neither."""
    return storage_location(url)


# One client per store and event loop (an aiobotocore client belongs to the loop it was opened
# on); ``close()`` closes those of the running loop.
_open: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Store]] = (
    weakref.WeakKeyDictionary()
)
_opening: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)
timeout_seconds = 10.0  # every object-store call; set from ECOGRAM_STORAGE_TIMEOUT by configure()


def configure(timeout: float) -> None:
    global timeout_seconds
    timeout_seconds = timeout


async def store(where: str) -> Store:
    """The store at this location, opened once per event loop."""
    loop = asyncio.get_running_loop()
    stores = _open.setdefault(loop, {})
    found = stores.get(where)
    if found is not None:
        return found
    async with _opening.setdefault(loop, asyncio.Lock()):
        found = stores.get(where)
        if found is None:
            if where == POSTGRES:
                from ecogram.storage.postgres import PostgresStore

                found = PostgresStore()
            else:
                from ecogram.storage.s3 import S3Store

                found = await S3Store.open(where, timeout_seconds)
            stores[where] = found
    return found


async def close() -> None:
    """Close the clients opened on the running loop (app shutdown, end of a command)."""
    stores = _open.pop(asyncio.get_running_loop(), {})
    for opened in stores.values():
        await opened.close()


async def put(conn: Any, where: str, key: str, data: bytes) -> None:
    """Write the object ``key`` (its sha256) at ``where``, inside the caller's transaction."""
    await db.queries.storage_lock_shared(conn, key=key)
    await (await store(where)).put(conn, key, data)


async def get(conn: Any, where: str, key: str) -> bytes:
    return await (await store(where)).get(conn, key)


async def get_many(conn: Any, where: str, keys: Iterable[str]) -> dict[str, bytes]:
    wanted = list(dict.fromkeys(keys))
    return await (await store(where)).get_many(conn, wanted) if wanted else {}


async def delete(conn: Any, where: str, key: str) -> None:
    await (await store(where)).delete(conn, key)


async def older_than(conn: Any, where: str, seconds: float) -> AsyncIterator[str]:
    async for key in (await store(where)).older_than(conn, seconds):
        yield key
