"""Operations endpoints: liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from ecogram import db, keys, models
from ecogram.contract import Media, operation
from ecogram.metrics import CONTENT_TYPE_LATEST


@operation("Liveness", responses={200: models.Health})
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@operation("Readiness: the database answers and its schema is current",
           responses={200: models.Ready})
async def readyz(request: web.Request) -> web.Response:
    """200 when the database answers and its schema is this code's; 503 otherwise."""
    pool = request.app[keys.db_pool]
    try:
        async with asyncio.timeout(3):
            async with pool.acquire() as conn:
                current, newest = await db.schema_state(conn)
    except (OSError, asyncpg.PostgresError, TimeoutError, asyncpg.InterfaceError):
        return _not_ready("database_unreachable", "The database does not answer.")
    if current != newest:
        return _not_ready(
            "schema_not_current", f"The database schema is at {current}, this code needs {newest}."
        )
    return web.json_response({"status": "ready", "schema": current})


def _not_ready(code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "details": {}}},
        status=503,
        headers={"Cache-Control": "no-store"},
    )


@operation("Prometheus metrics", responses={200: Media(
    {"text/plain": {"type": "string"}}, "Prometheus text format")})
async def metrics(request: web.Request) -> web.Response:
    body = request.app[keys.metrics].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
