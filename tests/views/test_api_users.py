"""/api/v1/users: the admins' list, role and disabled changes, and the last admin."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import PASSWORD, assert_error


async def user_id(client, headers) -> int:
    return (await (await client.get("/api/v1/auth/me", headers=headers)).json())["id"]


async def test_admins_list_users_without_secrets(client, login_as):
    admin = await login_as("admin")
    await login_as("reviewer")
    response = await client.get("/api/v1/users", headers=admin)
    assert response.status == 200
    body = await response.json()
    assert body["total"] == 2
    assert [u["role"] for u in body["items"]] == ["admin", "reviewer"]
    for user in body["items"]:
        assert "password_hash" not in user and "token_version" not in user
        assert set(user) == {"id", "email", "name", "role", "disabled", "created_at",
                             "updated_at"}


@pytest.mark.parametrize("role", ["viewer", "importer", "reviewer"])
async def test_non_admins_cannot_list_or_change_users(client, login_as, role):
    headers = await login_as(role)
    me = await user_id(client, headers)
    assert (await client.get("/api/v1/users", headers=headers)).status == 403
    response = await client.patch(f"/api/v1/users/{me}", json={"role": "admin"}, headers=headers)
    assert response.status == 403
    assert_error(await response.json(), "forbidden")
    assert (await (await client.get("/api/v1/auth/me", headers=headers)).json())["role"] == role


async def test_an_admin_changes_a_role(client, login_as):
    admin = await login_as("admin")
    viewer = await login_as("viewer")
    target = await user_id(client, viewer)
    response = await client.patch(f"/api/v1/users/{target}", json={"role": "importer"},
                                  headers=admin)
    assert response.status == 200
    body = await response.json()
    assert body["role"] == "importer" and body["id"] == target
    assert "token_version" not in body and "password_hash" not in body


async def test_an_unchanged_value_keeps_tokens_alive(client, login_as):
    admin = await login_as("admin")
    viewer = await login_as("viewer")
    target = await user_id(client, viewer)
    response = await client.patch(f"/api/v1/users/{target}", json={"role": "viewer"},
                                  headers=admin)
    assert response.status == 200
    assert (await client.get("/api/v1/auth/me", headers=viewer)).status == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"role": "superuser"},
        {"role": None},
        {"disabled": "yes"},
        {"disabled": 1},
        {"name": "New name"},
        {"password_hash": "x"},
        {"token_version": 99},
    ],
)
async def test_invalid_changes_are_422_and_change_nothing(client, login_as, conn, body):
    admin = await login_as("admin")
    viewer = await login_as("viewer")
    target = await user_id(client, viewer)
    before = await conn.fetchrow("SELECT * FROM users WHERE id = $1", target)
    response = await client.patch(f"/api/v1/users/{target}", json=body, headers=admin)
    assert response.status == 422
    assert_error(await response.json(), "invalid_fields")
    assert await conn.fetchrow("SELECT * FROM users WHERE id = $1", target) == before


async def test_an_unknown_user_is_404(client, login_as):
    admin = await login_as("admin")
    for path in ("/api/v1/users/999999", "/api/v1/users/99999999999999999999999"):
        response = await client.patch(path, json={"role": "viewer"}, headers=admin)
        assert response.status == 404
        assert_error(await response.json(), "not_found")
    response = await client.patch("/api/v1/users/abc", json={"role": "viewer"}, headers=admin)
    assert response.status == 404


@pytest.mark.parametrize("change", [{"role": "reviewer"}, {"disabled": True}])
async def test_the_last_admin_cannot_be_removed(client, login_as, change):
    admin = await login_as("admin")
    me = await user_id(client, admin)
    response = await client.patch(f"/api/v1/users/{me}", json=change, headers=admin)
    assert response.status == 409
    assert_error(await response.json(), "last_admin")
    assert (await client.get("/api/v1/users", headers=admin)).status == 200


async def test_a_disabled_admin_does_not_count_as_the_other_admin(client, login_as):
    admin = await login_as("admin")
    second = await user_id(client, await login_as("viewer"))
    await client.patch(f"/api/v1/users/{second}", json={"role": "admin"}, headers=admin)
    await client.patch(f"/api/v1/users/{second}", json={"disabled": True}, headers=admin)
    me = await user_id(client, admin)
    response = await client.patch(f"/api/v1/users/{me}", json={"role": "viewer"}, headers=admin)
    assert response.status == 409


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(client, login_as, conn):
    first = await login_as("admin")
    await login_as("viewer")
    second_id = await conn.fetchval("SELECT id FROM users WHERE email = 'viewer@example.com'")
    await client.patch(f"/api/v1/users/{second_id}", json={"role": "admin"}, headers=first)
    token = await client.post(
        "/api/v1/auth/login", json={"email": "viewer@example.com", "password": PASSWORD}
    )
    second = {"Authorization": f"Bearer {(await token.json())['access_token']}"}
    first_id = await user_id(client, first)
    for _ in range(3):  # several rounds: the race has more than one chance to show
        responses = await asyncio.gather(
            client.patch(f"/api/v1/users/{second_id}", json={"disabled": True}, headers=first),
            client.patch(f"/api/v1/users/{first_id}", json={"role": "viewer"}, headers=second),
        )
        statuses = sorted(r.status for r in responses)
        assert statuses in ([200, 401], [200, 409]), statuses
        assert await conn.fetchval(
            "SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled"
        ) == 1
        # Back to two admins for the next round (whoever is still admin restores the other).
        await conn.execute("UPDATE users SET role = 'admin', disabled = false")
        first = await _fresh(client, "admin@example.com")
        second = await _fresh(client, "viewer@example.com")


async def _fresh(client, email: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert response.status == 200
    return {"Authorization": f"Bearer {(await response.json())['access_token']}"}


async def test_the_demo_account_never_counts_as_the_other_admin(client, login_as, conn):
    from ecogram.catalog.accounts import DEMO_EMAIL

    admin = await login_as("admin")
    demo_id = await conn.fetchval(
        "INSERT INTO users (email, name, password_hash, role) VALUES ($1, 'Demo', 'x', 'admin') "
        "RETURNING id", DEMO_EMAIL)
    me = await user_id(client, admin)
    # Nobody can sign in as the demo: the last real admin stays.
    response = await client.patch(f"/api/v1/users/{me}", json={"role": "viewer"}, headers=admin)
    assert response.status == 409
    assert_error(await response.json(), "last_admin")
    # And the demo's admin role can be taken away while only one real admin exists.
    response = await client.patch(f"/api/v1/users/{demo_id}", json={"role": "importer"},
                                  headers=admin)
    assert response.status == 200, await response.text()
