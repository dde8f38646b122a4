"""The import use case against the real database, without HTTP."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
import pyvips

from ecogram import db
from ecogram.auth.identity import Identity
from ecogram.catalog import imports
from ecogram.catalog.sources import Fields, ImportItem
from ecogram.errors import AppError
from tests.catalog.photos import make_photo, make_zip


@pytest.fixture
async def pool(settings):
    pool = await db.create_pool(settings.database_url, 1, 6)
    yield pool
    await pool.close()


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


@pytest.fixture
async def importer(conn) -> Identity:
    row = await conn.fetchrow(
        "INSERT INTO users (email, name, password_hash, role) "
        "VALUES ('imp@example.com', 'Ida Importer', 'x', 'importer') RETURNING id")
    return Identity(row["id"], "imp@example.com", "Ida Importer", "importer")


def item(name: str, data: bytes, **fields) -> ImportItem:
    return ImportItem(filename=name, load=lambda: data, **fields)


async def run(pool, settings, executor, importer, items, **kwargs):
    return await imports.ImportRun(pool, settings, executor, importer, "cli", **kwargs).run(items)


def oriented(width: int, height: int, orientation: int) -> bytes:
    image = pyvips.Image.new_from_buffer(make_photo(5, width, height), "").copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return image.jpegsave_buffer(keep="exif")


async def test_record_is_stored_whole(pool, settings, executor, importer, conn):
    data = oriented(300, 200, 6)
    report = await run(pool, settings, executor, importer, [item("SKU-1.jpg", data)])
    record = report["items"][0]["record"]
    # Stored upright: EXIF orientation 6 turns 300x200 into 200x300.
    assert (record["width"], record["height"]) == (200, 300)
    row = await conn.fetchrow("SELECT * FROM images WHERE id = $1", record["id"])
    assert row["importer_id"] == importer.id and row["importer"] == "Ida Importer"
    assert row["batch_id"] == report["id"] and row["mime"] == "image/jpeg"
    assert row["file_size"] == len(data) and row["filename"] == "SKU-1.jpg"
    assert isinstance(row["phash"], int) and row["blurhash"]
    original = await conn.fetchrow("SELECT * FROM originals WHERE image_id = $1", row["id"])
    assert original["store"] == "postgres"  # the default store: objects in the blobs table
    blobs = "SELECT data FROM blobs WHERE sha256 = $1"
    assert bytes(await conn.fetchval(blobs, row["sha256"])) == data
    master = pyvips.Image.new_from_buffer(
        bytes(await conn.fetchval(blobs, original["master_sha256"])), "")
    assert (master.width, master.height) == (200, 300)
    assert (original["master_width"], original["master_height"]) == (200, 300)
    audit = await conn.fetchrow("SELECT * FROM audit_log WHERE action = 'image.imported'")
    assert audit["actor"] == "Ida Importer" and audit["image_id"] == row["id"]
    assert audit["details"]["batch_id"] == report["id"]


async def test_positions_next_free_explicit_shift_and_clamp(pool, settings, executor, importer,
                                                            conn):
    await run(pool, settings, executor, importer,
              [item(f"p{i}.jpg", make_photo(i), code="C-1") for i in range(3)])
    before = dict(await conn.fetch("SELECT filename, version FROM images"))
    await run(pool, settings, executor, importer, [
        item("insert-at-2.jpg", make_photo(10), code="C-1", position=2),
        item("far-away.jpg", make_photo(11), code="C-1", position=99),
    ])
    rows = await conn.fetch("SELECT filename, position, version FROM images WHERE code = 'C-1' "
                            "ORDER BY position")
    assert [(r["filename"], r["position"]) for r in rows] == [
        ("p0.jpg", 1), ("insert-at-2.jpg", 2), ("p1.jpg", 3), ("p2.jpg", 4),
        ("far-away.jpg", 5)]
    versions = {r["filename"]: r["version"] for r in rows}
    assert versions["p0.jpg"] == before["p0.jpg"]  # not moved, same version
    assert versions["p1.jpg"] != before["p1.jpg"]  # moved: its /img address serves anew


async def test_same_bytes_racing_into_one_code_store_once(pool, settings, executor, importer,
                                                          conn):
    data = make_photo(3)
    reports = await asyncio.gather(*[
        run(pool, settings, executor, importer, [item("SKU-9.jpg", data)]) for _ in range(4)
    ])
    outcomes = sorted(r["items"][0]["outcome"] for r in reports)
    assert outcomes == ["accepted", "duplicate", "duplicate", "duplicate"]
    ids = {r["items"][0]["image_id"] for r in reports}
    assert len(ids) == 1
    assert await conn.fetchval("SELECT count(*) FROM images") == 1


async def test_different_photos_racing_into_one_code_get_distinct_positions(
        pool, settings, executor, importer, conn):
    await asyncio.gather(*[
        run(pool, settings, executor, importer, [item(f"x{i}.jpg", make_photo(i), code="R")])
        for i in range(5)
    ])
    positions = [r["position"] for r in await conn.fetch(
        "SELECT position FROM images WHERE code = 'R' ORDER BY position")]
    assert positions == [1, 2, 3, 4, 5]


async def test_one_failing_file_does_not_stop_the_batch(pool, settings, executor, importer,
                                                        conn):
    def explode() -> bytes:
        raise OSError("disk gone")

    items = [
        item("SKU-1.jpg", make_photo(1)),
        ImportItem(filename="SKU-2.jpg", load=explode),
        ImportItem(filename="SKU-3.jpg", error=AppError(422, "unsafe_path", "no")),
        item("SKU-4.jpg", make_photo(4)),
        item("???.jpg", make_photo(5)),
    ]
    progress = []
    report = await run(pool, settings, executor, importer, items, on_progress=progress.append)
    assert [(line["outcome"], line.get("code")) for line in report["items"]] == [
        ("accepted", None), ("rejected", "internal_error"), ("rejected", "unsafe_path"),
        ("accepted", None), ("rejected", "no_code")]
    assert sorted(o.seq for o in progress) == [1, 2, 3, 4, 5]  # each file reported once
    assert (report["accepted"], report["rejected"]) == (2, 3)
    assert report["status"] == "done" and report["finished_at"]
    assert await conn.fetchval("SELECT count(*) FROM originals") == 2


async def test_product_name_defaults_to_the_codes(pool, settings, executor, importer):
    first = await run(pool, settings, executor, importer,
                      [item("a.jpg", make_photo(1), code="P", product="Blue mug")])
    later = await run(pool, settings, executor, importer,
                      [item("P_2.jpg", make_photo(2)), item("Q.jpg", make_photo(3))])
    assert first["items"][0]["record"]["product"] == "Blue mug"
    assert [line["record"]["product"] for line in later["items"]] == ["Blue mug", ""]


async def test_too_small_uses_the_setting(pool, settings, executor, importer):
    strict = settings.replace(min_side=500)
    report = await run(pool, strict, executor, importer, [item("SKU-1.jpg", make_photo(1))])
    line = report["items"][0]
    assert (line["status"], line["code"]) == (422, "too_small")
    assert line["details"]["min_side"] == 500


async def test_cli_paths_folders_zips_and_csvs(pool, settings, executor, importer, tmp_path):
    folder = tmp_path / "shoot"
    (folder / "sub").mkdir(parents=True)
    (folder / "SKU-1.jpg").write_bytes(make_photo(1))
    (folder / "sub" / "SKU-1_2.jpg").write_bytes(make_photo(2))
    (folder / "notes.txt").write_text("not a photo")
    (folder / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "batch.zip").write_bytes(make_zip({"SKU-2.jpg": make_photo(3)}))
    (tmp_path / "lone.jpg").write_bytes(make_photo(4))
    (tmp_path / "list.csv").write_text("code,product,file\nSKU-3,Hat,lone.jpg\n",
                                       encoding="utf-8")
    plan = imports.plan_paths(
        [folder, tmp_path / "batch.zip", tmp_path / "list.csv"], settings)
    try:
        assert [p.name for p in plan.skipped] == ["notes.txt"]
        report = await run(pool, settings, executor, importer, plan.items)
    finally:
        for archive in plan.archives:
            archive.close()
    got = [(line["record"]["code"], line["record"]["position"], line["record"]["product"])
           for line in report["items"]]
    assert got == [("SKU-1", 1, ""), ("SKU-1", 2, ""), ("SKU-2", 1, ""), ("SKU-3", 1, "Hat")]
    with pytest.raises(AppError):
        imports.plan_paths([tmp_path / "missing"], settings)


async def test_cli_fields_apply_to_all(settings, tmp_path):
    (tmp_path / "a.jpg").write_bytes(make_photo(1))
    plan = imports.plan_paths([tmp_path / "a.jpg"], settings, Fields(code="K", product="Kite"))
    assert (plan.items[0].code, plan.items[0].product) == ("K", "Kite")


async def test_find_importer(conn, importer):
    assert (await imports.find_importer(conn, "IMP@example.com")).id == importer.id
    await conn.execute("INSERT INTO users (email, name, password_hash, role) "
                       "VALUES ('v@example.com', 'V', 'x', 'viewer')")
    for email, status in (("v@example.com", 403), ("nobody@example.com", 404)):
        with pytest.raises(AppError) as raised:
            await imports.find_importer(conn, email)
        assert raised.value.status == status

