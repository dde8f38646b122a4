"""Every admin page in a real browser, at desktop and phone widths: screenshots for people to
look at (tests/screenshots/), and checks a machine can make — no CSP violation or script error,
a heading, alt text on every image, a label for every field, nothing wider than the screen."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, screenshot
from tests.browser.test_admin_flow import register_first_admin
from tests.conftest import IMAGES

pytestmark = pytest.mark.browser

# The accessibility basics every page must meet, checked in the page itself.
A11Y_CHECK = """() => {
  const problems = [];
  if (!document.querySelector('h1')) problems.push('no h1');
  if (!document.documentElement.lang) problems.push('no lang');
  for (const img of document.images) {
    if (!img.hasAttribute('alt')) problems.push('img without alt: ' + img.src);
  }
  for (const field of document.querySelectorAll('input, select, textarea')) {
    if (field.type === 'hidden' || field.hidden) continue;
    const labelled = field.labels && field.labels.length || field.getAttribute('aria-label')
      || field.getAttribute('aria-labelledby');
    if (!labelled) problems.push('field without label: ' + (field.name || field.id));
  }
  for (const node of document.querySelectorAll('[style]')) {
    problems.push('inline style on ' + node.tagName);
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    problems.push('wider than the screen: ' + document.documentElement.scrollWidth);
  }
  return problems;
}"""


def _seed(page, base: str) -> None:
    """Photos with findings, one refused file, one approved and one rejected photo, an edit:
    enough for every page to show what it is for."""
    page.goto(base + "/admin/import")
    page.get_by_label("Product code").fill("MUG-7")
    page.get_by_label("Product name").fill("Enamel mug, green")
    page.set_input_files("#files", [
        str(IMAGES / "valid" / "hopper.jpg"),
        str(IMAGES / "valid" / "pil123rgba.png"),
        str(IMAGES / "valid" / "hopper_orientation_6.jpg"),
        str(IMAGES / "valid" / "pil_sample_cmyk.jpg"),
        str(IMAGES / "hostile" / "not-an-image.jpg"),
    ])
    expect(page.locator("#upload-list > li .outcome")).to_have_count(5, timeout=60_000)
    page.goto(base + "/admin/review")
    page.locator("body").press("a")
    page.wait_for_url(re.compile(r".*done=approved.*"))
    page.locator("body").press("r")
    page.keyboard.type("Colours look wrong")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*done=rejected.*"))
    page.goto(base + "/admin/images/2")
    page.locator("#e-alt").fill("Green enamel mug, side view")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r".*done=edited.*"))


def _register_reviewer(browser_page, base: str) -> None:
    """A second account, with a long e-mail address (the users page must not chop it)."""
    browser_page.goto(base + "/register")
    browser_page.get_by_label("Name").fill("Beatriz Revisora")
    browser_page.get_by_label("E-mail address").fill("beatriz.revisora-de-fotos@example.com.br")
    browser_page.get_by_label("Password").fill("correct horse battery staple")
    browser_page.get_by_role("button", name="Create account").click()


PAGES = [
    ("dashboard", "/admin"),
    ("import", "/admin/import"),
    ("library", "/admin/library"),
    ("review", "/admin/review"),
    ("photo", "/admin/images/1"),
    ("channels", "/admin/channels"),
    ("export", "/admin/export"),
    ("users", "/admin/users"),
    ("audit", "/admin/audit"),
]
# What to bring into view before the phone screenshot (the part the page is judged by).
FOCUS = {"users": "table", "audit": "table", "photo": ".photo-record", "channels": "table"}
NAV = ["Dashboard", "Import", "Library", "Channels", "Review", "Export", "Users", "Audit"]
NAV_PT = ["Painel", "Importar", "Biblioteca", "Canais", "Revisão", "Exportar", "Usuários",
          "Auditoria"]


def _check_page(page, base: str, name: str, path: str, shot: str) -> None:
    response = page.goto(base + path)
    assert response.status == 200, (path, response.status)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    # Thumbnails are loaded and decoded (the preview route answers for staff).
    for img in page.locator("img.thumb-img").all()[:6]:
        if img.is_visible():
            expect(img).to_have_js_property("complete", True)
    assert page.evaluate(A11Y_CHECK) == [], (path, shot)
    if name in FOCUS and page.viewport_size["width"] < 500:
        page.locator(FOCUS[name]).first.scroll_into_view_if_needed()
    screenshot(page, shot)


def test_every_page_at_phone_and_desktop_widths_in_both_languages(live_server, new_page,
                                                                   browser):
    """Screenshots (tests/screenshots/<page>-<lang>-<width>.png, looked at by a person) and
    what a machine can check: no console error, no failed request (the favicon included), no
    CSP violation, a heading, labels, nothing wider than a 390 px phone."""
    base = live_server.url
    page, problems = new_page(DESKTOP)
    register_first_admin(page, base)
    other = browser.new_context()
    _register_reviewer(other.new_page(), base)
    other.close()
    _seed(page, base)
    for lang, link, nav in (("en", "English", NAV), ("pt", "Português (Brasil)", NAV_PT)):
        page.goto(base + "/admin")
        page.get_by_role("link", name=link).click()
        widths = (("390", PHONE), ("1280", DESKTOP))
        for width_name, viewport in widths:
            page.set_viewport_size(viewport)
            for name, path in PAGES:
                _check_page(page, base, name, path, f"{name}-{lang}-{width_name}")
            response = page.goto(base + "/admin/images/999999")
            assert response.status == 404
            assert page.evaluate(A11Y_CHECK) == []
            screenshot(page, f"error-{lang}-{width_name}")
        # On a phone every section is one tap away, behind the menu button.
        page.set_viewport_size(PHONE)
        page.goto(base + "/admin/library")
        menu = page.locator(".menu-button")
        expect(menu).to_be_visible()
        expect(page.locator("#mainnav-list")).to_be_hidden()
        menu.click()
        expect(menu).to_have_attribute("aria-expanded", "true")
        links = page.locator("#mainnav-list a")
        assert links.all_inner_texts() == nav
        for index in range(links.count()):
            expect(links.nth(index)).to_be_in_viewport()
        screenshot(page, f"menu-{lang}-390")
        page.keyboard.press("Escape")
        expect(page.locator("#mainnav-list")).to_be_hidden()
        expect(menu).to_be_focused()
        page.goto(base + "/admin/users")
        menu.click()
        expect(page.locator("#mainnav-list")).to_be_visible()
        page.mouse.click(200, 820)  # a tap on the empty page below the open menu closes it
        expect(page.locator("#mainnav-list")).to_be_hidden()
        expect(menu).to_have_attribute("aria-expanded", "false")
        assert page.url == base + "/admin/users"
        # An audit entry's details read as labelled values, not JSON.
        page.goto(base + "/admin/audit?action=image.edited")
        page.locator("td details summary").first.click()
        details = page.locator("dl.details").first
        expect(details).to_be_visible()
        assert "{" not in details.inner_text()
        details.scroll_into_view_if_needed()
        screenshot(page, f"audit-details-{lang}-390")
        # The users page shows each e-mail address whole, on one line.
        page.goto(base + "/admin/users")
        cell = page.locator("td", has_text="beatriz.revisora-de-fotos@example.com.br")
        lines = cell.evaluate("""c => { const r = document.createRange();
          r.selectNodeContents(c); return r.getClientRects().length; }""")
        assert lines == 1, lines
    # The sign-in and registration pages, signed out (in Portuguese, then English).
    page.set_viewport_size(DESKTOP)
    page.get_by_role("button", name="Sair").click()
    for lang, link in (("pt", None), ("en", "English")):
        if link:
            page.get_by_role("link", name=link).click()
        for width_name, viewport in (("390", PHONE), ("1280", DESKTOP)):
            page.set_viewport_size(viewport)
            for name, path in (("login", "/login"), ("register", "/register")):
                page.goto(base + path)
                assert page.evaluate(A11Y_CHECK) == [], (path, width_name)
                screenshot(page, f"{name}-{lang}-{width_name}")
    assert problems.messages == [], problems.messages
    # The page's icon answers (headless Chromium does not fetch icons by itself).
    icon = page.locator('link[rel="icon"]').get_attribute("href")
    assert page.request.get(base + icon).status == 200
    # The only failed request is the missing photo's, on purpose.
    assert {url for _status, url in problems.failed} == {base + "/admin/images/999999"}


def test_thumbnails_show_blurhash_then_image(live_server, new_page):
    base = live_server.url
    page, problems = new_page(DESKTOP)
    register_first_admin(page, base)
    page.goto(base + "/admin/import")
    page.get_by_label("Product code").fill("HASH-1")
    page.set_input_files("#files", [str(IMAGES / "valid" / "hopper.jpg")])
    expect(page.locator("#upload-list > li .outcome")).to_have_count(1, timeout=60_000)
    # Hold the previews back: the placeholder is painted from the blurhash meanwhile.
    page.route("**/admin/images/*/preview*", lambda route: None)
    page.goto(base + "/admin/library", wait_until="domcontentloaded")
    thumb = page.locator(".card .thumb").first
    expect(thumb).to_have_class(re.compile(r"\bhas-hash\b"))
    colour = page.evaluate("""() => {
      const canvas = document.querySelector('.card .thumb canvas');
      return Array.from(canvas.getContext('2d').getImageData(16, 16, 1, 1).data);
    }""")
    assert colour[3] == 255 and sum(colour[:3]) > 0
    page.unroute("**/admin/images/*/preview*")
    page.reload()
    expect(page.locator(".card .thumb").first).to_have_class(re.compile(r"\bis-loaded\b"))
    assert problems.csp() == []


def test_language_follows_the_browser_and_the_switch(live_server, new_page):
    base = live_server.url
    page, _problems = new_page(DESKTOP, locale="pt-BR")
    page.goto(base + "/login")
    assert page.evaluate("() => document.documentElement.lang") == "pt-BR"
    assert page.get_by_role("heading", level=1).inner_text() == "Entrar"
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert page.evaluate("() => document.documentElement.lang") == "en"
    screenshot(page, "login-switched-desktop")


def test_zip_upload_lists_each_member(live_server, new_page):
    """A ZIP is one upload with one progress bar, then one line per member: the good one is
    accepted, the one that tries to climb out of the archive is refused."""
    base = live_server.url
    page, problems = new_page(DESKTOP)
    register_first_admin(page, base)
    page.goto(base + "/admin/import")
    page.set_input_files("#files", [str(IMAGES / "hostile" / "zip-slip.zip")])
    members = page.locator("#upload-list .upload-sublist > li")
    expect(members).to_have_count(2, timeout=60_000)
    outcomes = sorted(members.nth(i).locator(".badge").inner_text() for i in range(2))
    assert outcomes == ["accepted", "refused"]
    accepted = members.filter(has_text="SKU-100_1.jpg")
    assert accepted.locator(".badge").inner_text() == "accepted"
    assert "accepted: 1, duplicates: 0, refused: 1" in page.locator("#upload-summary").inner_text()
    assert problems.messages == []
