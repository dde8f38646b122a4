"""Public delivery: ``GET|HEAD /img/{code}[/{position}]`` and their ``/placeholder``.

Thin on purpose — this is the hottest path of the service: read the request, let the delivery
use case answer, copy its status, headers and bytes. HEAD gets the same headers (aiohttp sends
no body for HEAD, and keeps Content-Length).
"""

from __future__ import annotations

from aiohttp import hdrs, web

from ecogram import keys
from ecogram.catalog.delivery import Answer


def _position(request: web.Request) -> int | None:
    raw = request.match_info.get("position")
    return int(raw) if raw is not None else None


def _respond(answer: Answer) -> web.Response:
    # web.Response copies the headers it is given (at C speed from a CIMultiDict, which is how
    # a replayed answer keeps them), so the shared ones are never changed.
    if answer.status == 304:
        return web.Response(status=304, headers=answer.headers)
    return web.Response(body=answer.body, headers=answer.headers)


async def image(request: web.Request) -> web.Response:
    delivery = request.app[keys.delivery]
    target = request.raw_path  # path and query as sent: the replay's key, no parsing
    accept = request.headers.get(hdrs.ACCEPT)
    if_none_match = request.headers.get(hdrs.IF_NONE_MATCH)
    answer = delivery.replay(target, accept, if_none_match) or await delivery.serve(
        target,
        request.match_info["code"],
        _position(request),
        request.path,
        request.rel_url.raw_query_string,
        accept,
        if_none_match,
    )
    return _respond(answer)


async def placeholder(request: web.Request) -> web.Response:
    answer = await request.app[keys.delivery].placeholder(
        request.match_info["code"],
        _position(request),
        request.query,
        request.headers.get(hdrs.IF_NONE_MATCH),
    )
    return _respond(answer)
