"""``GET /api/v1/analytics``: what the storefront loads, per photo or product (viewer and up);
the figures are ``ecogram.catalog.analytics``'."""

from __future__ import annotations

from aiohttp import web

from ecogram import keys, models
from ecogram.catalog import analytics
from ecogram.contract import operation


@operation("What the storefront loads, per photo or product",
           description="Requests, bytes sent and saved, cache hits and renders, from the "
           "counts each worker flushes every few seconds (docs/analytics.md).",
           query=models.AnalyticsQuery, responses={200: models.Analytics})
async def get_analytics(request: web.Request, query: models.AnalyticsQuery) -> web.Response:
    report = analytics.Query.of(
        query.since, query.until, codes=tuple(query.code) or None, group=query.group,
        sort=query.sort, page=query.page, per_page=query.per_page,
    )
    async with request.app[keys.db_pool].acquire() as conn:
        body = await analytics.report(conn, report)
    return web.json_response(body, headers={"Cache-Control": "no-store"})
