"""The PostgreSQL store (the default): objects in the table ``blobs``.

Writes use the caller's connection, so an object commits or rolls back with the record that
names it. Reads take a connection or the pool (aiosql acquires one from a pool for the query).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ecogram import db
from ecogram.storage import POSTGRES, MissingObject

PAGE = 500  # names listed per query by older_than


class PostgresStore:
    location = POSTGRES

    async def put(self, conn: Any, key: str, data: bytes) -> None:
        await db.queries.blob_put(conn, sha256=key, data=data)

    async def get(self, conn: Any, key: str) -> bytes:
        data = await db.queries.blob_get(conn, sha256=key)
        if data is None:
            raise MissingObject(key)
        return bytes(data)

    async def get_many(self, conn: Any, keys: list[str]) -> dict[str, bytes]:
        found = {r["sha256"]: bytes(r["data"])
                 async for r in db.queries.blob_get_many(conn, keys=keys)}
        missing = [key for key in keys if key not in found]
        if missing:
            raise MissingObject(missing[0])
        return found

    async def delete(self, conn: Any, key: str) -> None:
        await db.queries.blob_delete(conn, sha256=key)

    async def older_than(self, conn: Any, seconds: float) -> AsyncIterator[str]:
        after = ""
        while True:
            page = [r["sha256"] async for r in db.queries.blob_older_than(
                conn, age=float(seconds), after=after, limit=PAGE)]
            for key in page:
                yield key
            if len(page) < PAGE:
                return
            after = page[-1]

    async def close(self) -> None:
        pass
