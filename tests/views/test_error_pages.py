"""Error pages for people: the signed-in user's menu when the session was already checked for the
request, the way home always, and no database work for the menu."""

from __future__ import annotations

import re

from tests.views.test_admin_pages import sign_in  # noqa: F401 - the fixture

NAV = re.compile(r'<nav class="mainnav"')


def _links(html: str) -> set[str]:
    nav = html.split('<nav class="mainnav"', 1)[1].split("</nav>", 1)[0]
    return set(re.findall(r'href="([^"]+)"', nav))


async def test_a_signed_in_admin_keeps_the_menu_on_a_404_page(client, sign_in):  # noqa: F811
    await sign_in("admin")
    response = await client.get("/admin/images/999999")
    html = await response.text()
    assert response.status == 404 and response.content_type == "text/html"
    assert {"/admin", "/admin/import", "/admin/review", "/admin/users",
            "/admin/audit"} <= _links(html)
    # Signing out works from there: the form carries the session's CSRF token.
    assert re.search(r'<meta name="csrf-token" content="[0-9a-f]+">', html)
    assert 'action="/logout"' in html and 'href="/"' in html


async def test_a_403_page_shows_the_sections_of_the_users_role(client, sign_in):  # noqa: F811
    await sign_in("viewer")
    response = await client.get("/admin/import")
    html = await response.text()
    assert response.status == 403
    links = _links(html)
    assert "/admin/library" in links
    assert not links & {"/admin/import", "/admin/users", "/admin/audit"}


async def test_an_unknown_address_offers_the_way_home(client, sign_in):  # noqa: F811
    # No route answers it, so no session was read: no menu (no query for it), a link home.
    await sign_in("admin")
    response = await client.get("/no/such/page")
    html = await response.text()
    assert response.status == 404 and response.content_type == "text/html"
    assert not NAV.search(html)
    assert 'href="/"' in html
    # Signed out, the same page, the same way home.
    client.session.cookie_jar.clear()
    response = await client.get("/admin/images/999999", allow_redirects=False)
    assert response.status == 303  # a page behind sign-in: to the login page, as before
