"""Review endpoints: approve / reject one image, and ``POST /api/v1/reviews`` in bulk."""

from __future__ import annotations

import msgspec
from aiohttp import web

from ecogram import keys, models
from ecogram.catalog import events, review
from ecogram.contract import operation
from ecogram.views.api_images import image_id, record_response, render


def _note(body: models.Approval | models.Rejection | models.BulkApprove | models.BulkReject
          ) -> str | None:
    return None if body.reason is msgspec.UNSET else body.reason


async def _one(request: web.Request, action: str,
               body: models.Approval | models.Rejection) -> web.Response:
    target = image_id(request)
    note = _note(body)
    async with request.app[keys.db_pool].acquire() as conn:
        row = await review.review_one(conn, request[keys.user], action, target, note,
                                      events=events.of(request.app))
    return record_response(request, row)


@operation("Approve a pending image", body=models.Approval, body_required=False,
           responses={200: models.Image}, errors=(409,))
async def approve(request: web.Request, body: models.Approval) -> web.Response:
    return await _one(request, "approve", body)


@operation("Reject a pending image, saying why", body=models.Rejection,
           responses={200: models.Image}, errors=(409,))
async def reject(request: web.Request, body: models.Rejection) -> web.Response:
    return await _one(request, "reject", body)


@operation("Approve or reject many images", body=models.BulkApprove | models.BulkReject,
           responses={200: models.BulkReviewResult})
async def bulk(request: web.Request, body: models.BulkApprove | models.BulkReject
               ) -> web.Response:
    """``{ids, action, reason}`` → ``{results: [{id, outcome, record | error}], approved…}``.

    Always 200 when the request itself is valid: each id says what happened to it.
    """
    action = "approve" if isinstance(body, models.BulkApprove) else "reject"
    async with request.app[keys.db_pool].acquire() as conn:
        outcomes = await review.review(conn, request[keys.user], action, body.ids, _note(body),
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
