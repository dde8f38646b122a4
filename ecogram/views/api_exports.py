"""``GET /api/v1/exports/{format}``: the approved set as a file, streamed as it is written."""

from __future__ import annotations

from aiohttp import web

from ecogram import keys
from ecogram.catalog import exports
from ecogram.views.api_images import codes_param, text_param, time_param


async def export(request: web.Request) -> web.StreamResponse:
    q = request.query
    query = exports.ExportQuery(
        format=request.match_info["format"],
        codes=codes_param(q),
        since=time_param(q, "since"),
        status=text_param(q, "status") or "approved",
    )
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

    async with request.app[keys.db_pool].acquire() as conn:
        await exports.run_export(conn, request[keys.user], query,
                                 request.app[keys.settings].public_url, write)
    if not response.prepared:
        await response.prepare(request)
    await response.write_eof()
    return response
