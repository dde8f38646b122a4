"""What an export contains while the table moves under it (issue 11).

An export reads keyset batches, each on a connection lent for the read only. Between two
batches other writers change the table; the README's contract: a photo that did not change is
exported exactly once, no photo twice, products whole, and changes after a batch was read
show up in the batches not read yet.
"""

from __future__ import annotations

import contextlib
import csv
import io

import pytest

from ecogram import db
from ecogram.catalog import exports
from ecogram.catalog.exports import ExportQuery, run_export

PUBLIC = "https://cdn.example.com"


async def _seed(conn, codes: dict[str, int]) -> None:
    for code, count in codes.items():
        for position in range(1, count + 1):
            await conn.execute(
                "INSERT INTO images (code, product, position, status, filename, format, mime, "
                "width, height, file_size, sha256, phash, blurhash, color, importer) VALUES "
                "($1, 'Product ' || $1, $2, 'approved', 'a.jpg', 'jpeg', 'image/jpeg', 800, 800, "
                "10, md5(random()::text), 0, 'L', '#ffffff', 'seed')", code, position)


@pytest.fixture
async def pool(clean_db):
    pool = await db.create_pool(clean_db, 1, 2)
    yield pool
    await pool.close()


def _between_batches(pool, changes: dict[int, str]):
    """``pool.acquire``, running ``changes[n]`` (SQL) on the n-th loan before lending it."""
    loans = 0

    @contextlib.asynccontextmanager
    async def connect():
        nonlocal loans
        loans += 1
        async with pool.acquire() as conn:
            if loans in changes:
                await conn.execute(changes[loans])
            # While the export reads, the pool lends this connection and no other.
            assert pool.get_size() - pool.get_idle_size() == 1
            yield conn

    return connect


async def _export(connect, fmt: str = "woocommerce") -> list[list[str]]:
    out = io.BytesIO()

    async def write(data) -> None:
        out.write(data)

    await run_export(connect, None, ExportQuery(fmt), PUBLIC, write, actor_name="test")
    return list(csv.reader(io.StringIO(out.getvalue().decode())))[1:]


async def test_an_export_over_a_moving_table(pool, conn, monkeypatch):
    monkeypatch.setattr(exports.walk, "BATCH_ROWS", 2)  # one product of two photos per batch
    await _seed(conn, {"A": 2, "B": 2, "C": 2, "D": 2, "E": 2})
    # Loan 1 is the live-codes read (SKUs are made unique), loan 2 reads A, loan 3 reads B...
    connect = _between_batches(pool, {
        # After A was read: A's second photo moves to D (already exported: not again).
        3: "UPDATE images SET code = 'D', position = 3 WHERE code = 'A' AND position = 2",
        # After B: E's second photo goes (soft delete), a new product F arrives.
        4: "UPDATE images SET deleted_at = now() WHERE code = 'E' AND position = 2; "
           "INSERT INTO images (code, product, position, status, filename, format, mime, "
           "width, height, file_size, sha256, phash, blurhash, color, importer) VALUES "
           "('F', 'Product F', 1, 'approved', 'a.jpg', 'jpeg', 'image/jpeg', 800, 800, 10, "
           "'f', 0, 'L', '#ffffff', 'seed')",
    })
    rows = await _export(connect)
    images = {r[0]: r[2].split(", ") for r in rows}
    assert list(images) == ["A", "B", "C", "D", "E", "F"]  # code order, each product once
    assert [len(images[c]) for c in images] == [2, 2, 2, 2, 1, 1]
    # D has the photo that moved there, already exported under A: exported once, as A's.
    assert all("/img/D/" in url for url in images["D"])
    export = await conn.fetchrow("SELECT count FROM exports")
    assert export["count"] == 10
    stamped = await conn.fetchval("SELECT count(*) FROM images WHERE exported_at IS NOT NULL")
    assert stamped == 10
    # No connection is left lent, and none sits in a transaction.
    assert pool.get_size() == pool.get_idle_size()
    assert await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state LIKE 'idle in transaction%'") == 0


async def test_a_photo_moved_back_past_the_walk_is_not_exported(pool, conn, monkeypatch):
    monkeypatch.setattr(exports.walk, "BATCH_ROWS", 1)
    await _seed(conn, {"A": 1, "B": 1, "C": 1})
    # After A was read, C's photo moves into A: neither A (read) nor C (gone) has it now.
    connect = _between_batches(pool, {
        3: "UPDATE images SET code = 'A', position = 2 WHERE code = 'C'"})
    rows = await _export(connect, "shopify")
    assert [(r[0], r[3]) for r in rows] == [("a", "1"), ("b", "1")]
    assert (await conn.fetchrow("SELECT count FROM exports"))["count"] == 2
