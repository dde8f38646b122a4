"""The admin pages over HTTP (no browser): access by role, CSRF on every form, what each form
does to the records, the preview route, languages, and the page security headers."""

from __future__ import annotations

import re

import aiohttp
import pytest

from tests.catalog.photos import make_photo
from tests.conftest import PASSWORD, assert_error

VIEWER_PAGES = ["/admin", "/admin/library"]
IMPORTER_PAGES = ["/admin/import"]
REVIEWER_PAGES = ["/admin/review", "/admin/export"]
ADMIN_PAGES = ["/admin/users", "/admin/audit"]
ALL_PAGES = VIEWER_PAGES + IMPORTER_PAGES + REVIEWER_PAGES + ADMIN_PAGES
ROLE_PAGES = {"viewer": VIEWER_PAGES, "importer": IMPORTER_PAGES,
              "reviewer": REVIEWER_PAGES, "admin": ADMIN_PAGES}
RANK = ["viewer", "importer", "reviewer", "admin"]


def _csrf(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


@pytest.fixture
def sign_in(client, login_as):
    """``await sign_in(role)`` → the CSRF token of a cookie session for a user of that role."""

    async def go(role: str = "admin") -> str:
        await login_as(role)  # creates the user (the first one is the admin)
        email = "admin@example.com" if role == "admin" else f"{role}@example.com"
        client.session.cookie_jar.clear()
        response = await client.post("/login", data={"email": email, "password": PASSWORD},
                                     allow_redirects=False)
        assert response.status == 303, await response.text()
        page = await client.get("/admin")
        assert page.status == 200
        return _csrf(await page.text())

    return go


# --- access --------------------------------------------------------------------------------------

async def test_anonymous_pages_redirect_to_login(client):
    for path in [*ALL_PAGES, "/", "/admin/images/1", "/admin/images/1/preview?w=320"]:
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/login?next="), path


async def test_root_leads_to_the_dashboard(client, sign_in):
    await sign_in("viewer")
    response = await client.get("/", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/admin"


@pytest.mark.parametrize("role", RANK)
async def test_each_role_sees_its_pages_and_gets_403_pages_for_the_others(client, login_as,
                                                                          role):
    headers = await login_as(role)
    allowed = {page for r in RANK[: RANK.index(role) + 1] for page in ROLE_PAGES[r]}
    for path in ALL_PAGES:
        response = await client.get(path, headers=headers)
        body = await response.text()
        if path in allowed:
            assert response.status == 200, (role, path, body[:300])
        else:
            assert response.status == 403, (role, path)
            # A page, not JSON: people land here.
            assert response.content_type == "text/html"
            assert "<h1>403</h1>" in body


async def test_admin_only_forms_refuse_others(client, sign_in, make_image):
    record = await make_image("SKU-1")
    token = await sign_in("reviewer")
    response = await client.post(f"/admin/images/{record['id']}/delete",
                                 data={"csrf_token": token})
    assert response.status == 403
    response = await client.post("/admin/users/1", data={"csrf_token": token, "role": "admin"})
    assert response.status == 403
    # A reviewer's bulk "delete" is refused too (the action needs admin), nothing deleted.
    response = await client.post("/admin/library/bulk", data={
        "csrf_token": token, "action": "delete", "ids": str(record["id"])})
    assert response.status == 403
    assert (await client.get(f"/admin/images/{record['id']}")).status == 200


# --- CSRF ----------------------------------------------------------------------------------------

async def test_forms_without_csrf_token_are_refused(client, sign_in, make_image, conn):
    record = await make_image("SKU-1")
    token = await sign_in("admin")
    forms = [
        (f"/admin/review/{record['id']}", {"action": "approve"}),
        (f"/admin/images/{record['id']}/edit", {"product": "Changed"}),
        (f"/admin/images/{record['id']}/delete", {}),
        ("/admin/library/bulk", {"action": "approve", "ids": str(record["id"])}),
        ("/admin/users/1", {"role": "viewer"}),
    ]
    for path, data in forms:
        for bad in ({}, {"csrf_token": "0" * 64}, {"csrf_token": token[:-1] + "x"}):
            response = await client.post(path, data={**data, **bad})
            assert response.status == 403, (path, bad)
            assert "security token" in await response.text()
    row = await conn.fetchrow("SELECT status, product, deleted_at FROM images WHERE id = $1",
                              record["id"])
    assert (row["status"], row["product"], row["deleted_at"]) == ("pending", "", None)


async def test_a_form_from_another_site_is_refused(client, sign_in, make_image):
    record = await make_image("SKU-1")
    token = await sign_in("admin")
    response = await client.post(f"/admin/review/{record['id']}",
                                 data={"csrf_token": token, "action": "approve"},
                                 headers={"Origin": "https://evil.example"})
    assert response.status == 403


# --- review --------------------------------------------------------------------------------------

async def test_review_queue_shows_oldest_pending_and_approves(client, sign_in, make_image, conn):
    first = await make_image("SKU-1", product="First mug")
    second = await make_image("SKU-2")
    token = await sign_in("reviewer")
    page = await client.get("/admin/review")
    html = await page.text()
    assert page.status == 200
    assert "First mug" in html and f'action="/admin/review/{first["id"]}"' in html
    assert f'href="/admin/review?id={second["id"]}"' in html  # the next one
    response = await client.post(f"/admin/review/{first['id']}",
                                 data={"csrf_token": token, "action": "approve"},
                                 allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith(f"/admin/review?id={second['id']}&done=")
    assert await conn.fetchval("SELECT status FROM images WHERE id = $1", first["id"]) \
        == "approved"
    following = await client.get(response.headers["Location"])
    assert "Photo approved." in await following.text()


async def test_reject_without_reason_is_refused_on_the_page(client, sign_in, make_image, conn):
    record = await make_image("SKU-1")
    token = await sign_in("reviewer")
    response = await client.post(f"/admin/review/{record['id']}",
                                 data={"csrf_token": token, "action": "reject", "reason": " "})
    assert response.status == 422
    assert "A rejection needs a reason." in await response.text()
    assert await conn.fetchval("SELECT status FROM images WHERE id = $1", record["id"]) \
        == "pending"


async def test_reviewing_twice_is_a_409_page(client, sign_in, make_image):
    record = await make_image("SKU-1", status="approved")
    token = await sign_in("reviewer")
    response = await client.post(f"/admin/review/{record['id']}",
                                 data={"csrf_token": token, "action": "reject",
                                       "reason": "late"})
    assert response.status == 409
    assert "not pending" in await response.text()


async def test_empty_queue(client, sign_in):
    await sign_in("reviewer")
    response = await client.get("/admin/review")
    assert response.status == 200
    assert "Nothing waits for review" in await response.text()


# --- library -------------------------------------------------------------------------------------

async def test_library_filters_sort_and_pages(client, sign_in, make_image):
    await make_image("RED-1", product="Red mug")
    await make_image("BLUE-1", product="Blue mug", status="approved")
    await sign_in("viewer")
    html = await (await client.get("/admin/library?status=approved")).text()
    assert "BLUE-1" in html and "RED-1" not in html
    html = await (await client.get("/admin/library?q=red")).text()
    assert "RED-1" in html and "BLUE-1" not in html
    html = await (await client.get("/admin/library?per_page=1&sort=code")).text()
    assert "BLUE-1" in html and "RED-1" not in html
    assert "Page 1 of 2" in html
    html = await (await client.get("/admin/library?per_page=1&sort=code&page=2")).text()
    assert "RED-1" in html
    # A viewer sees no selection boxes (no bulk action is open to them).
    assert 'name="ids"' not in html


async def test_library_bad_filter_is_a_422_page_not_a_crash(client, sign_in):
    await sign_in("viewer")
    response = await client.get("/admin/library?since=yesterday")
    assert response.status == 422
    assert "since must be a date" in await response.text()
    response = await client.get("/admin/library?page=-3")
    assert response.status == 422


async def test_bulk_approve_and_delete(client, sign_in, make_image, conn):
    a, b = await make_image("SKU-1"), await make_image("SKU-2")
    token = await sign_in("admin")
    response = await client.post("/admin/library/bulk", data=[
        ("csrf_token", token), ("action", "approve"), ("ids", str(a["id"])),
        ("ids", str(b["id"])), ("back", "/admin/library?status=pending")],
        allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/admin/library?status=pending&done=bulk&n=2"
    assert {r["status"] for r in await conn.fetch("SELECT status FROM images")} == {"approved"}
    response = await client.post("/admin/library/bulk", data=[
        ("csrf_token", token), ("action", "delete"), ("ids", str(a["id"]))],
        allow_redirects=False)
    assert response.status == 303
    assert await conn.fetchval("SELECT deleted_at IS NOT NULL FROM images WHERE id = $1",
                               a["id"])


async def test_bulk_reject_needs_reason_and_a_selection(client, sign_in, make_image, conn):
    record = await make_image("SKU-1")
    token = await sign_in("reviewer")
    response = await client.post("/admin/library/bulk", data=[
        ("csrf_token", token), ("action", "reject"), ("ids", str(record["id"]))])
    assert response.status == 422
    response = await client.post("/admin/library/bulk", data={"csrf_token": token,
                                                              "action": "approve"})
    assert response.status == 422
    response = await client.post("/admin/library/bulk", data={
        "csrf_token": token, "action": "launch", "ids": str(record["id"])})
    assert response.status == 422
    assert await conn.fetchval("SELECT status FROM images") == "pending"


async def test_bulk_export_goes_to_the_export_of_the_selected_codes(client, sign_in,
                                                                    make_image):
    a = await make_image("SKU-1", status="approved")
    await make_image("SKU-2", status="approved")
    token = await sign_in("reviewer")
    response = await client.post("/admin/library/bulk", data=[
        ("csrf_token", token), ("action", "export"), ("format", "shopify"),
        ("ids", str(a["id"]))], allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/api/v1/exports/shopify?code=SKU-1"
    download = await client.get(response.headers["Location"])
    assert download.status == 200
    text = await download.text()
    assert "/img/SKU-1/1" in text and "SKU-2" not in text


async def test_back_address_cannot_leave_the_site(client, sign_in, make_image):
    record = await make_image("SKU-1")
    token = await sign_in("reviewer")
    response = await client.post("/admin/library/bulk", data=[
        ("csrf_token", token), ("action", "approve"), ("ids", str(record["id"])),
        ("back", "//evil.example/x")], allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/?done=bulk")


# --- one photo -----------------------------------------------------------------------------------

async def test_photo_page_shows_record_history_and_snippet(client, sign_in, make_image):
    record = await make_image("SKU-9", product="Tea cup", status="approved")
    await sign_in("viewer")
    response = await client.get(f"/admin/images/{record['id']}")
    html = await response.text()
    assert response.status == 200
    for text in ("SKU-9", "Tea cup", record["filename"], "Importer User", "Reviewer User",
                 "240 × 240 px", "JPEG", "photo imported", "photo approved"):
        assert text in html, text
    # The storefront snippet: escaped for display, with srcset and sizes.
    assert "&lt;img src=&#34;" in html or "&lt;img src=&quot;" in html
    assert "srcset=" in html and "sizes=" in html
    # A viewer gets no edit forms.
    assert "/edit" not in html and 'name="csrf_token"' in html  # (the sign-out form only)


async def test_photo_edit_and_refusal(client, sign_in, make_image, conn):
    record = await make_image("SKU-1")
    token = await sign_in("importer")
    response = await client.post(f"/admin/images/{record['id']}/edit", data={
        "csrf_token": token, "code": "SKU-1", "product": "New name", "position": "1",
        "alt": "A mug", "version": str(record["version"])}, allow_redirects=False)
    assert response.status == 303
    row = await conn.fetchrow("SELECT product, alt FROM images WHERE id = $1", record["id"])
    assert (row["product"], row["alt"]) == ("New name", "A mug")
    response = await client.post(f"/admin/images/{record['id']}/edit", data={
        "csrf_token": token, "code": "bad code/with slash", "product": "x", "position": "1"})
    assert response.status == 422
    html = await response.text()
    assert "cannot contain" in html
    assert 'value="bad code/with slash"' in html  # what was typed stays in the form
    response = await client.post(f"/admin/images/{record['id']}/edit", data={
        "csrf_token": token, "code": "SKU-1", "position": "first"})
    assert response.status == 422
    assert await conn.fetchval("SELECT code FROM images WHERE id = $1", record["id"]) == "SKU-1"


async def test_photo_replace_by_form(client, sign_in, make_image, conn):
    record = await make_image("SKU-1", status="approved")
    token = await sign_in("importer")
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", make_photo(77), filename="new.jpg", content_type="image/jpeg")
    response = await client.post(f"/admin/images/{record['id']}/replace", data=form,
                                 allow_redirects=False)
    assert response.status == 303, await response.text()
    row = await conn.fetchrow("SELECT status, filename, version FROM images WHERE id = $1",
                              record["id"])
    assert (row["status"], row["filename"]) == ("pending", "new.jpg")
    assert row["version"] != record["version"]
    # A file that is not an image is refused on the page; the record is unchanged.
    form = aiohttp.FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", b"<html><script>alert(1)</script>", filename="x.png",
                   content_type="image/png")
    response = await client.post(f"/admin/images/{record['id']}/replace", data=form)
    assert response.status == 415
    assert await conn.fetchval("SELECT filename FROM images WHERE id = $1", record["id"]) \
        == "new.jpg"


async def test_photo_delete_by_admin(client, sign_in, make_image, conn):
    record = await make_image("SKU-1")
    token = await sign_in("admin")
    response = await client.post(f"/admin/images/{record['id']}/delete",
                                 data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303
    assert await conn.fetchval("SELECT deleted_at IS NOT NULL FROM images WHERE id = $1",
                               record["id"])
    assert (await client.get(f"/admin/images/{record['id']}")).status == 404


async def test_unknown_photo_is_a_404_page(client, sign_in):
    await sign_in("viewer")
    for path in ("/admin/images/999999", "/admin/images/0", "/admin/images/99999999999999999999"):
        response = await client.get(path)
        assert response.status == 404, path
        assert response.content_type == "text/html"


# --- previews ------------------------------------------------------------------------------------

async def test_preview_of_a_pending_photo_for_staff_only(client, sign_in, make_image):
    record = await make_image("SKU-1")
    # /img knows only approved photos...
    assert (await client.get("/img/SKU-1/1")).status == 404
    await sign_in("viewer")
    response = await client.get(f"/admin/images/{record['id']}/preview?w=160&v="
                                f"{record['version']}")
    assert response.status == 200
    assert response.content_type == "image/webp"
    assert "private" in response.headers["Cache-Control"]
    assert "immutable" in response.headers["Cache-Control"]
    body = await response.read()
    import pyvips

    image = pyvips.Image.new_from_buffer(body, "")
    assert image.width == 160
    etag = response.headers["ETag"]
    again = await client.get(f"/admin/images/{record['id']}/preview?w=160",
                             headers={"If-None-Match": etag})
    assert again.status == 304
    assert "immutable" not in again.headers["Cache-Control"]  # no v: revalidate


async def test_preview_never_enlarges_and_refuses_odd_widths(client, sign_in, make_image):
    record = await make_image("SKU-1")
    await sign_in("viewer")
    response = await client.get(f"/admin/images/{record['id']}/preview?w=1600")
    import pyvips

    assert pyvips.Image.new_from_buffer(await response.read(), "").width == 240
    for bad in ("123", "-1", "abc", "99999999999"):
        response = await client.get(f"/admin/images/{record['id']}/preview?w={bad}")
        assert response.status == 400, bad
    assert (await client.get("/admin/images/424242/preview?w=160")).status == 404


# --- export, users, audit ------------------------------------------------------------------------

async def test_export_form_leads_to_the_download(client, sign_in, make_image):
    await make_image("SKU-1", status="approved")
    await sign_in("reviewer")
    response = await client.get("/admin/export/download?format=shopify&status=approved&code="
                                "&since=", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/api/v1/exports/shopify?status=approved"
    download = await client.get(response.headers["Location"])
    assert download.status == 200
    assert (await download.text()).startswith("Handle,Title,Image Src")
    response = await client.get("/admin/export/download?format=exe")
    assert response.status == 422


async def test_users_page_changes_a_role(client, sign_in, login_as, conn):
    await login_as("viewer")
    token = await sign_in("admin")
    viewer_id = await conn.fetchval("SELECT id FROM users WHERE email = 'viewer@example.com'")
    html = await (await client.get("/admin/users")).text()
    assert "viewer@example.com" in html
    response = await client.post(f"/admin/users/{viewer_id}",
                                 data={"csrf_token": token, "role": "reviewer"},
                                 allow_redirects=False)
    assert response.status == 303
    assert await conn.fetchval("SELECT role FROM users WHERE id = $1", viewer_id) == "reviewer"
    # The last admin cannot demote themself: a 409 page, nothing changed.
    admin_id = await conn.fetchval("SELECT id FROM users WHERE email = 'admin@example.com'")
    response = await client.post(f"/admin/users/{admin_id}",
                                 data={"csrf_token": token, "role": "viewer"})
    assert response.status == 409
    assert await conn.fetchval("SELECT role FROM users WHERE id = $1", admin_id) == "admin"


async def test_audit_page_filters(client, sign_in, make_image):
    record = await make_image("SKU-1", status="approved")
    await sign_in("admin")

    async def entries(query: str) -> str:
        html = await (await client.get(f"/admin/audit?{query}")).text()
        return html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]

    rows = await entries(f"image_id={record['id']}")
    assert "photo imported" in rows and "photo approved" in rows
    assert "registered" not in rows
    # Actions are named in words; the codes stay in the API.
    assert "image.imported" not in rows
    rows = await entries("action=image.approved")
    assert "photo approved" in rows and "photo imported" not in rows
    assert (await client.get("/admin/audit?since=notadate")).status == 422


async def test_dashboard_counts_chart_and_activity(client, sign_in, make_image):
    await make_image("SKU-1")
    await make_image("SKU-2", status="approved")
    await sign_in("admin")
    html = await (await client.get("/admin")).text()
    counts = re.findall(r'<span class="stat-num">([^<]+)</span>', html)
    assert counts[:3] == ["1", "1", "0"]  # pending, approved, rejected
    assert html.count("<rect ") == 30  # one bar per day
    assert "2 photos in the last 30 days." in html
    assert "photo approved" in html  # recent activity (admins)


async def test_viewer_dashboard_has_no_audit(client, sign_in, make_image):
    await make_image("SKU-1")
    await sign_in("viewer")
    html = await (await client.get("/admin")).text()
    assert "Recent activity" not in html


# --- languages and page security -----------------------------------------------------------------

async def test_language_from_accept_language_and_switch(client, sign_in):
    await sign_in("viewer")
    response = await client.get("/admin", headers={"Accept-Language": "pt-BR,pt;q=0.9,en;q=0.5"})
    html = await response.text()
    assert '<html lang="pt-BR">' in html and "Painel" in html
    assert response.headers["Content-Language"] == "pt-BR"
    response = await client.get("/lang?to=en&next=/admin/library", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/library"
    html = await (await client.get("/admin", headers={"Accept-Language": "pt-BR"})).text()
    assert '<html lang="en">' in html and "Dashboard" in html
    # Unknown languages and foreign next addresses are ignored.
    response = await client.get("/lang?to=xx&next=//evil.example", allow_redirects=False)
    assert response.headers["Location"] == "/"


async def test_error_pages_speak_the_page_language_and_carry_the_page_headers(client, sign_in):
    await sign_in("viewer")
    response = await client.get("/admin/no-such-page", headers={"Accept-Language": "pt-BR"})
    assert response.status == 404
    html = await response.text()
    assert '<html lang="pt-BR">' in html and "Voltar ao E-co Gram" in html
    assert response.headers["Content-Language"] == "pt-BR"
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_login_page_in_portuguese(client):
    html = await (await client.get("/login", headers={"Accept-Language": "pt"})).text()
    assert ">Entrar</h1>" in html and "Senha" in html


async def test_pages_have_csp_and_no_inline_script_or_style(client, sign_in, make_image):
    record = await make_image("SKU-1")
    await sign_in("admin")
    for path in [*ALL_PAGES, f"/admin/images/{record['id']}", "/login"]:
        response = await client.get(path)
        html = await response.text()
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp, path
        assert response.headers["Cache-Control"] == "no-store", path
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path
        assert "<style" not in html, path


async def test_api_still_answers_json_for_pages_json_errors(client, login_as):
    # The page routes never change what the API says: JSON errors stay JSON.
    headers = await login_as("viewer")
    response = await client.get("/api/v1/images/999", headers=headers)
    assert response.status == 404
    assert_error(await response.json(), "not_found")


async def test_every_page_names_its_icon_and_the_icon_answers(client, sign_in, make_image):
    """No page makes the browser ask for a /favicon.ico that is not there (a 404 in the console
    of every page): each links the icon, and the icon answers."""
    record = await make_image("SKU-1")
    await sign_in("admin")
    for path in [*ALL_PAGES, f"/admin/images/{record['id']}", "/admin/nowhere"]:
        html = await (await client.get(path)).text()
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html, path
    client.session.cookie_jar.clear()
    login = await (await client.get("/login")).text()
    assert '<link rel="icon" href="/static/favicon.svg"' in login
    icon = await client.get("/static/favicon.svg")
    assert icon.status == 200
    assert icon.content_type == "image/svg+xml"
    assert (await icon.text()).startswith("<svg")
