"""``GET /api/v1/audit``: the audit trail, for admins; read-only by construction."""

from __future__ import annotations

from aiohttp import web

from ecogram import keys, models
from ecogram.catalog import audit_trail
from ecogram.contract import operation


@operation("The audit trail, newest first", query=models.AuditQuery,
           responses={200: models.AuditList})
async def list_audit(request: web.Request, query: models.AuditQuery) -> web.Response:
    trail = audit_trail.AuditQuery(
        image_id=query.image_id, actor=query.actor.strip() or None,
        action=query.action.strip() or None, since=query.since, until=query.until,
        page=query.page, per_page=query.per_page,
    )
    async with request.app[keys.db_pool].acquire() as conn:
        items, total = await audit_trail.list_entries(conn, trail)
    return web.json_response(
        {"items": items, "total": total, "page": trail.page, "per_page": trail.per_page},
        headers={"Cache-Control": "no-store"},
    )
