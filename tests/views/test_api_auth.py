"""/api/v1/auth: register, login, me, logout, password — and what they never reveal."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from ecogram.app import create_app
from ecogram.auth import passwords
from tests.conftest import PASSWORD, assert_error

USER_FIELDS = {"id", "email", "name", "role", "disabled", "created_at", "updated_at"}


async def register(client, email="ada@example.com", name="Ada", password=PASSWORD):
    return await client.post(
        "/api/v1/auth/register", json={"email": email, "name": name, "password": password}
    )


async def login(client, email="ada@example.com", password=PASSWORD):
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def test_the_first_user_becomes_admin_then_viewers(client):
    first = await register(client)
    assert first.status == 201
    body = await first.json()
    assert set(body) == USER_FIELDS
    assert body["role"] == "admin" and body["email"] == "ada@example.com"
    second = await register(client, "bob@example.com", "Bob")
    assert (await second.json())["role"] == "viewer"


async def test_two_concurrent_first_registrations_make_one_admin(client, conn):
    responses = await asyncio.gather(
        *(register(client, f"user{n}@example.com", f"User {n}") for n in range(6))
    )
    assert [r.status for r in responses] == [201] * 6
    roles = sorted([(await r.json())["role"] for r in responses])
    assert roles == ["admin"] + ["viewer"] * 5
    assert await conn.fetchval("SELECT count(*) FROM users WHERE role = 'admin'") == 1


async def test_closed_registration_refuses_after_the_first_user(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings.replace(registration="closed")))
    assert (await register(client)).status == 201  # an empty database still gets its admin
    response = await register(client, "bob@example.com", "Bob")
    assert response.status == 403
    assert_error(await response.json(), "registration_closed")


async def test_while_no_active_admin_exists_the_first_registration_is_admin(client, conn):
    """After `ecogram demo` (its importer, an admin-in-name demo account, a disabled admin,
    accounts made by create-user) nobody can administer: the next account registered can."""
    from ecogram.catalog.accounts import DEMO_EMAIL

    await conn.execute(
        "INSERT INTO users (email, name, password_hash, role, disabled) VALUES "
        "($1, 'Demo', 'x', 'importer', false), ('old@example.com', 'Old', 'x', 'admin', true), "
        "('imp@example.com', 'Imp', 'x', 'importer', false)", DEMO_EMAIL)
    first = await register(client)
    assert (await first.json())["role"] == "admin"
    second = await register(client, "bob@example.com", "Bob")
    assert (await second.json())["role"] == "viewer"
    # The demo's account never counts as an admin, even promoted by hand.
    await conn.execute("UPDATE users SET role = 'admin' WHERE lower(email) = $1", DEMO_EMAIL)
    await conn.execute("UPDATE users SET disabled = true WHERE email = 'ada@example.com'")
    third = await register(client, "cy@example.com", "Cy")
    assert (await third.json())["role"] == "admin"


async def test_closed_registration_still_makes_the_first_admin_after_the_demo(
    aiohttp_client, settings, conn
):
    from ecogram.catalog.accounts import DEMO_EMAIL

    await conn.execute("INSERT INTO users (email, name, password_hash, role) VALUES "
                       "($1, 'Demo', 'x', 'importer')", DEMO_EMAIL)
    client = await aiohttp_client(create_app(settings.replace(registration="closed")))
    assert (await (await register(client)).json())["role"] == "admin"
    assert (await register(client, "bob@example.com", "Bob")).status == 403


async def test_a_closed_install_whose_operator_made_accounts_cannot_be_claimed(
    aiohttp_client, settings, conn
):
    """Closed registration: an operator who made accounts with create-user (none of them admin)
    decides who administers; a stranger registering does not become admin."""
    await conn.execute("INSERT INTO users (email, name, password_hash, role) VALUES "
                       "('imp@example.com', 'Imp', 'x', 'importer')")
    client = await aiohttp_client(create_app(settings.replace(registration="closed")))
    response = await register(client)
    assert response.status == 403
    assert_error(await response.json(), "registration_closed")
    assert await conn.fetchval("SELECT count(*) FROM users") == 1


async def test_the_demo_address_cannot_be_registered(client):
    from ecogram.catalog.accounts import DEMO_EMAIL

    response = await register(client, DEMO_EMAIL.upper(), "Not the demo")
    assert response.status == 422
    assert_error(await response.json(), "invalid_fields")


async def test_an_email_is_taken_whatever_its_case(client):
    await register(client)
    response = await register(client, "ADA@Example.COM", "Ada again")
    assert response.status == 409
    assert_error(await response.json(), "email_taken")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Ada", "password": PASSWORD}, "email"),
        ({"email": "not-an-email", "name": "Ada", "password": PASSWORD}, "email"),
        ({"email": ["a@b.c"], "name": "Ada", "password": PASSWORD}, "email"),
        ({"email": "ada@example.com", "password": PASSWORD}, "name"),
        ({"email": "ada@example.com", "name": "x" * 201, "password": PASSWORD}, "name"),
        ({"email": "ada@example.com", "name": "Ada"}, "password"),
        ({"email": "ada@example.com", "name": "Ada", "password": "short"}, "password"),
        ({"email": "ada@example.com", "name": "Ada", "password": 1234567890123}, "password"),
        ({"email": "ada@example.com", "name": "Ada", "password": "ada@example.com"}, "password"),
    ],
)
async def test_registration_fields_are_checked(client, conn, body, field):
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status == 422
    payload = await response.json()
    assert_error(payload, "invalid_fields")
    assert payload["error"]["details"]["field"] == field
    assert await conn.fetchval("SELECT count(*) FROM users") == 0


@pytest.mark.parametrize(
    ("data", "headers", "status", "code"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "invalid_json"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "invalid_json"),
        (b"\xff\xfe", {"Content-Type": "application/json"}, 400, "invalid_json"),
        (b"email=a", {"Content-Type": "text/plain"}, 415, "unsupported_type"),
        (b"{" + b" " * 70000 + b"}", {"Content-Type": "application/json"}, 413, "too_large"),
    ],
)
async def test_bad_bodies_are_refused_in_the_error_shape(client, data, headers, status, code):
    for path in ("/api/v1/auth/register", "/api/v1/auth/login"):
        response = await client.post(path, data=data, headers=headers)
        assert response.status == status
        assert_error(await response.json(), code)


async def test_login_returns_a_bearer_token(client):
    await register(client)
    response = await login(client)
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status == 200
    assert set(await me.json()) == USER_FIELDS


async def test_the_token_lifetime_follows_the_setting(aiohttp_client, settings):
    client = await aiohttp_client(create_app(settings.replace(token_ttl=120)))
    await register(client)
    assert (await (await login(client)).json())["expires_in"] == 120


async def test_login_is_case_insensitive_on_the_email(client):
    await register(client)
    assert (await login(client, "  ADA@example.com ")).status == 200


async def test_wrong_password_and_unknown_email_get_the_same_answer(client, monkeypatch):
    await register(client)
    verified: list[str] = []
    real = passwords.HASHER

    class Counting:
        def __getattr__(self, name):
            return getattr(real, name)

        def verify(self, stored, password):
            verified.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(passwords, "HASHER", Counting())
    wrong = await login(client, password="not the password")
    unknown = await login(client, email="nobody@example.com", password="not the password")
    assert wrong.status == unknown.status == 401
    assert await wrong.json() == await unknown.json()
    assert_error(await wrong.json(), "invalid_credentials")
    # Both paths ran exactly one argon2 verification, the unknown one against a dummy hash
    # with the same parameters: the same cost.
    assert len(verified) == 2
    assert verified[0].split("$")[3] == verified[1].split("$")[3]
    assert verified[0] != verified[1]


async def test_login_rehashes_a_hash_with_old_parameters(client, conn):
    from argon2 import PasswordHasher, Type

    await register(client)
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(PASSWORD)
    await conn.execute("UPDATE users SET password_hash = $1", old)
    version = await conn.fetchval("SELECT token_version FROM users")
    assert (await login(client)).status == 200
    stored = await conn.fetchval("SELECT password_hash FROM users")
    assert stored != old and not passwords.needs_rehash(stored)
    assert await passwords.verify_password(stored, PASSWORD)
    # The same password: live tokens stay valid.
    assert await conn.fetchval("SELECT token_version FROM users") == version
    assert (await login(client)).status == 200


async def test_me_needs_a_token(client):
    response = await client.get("/api/v1/auth/me")
    assert response.status == 401
    assert_error(await response.json(), "unauthorized")


async def test_passwords_are_never_stored_logged_or_returned(client, conn, caplog):
    secret = "unmistakable-passphrase-4711"
    with caplog.at_level(logging.DEBUG):
        responses = [
            await register(client, password=secret),
            await login(client, password=secret),
            await login(client, password=secret + "-wrong"),
            await login(client, email="nobody@example.com", password=secret),
            await register(client, "bob@example.com", "Bob", password="tiny-7Qz"),
        ]
        token = (await responses[1].json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        responses.append(await client.get("/api/v1/auth/me", headers=headers))
        responses.append(await client.get("/api/v1/users", headers=headers))
        responses.append(await client.post(
            "/api/v1/auth/password",
            json={"current_password": secret, "new_password": secret + "-new"},
            headers=headers,
        ))
    texts = [await r.text() for r in responses]
    for text in texts:
        assert secret not in text
        assert "password_hash" not in text and "token_version" not in text
        assert "$argon2" not in text
    logged = "\n".join(
        record.getMessage() + repr(record.args) + str(record.exc_info) for record in caplog.records
    )
    assert secret not in logged and "tiny-7Qz" not in logged
    assert "tiny-7Qz" not in "".join(texts)
    row = await conn.fetchrow("SELECT * FROM users WHERE email = 'ada@example.com'")
    assert row["password_hash"].startswith("$argon2id$")
    for value in row.values():
        assert secret not in str(value)
    audit = await conn.fetch("SELECT * FROM audit_log")
    tables = json.dumps([dict(r) for r in audit], default=str)
    for table in ("login_failures", "revoked_tokens"):
        rows = await conn.fetch(f"SELECT * FROM {table}")
        tables += json.dumps([dict(r) for r in rows], default=str)
    assert secret not in tables and "$argon2" not in tables


async def test_logout_through_the_api(client):
    await register(client)
    token = (await (await login(client)).json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/api/v1/auth/logout", headers=headers)).status == 204
    assert (await client.get("/api/v1/auth/me", headers=headers)).status == 401


async def test_audit_entries_for_account_events(client, conn):
    await register(client)
    await register(client, "bob@example.com", "Bob")
    await login(client, password="not the password")
    token = (await (await login(client)).json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    bob = await conn.fetchval("SELECT id FROM users WHERE email = 'bob@example.com'")
    await client.patch(f"/api/v1/users/{bob}", json={"role": "importer"}, headers=headers)
    await client.patch(f"/api/v1/users/{bob}", json={"disabled": True}, headers=headers)
    await client.post("/api/v1/auth/logout", headers=headers)
    rows = await conn.fetch(
        "SELECT actor, action, target, client, details FROM audit_log ORDER BY id"
    )
    actions = [r["action"] for r in rows]
    assert actions == [
        "user.register", "user.register", "login.failed", "login", "user.role", "user.disabled",
        "logout",
    ]
    failed = rows[2]
    assert failed["details"] == {"reason": "wrong_password"} and failed["client"]
    role = rows[4]
    assert role["actor"] == "Ada" and role["target"] == f"user:{bob}"
    assert role["details"]["role"] == {"before": "viewer", "after": "importer"}
    assert rows[5]["details"]["disabled"] == {"before": False, "after": True}
