"""The staff's day in a real browser: register, sign in, import, review by keyboard, publish,
export — against the live server and the real database."""

from __future__ import annotations

import csv
import io
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, screenshot
from tests.conftest import IMAGES

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"


def register_first_admin(page, base: str) -> None:
    page.goto(base + "/")
    assert re.search(r"/login\?next=", page.url), page.url
    page.get_by_role("link", name="Register").click()
    page.get_by_label("Name").fill("Ada Admin")
    page.get_by_label("E-mail address").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(base + "/admin")


def sign_in(page, base: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("E-mail address").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/admin")


def test_import_review_publish_export(live_server, new_page):
    base = live_server.url
    page, problems = new_page()

    # The first account becomes admin, then signs out and back in.
    register_first_admin(page, base)
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/login$"))
    sign_in(page, base)

    # Import three files, one of them hostile (HTML dressed as a PNG): three outcomes.
    page.get_by_role("link", name="Import").click()
    page.wait_for_url(base + "/admin/import")
    page.get_by_label("Product code").fill("SKU-100")
    page.get_by_label("Product name").fill("Hopper mug")
    page.set_input_files("#files", [
        str(IMAGES / "valid" / "hopper.jpg"),
        str(IMAGES / "valid" / "pil123rgba.png"),
        str(IMAGES / "hostile" / "html-as-png.png"),
    ])
    items = page.locator("#upload-list > li")
    expect(page.locator("#upload-list > li .outcome")).to_have_count(3, timeout=60_000)
    assert items.count() == 3
    outcomes = {}
    for index in range(3):
        item = items.nth(index)
        outcomes[item.locator(".upload-name").inner_text()] = item.locator(".badge").inner_text()
        # Every file showed a progress bar that reached the end.
        assert item.locator("progress").get_attribute("value") == "100"
    assert outcomes == {"hopper.jpg": "accepted", "pil123rgba.png": "accepted",
                        "html-as-png.png": "refused"}
    refused = items.filter(has_text="html-as-png.png")
    assert refused.locator(".outcome-message").inner_text().strip()
    # The same photo again is a duplicate of the first one.
    page.set_input_files("#files", [str(IMAGES / "valid" / "hopper.jpg")])
    expect(page.locator("#upload-list > li .outcome")).to_have_count(4, timeout=60_000)
    assert items.nth(3).locator(".badge").inner_text() == "duplicate"
    assert "accepted: 2, duplicates: 1, refused: 1" in page.locator("#upload-summary").inner_text()
    screenshot(page, "flow-import-desktop")

    # Review: the oldest pending photo first; A approves it without touching the mouse.
    page.get_by_role("link", name="Review").click()
    page.wait_for_url(re.compile(r".*/admin/review"))
    assert page.locator("figcaption").inner_text().startswith("SKU-100 · 1")
    page.locator("body").press("a")
    page.wait_for_url(re.compile(r".*done=approved.*"))
    assert page.get_by_role("status").inner_text().strip() == "Photo approved."
    # The queue moved on to the second photo.
    assert page.locator("figcaption").inner_text().startswith("SKU-100 · 2")

    # Published: the approved photo answers at its public /img address.
    with urllib.request.urlopen(base + "/img/SKU-100/1?w=400", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("image/")
        assert len(response.read()) > 500
    page.goto(base + "/img/SKU-100/1")
    assert page.evaluate("document.images[0].naturalWidth") == 128

    # Export a Shopify CSV from the export page.
    page.goto(base + "/admin/export")
    page.get_by_label("Shopify CSV").check()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download").click()
    download = download_info.value
    assert download.suggested_filename.startswith("ecogram-shopify-")
    rows = list(csv.DictReader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    assert len(rows) == 1
    assert rows[0]["Handle"] == "sku-100"
    assert rows[0]["Title"] == "Hopper mug"
    assert rows[0]["Image Src"].startswith(base + "/img/SKU-100/1?v=")

    assert problems.csp() == [], problems.messages


def test_keyboard_reject_needs_reason_and_moves(live_server, new_page):
    """R goes to the reason; Enter rejects; arrows move through the queue."""
    base = live_server.url
    page, problems = new_page(PHONE)
    register_first_admin(page, base)
    page.goto(base + "/admin/import")
    page.set_input_files("#files", [str(IMAGES / "valid" / "hopper.jpg"),
                                    str(IMAGES / "valid" / "hopper_gray.jpg")])
    expect(page.locator("#upload-list > li .outcome")).to_have_count(2, timeout=60_000)
    page.goto(base + "/admin/review")
    first = page.locator("figcaption").inner_text()
    page.locator("body").press("ArrowRight")
    page.wait_for_url(re.compile(r".*/admin/review\?id=\d+"))
    assert page.locator("figcaption").inner_text() != first
    page.locator("body").press("ArrowLeft")
    expect(page.locator("figcaption")).to_have_text(first)
    page.locator("body").press("r")
    assert page.evaluate("document.activeElement.id") == "reason"
    page.keyboard.type("Blurry")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*done=rejected.*"))
    assert page.get_by_role("status").inner_text().strip() == "Photo rejected."
    assert problems.csp() == [], problems.messages
