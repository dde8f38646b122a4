"""``GET /api/openapi.json``: the OpenAPI 3.1 document of the route table."""

from __future__ import annotations

from aiohttp import web

from ecogram import keys, openapi
from ecogram.contract import Media, operation


@operation("This document (OpenAPI 3.1)", responses={200: Media(
    {"application/json": {"type": "object"}}, "The OpenAPI document")})
async def openapi_json(request: web.Request) -> web.Response:
    # The declared routes, as setup_routes recorded them (HEAD siblings share a declaration).
    routes = list(dict.fromkeys(request.app[keys.route_table].values()))
    settings = request.app[keys.settings]
    document = openapi.build(routes, choices={
        "sizes": settings.allowed_sizes, "channels": tuple(settings.channel_profiles)})
    return web.json_response(document, headers={"Cache-Control": "public, max-age=300"})
