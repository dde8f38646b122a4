"""Readiness per product and channel (ecogram.catalog.channels), from photos imported through
the real API and measured by the real ``ecogram.imaging.product.measure``; the geometry hooks
and the resumable backfill (``ecogram channels backfill``)."""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import pytest
import pyvips

from ecogram import db, keys
from ecogram.catalog import channels
from ecogram.catalog.channels import FINDINGS, ReadinessQuery, backfill, readiness
from ecogram.catalog.imports import qc_limits
from ecogram.cli import main
from ecogram.errors import AppError
from tests.views.conftest import make_image  # noqa: F401  (a fixture)

# A test channel with every rule tight enough to trip with small photos, and one that asks
# for big files (VTEX's stated 300 KB floor, made strict).
CHANNELS_FILE = """
[testshop]
name = "Test Shop"
formats = ["jpeg"]
min_side = 400
max_side = 700
max_pixels = 400_000
max_bytes = 60_000
square = true
white_main = true
fill = 0.9
min_photos = 1
max_photos = 2

[bigfiles]
name = "Big Files"
formats = ["jpeg", "png"]
min_bytes = 1_000_000
"""


def product_photo(seed: int, width: int = 600, height: int = 600, *, share: float = 0.96,
                  background: tuple[int, int, int] = (255, 255, 255), fmt: str = "jpeg",
                  noise: bool = False) -> bytes:
    """A product (a dark block of ``share`` of each side, centred) on ``background``."""
    rnd = random.Random(seed)
    canvas = pyvips.Image.black(width, height, bands=3).new_from_image(list(background))
    canvas = canvas.cast("uchar").copy_memory()
    w, h = round(width * share), round(height * share)
    colour = [rnd.randrange(20, 120) for _ in range(3)]
    if noise:
        block = pyvips.Image.gaussnoise(w, h, mean=90, sigma=60).cast("uchar")
        block = block.bandjoin([block, block]).copy(interpretation="srgb")
        canvas = canvas.insert(block, (width - w) // 2, (height - h) // 2)
    else:
        canvas = canvas.draw_rect(colour, (width - w) // 2, (height - h) // 2, w, h, fill=True)
        # A second small mark so every seed gives another picture (no near-duplicate refusal).
        canvas = canvas.draw_rect([255 - c for c in colour], (width - w) // 2 + 5 + seed % 50,
                                  (height - h) // 2 + 5, 10, 10, fill=True)
    if fmt == "png":
        return canvas.pngsave_buffer()
    return canvas.jpegsave_buffer(Q=95 if noise else 90)


@pytest.fixture
def settings(settings, tmp_path):
    path = tmp_path / "channels.toml"
    path.write_text(CHANNELS_FILE, encoding="utf-8")
    return settings.replace(channels_file=path)


@pytest.fixture
def add(make_image, client):  # noqa: F811
    """``await add(code, photo_bytes, status=...)``: import (and review) through the API, then
    wait for the geometry hooks."""
    seeds = iter(range(1, 10_000))

    async def go(code: str, photo: bytes | None = None, *, status: str = "approved",
                 fmt: str = "jpeg") -> dict:
        record = await make_image(code, status=status, product=f"Product {code}",
                                  photo=photo or product_photo(next(seeds)),
                                  filename=f"{code}.{'png' if fmt == 'png' else 'jpg'}")
        await client.app[keys.geometry].drain()
        return record

    return go


def codes_of(found: list[dict]) -> list[tuple[str, bool]]:
    return [(f["code"], f["fixable"]) for f in found]


async def _page(conn, settings, channel="testshop", lang="en", **query) -> dict:
    return await readiness(conn, settings.channel_profiles[channel], ReadinessQuery(**query),
                           lang)


async def test_every_finding_from_real_photos(client, add, conn, settings):
    await add("A-OK", product_photo(1))
    await add("B-SMALL", product_photo(2, 300, 300))
    await add("C-BIG", product_photo(3, 800, 800))
    await add("D-WIDE", product_photo(4, 600, 450))
    await add("E-PNG", product_photo(5, fmt="png"), fmt="png")
    await add("F-HEAVY", product_photo(6, noise=True))
    await add("G-NEARWHITE", product_photo(7, background=(242, 242, 242)))
    await add("H-GREY", product_photo(8, background=(128, 128, 128)))
    await add("I-LOWFILL", product_photo(9, share=0.5))
    for seed in (10, 11, 12):
        await add("J-MANY", product_photo(seed))
    await add("K-PENDING", product_photo(13), status="pending")

    page = await _page(conn, settings, per_page=100)
    by_code = {item["code"]: item for item in page["items"]}
    assert list(by_code) == sorted(by_code)  # by code

    def image_findings(code: str) -> list[tuple[str, bool]]:
        (photo,) = by_code[code]["images"]
        return codes_of(photo["findings"])

    assert image_findings("A-OK") == [] and by_code["A-OK"]["ready"]
    assert by_code["A-OK"]["findings"] == [] and by_code["A-OK"]["product"] == "Product A-OK"
    assert image_findings("B-SMALL") == [("too_small", False)]
    assert image_findings("C-BIG") == [("too_large", True), ("too_many_pixels", True)]
    assert image_findings("D-WIDE") == [("not_square", True)]
    assert image_findings("E-PNG") == [("wrong_format", True)]
    assert image_findings("F-HEAVY") == [("file_too_large", True)]
    assert image_findings("G-NEARWHITE") == [("background_near_white", True)]
    assert image_findings("H-GREY") == [("background_not_white", False)]
    assert image_findings("I-LOWFILL") == [("low_fill", True)]
    many = by_code["J-MANY"]
    assert codes_of(many["findings"]) == [("too_many_photos", False)]
    assert [(p["position"], p["main"]) for p in many["images"]] == [(1, True), (2, False),
                                                                    (3, False)]
    pending = by_code["K-PENDING"]
    assert pending["images"] == [] and pending["photos"] == 0
    assert codes_of(pending["findings"]) == [("too_few_photos", False)]

    # Ready: every finding fixable. The image's ready says the same of its own findings.
    not_ready = {"B-SMALL", "H-GREY", "J-MANY", "K-PENDING"}
    assert {code for code, item in by_code.items() if not item["ready"]} == not_ready
    assert by_code["B-SMALL"]["images"][0]["ready"] is False
    assert by_code["C-BIG"]["images"][0]["ready"] is True
    assert page["total"] == 11
    summary = page["summary"]
    assert (summary["products"], summary["ready"], summary["not_ready"]) == (11, 7, 4)
    assert summary["photos"] == 12  # approved ones
    assert summary["findings"]["too_small"] == 1 and summary["findings"]["not_square"] == 1
    assert "too_few_photos" in summary["findings"] and "low_fill" in summary["findings"]

    # The totals read one row per product (channel_products, kept by triggers); the page judges
    # each photo. Both agree: a product's mask is its photos' masks and the photo-count bits.
    count_bits = 4096 | 8192
    for channel in ("testshop", "bigfiles", "mercadolivre", "magalu", "google", "vtex"):
        for status in ("approved", "pending", "all"):
            row = await channels.fetch_masks(conn, settings.channel_profiles[channel],
                                             ReadinessQuery(status=status, per_page=100))
            for item in row["items"]:
                joined = 0
                for photo in item["images"]:
                    joined |= photo["mask"]
                assert item["mask"] & ~count_bits == joined, (channel, status, item)

    await _stored_rows_are_what_a_rebuild_gives(conn)

    # The sentences carry the figures.
    (small,) = by_code["B-SMALL"]["images"][0]["findings"]
    assert small["message"] == ("The photo is 300 × 300 px; Test Shop needs at least 400 px on "
                                "the long side.")
    (lowfill,) = by_code["I-LOWFILL"]["images"][0]["findings"]
    assert lowfill["message"].startswith("The product fills 5")
    assert "less than Test Shop's 90 %" in lowfill["message"]


async def _backfill(settings) -> dict:
    pool = await db.create_pool(settings.database_url, 1, 2)
    try:
        return await backfill(pool, None, qc_limits(settings))
    finally:
        await pool.close()


async def test_filters_pages_and_the_summary_stay_whole(client, add, conn, settings):
    await add("A-OK", product_photo(1))
    await add("B-SMALL", product_photo(2, 300, 300))
    await add("C-WIDE", product_photo(3, 600, 450))
    await add("D-SMALL", product_photo(4, 350, 350))
    await add("E-PENDING", product_photo(5), status="pending")

    ready = await _page(conn, settings, ready=True)
    assert [i["code"] for i in ready["items"]] == ["A-OK", "C-WIDE"] and ready["total"] == 2
    # The summary counts the whole channel, whatever ready= shows.
    assert (ready["summary"]["ready"], ready["summary"]["not_ready"]) == (2, 3)
    not_ready = await _page(conn, settings, ready=False, per_page=2, page=2)
    assert [i["code"] for i in not_ready["items"]] == ["E-PENDING"]
    assert not_ready["total"] == 3 and (not_ready["page"], not_ready["per_page"]) == (2, 2)
    beyond = await _page(conn, settings, page=9)
    assert beyond["items"] == [] and beyond["total"] == 5

    only = await _page(conn, settings, codes=("B-SMALL", "E-PENDING", "NO-SUCH"))
    assert [i["code"] for i in only["items"]] == ["B-SMALL", "E-PENDING"]
    assert only["summary"]["products"] == 2

    # status: which photos count. Pending ones make E-PENDING ready and leave the others empty.
    # (Photos are measured when approved or changed; pending ones by the backfill.)
    assert await _backfill(settings) == {"measured": 1, "skipped": 0, "failed": 0}
    pending = await _page(conn, settings, status="pending")
    ready_codes = {i["code"] for i in pending["items"] if i["ready"]}
    assert ready_codes == {"E-PENDING"}
    everything = await _page(conn, settings, status="all")
    assert everything["summary"]["photos"] == 5 and everything["status"] == "all"


async def test_the_main_photo_is_the_first_that_counts(client, add, conn, settings):
    """Background and fill apply to the main photo only: the first counted one by position."""
    await add("M-1", product_photo(1, background=(128, 128, 128)), status="pending")
    await add("M-1", product_photo(2))
    await add("M-1", product_photo(3, background=(128, 128, 128)))
    page = await _page(conn, settings)
    (item,) = page["items"]
    assert [(p["position"], p["main"], codes_of(p["findings"])) for p in item["images"]] == [
        (2, True, []), (3, False, [])]
    assert item["ready"]
    await _backfill(settings)
    everything = await _page(conn, settings, status="all")
    first = everything["items"][0]["images"][0]
    assert first["main"] and codes_of(first["findings"]) == [("background_not_white", False)]


async def test_shipped_profiles_and_a_file_size_floor(client, add, conn, settings):
    await add("A-OK", product_photo(1, share=0.97))
    await add("B-PNG", product_photo(2, share=0.97, fmt="png"), fmt="png")
    meli = await _page(conn, settings, channel="mercadolivre")
    assert [(i["code"], i["ready"], [codes_of(p["findings"]) for p in i["images"]])
            for i in meli["items"]] == [("A-OK", True, [[]]), ("B-PNG", True, [[]])]
    magalu = await _page(conn, settings, channel="magalu")  # JPEG only, 1000 px at least
    findings = [codes_of(i["images"][0]["findings"]) for i in magalu["items"]]
    assert findings == [[("too_small", False)], [("too_small", False), ("wrong_format", True)]]
    floor = await _page(conn, settings, channel="bigfiles")
    assert codes_of(floor["items"][0]["images"][0]["findings"]) == [("file_too_small", False)]
    assert floor["items"][0]["ready"] is False
    google = await _page(conn, settings, channel="google")  # no background rule: no geometry
    assert all(item["ready"] for item in google["items"])


async def test_sentences_in_portuguese(client, add, conn, settings):
    await add("B-SMALL", product_photo(2, 300, 300))
    page = await _page(conn, settings, lang="pt_BR")
    (finding,) = page["items"][0]["images"][0]["findings"]
    assert finding["message"] == ("A foto tem 300 × 300 px; Test Shop exige pelo menos 400 px "
                                  "no lado maior.")
    for finding in FINDINGS:  # every finding has both sentences
        for lang in ("en", "pt_BR"):
            assert channels.MESSAGES[finding.code, lang]


async def test_an_unmeasured_main_photo_is_said_and_not_ready(client, add, conn, settings):
    record = await add("A-OK", product_photo(1))
    await conn.execute("DELETE FROM image_geometry WHERE image_id = $1", record["id"])
    page = await _page(conn, settings)
    assert codes_of(page["items"][0]["images"][0]["findings"]) == [("not_measured", False)]
    assert not page["items"][0]["ready"]
    google = await _page(conn, settings, channel="google")  # needs no geometry
    assert google["items"][0]["ready"]


async def test_a_replaced_photo_is_measured_again(client, add, conn, settings, login_as):
    record = await add("A-OK", product_photo(1))
    before = await conn.fetchrow("SELECT * FROM image_geometry WHERE image_id = $1",
                                 record["id"])
    assert before["background"] == "white" and before["sha256"] == record["sha256"]
    form = aiohttp.FormData()
    form.add_field("file", product_photo(2, background=(128, 128, 128)), filename="grey.jpg")
    response = await client.put(f"/api/v1/images/{record['id']}/file", data=form,
                                headers=await login_as("importer"))
    assert response.status == 200, await response.text()
    replaced = await response.json()
    await client.app[keys.geometry].drain()
    after = await conn.fetchrow("SELECT * FROM image_geometry WHERE image_id = $1", record["id"])
    assert after["sha256"] == replaced["sha256"] != record["sha256"]
    assert after["background"] == "other"


async def test_backfill_measures_what_is_missing_and_resumes(client, add, conn, settings,
                                                             clean_db):
    ids = [(await add(f"P-{n}", product_photo(n), status="pending"))["id"] for n in range(5)]
    assert await conn.fetchval("SELECT count(*) FROM image_geometry") == 0  # import: no hook
    pool = await db.create_pool(clean_db, 1, 3)
    try:
        with ThreadPoolExecutor(2) as executor:
            class Stop(Exception):
                pass

            def stop_after_two(done: int, total: int) -> None:
                assert total == 5
                if done == 2:
                    raise Stop

            with pytest.raises(Stop):
                await backfill(pool, executor, qc_limits(settings), batch=2, concurrency=1,
                               on_progress=stop_after_two)
            assert await conn.fetchval("SELECT count(*) FROM image_geometry") == 2
            seen = []
            counts = await backfill(pool, executor, qc_limits(settings), batch=2,
                                    on_progress=lambda done, total: seen.append((done, total)))
            assert counts == {"measured": 3, "skipped": 0, "failed": 0}
            assert seen[-1] == (3, 3)
            again = await backfill(pool, executor, qc_limits(settings))
            assert again == {"measured": 0, "skipped": 0, "failed": 0}
    finally:
        await pool.close()
    rows = await conn.fetch("SELECT image_id, background FROM image_geometry ORDER BY image_id")
    assert [(r["image_id"], r["background"]) for r in rows] == [(i, "white") for i in ids]


async def test_a_photo_that_cannot_be_decoded_fails_without_stopping_the_rest(
        client, add, conn, settings, clean_db):
    first = await add("P-1", product_photo(1), status="pending")
    await add("P-2", product_photo(2), status="pending")
    # The stored original damaged behind the record's back (PostgreSQL store: blobs).
    await conn.execute("UPDATE blobs SET data = $1 WHERE sha256 = $2",
                       b"\xff\xd8\xff\xe0 not a jpeg", first["sha256"])
    pool = await db.create_pool(clean_db, 1, 3)
    try:
        counts = await backfill(pool, None, qc_limits(settings))
    finally:
        await pool.close()
    assert counts == {"measured": 1, "skipped": 0, "failed": 1}


def test_the_cli_backfill(clean_db, monkeypatch, capsys, tmp_path):
    async def seed() -> None:
        conn = await db.connect(clean_db)
        try:
            await conn.execute(
                "INSERT INTO images (code, position, filename, format, mime, width, height, "
                "file_size, sha256, phash, blurhash, color, importer) VALUES "
                "('CLI-1', 1, 'a.jpg', 'jpeg', 'image/jpeg', 600, 600, 100, 'x', 0, 'L', "
                "'#ffffff', 'seed')")
            # The original and its master as objects of the PostgreSQL store (ecogram.storage).
            await conn.execute("INSERT INTO blobs (sha256, data) VALUES ('x', $1)",
                               product_photo(1))
            await conn.execute(
                "INSERT INTO originals (image_id, master_sha256, master_format, master_width, "
                "master_height) VALUES (1, 'x', 'jpeg', 600, 600)")
        finally:
            await conn.close()

    asyncio.run(seed())
    monkeypatch.setenv("DATABASE_URL", clean_db)
    monkeypatch.setenv("ECOGRAM_DATA_DIR", str(tmp_path / "data"))
    assert main(["channels", "backfill"]) == 0
    out = capsys.readouterr()
    assert "measured 1 photos" in out.out
    assert main(["channels", "backfill"]) == 0
    assert "nothing to measure" in capsys.readouterr().out


def test_readiness_query_refuses_bad_values():
    for kwargs, field in [({"status": "maybe"}, "status"), ({"page": 0}, "page"),
                          ({"per_page": 101}, "per_page"), ({"codes": ("a\x00b",)}, "code"),
                          ({"codes": tuple(str(n) for n in range(501))}, "code")]:
        with pytest.raises(AppError) as caught:
            ReadinessQuery(**kwargs)
        assert caught.value.status == 422 and field in caught.value.details["fields"]


async def _stored_rows_are_what_a_rebuild_gives(conn) -> None:
    await conn.fetchval("SELECT channel_products_catch_up()")  # what every reader does first
    differ = await conn.fetch(
        "(SELECT * FROM channel_products EXCEPT SELECT * FROM channel_products_rows(NULL)) "
        "UNION ALL "
        "(SELECT * FROM channel_products_rows(NULL) EXCEPT SELECT * FROM channel_products)")
    assert differ == []


async def test_the_triggers_follow_edits_moves_deletes_and_purges(client, add, conn, settings,
                                                                  login_as):
    first = await add("A-1", product_photo(1))
    second = await add("A-1", product_photo(2, 300, 300))
    third = await add("B-1", product_photo(3, background=(128, 128, 128)))
    await _stored_rows_are_what_a_rebuild_gives(conn)
    assert await conn.fetchval("SELECT count(*) FROM channel_products") == 8  # 2 codes × 4
    importer, admin = await login_as("importer"), await login_as("admin")

    async def verdicts(status: str = "approved") -> dict[str, tuple[bool, int]]:
        page = await _page(conn, settings, status=status)
        return {i["code"]: (i["ready"], i["photos"]) for i in page["items"]}

    assert await verdicts() == {"A-1": (False, 2), "B-1": (False, 1)}
    # Move the small photo to B-1 (an importer's edit sends it back to review or keeps it: ask
    # the record), then reorder B-1 so it comes first.
    response = await client.patch(f"/api/v1/images/{second['id']}", json={"code": "B-1"},
                                  headers=importer)
    assert response.status == 200, await response.text()
    await client.app[keys.geometry].drain()
    await _stored_rows_are_what_a_rebuild_gives(conn)
    moved = await response.json()
    assert (await verdicts("all"))["A-1"] == (True, 1)
    assert (await verdicts("all"))["B-1"] == (False, 2)
    response = await client.patch(f"/api/v1/images/{moved['id']}", json={"position": 1},
                                  headers=importer)
    assert response.status == 200, await response.text()
    await client.app[keys.geometry].drain()
    await _stored_rows_are_what_a_rebuild_gives(conn)
    # Delete and purge: the product goes when its last photo does.
    assert (await client.delete(f"/api/v1/images/{first['id']}", headers=admin)).status == 204
    await _stored_rows_are_what_a_rebuild_gives(conn)
    assert "A-1" not in await verdicts("all")
    response = await client.post(f"/api/v1/images/{third['id']}/purge", headers=admin)
    assert response.status == 204
    await _stored_rows_are_what_a_rebuild_gives(conn)
    assert set(await verdicts("all")) == {"B-1"}


def test_numbers_in_sentences_read_as_babel_writes_them():
    from babel import numbers as babel_numbers

    for lang in ("en", "pt_BR"):
        for value in (0, 7, 999, 1000, 1234567, 64_000_000):
            assert channels._number(value, lang) == babel_numbers.format_decimal(
                value, locale=lang)
        for value in (1.0, 2.5, 10.04, 1234.56, 999.96):
            assert channels._number(value, lang, 1) == babel_numbers.format_decimal(
                value, "#,##0.#", locale=lang), (value, lang)
    assert channels._bytes(2_000_000, "pt_BR") == "2 MB"
    assert channels._bytes(2_450_000, "pt_BR") == "2,5 MB"
    assert channels._bytes(512, "en") == "512 B"


async def test_the_recorder_measures_one_photo_at_a_time(client, add, conn, settings, clean_db):
    """A bulk approval fires the hook for every photo; their originals are read one by one."""
    import threading

    ids = [(await add(f"P-{n}", product_photo(n), status="pending"))["id"] for n in range(4)]

    class Counting(ThreadPoolExecutor):
        def __init__(self) -> None:
            super().__init__(4)
            self.running = self.most = 0
            self.lock = threading.Lock()

        def submit(self, fn, /, *args, **kwargs):
            def counted():
                with self.lock:
                    self.running += 1
                    self.most = max(self.most, self.running)
                try:
                    return fn(*args, **kwargs)
                finally:
                    with self.lock:
                        self.running -= 1
            return super().submit(counted)

    pool = await db.create_pool(clean_db, 1, 4)
    try:
        with Counting() as executor:
            recorder = channels.GeometryRecorder(pool, executor, qc_limits(settings))
            for image_id in ids:
                await recorder.on_event(image_id)
            await recorder.drain()
            await recorder.close()
        assert executor.most == 1
    finally:
        await pool.close()
    assert await conn.fetchval("SELECT count(*) FROM image_geometry") == 4


async def test_one_statement_over_many_codes_refreshes_them_all(conn):
    """A COPY or a bulk review: one statement, more codes than the per-code locks allow."""
    await conn.execute(
        "INSERT INTO images (code, position, filename, format, mime, width, height, file_size, "
        "sha256, phash, blurhash, color, importer) "
        "SELECT 'BULK-' || n, 1, 'a.jpg', 'jpeg', 'image/jpeg', 600 + n, 600, 1000 + n, "
        "md5(n::text), 0, 'L', '#ffffff', 'seed' FROM generate_series(1, 80) AS n")
    await _stored_rows_are_what_a_rebuild_gives(conn)
    assert await conn.fetchval("SELECT count(*) FROM channel_products") == 320
    async with conn.transaction():
        await conn.execute("UPDATE images SET status = 'approved' WHERE code LIKE 'BULK-%'")
        await conn.execute("UPDATE images SET exported_at = now()")  # nothing readiness reads
    await _stored_rows_are_what_a_rebuild_gives(conn)
    assert await conn.fetchval(
        "SELECT sum(photos) FROM channel_products WHERE status = 'approved'") == 80
    await conn.execute("DELETE FROM images WHERE code IN ('BULK-1', 'BULK-2')")
    await _stored_rows_are_what_a_rebuild_gives(conn)
    assert await conn.fetchval("SELECT count(DISTINCT code) FROM channel_products") == 78


async def test_writers_never_wait_for_readiness_nor_deadlock_with_an_editor(conn, clean_db):
    """An editor takes the product's code lock, then the photo's row; a reviewer's UPDATE of the
    same photo (no code lock) used to wait for that code lock in the refresh while holding the
    row: a deadlock. Marking the code dirty takes no lock, so the review commits at once."""
    await conn.execute(
        "INSERT INTO images (code, position, filename, format, mime, width, height, file_size, "
        "sha256, phash, blurhash, color, importer) VALUES ('LOCK-1', 1, 'a.jpg', 'jpeg', "
        "'image/jpeg', 600, 600, 1000, 'x', 0, 'L', '#ffffff', 'seed')")
    editor, reviewer = await db.connect(clean_db), await db.connect(clean_db)
    try:
        async with editor.transaction():
            await db.queries.manage_lock_code(editor, code="LOCK-1")
            async with reviewer.transaction():
                await asyncio.wait_for(reviewer.execute(
                    "UPDATE images SET status = 'approved' WHERE code = 'LOCK-1'"), 5)
            row = await asyncio.wait_for(
                db.queries.manage_lock_image(editor, id=1), 5)
            assert row["status"] == "approved"
    finally:
        await editor.close()
        await reviewer.close()
    await _stored_rows_are_what_a_rebuild_gives(conn)
    assert await conn.fetchval(
        "SELECT photos FROM channel_products WHERE status = 'approved'") == 1
