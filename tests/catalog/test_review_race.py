"""Review transitions at the use-case level: one conditional UPDATE, two connections racing."""

from __future__ import annotations

import asyncio

import pytest

from ecogram import db
from ecogram.catalog import review
from ecogram.catalog.events import Events
from ecogram.errors import AppError


async def _image(conn) -> int:
    # A minimal live row; the review use case reads nothing else.
    return await conn.fetchval(
        "INSERT INTO images (code, position, filename, format, mime, width, height, file_size, "
        "sha256, phash, blurhash, color, importer) VALUES ('RACE', "
        "(SELECT coalesce(max(position), 0) + 1 FROM images WHERE code = 'RACE'), 'a.jpg', "
        "'jpeg', 'image/jpeg', 10, 10, 10, md5(random()::text), 0, 'L', '#ffffff', 'test') "
        "RETURNING id")


async def _user(conn, name: str):
    from ecogram.auth.identity import Identity

    email = f"{name.lower()}@example.com"
    user_id = await conn.fetchval("INSERT INTO users (email, name, password_hash, role) VALUES "
                                  "($1, $2, 'x', 'reviewer') RETURNING id", email, name)
    return Identity(user_id, email, name, "reviewer")


async def test_two_connections_racing_get_exactly_one_transition(conn, clean_db):
    first, second = await db.connect(clean_db), await db.connect(clean_db)
    alice, bob = await _user(conn, "Alice"), await _user(conn, "Bob")
    approved: list[int] = []

    async def hook(image_id: int) -> None:
        approved.append(image_id)

    events = Events(on_approved=[hook])
    try:
        for _ in range(10):
            image_id = await _image(conn)
            results = await asyncio.gather(
                review.review_one(first, alice, "approve", image_id, events=events),
                review.review_one(second, bob, "reject", image_id, "no", events=events),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, AppError)]
            rows = [r for r in results if not isinstance(r, BaseException)]
            assert len(rows) == 1 and len(errors) == 1, results
            assert errors[0].status == 409
            stored = await conn.fetchrow("SELECT status, reviewer FROM images WHERE id = $1",
                                         image_id)
            assert (stored["status"], stored["reviewer"]) == (rows[0]["status"],
                                                              rows[0]["reviewer"])
            assert (image_id in approved) == (stored["status"] == "approved")
    finally:
        await first.close()
        await second.close()


async def test_a_failing_hook_never_fails_the_review(conn):
    async def broken(image_id: int) -> None:
        raise RuntimeError("renderer down")

    image_id = await _image(conn)
    row = await review.review_one(conn, await _user(conn, "A"), "approve",
                                  image_id, events=Events(on_approved=[broken]))
    assert row["status"] == "approved"


@pytest.mark.parametrize("note", [3, "x" * 3000, "bad\x00note"])
async def test_bad_notes_are_refused(conn, note):
    image_id = await _image(conn)
    with pytest.raises(AppError) as caught:
        await review.review_one(conn, await _user(conn, "A"), "approve", image_id,
                                note)
    assert caught.value.status == 422
