"""``GET /api/v1/images/{id}/signed-url?w=..&h=..``: a signed /img URL for any size."""

from __future__ import annotations

from aiohttp import web

from ecogram import keys, models
from ecogram.catalog import delivery
from ecogram.contract import operation


@operation("A signed /img URL of this photo for any size", described_query=models.ImageOptions,
           responses={200: models.SignedUrl})
async def signed_url(request: web.Request) -> web.Response:
    image_id = int(request.match_info["id"])
    if image_id > 2**63 - 1:
        raise web.HTTPNotFound()
    async with request.app[keys.db_pool].acquire() as conn:
        body = await delivery.signed_url(
            conn, request.app[keys.settings], image_id, request.query
        )
    return web.json_response(body, headers={"Cache-Control": "no-store"})
