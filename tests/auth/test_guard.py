"""The guard: the authorization table, generated from ROUTES, and tokens that stop working."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from ecogram import keys
from ecogram.app import create_app
from ecogram.auth.roles import PUBLIC, ROLES, allows
from ecogram.routes import ROUTES, Route
from tests.auth.conftest import bearer, token_of
from tests.conftest import PASSWORD, assert_error

CALLERS = ("anonymous", *ROLES)
API_ROUTES = [route for route in ROUTES if route.path.startswith("/api/v1")]
_PARAM = re.compile(r"\{(\w+)(?::((?:[^{}]|\{[^{}]*\})+))?\}")


def _sample(pattern: str) -> str:
    """A value that the route's parameter pattern accepts (aiohttp's default: [^{}/]+)."""
    candidates = ["1", "x", *re.findall(r"[A-Za-z][A-Za-z0-9_-]*", pattern)]
    for candidate in candidates:
        if re.fullmatch(pattern, candidate):
            return candidate
    raise AssertionError(f"no sample value for the route parameter pattern {pattern!r}")


def concrete_path(path: str) -> str:
    return _PARAM.sub(lambda m: _sample(m.group(2) or r"[^{}/]+"), path)


def expected(route: Route, caller: str) -> str:
    if route.access == PUBLIC:
        return "allowed"
    if caller == "anonymous":
        return "401"
    return "allowed" if allows(caller, route.access) else "403"


def test_the_table_covers_the_account_routes():
    names = {route.name for route in API_ROUTES}
    assert {"auth_register", "auth_login", "auth_me", "users_list", "users_update"} <= names
    assert concrete_path(r"/api/v1/users/{id:\d+}") == "/api/v1/users/1"
    assert concrete_path("/api/v1/exports/{format:(shopify|json|zip)}") == "/api/v1/exports/shopify"
    assert concrete_path("/api/v1/imports/{id}") == "/api/v1/imports/1"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", API_ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_authorization_table(client, login_as, route, caller):
    headers = {} if caller == "anonymous" else await login_as(caller)
    path = concrete_path(route.path)
    # An empty JSON object: enough to get past the guard, never a valid request for a change.
    kwargs = {"json": {}} if route.method in ("POST", "PUT", "PATCH") else {}
    response = await client.request(route.method, path, headers=headers, **kwargs)
    outcome = expected(route, caller)
    body = await response.read()
    if outcome == "401":
        assert response.status == 401, body
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert_error(await response.json(), "unauthorized")
    elif outcome == "403":
        assert response.status == 403, body
        assert_error(await response.json(), "forbidden")
    else:
        # Past the guard: whatever the handler makes of an empty request (404, 422, ...).
        assert response.status not in (401, 403), body


def test_a_route_without_a_valid_access_is_refused():
    async def handler(request):
        return web.Response()

    for access in ("superuser", "", "Admin", None):
        with pytest.raises(ValueError, match="unknown access"):
            Route("GET", "/api/v1/x", handler, "x", access)
    assert Route("GET", "/api/v1/x", handler, "x", "reviewer").access == "reviewer"


def test_every_route_the_app_serves_is_declared(settings):
    """Nothing reaches a handler without passing the guard's declared access."""
    app = create_app(settings)
    declared = app[keys.route_table]
    undeclared = [
        f"{route.method} {route.resource.canonical}"
        for route in app.router.routes()
        if not isinstance(route.resource, web.StaticResource) and route not in declared
    ]
    assert undeclared == []


def test_every_declared_handler_is_registered_behind_its_access(settings):
    """The handler aiohttp calls is the guarded one; only public machine routes (no session
    at all) are registered bare."""
    app = create_app(settings)
    bare = []
    for route, declared in app[keys.route_table].items():
        if getattr(route.handler, "access", None) == declared.access:
            continue
        assert declared.access == PUBLIC, f"{declared.name} is registered without its guard"
        bare.append(declared.path)
    assert all(path.startswith(("/img/", "/healthz", "/readyz", "/metrics", "/api/"))
               for path in bare), bare
    assert "/img/{code}" in bare


async def test_unknown_paths_are_404_for_everyone(client, login_as):
    for headers in ({}, await login_as("viewer")):
        response = await client.get("/api/v1/no-such-thing", headers=headers)
        assert response.status == 404
        assert_error(await response.json(), "not_found")
    page = await client.get("/no-such-page", allow_redirects=False)
    assert page.status == 404


async def test_a_disabled_users_live_token_is_refused(client, login_as, api, conn):
    viewer = await login_as("viewer")
    admin = await login_as("admin")
    me = await (await client.get("/api/v1/auth/me", headers=viewer)).json()
    response = await client.patch(f"/api/v1/users/{me['id']}", json={"disabled": True},
                                  headers=admin)
    assert response.status == 200 and (await response.json())["disabled"] is True
    refused = await client.get("/api/v1/auth/me", headers=viewer)
    assert refused.status == 401
    assert_error(await refused.json(), "unauthorized")
    # Nor can the disabled user sign in again: the same answer as a wrong password.
    login = await api.login("viewer@example.com")
    assert login.status == 401
    assert_error(await login.json(), "invalid_credentials")
    # Enabling again does not revive the old token; a new sign-in works.
    await client.patch(f"/api/v1/users/{me['id']}", json={"disabled": False}, headers=admin)
    assert (await client.get("/api/v1/auth/me", headers=viewer)).status == 401
    assert (await api.me(await api.token("viewer@example.com"))).status == 200


async def test_a_role_change_ends_live_tokens(client, login_as, api):
    viewer = await login_as("viewer")
    admin = await login_as("admin")
    me = await (await client.get("/api/v1/auth/me", headers=viewer)).json()
    response = await client.patch(f"/api/v1/users/{me['id']}", json={"role": "reviewer"},
                                  headers=admin)
    assert response.status == 200
    assert (await client.get("/api/v1/auth/me", headers=viewer)).status == 401
    fresh = await api.me(await api.token("viewer@example.com"))
    assert (await fresh.json())["role"] == "reviewer"


async def test_the_admins_own_demotion_ends_their_token(client, login_as):
    admin = await login_as("admin")
    await login_as("viewer")
    other = await (await client.get("/api/v1/users", headers=admin)).json()
    viewer_id = next(u["id"] for u in other["items"] if u["role"] == "viewer")
    await client.patch(f"/api/v1/users/{viewer_id}", json={"role": "admin"}, headers=admin)
    me = await (await client.get("/api/v1/auth/me", headers=admin)).json()
    response = await client.patch(f"/api/v1/users/{me['id']}", json={"role": "viewer"},
                                  headers=admin)
    assert response.status == 200
    assert (await client.get("/api/v1/users", headers=admin)).status == 401


async def test_a_password_change_ends_live_tokens(client, login_as, api):
    viewer = await login_as("viewer")
    second = bearer(await api.token("viewer@example.com"))  # another live session
    response = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "an entirely new passphrase"},
        headers=viewer,
    )
    assert response.status == 200, await response.text()
    new_token = (await response.json())["access_token"]
    for old in (viewer, second):
        assert (await client.get("/api/v1/auth/me", headers=old)).status == 401
    assert (await api.me(new_token)).status == 200
    assert (await api.login("viewer@example.com")).status == 401
    assert (await api.login("viewer@example.com", "an entirely new passphrase")).status == 200


async def test_an_operator_password_reset_ends_live_tokens(client, login_as, conn):
    from ecogram.catalog import accounts

    viewer = await login_as("viewer")
    me = await (await client.get("/api/v1/auth/me", headers=viewer)).json()
    await accounts.set_password(conn, me["id"], "reset by the operator 1")
    assert (await client.get("/api/v1/auth/me", headers=viewer)).status == 401


async def test_a_wrong_current_password_changes_nothing(client, login_as):
    viewer = await login_as("viewer")
    response = await client.post(
        "/api/v1/auth/password",
        json={"current_password": "not the password", "new_password": "an entirely new one"},
        headers=viewer,
    )
    assert response.status == 422
    assert_error(await response.json(), "invalid_fields")
    assert (await client.get("/api/v1/auth/me", headers=viewer)).status == 200


async def test_logout_revokes_the_token_and_only_that_one(client, login_as, api, conn):
    viewer = await login_as("viewer")
    other_session = bearer(await api.token("viewer@example.com"))
    response = await client.post("/api/v1/auth/logout", headers=viewer)
    assert response.status == 204
    refused = await client.get("/api/v1/auth/me", headers=viewer)
    assert refused.status == 401
    assert_error(await refused.json(), "unauthorized")
    assert (await client.post("/api/v1/auth/logout", headers=viewer)).status == 401
    assert (await client.get("/api/v1/auth/me", headers=other_session)).status == 200
    from tests.auth.conftest import claims_of

    jti = claims_of(token_of(viewer))["jti"]
    assert await conn.fetchval("SELECT count(*) FROM revoked_tokens WHERE jti = $1", jti) == 1
