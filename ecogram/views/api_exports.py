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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from ecogram import keys
from ecogram.catalog import exports
from ecogram.errors import AppError, invalid
from ecogram.views.api_images import codes_param, text_param, time_param

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


async def export(request: web.Request) -> web.StreamResponse:
    if request.match_info["format"] in exports.CHANNEL_FORMATS:
        return await channel_export(request)
    q = request.query
    query = exports.ExportQuery(
        format=request.match_info["format"],
        codes=codes_param(q),
        since=time_param(q, "since"),
        status=text_param(q, "status") or "approved",
    )
    return await _bounded(request, query, exports.run_export)


def _flag(query: Mapping[str, str], name: str) -> bool:
    raw = text_param(query, name)
    if raw is None:
        return False
    if raw.lower() not in ("true", "false"):
        raise invalid(f"{name} must be true or false.", fields={name: "true or false"})
    return raw.lower() == "true"


async def channel_export(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/exports/{vtex|google|mercadolivre|nuvemshop}`` and
    ``GET /api/v1/exports/renditions?channel=ID`` (issue 13; docs/channels.md, "Exports")."""
    q = request.query
    query = exports.ChannelExportQuery.make(
        request.match_info["format"],
        request.app[keys.settings].channel_profiles,
        channel=text_param(q, "channel"),
        codes=codes_param(q),
        since=time_param(q, "since"),
        status=text_param(q, "status"),
        include_not_ready=_flag(q, "include_not_ready"),
    )
    return await _bounded(request, query, exports.run_channel_export)


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
