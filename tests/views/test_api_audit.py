"""The audit trail: every operation lands in it; admins read it; nothing changes it."""

from __future__ import annotations

import pytest

from tests.conftest import assert_error


async def test_every_operation_is_audited_and_filterable(client, login_as, make_image, conn):
    admin = await login_as("admin")
    record = await make_image("AUD-1")
    other = await make_image("AUD-1")
    await client.patch(f"/api/v1/images/{record['id']}", json={"alt": "New alt"},
                       headers=await login_as("importer"))
    await client.post(f"/api/v1/images/{record['id']}/approve",
                      headers=await login_as("reviewer"))
    await client.post(f"/api/v1/images/{other['id']}/reject", json={"reason": "dark"},
                      headers=await login_as("reviewer"))
    await client.get("/api/v1/exports/json", headers=admin)
    await client.delete(f"/api/v1/images/{other['id']}", headers=admin)
    await client.post(f"/api/v1/images/{other['id']}/purge", headers=admin)

    response = await client.get(f"/api/v1/audit?image_id={record['id']}", headers=admin)
    body = await response.json()
    assert response.status == 200, body
    assert set(body) == {"items", "total", "page", "per_page"}
    actions = [item["action"] for item in body["items"]]
    assert actions == ["image.approved", "image.edited", "image.imported"]  # newest first
    edit = body["items"][1]
    assert edit["actor"] == "Importer User" and edit["at"]
    assert edit["details"]["alt"] == {"before": "", "after": "New alt"}

    async def actions_for(query: str) -> list[str]:
        response = await client.get(f"/api/v1/audit?{query}", headers=admin)
        assert response.status == 200
        return [item["action"] for item in (await response.json())["items"]]

    assert await actions_for(f"image_id={other['id']}") == [
        "image.purged", "image.deleted", "image.rejected", "image.imported"]
    assert await actions_for("action=export") == ["export"]
    assert "image.rejected" in await actions_for("actor=Reviewer%20User")
    assert {"image.approved", "image.rejected", "login"} <= set(
        await actions_for("actor=reviewer user"))
    assert "user.role" in await actions_for("per_page=200")  # role changes by the admin
    assert "login" in await actions_for("per_page=200")
    assert await actions_for("since=2999-01-01") == []
    assert await actions_for("until=2000-01-01") == []
    response = await client.get("/api/v1/audit?per_page=1&page=2", headers=admin)
    body = await response.json()
    assert len(body["items"]) == 1 and body["total"] > 10


async def test_audit_is_for_admins_only(client, login_as):
    for role in ("viewer", "importer", "reviewer"):
        response = await client.get("/api/v1/audit", headers=await login_as(role))
        assert response.status == 403
        assert_error(await response.json())
    assert (await client.get("/api/v1/audit")).status == 401


@pytest.mark.parametrize("query", ["per_page=500", "page=0", "image_id=x", "since=never"])
async def test_audit_refuses_bad_parameters(client, login_as, query):
    response = await client.get(f"/api/v1/audit?{query}", headers=await login_as("admin"))
    assert response.status == 422
    assert_error(await response.json(), "invalid_fields")


async def test_nothing_in_the_api_changes_the_audit(client, login_as, make_image, conn):
    await make_image()
    admin = await login_as("admin")
    before = await conn.fetch("SELECT * FROM audit_log ORDER BY id")
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        response = await client.request(method, "/api/v1/audit", headers=admin, json={})
        assert response.status == 405, method
        assert_error(await response.json())
    entry_id = before[0]["id"]
    response = await client.delete(f"/api/v1/audit/{entry_id}", headers=admin)
    assert response.status in (404, 405)
    after = await conn.fetch("SELECT * FROM audit_log ORDER BY id")
    assert after[: len(before)] == before
    # And the database itself refuses, whatever a future bug might try.
    with pytest.raises(Exception, match="append-only"):
        await conn.execute("DELETE FROM audit_log")
