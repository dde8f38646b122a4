"""Sign-in pages, the session cookie, and CSRF protection of cookie-authenticated requests."""

from __future__ import annotations

import re

import pytest

from ecogram.app import create_app
from ecogram.auth import csrf
from ecogram.auth.guard import SESSION_COOKIE, csrf_token_for
from ecogram.routes import ROUTES, Route
from tests.auth.conftest import bearer, claims_of, session_cookie
from tests.conftest import PASSWORD, TEST_SECRET, assert_error


async def sign_in(client, email="admin@example.com", password=PASSWORD, headers=None):
    """Post the sign-in form; return the response (not followed) and the session token."""
    response = await client.post(
        "/login", data={"email": email, "password": password, "next": "/"},
        headers=headers or {}, allow_redirects=False,
    )
    morsel = response.cookies.get(SESSION_COOKIE)
    client.session.cookie_jar.clear()  # each test sends the cookie explicitly
    return response, (morsel.value if morsel else None)


def csrf_token(token: str) -> str:
    """The CSRF token of a session, as the signed-in pages render it (HMAC of the jti)."""
    return csrf.token_for(TEST_SECRET, claims_of(token)["jti"])


@pytest.fixture
async def admin_session(client, login_as):
    await login_as("admin")
    response, token = await sign_in(client)
    assert response.status == 303 and token
    return token


async def test_pages_send_the_signed_out_to_login(client):
    response = await client.get("/", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith("/login")


async def test_login_and_register_pages_are_plain_accessible_forms(client):
    for path, fields in (("/login", ("email", "password")),
                         ("/register", ("name", "email", "password"))):
        response = await client.get(path)
        assert response.status == 200
        html = await response.text()
        assert '<form method="post"' in html
        for field in fields:
            assert f'<label for="{field}">' in html and f'id="{field}"' in html
        # No inline script (the CSP forbids it): every script element loads a file.
        assert not re.search(r"<script(?![^>]*\bsrc=)", html)
        assert not re.search(r"\son[a-z]+=", html)
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_signing_in_sets_a_strict_httponly_cookie(client, admin_session):
    response, token = await sign_in(client)
    assert response.status == 303 and response.headers["Location"] == "/"
    raw = response.headers["Set-Cookie"]
    assert raw.startswith(f"{SESSION_COOKIE}=")
    attributes = [part.strip().lower() for part in raw.split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    assert "path=/" in attributes
    assert "max-age=3600" in attributes
    assert "secure" not in attributes  # plain http, ECOGRAM_COOKIE_SECURE=auto
    # The cookie signs the pages in: the sign-in page sends a signed-in visitor on.
    page = await client.get("/login", headers=session_cookie(token), allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/"
    me = await client.get("/api/v1/auth/me", headers=session_cookie(token))
    assert (await me.json())["email"] == "admin@example.com"


async def test_the_cookie_is_secure_behind_an_https_proxy(client, admin_session):
    response, _ = await sign_in(client, headers={"X-Forwarded-Proto": "https"})
    attributes = [part.strip().lower() for part in response.headers["Set-Cookie"].split(";")]
    assert "secure" in attributes


@pytest.mark.parametrize(("setting", "forwarded", "secure"),
                         [("true", "http", True), ("false", "https", False)])
async def test_the_cookie_secure_setting_overrides(aiohttp_client, settings, setting, forwarded,
                                                   secure):
    client = await aiohttp_client(create_app(settings.replace(cookie_secure=setting)))
    await client.post("/api/v1/auth/register",
                      json={"email": "admin@example.com", "name": "A", "password": PASSWORD})
    response, _ = await sign_in(client, headers={"X-Forwarded-Proto": forwarded})
    attributes = [part.strip().lower() for part in response.headers["Set-Cookie"].split(";")]
    assert ("secure" in attributes) is secure


async def test_a_wrong_password_on_the_page_shows_an_error_without_the_password(client,
                                                                                 admin_session):
    response, token = await sign_in(client, password="the-wrong-passphrase-99")
    assert response.status == 401 and token is None
    html = await response.text()
    assert "wrong" in html.lower() and "the-wrong-passphrase-99" not in html
    assert 'value="admin@example.com"' in html


async def test_cookie_authenticated_api_reads_work_without_csrf(client, admin_session):
    response = await client.get("/api/v1/users", headers=session_cookie(admin_session))
    assert response.status == 200


async def test_a_cookie_authenticated_post_without_the_csrf_token_is_refused(
    client, admin_session, login_as, conn
):
    await login_as("viewer")
    viewer_id = await conn.fetchval("SELECT id FROM users WHERE email = 'viewer@example.com'")
    path = f"/api/v1/users/{viewer_id}"
    _, viewer_session = await sign_in(client, "viewer@example.com")
    another_sessions = csrf_token(viewer_session)
    for extra in ({}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": "0" * 64},
                  {"X-CSRF-Token": another_sessions}):
        response = await client.patch(path, json={"role": "admin"},
                                      headers={**session_cookie(admin_session), **extra})
        assert response.status == 403
        assert_error(await response.json(), "csrf_failed")
    assert await conn.fetchval("SELECT role FROM users WHERE id = $1", viewer_id) == "viewer"
    # With the token of this session, the same request goes through.
    token = csrf_token(admin_session)
    response = await client.patch(
        path, json={"role": "importer"},
        headers={**session_cookie(admin_session), "X-CSRF-Token": token},
    )
    assert response.status == 200
    # Bearer requests need no CSRF token: a browser never adds that header by itself.
    response = await client.patch(path, json={"role": "reviewer"}, headers=bearer(admin_session))
    assert response.status == 200


async def test_sign_out_needs_the_forms_csrf_token_then_revokes(client, admin_session):
    refused = await client.post("/logout", headers=session_cookie(admin_session),
                                allow_redirects=False)
    assert refused.status == 403
    assert refused.content_type == "text/html"
    assert (await client.get("/api/v1/auth/me", headers=bearer(admin_session))).status == 200

    token = csrf_token(admin_session)
    response = await client.post("/logout", data={"csrf_token": token},
                                 headers=session_cookie(admin_session), allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    cleared = response.headers["Set-Cookie"]
    assert cleared.startswith(f'{SESSION_COOKIE}=""') or cleared.startswith(f"{SESSION_COOKIE}=;")
    assert "max-age=0" in cleared.lower()
    # The token is revoked, not only forgotten by the browser.
    assert (await client.get("/api/v1/auth/me", headers=bearer(admin_session))).status == 401
    page = await client.get("/", headers=session_cookie(admin_session), allow_redirects=False)
    assert page.headers["Location"].startswith("/login")


async def test_forms_from_another_site_are_refused(client, admin_session):
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "null"}):
        response = await client.post(
            "/login", data={"email": "admin@example.com", "password": PASSWORD},
            headers=headers, allow_redirects=False,
        )
        assert response.status == 403
        assert SESSION_COOKIE not in response.cookies
    same = await client.post(
        "/login", data={"email": "admin@example.com", "password": PASSWORD},
        headers={"Origin": str(client.make_url("")).rstrip("/"), "Sec-Fetch-Site": "same-origin"},
        allow_redirects=False,
    )
    assert same.status == 303


async def test_register_page_signs_the_new_user_in(client, login_as, conn):
    await login_as("admin")
    response = await client.post(
        "/register",
        data={"name": "Neo", "email": "neo@example.com", "password": "a brand new passphrase"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert SESSION_COOKIE in response.cookies
    assert await conn.fetchval("SELECT role FROM users WHERE email = 'neo@example.com'") == "viewer"


async def test_register_page_shows_field_errors(client):
    response = await client.post(
        "/register", data={"name": "Neo", "email": "neo@example.com", "password": "short"},
        allow_redirects=False,
    )
    assert response.status == 422
    html = await response.text()
    assert 'aria-invalid="true"' in html and "at least 10 characters" in html
    assert 'value="short"' not in html


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil",
                                    "javascript:alert(1)"])
async def test_sign_in_never_redirects_off_site(client, admin_session, target):
    response = await client.post(
        "/login", data={"email": "admin@example.com", "password": PASSWORD, "next": target},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/"


async def test_sign_in_returns_to_a_local_page(client, admin_session):
    response = await client.post(
        "/login", data={"email": "admin@example.com", "password": PASSWORD,
                        "next": "/admin/images?status=pending"},
        allow_redirects=False,
    )
    assert response.headers["Location"] == "/admin/images?status=pending"


async def test_protected_pages_redirect_to_sign_in(aiohttp_client, settings, monkeypatch, login_as):
    from aiohttp import web

    async def secret_page(request):
        return web.Response(text="reviewers only", content_type="text/html")

    monkeypatch.setattr(
        "ecogram.routes.ROUTES",
        [*ROUTES, Route("GET", "/test-reviewers", secret_page, "test_reviewers", "reviewer")],
    )
    client = await aiohttp_client(create_app(settings))
    response = await client.get("/test-reviewers?x=1", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login?next=%2Ftest-reviewers%3Fx%3D1"
    await client.post("/api/v1/auth/register",
                      json={"email": "admin@example.com", "name": "A", "password": PASSWORD})
    await client.post("/api/v1/auth/register",
                      json={"email": "v@example.com", "name": "V", "password": PASSWORD})
    _, viewer = await sign_in(client, "v@example.com")
    forbidden = await client.get("/test-reviewers", headers=session_cookie(viewer))
    assert forbidden.status == 403 and forbidden.content_type == "text/html"
    _, admin = await sign_in(client)
    allowed = await client.get("/test-reviewers", headers=session_cookie(admin))
    assert allowed.status == 200 and await allowed.text() == "reviewers only"


def test_csrf_tokens_belong_to_one_session():
    first, second = csrf.token_for(TEST_SECRET, "jti-one"), csrf.token_for(TEST_SECRET, "jti-two")
    assert first != second and len(first) == 64
    assert csrf.is_valid(TEST_SECRET, "jti-one", first)
    assert not csrf.is_valid(TEST_SECRET, "jti-one", second)
    assert not csrf.is_valid("another-secret-key-that-is-long-enough-42", "jti-one", first)
    assert not csrf.is_valid(TEST_SECRET, "jti-one", None)
    assert not csrf.is_valid(TEST_SECRET, "jti-one", first + "0")


async def test_the_page_helper_gives_the_sessions_csrf_token(client, admin_session):
    from aiohttp.test_utils import make_mocked_request

    from ecogram import keys
    from ecogram.auth.identity import Credentials

    request = make_mocked_request("GET", "/", app=client.app)
    assert csrf_token_for(request) is None
    jti = claims_of(admin_session)["jti"]
    request[keys.credentials] = Credentials(jti=jti, expires_at=0, via="cookie")
    assert csrf_token_for(request) == csrf_token(admin_session)


CLAIM_HINT = "Nobody administers this service yet"


async def test_the_pages_say_the_first_account_becomes_admin_until_one_exists(client):
    # The newcomer's first page says what registering will do; once an admin exists, it says
    # nothing of the kind (it would be untrue and an invitation).
    for path in ("/login", "/register"):
        page = await (await client.get(path)).text()
        assert CLAIM_HINT in page, path
    portuguese = await (await client.get(
        "/register", headers={"Accept-Language": "pt-BR"})).text()
    assert "Ninguém administra este serviço ainda" in portuguese
    response = await client.post("/api/v1/auth/register", json={
        "email": "ada@example.com", "name": "Ada", "password": PASSWORD})
    assert (await response.json())["role"] == "admin"
    for path in ("/login", "/register"):
        assert CLAIM_HINT not in await (await client.get(path)).text(), path
