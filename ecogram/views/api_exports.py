"""``GET /api/v1/exports/{format}``: the approved set as a file, streamed as it is written;
the shop platforms' formats and, per sales channel, VTEX, Google, Mercado Livre, Nuvemshop and
the renditions CSV (``channel_export``).

The export reads the database in short batches through the pool (``exports.run_export``) and
holds no connection while the client reads. The exports of a worker share at most half of its
pool (one connection of three), so however many stream, ``/img`` and the API keep the rest. At
most ``ECOGRAM_MAX_EXPORTS`` exports stream at once in a worker: beyond, ``429
too_many_exports`` before any work.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from ecogram import keys, models
from ecogram.catalog import channels, exports
from ecogram.contract import BINARY, Media, operation
from ecogram.errors import AppError

RETRY_AFTER = 30  # seconds: an export of a large catalogue takes a while


@dataclass
class _Exports:
    """A worker's exports: how many stream now, and the pool connections they may use at once."""

    pool: asyncpg.Pool
    streaming: int = 0
    gate: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.gate = asyncio.Semaphore(max(1, self.pool.get_max_size() // 2))

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.gate, self.pool.acquire() as conn:
            yield conn


# One per application (a worker; tests run several apps in one process).
_state: weakref.WeakKeyDictionary[web.Application, _Exports] = weakref.WeakKeyDictionary()


FILE = Media({
    "text/csv": {"type": "string"}, "application/json": {"type": "object"},
    "application/zip": BINARY, "text/tab-separated-values": {"type": "string"},
    "application/x-ndjson": {"type": "string"},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": BINARY,
}, "The export file")


@operation(
    "Export images to a shop platform or a sales channel (streamed file)",
    description="shopify, woocommerce, magento: CSV; json: the feed; zip: the originals. Sales "
    "channels (issue 13): vtex: VTEX's images spreadsheet (.xlsx); google: a Merchant Center "
    "supplemental feed (TSV: id, image_link, additional_image_link); mercadolivre and "
    "nuvemshop: JSON lines, one product a line. Channel exports hold only ready products "
    "unless include_not_ready=true, which adds ready and findings.",
    query=models.ExportQuery, responses={200: FILE}, errors=(429,))
async def export(request: web.Request, query: models.ExportQuery) -> web.StreamResponse:
    fmt = request.match_info["format"]
    if fmt in exports.CHANNEL_FORMATS:
        return await channel_export(request, fmt, query, None)
    shop = exports.ExportQuery(format=fmt, codes=tuple(query.code) or None, since=query.since,
                               status=query.status)
    return await _bounded(request, shop, exports.run_export)


@operation("The renditions of a sales channel, as CSV (url, width, height per photo)",
           query=models.RenditionsQuery, responses={200: Media({"text/csv": {
               "type": "string"}}, "The renditions CSV")}, errors=(404, 429))
async def renditions(request: web.Request, query: models.RenditionsQuery
                     ) -> web.StreamResponse:
    channel = channels.find_profile(request.app[keys.settings].channel_profiles,
                                    query.channel).id  # an unknown channel is a 404
    return await channel_export(request, "renditions", query, channel)


async def channel_export(request: web.Request, fmt: str, query: models.ExportQuery,
                         channel: str | None) -> web.StreamResponse:
    """``GET /api/v1/exports/{vtex|google|mercadolivre|nuvemshop}`` and
    ``GET /api/v1/exports/renditions?channel=ID`` (issue 13; docs/channels.md, "Exports")."""
    asked = exports.ChannelExportQuery.make(
        fmt, request.app[keys.settings].channel_profiles, channel=channel,
        codes=tuple(query.code) or None, since=query.since, status=query.status,
        include_not_ready=query.include_not_ready,
    )
    return await _bounded(request, asked, exports.run_channel_export)


Query = exports.ExportQuery | exports.ChannelExportQuery
Run = Callable[..., Awaitable[int]]  # exports.run_export or exports.run_channel_export


async def _bounded(request: web.Request, query: Query, run: Run) -> web.StreamResponse:
    """Run the export unless ``ECOGRAM_MAX_EXPORTS`` of this worker's stream already (429)."""
    app = request.app
    state = _state.get(app)
    if state is None:
        state = _state[app] = _Exports(app[keys.db_pool])
    limit = app[keys.settings].max_exports
    if state.streaming >= limit:
        raise AppError(
            429, "too_many_exports",
            f"{limit} exports are being downloaded already; try again in a moment.",
            {"limit": limit, "retry_after": RETRY_AFTER},
            headers={"Retry-After": str(RETRY_AFTER)},
        )
    state.streaming += 1
    try:
        return await _stream(request, query, state.connect, run)
    finally:
        state.streaming -= 1


async def _stream(request: web.Request, query: Query, connect: exports.Connect,
                  run: Run) -> web.StreamResponse:
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

    await run(connect, request[keys.user], query, request.app[keys.settings].public_url, write)
    if not response.prepared:
        await response.prepare(request)
    await response.write_eof()
    return response
