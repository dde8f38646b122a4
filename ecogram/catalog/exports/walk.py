"""The export's rows: keyset batches, each read on a connection lent for that read only.

Each batch (``export-batch``) is one statement, so one snapshot: about ``BATCH_ROWS`` images,
whole products, in code order. The connection goes back to the pool before the batch is
written, so a client reading slowly holds none. A photo is never yielded twice (one that moved
to a later code after its batch was read comes round again: it is skipped).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ecogram import db

# Where an export gets a connection for each short read: ``pool.acquire`` in the service. An
# export takes a connection source, not a connection, because it must give it back between
# batches (a connection held at the client's pace is the hazard this package avoids).
Connect = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

BATCH_ROWS = 200  # images per keyset batch (whole products: a bigger product makes a bigger one)


@dataclass
class Walk:
    """The export's rows in keyset batches, each read on a connection held only for the read."""

    connect: Connect
    params: dict[str, Any]
    seen: dict[int, None] = field(default_factory=dict)  # ids written, in order

    async def batches(self) -> AsyncIterator[list[asyncpg.Record]]:
        after = ""
        while True:
            async with self.connect() as conn:
                batch = await self.read(conn, after)
            if not batch:
                return
            after = batch[-1]["code"]
            # A photo moved to a later code after its batch was read comes round again: once.
            fresh = [row for row in batch if row["id"] not in self.seen]
            if fresh:
                yield fresh

    async def products(self) -> AsyncIterator[list[asyncpg.Record]]:
        """Each product's rows together (a batch holds whole products), marked as written."""
        async for batch in self.batches():
            group: list[asyncpg.Record] = []
            for row in batch:
                if group and row["code"] != group[0]["code"]:
                    yield self.mark(group)
                    group = []
                group.append(row)
            yield self.mark(group)

    async def read(self, conn: asyncpg.Connection, after: str) -> list[asyncpg.Record]:
        """One batch (``export-batch``) on a lent connection. A channel export reads more in
        the same loan and snapshot (``channel.ChannelWalk``)."""
        return [r async for r in db.queries.export_batch(
            conn, after=after, rows=BATCH_ROWS, **self.params)]

    def mark(self, rows: list[asyncpg.Record]) -> list[asyncpg.Record]:
        self.seen.update(dict.fromkeys(r["id"] for r in rows))
        return rows
