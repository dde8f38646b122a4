"""Review endpoints: approve / reject one image, and ``POST /api/v1/reviews`` in bulk."""

from __future__ import annotations

from aiohttp import web

from ecogram import keys
from ecogram.catalog import events, review
from ecogram.errors import invalid
from ecogram.inputs import read_json
from ecogram.views.api_images import image_id, record_response, render


async def _one(request: web.Request, action: str) -> web.Response:
    target = image_id(request)
    body = await read_json(request)
    note = body.get("reason", body.get("note"))
    async with request.app[keys.db_pool].acquire() as conn:
        row = await review.review_one(conn, request[keys.user], action, target, note,
                                      events=events.of(request.app))
    return record_response(request, row)


async def approve(request: web.Request) -> web.Response:
    return await _one(request, "approve")


async def reject(request: web.Request) -> web.Response:
    return await _one(request, "reject")


async def bulk(request: web.Request) -> web.Response:
    """``{ids, action, reason}`` → ``{results: [{id, outcome, record | error}], approved…}``.

    Always 200 when the request itself is valid: each id says what happened to it.
    """
    body = await read_json(request)
    ids = body.get("ids")
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 0 < i < 10**18 for i in ids
    ):
        raise invalid("ids must be a list of image ids.", fields={"ids": "a list of integers"})
    action = body.get("action")
    async with request.app[keys.db_pool].acquire() as conn:
        outcomes = await review.review(conn, request[keys.user], action, ids,
                                       body.get("reason", body.get("note")),
                                       events=events.of(request.app))
    results = []
    for outcome in outcomes:
        if outcome.ok:
            results.append({"id": outcome.id, "outcome": "ok", "status": 200,
                            "record": render(request, outcome.row)})
        else:
            error = outcome.error
            results.append({"id": outcome.id, "outcome": "error", "status": error.status,
                            "error": error.as_dict()["error"]})
    return web.json_response({
        "action": action,
        "succeeded": sum(1 for o in outcomes if o.ok),
        "failed": sum(1 for o in outcomes if not o.ok),
        "results": results,
    })
