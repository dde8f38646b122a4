"""``/api/v1/channels/{id}/products[/{code}]``: a product's own id on a sales channel.

Thin handlers over ``ecogram.catalog.channel_ids``: viewers read, reviewers set, remove and
import a CSV (``code,external_id``, as ``text/csv`` or as the multipart field ``file``).
"""

from __future__ import annotations

from aiohttp import web

from ecogram import keys
from ecogram.catalog import channel_ids, channels
from ecogram.catalog.channel_ids import MAX_CSV_BYTES
from ecogram.errors import AppError
from ecogram.views.api_auth import read_json
from ecogram.views.api_images import codes_param, int_param
from ecogram.views.api_imports import _multipart, _parts, _read_small


def _channel(request: web.Request) -> str:
    profiles = request.app[keys.settings].channel_profiles
    return channels.find_profile(profiles, request.match_info["id"]).id


async def list_ids(request: web.Request) -> web.Response:
    channel = _channel(request)
    q = request.query
    async with request.app[keys.db_pool].acquire() as conn:
        body = await channel_ids.list_ids(conn, channel, codes_param(q), int_param(q, "page", 1),
                                          int_param(q, "per_page", 50))
    return web.json_response(body)


async def get_id(request: web.Request) -> web.Response:
    channel = _channel(request)
    async with request.app[keys.db_pool].acquire() as conn:
        body = await channel_ids.get(conn, channel, request.match_info["code"])
    return web.json_response(body)


async def put_id(request: web.Request) -> web.Response:
    channel = _channel(request)
    body = await read_json(request)
    async with request.app[keys.db_pool].acquire() as conn:
        saved = await channel_ids.put(conn, request[keys.user], channel,
                                      request.match_info["code"], body.get("external_id"))
    return web.json_response(saved)


async def delete_id(request: web.Request) -> web.Response:
    channel = _channel(request)
    async with request.app[keys.db_pool].acquire() as conn:
        await channel_ids.delete(conn, request[keys.user], channel, request.match_info["code"])
    return web.Response(status=204)


async def _csv_body(request: web.Request) -> bytes:
    """The CSV, read with its size limit checked before and while the bytes arrive."""
    if request.content_length is not None and request.content_length > MAX_CSV_BYTES + 64 * 1024:
        raise AppError(413, "too_large", "The CSV is too large.", {"limit": MAX_CSV_BYTES})
    if request.content_type.startswith("multipart/form-data"):
        async for part in _parts(await _multipart(request)):
            if part.name == "file":
                return await _read_small(part, MAX_CSV_BYTES, "file")
            await part.release()
        raise AppError(422, "invalid_fields", "Send the CSV as the field 'file'.",
                       {"fields": {"file": "required"}})
    if request.content_type not in ("text/csv", "text/plain", "application/octet-stream"):
        raise AppError(415, "unsupported_type",
                       "Send the CSV as text/csv or as the multipart field 'file'.")
    data = await request.content.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise AppError(413, "too_large", "The CSV is too large.", {"limit": MAX_CSV_BYTES})
    return data


async def import_ids(request: web.Request) -> web.Response:
    channel = _channel(request)
    rows = channel_ids.parse_csv(await _csv_body(request))
    async with request.app[keys.db_pool].acquire() as conn:
        result = await channel_ids.import_rows(conn, request[keys.user], channel, rows)
    return web.json_response(result)
