"""Every upload route answers the same fault of a multipart body the same way (issue 16).

The same malformed, oversized or hostile bodies go to every route that takes a multipart upload:
the import API (``POST /api/v1/images``, ``POST /api/v1/imports``), the photo replacement
(``PUT /api/v1/images/{id}/file`` and the photo page's form), and the channel ids CSV. Each fault
gets one status and one error code wherever it is sent; a page answers with the same status (its
HTML error page). API routes are called with a bearer token, the page with a session cookie and
its CSRF token, once in the ``X-CSRF-Token`` header (the handler reads the body) and once as the
form's first field (the guard reads the body for it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.auth.conftest import session_cookie
from tests.auth.test_pages import csrf_token, sign_in
from tests.catalog.photos import make_photo
from tests.conftest import assert_error
from tests.security.raw_http import request as raw_request

MB = 1024 * 1024
UPLOAD_MB = 1  # the file limit these tests run with (ECOGRAM_MAX_UPLOAD_MB)
REQUEST_MB = 8  # the request limit (ECOGRAM_MAX_REQUEST_MB)
CSV_LIMIT = 5 * MB  # ecogram.catalog.channel_ids.MAX_CSV_BYTES
B = b"XyZzy"
MULTIPART = "multipart/form-data; boundary=" + B.decode()


@pytest.fixture
def settings(settings):
    return settings.replace(max_upload_mb=UPLOAD_MB, max_request_mb=REQUEST_MB)


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    file: str  # the part that carries the file
    file_limit: int
    role: str = "importer"
    page: str = ""  # "header" or "field": where a page request carries its CSRF token
    csv_body: bool = False  # also takes the file as a bare text/csv body


ROUTES = [
    Route("images_import", "POST", "/api/v1/images", "file", UPLOAD_MB * MB),
    Route("imports_create", "POST", "/api/v1/imports", "manifest", UPLOAD_MB * MB),
    Route("images_replace", "PUT", "/api/v1/images/{id}/file", "file", UPLOAD_MB * MB),
    Route("channel_ids_import", "POST", "/api/v1/channels/vtex/products", "file", CSV_LIMIT,
          role="reviewer", csv_body=True),
    Route("admin_photo_replace", "POST", "/admin/images/{id}/replace", "file", UPLOAD_MB * MB,
          page="header"),
    Route("admin_photo_replace_field", "POST", "/admin/images/{id}/replace", "file",
          UPLOAD_MB * MB, page="field"),
]


def part(headers: bytes, content: bytes) -> bytes:
    return b"--" + B + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"


def field(name: str, value: bytes) -> bytes:
    return part(b'Content-Disposition: form-data; name="' + name.encode() + b'"', value)


def file_part(name: str, content: bytes, filename: bytes = b'filename="SKU-1.jpg"') -> bytes:
    return part(b'Content-Disposition: form-data; name="' + name.encode() + b'"; ' + filename
                + b"\r\nContent-Type: application/octet-stream", content)


END = b"--" + B + b"--\r\n"


@dataclass(frozen=True)
class Fault:
    name: str
    body: Callable[[Route], bytes]
    content_type: str | None
    status: int
    code: str
    skip: Callable[[Route], bool] = lambda route: False


def _photo(route: Route) -> bytes:
    return make_photo(7) if route.file == "file" else b"file\nSKU-1.jpg\n"


FAULTS = [
    Fault("no boundary", lambda r: file_part(r.file, _photo(r)) + END,
          "multipart/form-data", 400, "invalid_multipart"),
    Fault("a boundary over 70 characters", lambda r: file_part(r.file, _photo(r)) + END,
          "multipart/form-data; boundary=" + "b" * 71, 400, "invalid_multipart"),
    Fault("JSON", lambda r: b'{"file": "x"}', "application/json", 415, "unsupported_type"),
    Fault("text/plain", lambda r: b"hello", "text/plain", 415, "unsupported_type",
          skip=lambda r: r.csv_body),
    Fault("multipart/mixed", lambda r: file_part(r.file, _photo(r)) + END,
          "multipart/mixed; boundary=" + B.decode(), 415, "unsupported_type"),
    Fault("no body and no type", lambda r: b"", None, 415, "unsupported_type",
          skip=lambda r: r.csv_body),
    Fault("an empty multipart body", lambda r: b"", MULTIPART, 400, "invalid_multipart"),
    Fault("no starting boundary", lambda r: b"just some text\r\n", MULTIPART, 400,
          "invalid_multipart"),
    Fault("truncated in a file", lambda r: file_part(r.file, _photo(r))[:-200], MULTIPART,
          400, "invalid_multipart"),
    Fault("no closing boundary", lambda r: file_part(r.file, _photo(r)), MULTIPART, 400,
          "invalid_multipart"),
    Fault("a part with no name", lambda r: part(b"Content-Disposition: form-data", b"x")
          + file_part(r.file, _photo(r)) + END, MULTIPART, 400, "invalid_multipart"),
    Fault("a part with no Content-Disposition",
          lambda r: part(b"Content-Type: text/plain", b"x") + file_part(r.file, _photo(r)) + END,
          MULTIPART, 400, "invalid_multipart"),
    Fault("a nested multipart part",
          lambda r: part(b'Content-Disposition: form-data; name="file"\r\n'
                         b"Content-Type: multipart/mixed; boundary=inner",
                         b"--inner\r\nContent-Type: text/plain\r\n\r\nx\r\n--inner--")
          + END, MULTIPART, 400, "invalid_multipart"),
    Fault("a part header over 8 KB", lambda r: file_part(
        r.file, _photo(r), b'filename="' + b"a" * 9000 + b'.jpg"') + END,
        MULTIPART, 400, "invalid_multipart"),
    Fault("no parts at all", lambda r: END, MULTIPART, 422, "no_files"),
    Fault("the file part missing", lambda r: field("code", b"SKU-1") + END, MULTIPART, 422,
          "no_files"),
    Fault("the file under another name", lambda r: file_part("photo", _photo(r)) + END,
          MULTIPART, 422, "no_files"),
    Fault("a file over the upload limit",
          lambda r: file_part(r.file, b"x" * (r.file_limit + 1)) + END, MULTIPART, 413,
          "file_too_large"),
    Fault("a text field over the form limit",
          lambda r: field("alt", b"a" * (65 * 1024)) + file_part(r.file, _photo(r)) + END,
          MULTIPART, 413, "too_large"),
    Fault("many parts", lambda r: field("n", b"v") * 3000 + file_part(r.file, _photo(r)) + END,
          MULTIPART, 413, "too_large"),
    Fault("a field that is not UTF-8", lambda r: field("alt", b"caf\xe9")
          + file_part(r.file, _photo(r)) + END, MULTIPART, 422, "invalid_fields"),
    Fault("a field with a NUL", lambda r: field("alt", b"a\x00b")
          + file_part(r.file, _photo(r)) + END, MULTIPART, 422, "invalid_fields"),
    Fault("a file name that is not UTF-8",
          lambda r: file_part(r.file, _photo(r), b'filename="\xff\xfe.jpg"') + END,
          MULTIPART, 422, "invalid_filename"),
    Fault("a file name with a NUL",
          lambda r: file_part(r.file, _photo(r), b"filename*=utf-8''SKU-1%00.jpg") + END,
          MULTIPART, 422, "invalid_filename"),
    Fault("two files where one is taken",
          lambda r: file_part(r.file, _photo(r)) * 2 + END, MULTIPART, 413, "too_many_files",
          skip=lambda r: r.name == "images_import"),
]


@pytest.fixture
async def call(client, login_as, make_image):
    """``await call(route, body, content_type)`` → (status, error code or None for a page)."""
    record = await make_image("SKU-1")
    await login_as("admin")
    _, session = await sign_in(client)
    tokens = {role: await login_as(role) for role in ("importer", "reviewer")}

    def target(route: Route) -> tuple[str, dict[str, str], bytes]:
        path = route.path.format(id=record["id"])
        if route.page == "header":
            return path, {**session_cookie(session), "X-CSRF-Token": csrf_token(session)}, b""
        if route.page == "field":
            return path, session_cookie(session), field("csrf_token",
                                                        csrf_token(session).encode())
        return path, tokens[route.role], b""

    async def send(route: Route, body: bytes, content_type: str | None):
        path, headers, prefix = target(route)
        if content_type is not None:
            headers = {**headers, "Content-Type": content_type}
        if content_type and content_type.startswith("multipart/form-data"):
            body = prefix + body
        response = await client.request(route.method, path, data=body or None,
                                        headers=headers, allow_redirects=False)
        if route.page:
            assert response.content_type == "text/html"
            return response.status, None
        error = await response.json()
        assert_error(error)
        return response.status, error["error"]["code"], error["error"]["details"]

    send.target = target  # type: ignore[attr-defined]
    return send


def _applies(route: Route, fault: Fault) -> bool:
    """Whether ``fault`` is one on ``route``: not where the route takes it as valid, and not a
    non-form body on a page whose CSRF field rides in the form (that is a 403, tested below)."""
    if fault.skip(route):
        return False
    return route.page != "field" or (fault.content_type or "").startswith("multipart/form-data")


@pytest.mark.parametrize(("route", "fault"), [
    pytest.param(route, fault, id=f"{route.name}-{fault.name}")
    for route in ROUTES for fault in FAULTS if _applies(route, fault)])
async def test_one_fault_one_answer_on_every_upload_route(call, route, fault):
    answer = await call(route, fault.body(route), fault.content_type)
    assert answer[0] == fault.status, answer
    if not route.page:
        assert answer[1] == fault.code, answer


@pytest.mark.parametrize("route", [r for r in ROUTES if not r.page], ids=lambda r: r.name)
async def test_a_missing_file_names_the_field(call, route):
    status, code, details = await call(route, field("code", b"SKU-1") + END, MULTIPART)
    assert (status, code) == (422, "no_files")
    assert route.file in details["fields"]


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
async def test_a_declared_length_over_the_limit_is_413_before_reading(client, call, route):
    path, headers, _ = call.target(route)
    head = (f"{route.method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {MULTIPART}\r\n"
            f"Content-Length: {REQUEST_MB * MB + CSV_LIMIT + 1}\r\n").encode()
    head += b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())
    answer = await raw_request(client.server.host, client.server.port, head, b"--" + B)
    assert answer.status == 413
    assert answer.headers.get("connection") == "close"
    if not route.page:
        assert_error(answer.json(), "too_large")


async def test_a_page_form_without_a_body_to_carry_its_token_is_403(call):
    route = next(r for r in ROUTES if r.page == "field")
    status, _ = await call(route, b'{"file": "x"}', "application/json")
    assert status == 403
