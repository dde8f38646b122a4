"""The first hour, replayed: from an empty database, as a newcomer following the README.

`ecogram demo` (the real command, in a subprocess), open the address it names, register (the
first account becomes admin although the demo made a user), import two photos dropped together
in the wrong order (ten times, fresh codes: the order their names say is kept), approve by
keyboard, export a Shopify CSV, and see the approved photo at its public /img address.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
import pyvips
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.catalog.photos import make_photo

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
SIDE = 600  # above ECOGRAM_MIN_SIDE, so no photo is refused
RUNS = 10


def run_demo(live_server, tmp_path: Path) -> list[str]:
    """`python -m ecogram demo` on the live server's database; its output's lines."""
    port = urllib.parse.urlsplit(live_server.url).port
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOGRAM_")
           and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": live_server.settings.database_url,
        "ECOGRAM_MIN_SIDE": str(live_server.settings.min_side),
        "ECOGRAM_DATA_DIR": str(tmp_path / "demo-data"),
        "ECOGRAM_HOST": "127.0.0.1",
        "ECOGRAM_PORT": str(port),
    })
    result = subprocess.run([sys.executable, "-m", "ecogram", "demo"], env=env, cwd=ROOT,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout.strip().splitlines()


def _photo(seed: int) -> bytes:
    return make_photo(seed, SIDE, SIDE)


def _positions(page, base: str, code: str) -> dict[str, int]:
    response = page.request.get(f"{base}/api/v1/images?code={code}&per_page=100")
    assert response.status == 200, response.text()
    return {item["filename"]: item["position"] for item in response.json()["items"]}


def _difference(served: bytes, photo: bytes) -> float:
    """Mean absolute difference (0-255) of two pictures at the served one's size."""
    a = pyvips.Image.new_from_buffer(served, "").colourspace("srgb")
    b = pyvips.Image.new_from_buffer(photo, "").colourspace("srgb")
    b = b.resize(a.width / b.width, vscale=a.height / b.height)
    a, b = a[:3].cast("float"), b[:3].cast("float")
    return (a - b).abs().avg()


def test_from_an_empty_database_to_an_approved_photo_on_the_storefront(live_server, new_page,
                                                                         tmp_path):
    base = live_server.url

    # 1. `ecogram demo` imports its catalogue and says what to do next.
    lines = run_demo(live_server, tmp_path)
    last = lines[-1]
    assert "`ecogram serve`" in last, lines
    assert "first account registered" in last and "admin" in last, last
    match = re.search(r"(http://\S+/register)\b", last)
    assert match and match.group(1) == base + "/register", last
    # The demo's importer exists, and is no admin.
    assert [r["role"] for r in sql(live_server, "SELECT role FROM users")] == ["importer"]

    # 2. Open that address and register: the first account is admin.
    page, problems = new_page()
    page.goto(match.group(1))
    page.get_by_label("Name").fill("Ada Admin")
    page.get_by_label("E-mail address").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(base + "/admin")
    nav = page.get_by_role("navigation", name="Main")
    for section in ("Import", "Review", "Export", "Users", "Audit"):
        expect(nav.get_by_role("link", name=section)).to_be_visible()
    expect(page.locator(".whoami .role")).to_have_text("admin")
    page.wait_for_load_state("networkidle")  # the demo's thumbnails, not their placeholders
    screenshot(page, "newcomer-01-dashboard-en-1280")

    # 3. Import: two photos dropped together, the second one first; ten times, fresh codes.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Import").click()
    page.wait_for_url(base + "/admin/import")
    photos: dict[str, bytes] = {}
    for run in range(RUNS):
        code = f"TEA-{201 + run}"
        photos[f"{code}_2.jpg"], photos[f"{code}.jpg"] = _photo(2 * run), _photo(2 * run + 1)
        page.set_input_files("#files", [
            {"name": name, "mimeType": "image/jpeg", "buffer": photos[name]}
            for name in (f"{code}_2.jpg", f"{code}.jpg")])
        expect(page.locator("#upload-list > li .outcome")).to_have_count(2 * (run + 1),
                                                                         timeout=60_000)
        # Through the API: the positions the names say.
        assert _positions(page, base, code) == {f"{code}.jpg": 1, f"{code}_2.jpg": 2}, run
        # Through the page: each line tells the position its photo got.
        for name, position in ((f"{code}.jpg", 1), (f"{code}_2.jpg", 2)):
            line = page.locator("#upload-list > li").filter(
                has=page.locator(".upload-name", has_text=re.compile(f"^{re.escape(name)}$")))
            expect(line.locator(".badge")).to_have_text("accepted")
            expect(line).to_contain_text(f"{code} · {position}")
    screenshot(page, "newcomer-02-import-en-1280")

    # 4. Approve TEA-201's photos in the review queue, by keyboard.
    ids = {r["filename"]: r["id"] for r in sql(
        live_server, "SELECT id, filename FROM images WHERE code = 'TEA-201'")}
    assert fetch_status(base + "/img/TEA-201?w=400") == 404  # not approved yet: not public
    for name, position in (("TEA-201.jpg", 1), ("TEA-201_2.jpg", 2)):
        page.goto(f"{base}/admin/review?id={ids[name]}")
        expect(page.locator("figcaption")).to_contain_text(f"TEA-201 · {position}")
        page.locator("body").press("a")
        page.wait_for_url(re.compile(r".*done=approved.*"))
        expect(page.get_by_role("status")).to_have_text("Photo approved.")
    statuses = sql(live_server, "SELECT filename, status FROM images WHERE code = 'TEA-201'")
    assert {r["filename"]: r["status"] for r in statuses} == {
        "TEA-201.jpg": "approved", "TEA-201_2.jpg": "approved"}

    # 5. Export the approved photos as a Shopify CSV: TEA-201's two, in order.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Export").click()
    page.wait_for_url(base + "/admin/export")
    page.get_by_label("Shopify CSV").check()
    screenshot(page, "newcomer-03-export-en-1280")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download").click()
    rows = list(csv.DictReader(io.StringIO(
        download_info.value.path().read_text(encoding="utf-8"))))
    assert [(r["Handle"], r["Image Position"]) for r in rows] == [("tea-201", "1"),
                                                                 ("tea-201", "2")]
    assert rows[0]["Image Src"].startswith(base + "/img/TEA-201/1?v=")
    assert rows[1]["Image Src"].startswith(base + "/img/TEA-201/2?v=")

    # 6. The storefront's address: /img/TEA-201 is the approved first photo, TEA-201.jpg.
    with urllib.request.urlopen(base + "/img/TEA-201?w=400", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("image/")
        served = response.read()
    image = pyvips.Image.new_from_buffer(served, "")
    assert (image.width, image.height) == (400, 400)
    first = _difference(served, photos["TEA-201.jpg"])
    second = _difference(served, photos["TEA-201_2.jpg"])
    assert first < 8 < second, (first, second)
    page.goto(base + "/img/TEA-201?w=400")
    screenshot(page, "newcomer-04-img-1280")

    assert problems.messages == [], problems.messages
    assert problems.failed == [], problems.failed


def sql(live_server, query: str) -> list[dict]:
    """Rows of ``query`` on the live server's database, read in a thread of its own (this one
    belongs to Playwright's event loop)."""

    async def fetch() -> list[dict]:
        conn = await asyncpg.connect(live_server.settings.database_url)
        try:
            return [dict(r) for r in await conn.fetch(query)]
        finally:
            await conn.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, fetch()).result(60)


def fetch_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
