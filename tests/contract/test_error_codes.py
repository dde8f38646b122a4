"""The error codes clients program against, pinned: one request per kind of fault and route
family, its status and its code. The typed models moved validation out of the views; these
answers did not move (except where docs/api.md says: the renditions export's unknown channel
is a 404, a wrong /img signature a 403)."""

from __future__ import annotations

import pytest

from tests.conftest import assert_error
from tests.views.cdn_support import fixture_bytes, publish

JSON = {"Content-Type": "application/json"}
# (role or None, method, path, body or raw bytes, headers) -> (status, code)
CASES = [
    (None, "GET", "/api/v1/images", None, {}, 401, "unauthorized"),
    ("viewer", "GET", "/api/v1/audit", None, {}, 403, "forbidden"),
    ("viewer", "GET", "/api/v1/images/999999", None, {}, 404, "not_found"),
    ("viewer", "GET", "/api/v1/images?page=0", None, {}, 422, "invalid_fields"),
    ("viewer", "GET", "/api/v1/images?status=lost", None, {}, 422, "invalid_fields"),
    ("viewer", "GET", "/api/v1/images?since=yesterday", None, {}, 422, "invalid_fields"),
    ("viewer", "GET", "/api/v1/images?q=a%00b", None, {}, 422, "invalid_fields"),
    ("importer", "PATCH", "/api/v1/images/1", b"{not json", JSON, 400, "invalid_json"),
    ("importer", "PATCH", "/api/v1/images/1", b"[1]", JSON, 400, "invalid_json"),
    ("importer", "PATCH", "/api/v1/images/1", b"{}", {"Content-Type": "text/plain"}, 415,
     "unsupported_type"),
    ("importer", "PATCH", "/api/v1/images/1", {}, {}, 422, "invalid_fields"),
    # Deeply nested: checked without recursion (a 500-deep array once was a RecursionError).
    ("importer", "PATCH", "/api/v1/images/1", b'{"alt": ' + b"[" * 500 + b"]" * 500 + b"}",
     JSON, 422, "invalid_fields"),
    ("importer", "PATCH", "/api/v1/images/1", {"position": 2.5}, {}, 422, "invalid_fields"),
    ("importer", "PATCH", "/api/v1/images/1", {"position": "2"}, {}, 422, "invalid_fields"),
    ("importer", "PATCH", "/api/v1/images/1", {"status": "approved"}, {}, 422,
     "invalid_fields"),
    ("importer", "PATCH", "/api/v1/images/1", {"alt": "x", "version": 99}, {}, 409,
     "edit_conflict"),
    ("reviewer", "POST", "/api/v1/images/1/reject", {}, {}, 422, "invalid_fields"),
    ("reviewer", "POST", "/api/v1/reviews", {"ids": [1], "action": "burn"}, {}, 422,
     "invalid_fields"),
    ("reviewer", "POST", "/api/v1/reviews", {"ids": [], "action": "approve"}, {}, 422,
     "invalid_fields"),
    (None, "POST", "/api/v1/auth/login", {"email": "nobody@example.com", "password": "x" * 12},
     {}, 401, "invalid_credentials"),
    (None, "POST", "/api/v1/auth/register", {"email": "a@b.co", "name": "A", "password": "short"},
     {}, 422, "invalid_fields"),
    ("admin", "PATCH", "/api/v1/users/1", {"role": "viewer"}, {}, 409, "last_admin"),
    ("admin", "PATCH", "/api/v1/users/1", {"role": "owner"}, {}, 422, "invalid_fields"),
    ("reviewer", "GET", "/api/v1/exports/shopify?status=gone", None, {}, 422, "invalid_fields"),
    ("reviewer", "GET", "/api/v1/exports/renditions", None, {}, 422, "invalid_fields"),
    ("reviewer", "GET", "/api/v1/exports/renditions?channel=ebay", None, {}, 404, "not_found"),
    ("viewer", "GET", "/api/v1/channels/ebay", None, {}, 404, "not_found"),
    ("viewer", "GET", "/api/v1/channels/vtex/readiness?ready=maybe", None, {}, 422,
     "invalid_fields"),
    ("reviewer", "PUT", "/api/v1/channels/vtex/products/SKU-1", {"external_id": ""}, {}, 422,
     "invalid_fields"),
    ("importer", "PUT", "/api/v1/images/1/file", b"{}", JSON, 415, "unsupported_type"),
    (None, "GET", "/img/PIN-1?w=401", None, {}, 400, "size_not_allowed"),
    (None, "GET", "/img/PIN-1?w=abc", None, {}, 400, "invalid_parameter"),
    (None, "GET", "/img/PIN-1?w=401&s=forged", None, {}, 403, "invalid_signature"),
    (None, "GET", "/img/NO-SUCH", None, {}, 404, "not_found"),
]


@pytest.mark.parametrize(("role", "method", "path", "body", "headers", "status", "code"),
                         CASES, ids=[f"{c[1]} {c[2]} {c[6]}" for c in CASES])
async def test_the_error_code_is_pinned(client, login_as, role, method, path, body, headers,
                                        status, code):
    admin = await login_as("admin")  # the first account: admin, id 1
    await publish(client, login_as, fixture_bytes("valid/xmp_test.jpg"), "PIN-1")
    sent = dict(headers)
    if role is not None:
        sent.update(admin if role == "admin" else await login_as(role))
    if isinstance(body, bytes):
        response = await client.request(method, path, data=body, headers=sent)
    elif body is not None:
        response = await client.request(method, path, json=body, headers=sent)
    else:
        response = await client.request(method, path, headers=sent)
    assert response.status == status, await response.text()
    assert_error(await response.json(), code)
