"""``GET /api/v1/audit``: the audit trail, for admins; read-only by construction."""

from __future__ import annotations

from aiohttp import web

from ecogram import keys
from ecogram.catalog import audit_trail
from ecogram.views.api_images import int_param, text_param, time_param


async def list_audit(request: web.Request) -> web.Response:
    q = request.query
    image = int_param(q, "image_id", 0)
    query = audit_trail.AuditQuery(
        image_id=image or None,
        actor=text_param(q, "actor"),
        action=text_param(q, "action"),
        since=time_param(q, "since"),
        until=time_param(q, "until"),
        page=int_param(q, "page", 1),
        per_page=int_param(q, "per_page", 50),
    )
    async with request.app[keys.db_pool].acquire() as conn:
        items, total = await audit_trail.list_entries(conn, query)
    return web.json_response(
        {"items": items, "total": total, "page": query.page, "per_page": query.per_page},
        headers={"Cache-Control": "no-store"},
    )
