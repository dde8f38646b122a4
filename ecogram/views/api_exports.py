"""``GET /api/v1/exports/{format}``: the approved set as a file, streamed as it is written.

The export reads the database in short batches through the pool (``exports.run_export``) and
holds no connection while the client reads. At most ``ECOGRAM_MAX_EXPORTS`` exports stream at
once in a worker: beyond, ``429 too_many_exports`` before any work.
"""

from __future__ import annotations

import weakref

from aiohttp import web

from ecogram import keys
from ecogram.catalog import exports
from ecogram.errors import AppError
from ecogram.views.api_images import codes_param, text_param, time_param

RETRY_AFTER = 30  # seconds: an export of a large catalogue takes a while

# Exports streaming now, per application (one per worker; tests run several apps at once).
_streaming: weakref.WeakKeyDictionary[web.Application, int] = weakref.WeakKeyDictionary()


async def export(request: web.Request) -> web.StreamResponse:
    q = request.query
    query = exports.ExportQuery(
        format=request.match_info["format"],
        codes=codes_param(q),
        since=time_param(q, "since"),
        status=text_param(q, "status") or "approved",
    )
    app = request.app
    limit = app[keys.settings].max_exports
    if _streaming.get(app, 0) >= limit:
        raise AppError(
            429, "too_many_exports",
            f"{limit} exports are being downloaded already; try again in a moment.",
            {"limit": limit, "retry_after": RETRY_AFTER},
            headers={"Retry-After": str(RETRY_AFTER)},
        )
    _streaming[app] = _streaming.get(app, 0) + 1
    try:
        return await _stream(request, query)
    finally:
        _streaming[app] -= 1


async def _stream(request: web.Request, query: exports.ExportQuery) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": exports.CONTENT_TYPES[query.format],
        "Content-Disposition": f'attachment; filename="{query.filename()}"',
        "Cache-Control": "no-store",
    })

    async def write(data: bytes) -> None:
        # Headers go out with the first bytes, so a refusal before them is still a JSON error.
        if not response.prepared:
            await response.prepare(request)
        await response.write(data)

    await exports.run_export(request.app[keys.db_pool].acquire, request[keys.user], query,
                             request.app[keys.settings].public_url, write)
    if not response.prepared:
        await response.prepare(request)
    await response.write_eof()
    return response
