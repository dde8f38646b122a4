"""``GET /api/v1/analytics``: what the storefront loads, per photo or product (viewer and up);
the figures are ``ecogram.catalog.analytics``'."""

from __future__ import annotations

from aiohttp import web

from ecogram import keys
from ecogram.catalog import analytics
from ecogram.views.api_images import codes_param, int_param, text_param, time_param


async def get_analytics(request: web.Request) -> web.Response:
    q = request.query
    query = analytics.Query.of(
        time_param(q, "since"),
        time_param(q, "until"),
        codes=codes_param(q),
        group=text_param(q, "group") or "photo",
        sort=text_param(q, "sort") or "-requests",
        page=int_param(q, "page", 1),
        per_page=int_param(q, "per_page", 50),
    )
    async with request.app[keys.db_pool].acquire() as conn:
        body = await analytics.report(conn, query)
    return web.json_response(body, headers={"Cache-Control": "no-store"})
