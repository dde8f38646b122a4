"""The import page keeps the order file names say, whatever order the files were dropped in,
and one drop is one import batch (one audit entry), in a real browser against the live server."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, screenshot
from tests.browser.test_admin_flow import register_first_admin
from tests.catalog.photos import make_photo

pytestmark = pytest.mark.browser

SIDE = 600  # above ECOGRAM_MIN_SIDE


def _file(name: str, seed: int) -> dict:
    return {"name": name, "mimeType": "image/jpeg", "buffer": make_photo(seed, SIDE, SIDE)}


def _positions(page, base: str, code: str) -> dict[str, int]:
    response = page.request.get(f"{base}/api/v1/images?code={code}&per_page=100")
    assert response.status == 200, response.text()
    return {item["filename"]: item["position"] for item in response.json()["items"]}


def _drop(page, files: list[dict], seen: int) -> int:
    page.set_input_files("#files", files)
    seen += len(files)
    expect(page.locator("#upload-list > li .outcome")).to_have_count(seen, timeout=60_000)
    return seen


def test_files_dropped_together_keep_the_order_their_names_say(live_server, new_page):
    base = live_server.url
    page, problems = new_page()
    register_first_admin(page, base)
    page.goto(base + "/admin/import")
    seen = 0
    seed = 100
    # The second photo first, ten times over, each time a new product.
    for run in range(10):
        code = f"TEA-{201 + run}"
        seed += 2
        seen = _drop(page, [_file(f"{code}_2.jpg", seed), _file(f"{code}.jpg", seed + 1)], seen)
        assert _positions(page, base, code) == {f"{code}.jpg": 1, f"{code}_2.jpg": 2}, run
    # Three at once in any order.
    seen = _drop(page, [_file("CUP-9_3.jpg", 301), _file("CUP-9.jpg", 302),
                        _file("CUP-9_2.jpg", 303)], seen)
    assert _positions(page, base, "CUP-9") == {"CUP-9.jpg": 1, "CUP-9_2.jpg": 2,
                                               "CUP-9_3.jpg": 3}
    # A position named in a file name is honoured once the photos before it arrive: the third
    # photo, dropped before the second, takes the next free place, and the second moves in
    # before it.
    seen = _drop(page, [_file("BOWL-1_1.jpg", 401)], seen)
    seen = _drop(page, [_file("BOWL-1_3.jpg", 402)], seen)
    assert _positions(page, base, "BOWL-1") == {"BOWL-1_1.jpg": 1, "BOWL-1_3.jpg": 2}
    seen = _drop(page, [_file("BOWL-1_2.jpg", 403)], seen)
    assert _positions(page, base, "BOWL-1") == {"BOWL-1_1.jpg": 1, "BOWL-1_2.jpg": 2,
                                                "BOWL-1_3.jpg": 3}
    # The list shows the files in the order they were stored, each accepted.
    names = page.locator("#upload-list > li .upload-name").all_inner_texts()
    assert names[:2] == ["TEA-201.jpg", "TEA-201_2.jpg"]
    assert names[20:23] == ["CUP-9.jpg", "CUP-9_2.jpg", "CUP-9_3.jpg"]
    assert set(page.locator("#upload-list > li .badge").all_inner_texts()) == {"accepted"}
    # One drop is one batch: one "import" entry in the audit trail per drop (14 drops).
    audit = page.request.get(f"{base}/api/v1/audit?action=import.batch&per_page=100").json()
    batches = audit["items"]
    assert len(batches) == 14
    assert sorted(b["details"]["accepted"] for b in batches) == [1, 1, 1] + [2] * 10 + [3]
    assert problems.messages == [] and problems.failed == []


def test_refusals_read_in_the_page_language(live_server, new_page):
    """A refused file's line is a Portuguese sentence on a Portuguese page (the API's message
    stays English, keyed by its code)."""
    base = live_server.url
    page, problems = new_page(locale="pt-BR")
    register_first_admin_pt(page, base)
    page.goto(base + "/admin/import")
    page.set_input_files("#files", [
        {"name": "SMALL-1.jpg", "mimeType": "image/jpeg", "buffer": make_photo(5, 90, 60)},
        _file("WIDE-1.jpg", 6),
    ])
    expect(page.locator("#upload-list > li .outcome")).to_have_count(2, timeout=60_000)
    refused = page.locator("#upload-list > li").filter(has_text="SMALL-1.jpg")
    assert refused.locator(".badge").inner_text() == "recusada"
    assert refused.locator(".outcome-message").inner_text() == (
        "A imagem tem 90 × 60 pixels; o lado menor precisa ter pelo menos "
        f"{live_server.settings.min_side} pixels.")
    # The outcome lines at a phone's width, for people to look at.
    page.set_viewport_size(PHONE)
    page.locator("#upload-list").scroll_into_view_if_needed()
    screenshot(page, "import-results-pt-390")
    assert problems.messages == []


def register_first_admin_pt(page, base: str) -> None:
    page.goto(base + "/register")
    page.get_by_label("Nome").fill("Ada Admin")
    page.get_by_label("Endereço de e-mail").fill("ada@example.com")
    page.get_by_label("Senha").fill("correct horse battery staple")
    page.get_by_role("button", name="Criar conta").click()
    page.wait_for_url(base + "/admin")
