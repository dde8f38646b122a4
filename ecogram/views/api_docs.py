"""``GET /api/openapi.json``: the OpenAPI 3.1 document of the route table."""

from __future__ import annotations

from aiohttp import web

from ecogram import keys, openapi


async def openapi_json(request: web.Request) -> web.Response:
    # The declared routes, as setup_routes recorded them (HEAD siblings share a declaration).
    routes = list(dict.fromkeys(request.app[keys.route_table].values()))
    document = openapi.build(routes)
    return web.json_response(document, headers={"Cache-Control": "public, max-age=300"})
