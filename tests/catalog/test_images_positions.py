"""Reordering keeps every code's positions 1..n, whatever sequence of moves is made."""

from __future__ import annotations

import random

from ecogram.auth.identity import Identity
from ecogram.catalog import images

ACTOR = Identity(1, "i@example.com", "Importer", "importer")


async def _add(conn, code: str) -> int:
    return await conn.fetchval(
        "INSERT INTO images (code, position, filename, format, mime, width, height, file_size, "
        "sha256, phash, blurhash, color, importer) VALUES ($1, "
        "(SELECT coalesce(max(position), 0) + 1 FROM images WHERE code = $1 AND deleted_at IS "
        "NULL), 'a.jpg', 'jpeg', 'image/jpeg', 10, 10, 10, md5(random()::text), 0, 'L', "
        "'#ffffff', 'test') RETURNING id", code)


async def _check_gap_free(conn) -> None:
    rows = await conn.fetch("SELECT code, array_agg(position ORDER BY position) AS p FROM images "
                            "WHERE deleted_at IS NULL GROUP BY code")
    for row in rows:
        assert row["p"] == list(range(1, len(row["p"]) + 1)), (row["code"], row["p"])


async def test_random_moves_deletes_and_purges_keep_positions_gap_free(conn):
    rnd = random.Random(6)
    codes = ["A", "B", "C"]
    ids = [await _add(conn, rnd.choice(codes)) for _ in range(15)]
    live = set(ids)
    audited = 0
    for _ in range(60):
        image_id = rnd.choice(sorted(live))
        roll = rnd.random()
        if roll < 0.08:
            await images.delete_image(conn, ACTOR, image_id)
            live.discard(image_id)
            audited += 1
        elif roll < 0.12:
            await images.purge_image(conn, ACTOR, image_id)
            live.discard(image_id)
            audited += 1
        else:
            change: dict = {"position": rnd.randint(1, 8)}
            if rnd.random() < 0.4:
                change["code"] = rnd.choice(codes)
            before = await conn.fetchrow("SELECT code, position FROM images WHERE id = $1",
                                         image_id)
            row = await images.edit_image(conn, ACTOR, image_id, change)
            assert row["position"] >= 1
            # An edit that changes nothing (a clamped position) is not an operation to audit.
            audited += (row["code"], row["position"]) != (before["code"], before["position"])
        await _check_gap_free(conn)
    assert await conn.fetchval("SELECT count(*) FROM audit_log") == audited > 30
