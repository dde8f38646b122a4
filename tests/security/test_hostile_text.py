"""Odd bytes from clients: NUL and control characters, non-UTF-8 headers, cookies, CSRF tokens
and upload file names are refused with a 4xx before they reach PostgreSQL, never a 500."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecogram import inputs, models
from ecogram.auth import csrf, tokens
from ecogram.auth.guard import SESSION_COOKIE
from ecogram.contract import parse_query
from ecogram.errors import AppError
from tests.auth.conftest import session_cookie
from tests.auth.test_pages import csrf_token, sign_in
from tests.catalog.photos import make_photo
from tests.conftest import PASSWORD, TEST_SECRET, assert_error
from tests.security.raw_http import request as raw_request

NUL_QUERIES = [
    "/api/v1/images?code=a%00b",
    "/api/v1/images?code=A,B%00",
    "/api/v1/images?q=a%00b",
    "/api/v1/images?importer=x%00",
    "/api/v1/images?status=%00",
    "/api/v1/images?sort=code%00",
    "/api/v1/images?code=a%01b",
    "/api/v1/images?q=%1b[31m",
    "/api/v1/images?since=2025-01-01%00",
    "/api/v1/audit?actor=a%00",
    "/api/v1/audit?action=image.%00",
    "/api/v1/exports/json?code=a%00b",
    "/api/v1/exports/shopify?code=SKU-1,%00",
    "/api/v1/exports/json?status=%00",
    "/api/v1/exports/json?code=%00",
    "/api/v1/exports/zip?code=A&code=B%00",
    "/api/v1/exports/woocommerce?since=%00",
]


@pytest.mark.parametrize("path", [
    "/api/v1/images?importer=%C2%B2", "/api/v1/images?importer=%D9%A3",
    "/api/v1/audit?actor=%C2%B9%C2%B2", "/admin/library?importer=%C2%B2",
])
async def test_digits_of_other_scripts_are_names_not_ids(client, login_as, path):
    # '²'.isdigit() is True but int('²') raises: it was a 500.
    response = await client.get(path, headers=await login_as("admin"))
    assert response.status == 200, await response.text()


@pytest.mark.parametrize("path", NUL_QUERIES)
async def test_control_characters_in_api_filters_are_422(client, login_as, path):
    response = await client.get(path, headers=await login_as("admin"))
    assert response.status == 422, await response.text()
    assert_error(await response.json(), "invalid_fields")


@pytest.mark.parametrize("path", ["/admin/library?code=a%00b", "/admin/library?q=%00",
                                  "/admin/audit?actor=a%00", "/admin/export/download?"
                                  "format=json&code=a%00"])
async def test_control_characters_in_page_filters_are_refused(client, login_as, path):
    response = await client.get(path, headers=await login_as("admin"), allow_redirects=False)
    assert response.status == 422, await response.text()


async def test_nul_in_login_and_register_is_422_not_500(client, login_as):
    await login_as("admin")
    for payload in ({"email": "admin\x00@example.com", "password": PASSWORD},
                    {"email": "admin@example.com", "password": "pass\x00word"},
                    {"email": "admin@example.com\x01", "password": PASSWORD}):
        response = await client.post("/api/v1/auth/login", json=payload)
        assert response.status == 422, payload
        assert_error(await response.json(), "invalid_fields")
    response = await client.post("/api/v1/auth/register", json={
        "email": "new\x00@example.com", "name": "N\x00", "password": PASSWORD})
    assert response.status == 422
    # The pages' forms: the same rule, as an HTML page.
    response = await client.post("/login", data={"email": "admin\x00@example.com",
                                                  "password": PASSWORD})
    assert response.status == 422
    assert response.content_type == "text/html"
    response = await client.post("/register", data={"email": "x\x00@example.com", "name": "X",
                                                     "password": PASSWORD})
    assert response.status == 422


async def test_nul_in_json_bodies_of_every_kind_is_422(client, login_as, make_image, conn):
    admin = await login_as("admin")
    record = await make_image("SKU-1")
    for method, path, payload in (
        ("PATCH", f"/api/v1/images/{record['id']}", {"alt": "front\x00"}),
        ("PATCH", f"/api/v1/images/{record['id']}", {"co\x00de": "X"}),
        ("PATCH", f"/api/v1/images/{record['id']}", {"code": ["A\x00"]}),
        ("POST", f"/api/v1/images/{record['id']}/approve", {"reason": "ok\x00"}),
        ("POST", "/api/v1/reviews", {"ids": [record["id"]], "action": "approve\x00"}),
        ("PATCH", "/api/v1/users/1", {"role": "admin\x00"}),
        ("PATCH", f"/api/v1/images/{record['id']}", {"product": "lone \ud800 surrogate"}),
        ("POST", "/api/v1/auth/password", {"current_password": PASSWORD,
                                           "new_password": "new\x00password-long"}),
    ):
        response = await client.request(method, path, json=payload, headers=admin)
        assert response.status == 422, (path, payload, await response.text())
        assert_error(await response.json(), "invalid_fields")
    assert await conn.fetchval("SELECT status FROM images WHERE id = $1", record["id"]) == \
        "pending"
    # Line breaks and tabs stay allowed where a person may type them.
    response = await client.patch(f"/api/v1/images/{record['id']}",
                                  json={"alt": "front\tview"}, headers=admin)
    assert response.status != 500


async def test_non_utf8_authorization_header_is_401(client):
    for value in (b"Bearer \xff\xfe", b"Bearer \xc3\xa9t\xc3\xa9", b"\xff"):
        answer = await raw_request(
            client.server.host, client.server.port,
            b"GET /api/v1/auth/me HTTP/1.1\r\nHost: t\r\nAuthorization: " + value)
        assert answer.status == 401, answer
        assert_error(answer.json(), "unauthorized")


async def test_a_corrupted_session_cookie_never_locks_the_browser_out(client, login_as):
    await login_as("admin")
    cookie = b"Cookie: " + SESSION_COOKIE.encode() + b"=\xff\xfe\x80garbage"
    for path, expected in ((b"/login", 200), (b"/register", 200), (b"/admin", 303),
                           (b"/api/v1/auth/me", 401)):
        answer = await raw_request(client.server.host, client.server.port,
                                   b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n" + cookie)
        assert answer.status == expected, (path, answer)
    # Signing in again from that browser works: the bad cookie is simply replaced.
    body = b"email=admin%40example.com&password=" + PASSWORD.replace(" ", "+").encode()
    answer = await raw_request(
        client.server.host, client.server.port,
        b"POST /login HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        + cookie + b"\r\nContent-Length: " + str(len(body)).encode(), body)
    assert answer.status == 303, answer
    assert SESSION_COOKIE in answer.headers.get("set-cookie", "")


async def test_a_non_ascii_csrf_token_is_403_csrf_failed(client, login_as):
    await login_as("admin")
    _, session = await sign_in(client)
    cookie = b"Cookie: " + SESSION_COOKIE.encode() + b"=" + session.encode()
    for token in (b"\xc3\xa9" * 32, b"\xff\xfe", "é".encode() + csrf_token(session)[1:].encode()):
        answer = await raw_request(
            client.server.host, client.server.port,
            b"PATCH /api/v1/users/1 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            + cookie + b"\r\nX-CSRF-Token: " + token + b"\r\nContent-Length: 2", b"{}")
        assert answer.status == 403, answer
        assert_error(answer.json(), "csrf_failed")
    # In a page form too (urlencoded, é percent-encoded).
    response = await client.post("/logout", data={"csrf_token": "é" * 64},
                                 headers=session_cookie(session), allow_redirects=False)
    assert response.status == 403


def _multipart(*parts: tuple[bytes, bytes]) -> bytes:
    body = b""
    for disposition, content in parts:
        body += (b"--BOUNDARY\r\nContent-Disposition: form-data; " + disposition
                 + b"\r\nContent-Type: image/jpeg\r\n\r\n" + content + b"\r\n")
    return body + b"--BOUNDARY--\r\n"


MULTIPART = {"Content-Type": "multipart/form-data; boundary=BOUNDARY"}
BAD_NAMES = [b'filename="\xff\xfe.jpg"', b'filename="SKU-\xe9.jpg"',
             b"filename*=utf-8''SKU-1%00.jpg", b"filename*=utf-8''a%01b.jpg"]


@pytest.mark.parametrize("bad", BAD_NAMES)
async def test_an_upload_whose_file_name_is_not_text_is_refused_alone(client, login_as, conn,
                                                                       bad):
    response = await client.post(
        "/api/v1/images", data=_multipart((b'name="file"; ' + bad, make_photo(1))),
        headers={**await login_as("importer"), **MULTIPART})
    assert response.status == 422, await response.text()
    body = await response.json()
    assert_error(body, "invalid_filename")
    assert body["error"]["details"]["report"]["rejected"] == 1
    assert await conn.fetchval("SELECT count(*) FROM images") == 0


@pytest.mark.parametrize("bad", BAD_NAMES)
async def test_a_bad_file_name_in_a_batch_is_a_rejected_line_the_others_kept(client, login_as,
                                                                              conn, bad):
    response = await client.post(
        "/api/v1/images",
        data=_multipart((b'name="file"; filename="SKU-1.jpg"', make_photo(1)),
                        (b'name="file"; ' + bad, make_photo(2)),
                        (b'name="file"; filename="SKU-3.jpg"', make_photo(3))),
        headers={**await login_as("importer"), **MULTIPART})
    assert response.status == 201, await response.text()
    lines = (await response.json())["items"]
    assert [line["outcome"] for line in lines] == ["accepted", "rejected", "accepted"]
    assert lines[1]["code"] == "invalid_filename"
    assert "\x00" not in lines[1]["filename"]
    assert await conn.fetchval("SELECT count(*) FROM images") == 2


async def test_replacing_a_photo_with_a_bad_file_name_is_422(client, login_as, make_image):
    record = await make_image("SKU-1")
    response = await client.put(
        f"/api/v1/images/{record['id']}/file",
        data=_multipart((b'name="file"; filename="\xff.jpg"', make_photo(9))),
        headers={**await login_as("importer"), **MULTIPART})
    assert response.status == 422, await response.text()
    assert_error(await response.json(), "invalid_filename")


# --- properties over arbitrary text ------------------------------------------------------------

@given(st.text())
def test_checked_text_never_holds_what_postgresql_or_a_filter_cannot_take(value):
    try:
        checked = inputs.check_text(value, "field")
    except AppError as error:
        assert error.status == 422
        return
    assert not any(ord(ch) < 0x20 or ch == "\x7f" or 0xD800 <= ord(ch) <= 0xDFFF
                   for ch in checked)


@given(st.dictionaries(st.sampled_from(["code", "q", "status", "importer"]), st.text()))
def test_query_models_give_422_or_clean_text(query):
    try:
        parsed = parse_query(query, models.ImageQuery)
    except AppError as error:
        assert error.status == 422
        return
    values = [parsed.q, parsed.status or "", parsed.importer, *parsed.code]
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for value in values for ch in value)


@given(st.one_of(st.text(), st.binary().map(lambda b: b.decode("utf-8", "surrogateescape"))))
def test_tokens_and_csrf_tokens_of_any_text_are_refused_cleanly(value):
    with pytest.raises(tokens.TokenError):
        tokens.decode(TEST_SECRET, value)
    assert csrf.is_valid(TEST_SECRET, "some-jti-value", value) is False


@given(st.binary(max_size=300).map(lambda b: b.decode("utf-8", "surrogateescape")))
def test_upload_file_names_are_a_clean_base_name_or_422(raw):
    try:
        name = inputs.upload_filename(raw, "upload")
    except AppError as error:
        assert error.status == 422 and error.code == "invalid_filename"
        shown = error.details["filename"]
        assert shown.encode("utf-8") and "\x00" not in shown
        return
    assert name.encode("utf-8") and "/" not in name and "\x00" not in name
    assert 0 < len(name) <= 255
