"""``ecogram calibrate`` (ecogram.catalog.calibration): photos approved before calibration
existed, or calibrated by an older VERSION, get a current calibrated q — real PostgreSQL, real
libvips and SSIMULACRA2, the running server told through NOTIFY."""

from __future__ import annotations

import asyncio

import pytest

from ecogram import db
from ecogram.catalog import calibration
from ecogram.cli import main
from ecogram.imaging import quality
from tests.views.cdn_support import import_photo, publish
from tests.views.test_cdn_quality import noisy_photo

# Small and quick: one width, one format.
CALIBRATING = {"quality_target": 75.0, "quality_widths": (200,),
               "quality_bounds": {"webp": (30, 90)}}


async def rows(conn) -> dict[int, tuple[int, int, int]]:
    """Each photo's WebP result; one per photo, at the one calibrated width (or width 0 for an
    earlier calibration's row)."""
    found = await conn.fetch("SELECT image_id, version, q, calibration, width "
                             "FROM image_quality WHERE format = 'webp'")
    assert len({r["image_id"] for r in found}) == len(found)
    assert {r["width"] for r in found} <= {0, 200}
    return {r["image_id"]: (r["version"], r["q"], r["calibration"]) for r in found}


async def test_approved_photos_without_a_current_calibration_get_one(
    client, login_as, conn, settings
):
    # Approved while calibration was off (the suite's settings): nothing stored, /img at the
    # fixed default. One photo carries a result of calibration VERSION 1; one is pending.
    old = await publish(client, login_as, noisy_photo(3, sigma=2), "OLD-1", filename="a.png")
    stale = await publish(client, login_as, noisy_photo(4, sigma=2), "OLD-2", filename="b.png")
    pending = await import_photo(client, login_as, noisy_photo(5, sigma=2), "NEW-1",
                                 filename="c.png")
    await conn.execute(
        "INSERT INTO image_quality (image_id, version, format, width, q, score, target, "
        "calibration) VALUES ($1, $2, 'webp', 0, 20, 60, 75, 1)", stale["id"], stale["version"])
    before = await client.get("/img/OLD-1?w=200&fmt=webp")
    assert before.headers["X-Ecogram-Quality"] == "80"

    seen: list[tuple[str, int, int]] = []
    pool = await db.create_pool(settings.database_url, 1, 2)
    try:
        chosen = settings.replace(**CALIBRATING)
        counts = await calibration.backfill(pool, None, chosen, batch=1,
                                            on_progress=lambda *a: seen.append(a))
        stored = await rows(conn)
        again = await calibration.backfill(pool, None, chosen)
        # another target makes every result stale again
        other = await calibration.backfill(pool, None, chosen.replace(quality_target=70.0))
    finally:
        await pool.close()

    assert counts == {"calibrated": 2, "skipped": 0, "failed": 0}
    assert seen == [("calibrated", old["id"], 2), ("calibrated", stale["id"], 2)]
    assert set(stored) == {old["id"], stale["id"]}  # not the pending photo
    assert all(version == record["version"] and c == quality.VERSION and 30 <= q <= 90
               for (version, q, c), record in zip((stored[old["id"]], stored[stale["id"]]),
                                                   (old, stale), strict=True))
    assert stored[stale["id"]][1] != 20  # the VERSION 1 result is replaced
    assert again == {"calibrated": 0, "skipped": 0, "failed": 0}  # idempotent
    assert other["calibrated"] == 2
    assert pending["status"] == "pending"

    # The running server was told (NOTIFY): /img without q now uses the stored q.
    q = (await rows(conn))[old["id"]][1]
    for _ in range(100):
        after = await client.get("/img/OLD-1?w=200&fmt=webp")
        if after.headers["X-Ecogram-Quality"] == str(q):
            break
        await asyncio.sleep(0.05)
    assert after.headers["X-Ecogram-Quality"] == str(q)


async def test_a_photo_that_cannot_be_read_fails_alone(client, login_as, conn, settings):
    broken = await publish(client, login_as, noisy_photo(3, sigma=2), "BAD", filename="a.png")
    fine = await publish(client, login_as, noisy_photo(4, sigma=2), "FINE", filename="b.png")
    await conn.execute("UPDATE blobs SET data = $1 WHERE sha256 = $2",
                       b"\xff\xd8\xff\xe0 not an image", broken["sha256"])
    pool = await db.create_pool(settings.database_url, 1, 2)
    try:
        counts = await calibration.backfill(pool, None, settings.replace(**CALIBRATING))
    finally:
        await pool.close()
    assert counts == {"calibrated": 1, "skipped": 0, "failed": 1}
    assert set(await rows(conn)) == {fine["id"]}


def test_the_cli_calibrates_what_is_missing_then_nothing(clean_db, monkeypatch, capsys,
                                                         tmp_path):
    async def seed() -> None:
        conn = await db.connect(clean_db)
        try:
            await conn.execute(
                "INSERT INTO images (code, position, filename, format, mime, width, height, "
                "file_size, sha256, phash, blurhash, color, importer, status) VALUES "
                "('CLI-1', 1, 'a.png', 'png', 'image/png', 400, 400, 100, 'x', 0, 'L', "
                "'#ffffff', 'seed', 'approved')")
            # The original, which is its own master here, in the PostgreSQL store.
            await conn.execute("INSERT INTO blobs (sha256, data) VALUES ('x', $1)",
                               noisy_photo(3, sigma=2))
            await conn.execute(
                "INSERT INTO originals (image_id, master_sha256, master_format, master_width, "
                "master_height) VALUES (1, 'x', 'png', 400, 400)")
        finally:
            await conn.close()

    async def stored() -> list[tuple[int, int]]:
        conn = await db.connect(clean_db)
        try:
            return [tuple(r) for r in await conn.fetch(
                "SELECT image_id, calibration FROM image_quality")]
        finally:
            await conn.close()

    asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("ECOGRAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ECOGRAM_QUALITY_WIDTHS", "200")
    monkeypatch.setenv("ECOGRAM_QUALITY_BOUNDS", "webp:30-90")
    assert main(["calibrate"]) == 0
    out = capsys.readouterr()
    assert "calibrate: 1 photos calibrated" in out.out
    assert "1/1" in out.err  # the progress line
    assert asyncio.run(stored()) == [(1, quality.VERSION)]
    assert main(["calibrate", "--stale"]) == 0
    assert "nothing to calibrate" in capsys.readouterr().out
    assert main(["calibrate", "--all"]) == 0
    assert "calibrate: 1 photos calibrated" in capsys.readouterr().out
    monkeypatch.setenv("ECOGRAM_QUALITY_TARGET", "0")
    assert main(["calibrate"]) == 2
    assert "calibration is off" in capsys.readouterr().err


def test_the_cli_refuses_unknown_options():
    with pytest.raises(SystemExit) as exited:
        main(["calibrate", "--bogus"])
    assert exited.value.code == 2
