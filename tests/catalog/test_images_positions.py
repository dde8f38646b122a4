"""Reordering keeps every code's positions 1..n, whatever sequence of moves is made."""

from __future__ import annotations

import itertools
import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from ecogram import db
from ecogram.auth.identity import Identity
from ecogram.catalog import images, imports
from ecogram.catalog.sources import ImportItem
from tests.catalog.photos import make_photo

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


# --- imports: the order names and fields ask for ---------------------------------------------
#
# A photo asks for a position by its file name (SKU_2.jpg) or by a `position` field. It is
# stored at that position when the photos before it are there; until then it sits as far down
# as the code's photos go (positions stay 1..n) and the record keeps what it asked for, so the
# photos that arrive later for the places before it go before it.

@pytest.fixture
async def pool(settings):
    pool = await db.create_pool(settings.database_url, 1, 4)
    yield pool
    await pool.close()


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


@pytest.fixture
async def importer(conn) -> Identity:
    user_id = await conn.fetchval(
        "INSERT INTO users (email, name, password_hash, role) "
        "VALUES ('imp@example.com', 'Ida Importer', 'x', 'importer') RETURNING id")
    return Identity(user_id, "imp@example.com", "Ida Importer", "importer")


def _item(name: str, seed: int, **fields) -> ImportItem:
    data = make_photo(seed, 120, 120)
    return ImportItem(filename=name, load=lambda: data, **fields)


async def _import(pool, settings, executor, importer, *items: ImportItem) -> dict:
    run = imports.ImportRun(pool, settings, executor, importer, "upload")
    report = await run.run(list(items))
    assert report["rejected"] == 0, report
    return report


async def _order(conn, code: str) -> list[str]:
    rows = await conn.fetch("SELECT filename, position FROM images WHERE code = $1 "
                            "AND deleted_at IS NULL ORDER BY position", code)
    assert [r["position"] for r in rows] == list(range(1, len(rows) + 1))
    return [r["filename"] for r in rows]


async def test_one_batch_is_stored_in_the_order_the_names_say(pool, settings, executor,
                                                              importer, conn):
    report = await _import(pool, settings, executor, importer,
                           _item("X_2.jpg", 1), _item("X.jpg", 2),
                           _item("Y_3.jpg", 3), _item("Y_1.jpg", 4), _item("Y_2.jpg", 5))
    assert await _order(conn, "X") == ["X.jpg", "X_2.jpg"]
    assert await _order(conn, "Y") == ["Y_1.jpg", "Y_2.jpg", "Y_3.jpg"]
    # The report keeps the request's order, each line with the position its photo got.
    assert [(line["filename"], line["record"]["position"]) for line in report["items"]] == [
        ("X_2.jpg", 2), ("X.jpg", 1), ("Y_3.jpg", 3), ("Y_1.jpg", 1), ("Y_2.jpg", 2)]


async def test_across_requests_a_named_position_waits_for_the_photos_before_it(
        pool, settings, executor, importer, conn):
    names = ["P.jpg", "P_2.jpg", "P_3.jpg", "P_4.jpg"]
    rnd = random.Random(12)
    orders = [list(o) for o in itertools.permutations(names)]
    for n, order in enumerate([*rnd.sample(orders, 5), names[::-1]]):
        code = f"P{n}"
        for name in order:  # one request per photo, in this order
            await _import(pool, settings, executor, importer,
                          _item(name.replace("P", code, 1), 10 * n + names.index(name)))
        assert await _order(conn, code) == [name.replace("P", code, 1) for name in names], order


async def test_a_position_past_the_end_waits_and_unnumbered_photos_fill_in_before_it(
        pool, settings, executor, importer, conn):
    # Q_3 alone: position 1, waiting for 3.
    await _import(pool, settings, executor, importer, _item("Q_3.jpg", 1))
    # Q_2 arrives (no 1 yet): it goes before Q_3, which asked for more.
    await _import(pool, settings, executor, importer, _item("Q_2.jpg", 2))
    assert await _order(conn, "Q") == ["Q_2.jpg", "Q_3.jpg"]
    # Q.jpg names no position: the next free one, which is before the photos still waiting.
    await _import(pool, settings, executor, importer, _item("Q.jpg", 3))
    assert await _order(conn, "Q") == ["Q.jpg", "Q_2.jpg", "Q_3.jpg"]
    # Every photo is where it asked to be: a photo without a position now goes to the end.
    await _import(pool, settings, executor, importer, _item("extra.jpg", 4, code="Q"))
    assert await _order(conn, "Q") == ["Q.jpg", "Q_2.jpg", "Q_3.jpg", "extra.jpg"]
    # A position that is taken: the photo goes there and the others move down (as before).
    await _import(pool, settings, executor, importer, _item("new-front.jpg", 5, code="Q",
                                                            position=1))
    assert await _order(conn, "Q") == ["new-front.jpg", "Q.jpg", "Q_2.jpg", "Q_3.jpg",
                                       "extra.jpg"]


async def test_explicit_positions_in_one_request_and_across_requests(pool, settings, executor,
                                                                     importer, conn):
    await _import(pool, settings, executor, importer,
                  _item("old-1.jpg", 1, code="E"), _item("old-2.jpg", 2, code="E"))
    # One request, one `position` field for all its files: they go in as a block, in the
    # request's order (not each on top of the one before, which reversed them).
    await _import(pool, settings, executor, importer, *[
        _item(name, seed, code="E", position=1)
        for seed, name in enumerate(["front.jpg", "side.jpg", "back.jpg"], 3)])
    assert await _order(conn, "E") == ["front.jpg", "side.jpg", "back.jpg", "old-1.jpg",
                                       "old-2.jpg"]
    # Per-file positions in one request, given in reverse.
    await _import(pool, settings, executor, importer,
                  _item("c.jpg", 10, code="F", position=3), _item("b.jpg", 11, code="F",
                                                                  position=2),
                  _item("a.jpg", 12, code="F", position=1))
    assert await _order(conn, "F") == ["a.jpg", "b.jpg", "c.jpg"]
    # Across requests: 3, then 2 (before 3, which asked for more), then 1.
    for seed, (name, position) in enumerate([("g3.jpg", 3), ("g2.jpg", 2), ("g1.jpg", 1)], 20):
        await _import(pool, settings, executor, importer,
                      _item(name, seed, code="G", position=position))
    assert await _order(conn, "G") == ["g1.jpg", "g2.jpg", "g3.jpg"]


async def test_a_person_moving_a_photo_has_the_last_word(pool, settings, executor, importer,
                                                         conn):
    await _import(pool, settings, executor, importer, _item("M_3.jpg", 1), _item("M_5.jpg", 2))
    assert await _order(conn, "M") == ["M_3.jpg", "M_5.jpg"]
    moved = await conn.fetchval("SELECT id FROM images WHERE filename = 'M_5.jpg'")
    await images.edit_image(conn, ACTOR, moved, {"position": 1})
    # M_4 asks for 4: it goes after the photos that asked for less, and after the one a person
    # put first (its wish to be 5th is forgotten once someone placed it).
    await _import(pool, settings, executor, importer, _item("M_4.jpg", 3))
    assert await _order(conn, "M") == ["M_5.jpg", "M_3.jpg", "M_4.jpg"]


async def test_random_imports_keep_positions_unique_and_gap_free(pool, settings, executor,
                                                                 importer, conn):
    rnd = random.Random(7)
    seed = 100
    for _ in range(12):
        batch = []
        for _ in range(rnd.randint(1, 3)):
            seed += 1
            code = rnd.choice("RS")
            roll = rnd.random()
            if roll < 0.4:
                batch.append(_item(f"{code}_{rnd.randint(1, 6)}-{seed}.jpg", seed, code=code,
                                   position=rnd.randint(1, 6)))
            elif roll < 0.7:
                batch.append(_item(f"{code}_{rnd.randint(2, 6)}.jpg", seed))
            else:
                batch.append(_item(f"{code}.jpg", seed))
        await _import(pool, settings, executor, importer, *batch)
        await _check_gap_free(conn)
