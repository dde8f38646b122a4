"""The sales channels board and the photo page's Channels section in a real browser, at 1280
and 390 px, in English and Portuguese, over approved photos some of which are ready for the
shipped channels and some not: no console error or CSP violation, labels and alt text, nothing
wider than a phone, and screenshots (tests/screenshots/channels-*.png) for people to look at."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, screenshot
from tests.browser.test_admin_flow import register_first_admin
from tests.browser.test_admin_pages_browser import A11Y_CHECK
from tests.catalog.test_channels import product_photo

pytestmark = pytest.mark.browser

# (code, product name, photos): each photo is product_photo's arguments.
CATALOGUE = [
    ("CAN-100", "Caneca esmaltada verde", [dict(seed=1), dict(seed=2)]),   # ready everywhere
    ("LUM-220", "Luminária de mesa", [dict(seed=3, width=900, height=600)]),  # padded: fixable
    ("PRA-310", "Prato raso 27 cm", [dict(seed=4, width=300, height=300)]),   # too small
    ("TOA-450", "Toalha de banho", [dict(seed=5, background=(128, 128, 128))]),  # grey sweep
    ("VAS-500", "Vaso de cerâmica", [dict(seed=6, share=0.5)]),             # margin trimmed
]


def _seed(page, base: str) -> dict[str, int]:
    """Import and approve the catalogue through the API, as the signed-in admin."""
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    headers = {"X-CSRF-Token": token}
    ids = {}
    for code, name, photos in CATALOGUE:
        for photo in photos:
            photo = dict(photo)
            seed = photo.pop("seed")
            response = page.request.post(base + "/api/v1/images", headers=headers, multipart={
                "file": {"name": f"{code}-{seed}.jpg", "mimeType": "image/jpeg",
                         "buffer": product_photo(seed, **photo)},
                "code": code, "product": name})
            assert response.status == 201, response.text()
            image_id = response.json()["items"][0]["record"]["id"]
            ids.setdefault(code, image_id)
            response = page.request.post(f"{base}/api/v1/images/{image_id}/approve",
                                         headers=headers, data={})
            assert response.status == 200, response.text()
    # Geometry is measured in the background after approval; wait until every main photo is.
    deadline = time.monotonic() + 60
    while True:
        body = page.request.get(base + "/api/v1/channels/mercadolivre/readiness").json()
        if "not_measured" not in body["summary"]["findings"]:
            return ids
        assert time.monotonic() < deadline, body["summary"]
        time.sleep(0.2)


def _check(page, shot: str) -> None:
    page.wait_for_load_state("networkidle")
    for img in page.locator("img").all():
        if img.is_visible():
            expect(img).to_have_js_property("complete", True)
            assert img.evaluate("i => i.naturalWidth") > 0, img.get_attribute("src")
    assert page.evaluate(A11Y_CHECK) == [], shot
    screenshot(page, shot)


def test_channels_board_and_photo_channels_at_both_widths_in_both_languages(live_server,
                                                                           new_page):
    base = live_server.url
    page, problems = new_page(DESKTOP)
    register_first_admin(page, base)
    ids = _seed(page, base)
    texts = {"en": ("English", "Channels", "Ready", "Not ready", "fixed automatically"),
             "pt": ("Português (Brasil)", "Canais", "Pronto", "Não está pronto",
                    "corrigido automaticamente")}
    for lang, (link, menu_name, ready, not_ready, fixed) in texts.items():
        page.set_viewport_size(DESKTOP)
        page.goto(base + "/admin")
        page.get_by_role("link", name=link).click()
        # From the menu to the board.
        page.locator("#mainnav-list").get_by_role("link", name=menu_name).click()
        page.wait_for_url(base + "/admin/channels")
        table = page.locator("table.board")
        expect(table.locator("tbody tr")).to_have_count(len(CATALOGUE))
        headers = table.locator("thead th").all_inner_texts()
        assert headers[1:] == ["Mercado Livre", "Amazon.com.br", "Magalu", "Shopee",
                               "Google Merchant Center"]
        row = {code: table.locator("tbody tr", has=page.locator(".board-code", has_text=code))
               for code, _name, _photos in CATALOGUE}
        ml = "td:nth-child(2)"
        expect(row["CAN-100"].locator(ml + " .verdict")).to_contain_text(ready)
        expect(row["PRA-310"].locator(ml + " .verdict")).to_contain_text(not_ready)
        expect(row["TOA-450"].locator(ml + " .verdict")).to_contain_text(not_ready)
        expect(row["VAS-500"].locator(ml + " .verdict")).to_contain_text(ready)
        # The reasons unfold; the fixed ones are marked so.
        row["PRA-310"].locator(ml + " details summary").click()
        expect(row["PRA-310"].locator(ml + " .reason-blocking")).to_contain_text("300 × 300")
        row["LUM-220"].locator(ml + " details summary").click()
        expect(row["LUM-220"].locator(ml + " .reason-fixed").first).to_contain_text(fixed)
        page.evaluate("window.scrollTo(0, 0)")
        _check(page, f"channels-board-{lang}-1280")

        page.set_viewport_size(PHONE)
        page.goto(base + "/admin/channels")
        # One card per product; each channel a labelled line.
        card = row["PRA-310"]
        expect(card).to_be_visible()
        card.locator(ml + " details summary").click()
        card.scroll_into_view_if_needed()
        _check(page, f"channels-board-{lang}-390")
        # Filtered to one channel's not-ready products.
        page.goto(base + "/admin/channels?channel=mercadolivre&ready=false")
        codes = page.locator(".board-code").all_inner_texts()
        assert codes == ["PRA-310", "TOA-450"], codes
        _check(page, f"channels-board-filtered-{lang}-390")

        # The photo page: each channel's status and its rendition.
        for width_name, viewport in (("1280", DESKTOP), ("390", PHONE)):
            page.set_viewport_size(viewport)
            page.goto(f"{base}/admin/images/{ids['LUM-220']}")
            section = page.locator("section[aria-labelledby=channels-title]")
            expect(section.locator(".channel-item")).to_have_count(5)
            previews = section.locator(".channel-preview img")
            for index in range(previews.count()):
                previews.nth(index).scroll_into_view_if_needed()
                expect(previews.nth(index)).to_have_js_property("complete", True)
                assert previews.nth(index).evaluate("i => i.naturalWidth") > 0
            section.scroll_into_view_if_needed()
            _check(page, f"channels-photo-{lang}-{width_name}")
    assert problems.messages == [], problems.messages
    assert problems.failed == [], problems.failed
