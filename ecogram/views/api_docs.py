"""``GET /api/openapi.json``: the OpenAPI 3.1 document of the route table."""

from __future__ import annotations

import json
import weakref

from aiohttp import web

from ecogram import keys, openapi
from ecogram.contract import Media, operation

# The document depends only on the application's routes and settings: written once per
# application, on first request (writing it takes ~5 ms of the event loop, its JSON ~1 ms more).
_documents: weakref.WeakKeyDictionary[web.Application, bytes] = weakref.WeakKeyDictionary()


def _document(app: web.Application) -> bytes:
    # The declared routes, as setup_routes recorded them (HEAD siblings share a declaration).
    routes = list(dict.fromkeys(app[keys.route_table].values()))
    settings = app[keys.settings]
    return json.dumps(openapi.build(routes, choices={
        "sizes": settings.allowed_sizes, "channels": tuple(settings.channel_profiles)})).encode()


@operation("This document (OpenAPI 3.1)", responses={200: Media(
    {"application/json": {"type": "object"}}, "The OpenAPI document")})
async def openapi_json(request: web.Request) -> web.Response:
    body = _documents.get(request.app)
    if body is None:
        body = _documents[request.app] = _document(request.app)
    return web.Response(body=body, content_type="application/json",
                        headers={"Cache-Control": "public, max-age=300"})
