"""Review API: approve, reject (reason required), bulk, races, roles."""

from __future__ import annotations

import asyncio

import pytest

from ecogram.app import create_app
from tests.conftest import assert_error


async def test_approve_keeps_who_when_and_note(client, login_as, make_image, conn):
    record = await make_image()
    reviewer = await login_as("reviewer")
    response = await client.post(f"/api/v1/images/{record['id']}/approve",
                                 json={"reason": "sharp, white background"}, headers=reviewer)
    body = await response.json()
    assert response.status == 200, body
    assert (body["status"], body["reviewed_by"], body["review_note"]) == (
        "approved", "Reviewer User", "sharp, white background")
    assert body["reviewed_at"]
    row = await conn.fetchrow("SELECT reviewer_id, reviewer FROM images WHERE id = $1",
                              record["id"])
    assert row["reviewer"] == "Reviewer User" and row["reviewer_id"] is not None
    entry = await conn.fetchrow("SELECT * FROM audit_log WHERE action = 'image.approved'")
    assert entry["image_id"] == record["id"]
    assert entry["details"]["status"] == {"before": "pending", "after": "approved"}
    # Approving again: not pending any more.
    response = await client.post(f"/api/v1/images/{record['id']}/approve", headers=reviewer)
    assert response.status == 409
    assert_error(await response.json(), "not_pending")


async def test_reject_needs_a_reason(client, login_as, make_image, conn):
    record = await make_image()
    reviewer = await login_as("reviewer")
    for payload in (None, {}, {"reason": ""}, {"reason": "   "}, {"reason": 3}):
        response = await client.post(f"/api/v1/images/{record['id']}/reject", json=payload,
                                     headers=reviewer)
        assert response.status == 422, payload
        assert_error(await response.json(), "invalid_fields")
    assert await conn.fetchval("SELECT status FROM images WHERE id = $1",
                               record["id"]) == "pending"
    response = await client.post(f"/api/v1/images/{record['id']}/reject",
                                 json={"reason": "blurry"}, headers=reviewer)
    body = await response.json()
    assert (body["status"], body["review_note"]) == ("rejected", "blurry")
    response = await client.post(f"/api/v1/images/{record['id']}/approve", headers=reviewer)
    assert response.status == 409


async def test_review_needs_the_reviewer_role(client, login_as, make_image):
    record = await make_image()
    for role in ("viewer", "importer"):
        response = await client.post(f"/api/v1/images/{record['id']}/approve",
                                     headers=await login_as(role))
        assert response.status == 403
        assert_error(await response.json())
    response = await client.post(f"/api/v1/images/{record['id']}/approve")
    assert response.status == 401


async def test_unknown_and_deleted_images_are_404(client, login_as, make_image):
    record = await make_image()
    await client.delete(f"/api/v1/images/{record['id']}", headers=await login_as("admin"))
    for image_id in (record["id"], 987654):
        response = await client.post(f"/api/v1/images/{image_id}/approve",
                                     headers=await login_as("reviewer"))
        assert response.status == 404


async def test_bulk_reports_each_id(client, login_as, make_image):
    a, b = await make_image(), await make_image()
    done = await make_image(status="approved")
    reviewer = await login_as("reviewer")
    response = await client.post("/api/v1/reviews", headers=reviewer, json={
        "ids": [a["id"], done["id"], 999999, b["id"], a["id"]], "action": "approve"})
    body = await response.json()
    assert response.status == 200, body
    assert (body["succeeded"], body["failed"]) == (2, 2)
    by_id = {r["id"]: r for r in body["results"]}
    assert by_id[a["id"]]["record"]["status"] == "approved"
    assert by_id[b["id"]]["outcome"] == "ok"
    assert (by_id[done["id"]]["status"], by_id[done["id"]]["error"]["code"]) == (409,
                                                                                "not_pending")
    assert by_id[999999]["status"] == 404


@pytest.mark.parametrize("payload", [
    {"ids": [1], "action": "delete"}, {"ids": [], "action": "approve"},
    {"ids": "1,2", "action": "approve"}, {"ids": [1, "2"], "action": "approve"},
    {"ids": [True], "action": "approve"}, {"ids": [1], "action": "reject"},
    {"ids": list(range(1, 1100)), "action": "approve"}, {"action": "approve"},
])
async def test_bulk_refuses_bad_requests(client, login_as, payload):
    response = await client.post("/api/v1/reviews", json=payload,
                                 headers=await login_as("reviewer"))
    assert response.status == 422, payload
    assert_error(await response.json(), "invalid_fields")


async def test_two_reviewers_racing_get_one_success_and_one_409(
    client, aiohttp_client, settings, login_as, make_image, conn
):
    reviewer = await login_as("reviewer")
    admin = await login_as("admin")
    # A second application (its own pool) stands for a second server process.
    other = await aiohttp_client(create_app(settings))
    for _ in range(5):
        record = await make_image()
        first, second = await asyncio.gather(
            client.post(f"/api/v1/images/{record['id']}/approve", headers=reviewer),
            other.post(f"/api/v1/images/{record['id']}/reject", json={"reason": "no"},
                       headers=admin),
        )
        statuses = sorted([first.status, second.status])
        assert statuses == [200, 409], statuses
        winner = first if first.status == 200 else second
        final = await conn.fetchval("SELECT status FROM images WHERE id = $1", record["id"])
        assert final == (await winner.json())["status"]
        assert await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE image_id = $1 AND action IN "
            "('image.approved', 'image.rejected')", record["id"]) == 1
