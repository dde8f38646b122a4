"""``/api/v1/channels/{id}/products[/{code}]``: a product's own id on a sales channel.

Thin handlers over ``ecogram.catalog.channel_ids``: viewers read, reviewers set, remove and
import a CSV (``code,external_id``, as ``text/csv`` or as the multipart field ``file``).
"""

from __future__ import annotations

from aiohttp import web

from ecogram import keys, models
from ecogram.catalog import channel_ids, channels
from ecogram.catalog.channel_ids import MAX_CSV_BYTES
from ecogram.contract import NO_CONTENT, operation
from ecogram.errors import AppError
from ecogram.inputs import FilePart, no_files, read_body, read_multipart


def _channel(request: web.Request) -> str:
    profiles = request.app[keys.settings].channel_profiles
    return channels.find_profile(profiles, request.match_info["id"]).id


def _code(request: web.Request) -> str:
    return request.match_info["code"]  # the route admits no control character


@operation("Products' own ids on a sales channel", query=models.ChannelIdQuery,
           responses={200: models.ChannelIdList})
async def list_ids(request: web.Request, query: models.ChannelIdQuery) -> web.Response:
    channel = _channel(request)
    async with request.app[keys.db_pool].acquire() as conn:
        body = await channel_ids.list_ids(conn, channel, tuple(query.code) or None, query.page,
                                          query.per_page)
    return web.json_response(body)


@operation("A product's own id on a sales channel", responses={200: models.ChannelId})
async def get_id(request: web.Request) -> web.Response:
    channel = _channel(request)
    async with request.app[keys.db_pool].acquire() as conn:
        body = await channel_ids.get(conn, channel, _code(request))
    return web.json_response(body)


@operation("Set a product's own id on a sales channel", body=models.ExternalId,
           responses={200: models.ChannelId})
async def put_id(request: web.Request, body: models.ExternalId) -> web.Response:
    channel = _channel(request)
    async with request.app[keys.db_pool].acquire() as conn:
        saved = await channel_ids.put(conn, request[keys.user], channel,
                                      _code(request), body.external_id)
    return web.json_response(saved)


@operation("Remove a product's own id on a sales channel", responses={204: NO_CONTENT})
async def delete_id(request: web.Request) -> web.Response:
    channel = _channel(request)
    async with request.app[keys.db_pool].acquire() as conn:
        await channel_ids.delete(conn, request[keys.user], channel, _code(request))
    return web.Response(status=204)


async def _csv_body(request: web.Request) -> bytes:
    """The CSV, its size checked before and while the bytes arrive (``ecogram.inputs``)."""
    if request.content_type.startswith("multipart/"):
        data: bytes | None = None
        async for _name, value in read_multipart(request, {"file": MAX_CSV_BYTES}):
            if isinstance(value, FilePart):
                value.check_name()
                data = await value.read()
        if data is None:
            raise no_files("file")
        return data
    if request.content_type not in ("text/csv", "text/plain", "application/octet-stream"):
        raise AppError(415, "unsupported_type",
                       "Send the CSV as text/csv or as the multipart field 'file'.")
    return await read_body(request, MAX_CSV_BYTES)


@operation(
    "Import products' ids on a sales channel from a CSV",
    description="Header code,external_id; an empty external_id removes the code's id. All rows "
    "or none (422 lists the bad lines).",
    form={"text/csv": {"type": "string", "contentMediaType": "text/csv"},
          "multipart/form-data": models.CsvForm},
    responses={200: models.ChannelIdImport})
async def import_ids(request: web.Request) -> web.Response:
    channel = _channel(request)
    rows = channel_ids.parse_csv(await _csv_body(request))
    async with request.app[keys.db_pool].acquire() as conn:
        result = await channel_ids.import_rows(conn, request[keys.user], channel, rows)
    return web.json_response(result)
