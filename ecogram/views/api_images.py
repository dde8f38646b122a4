"""``/api/v1/images``: list, read, edit, delete, purge, the original bytes, replace the photo.

Thin handlers: parse the request, call ``ecogram.catalog.images``, render records with
``ecogram.catalog.records``.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from collections.abc import Mapping

from aiohttp import web

from ecogram import keys
from ecogram.catalog import events, images
from ecogram.catalog.records import image_record
from ecogram.errors import invalid, not_found
from ecogram.inputs import FilePart, check_text, no_files, read_json, read_multipart

MAX_ID = 10**18  # fits PostgreSQL's bigint


def image_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    # The route admits digits only; past bigint there is nothing to find.
    if len(raw) > 18 or int(raw) == 0:
        raise not_found("There is no image with this id.")
    return int(raw)


def int_param(query: Mapping[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"\d{1,9}", raw.strip()):
        raise invalid(f"{name} must be a whole number.", fields={name: "a whole number"})
    return int(raw)


def time_param(query: Mapping[str, str], name: str) -> dt.datetime | None:
    """An ISO 8601 date or date-time; without a zone it is UTC."""
    raw = (query.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace(" ", "+", 1) if "T" in raw else raw)
    except ValueError:
        raise invalid(f"{name} must be an ISO 8601 date or date-time.",
                      fields={name: "ISO 8601, e.g. 2025-01-31 or 2025-01-31T12:00:00Z"}) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    if not dt.datetime(1970, 1, 1, tzinfo=dt.UTC) <= value <= dt.datetime(
        9999, 1, 1, tzinfo=dt.UTC
    ):
        raise invalid(f"{name} is out of range.", fields={name: "a realistic date"})
    return value


def codes_param(query: web.Request | Mapping, name: str = "code") -> tuple[str, ...] | None:
    """``code=A,B`` and/or ``code=A&code=B``."""
    values = query.getall(name, []) if hasattr(query, "getall") else [query.get(name, "")]
    codes = [check_text(c.strip(), name) for value in values for c in value.split(",")
             if c.strip()]
    if any(len(c) > 200 for c in codes):
        raise invalid("A code is too long.", fields={name: "at most 200 characters each"})
    return tuple(dict.fromkeys(codes)) or None


def text_param(query: Mapping[str, str], name: str) -> str | None:
    raw = query.get(name)
    if raw is None or not raw.strip():
        return None
    return check_text(raw.strip(), name)


def render(request: web.Request, row) -> dict:
    return image_record(row, request.app[keys.settings].public_url)


def record_response(request: web.Request, row, status: int = 200) -> web.Response:
    return web.json_response(render(request, row), status=status,
                             headers={"ETag": images.etag(row), "Cache-Control": "no-store"})


async def list_images(request: web.Request) -> web.Response:
    q = request.query
    query = images.ListQuery(
        status=text_param(q, "status"),
        codes=codes_param(q),
        q=text_param(q, "q"),
        importer=text_param(q, "importer"),
        since=time_param(q, "since"),
        until=time_param(q, "until"),
        sort=text_param(q, "sort") or images.DEFAULT_SORT,
        page=int_param(q, "page", 1),
        per_page=int_param(q, "per_page", 50),
    )
    async with request.app[keys.db_pool].acquire() as conn:
        rows, total = await images.list_images(conn, query)
    return web.json_response({
        "items": [render(request, row) for row in rows],
        "total": total,
        "page": query.page,
        "per_page": query.per_page,
    })


async def get_image(request: web.Request) -> web.Response:
    async with request.app[keys.db_pool].acquire() as conn:
        row = await images.get_image(conn, image_id(request))
    return record_response(request, row)


async def patch_image(request: web.Request) -> web.Response:
    body = await read_json(request)
    version = body.pop("version", None)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise invalid("version must be an integer.", fields={"version": "an integer"})
    if not body:
        raise invalid("Nothing to change: give code, product, position or alt.",
                      fields={"body": "at least one of code, product, position, alt"})
    async with request.app[keys.db_pool].acquire() as conn:
        row = await images.edit_image(
            conn, request[keys.user], image_id(request), body, version=version,
            if_match=request.headers.get("If-Match"), events=events.of(request.app))
    return record_response(request, row)


async def delete_image(request: web.Request) -> web.Response:
    purge = request.query.get("purge", "").lower()
    if purge not in ("", "true", "false", "1", "0"):
        raise invalid("purge must be true or false.", fields={"purge": "true or false"})
    if purge in ("true", "1"):
        return await purge_image(request)
    async with request.app[keys.db_pool].acquire() as conn:
        await images.delete_image(conn, request[keys.user], image_id(request),
                                  events=events.of(request.app))
    return web.Response(status=204)


async def purge_image(request: web.Request) -> web.Response:
    async with request.app[keys.db_pool].acquire() as conn:
        await images.purge_image(conn, request[keys.user], image_id(request),
                                 events=events.of(request.app))
    return web.Response(status=204)


def _disposition(filename: str) -> str:
    """attachment with an ASCII fallback and the exact name in RFC 5987 form."""
    fallback = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("._") or "image"
    quoted = urllib.parse.quote(filename, safe="")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quoted}"


async def get_original(request: web.Request) -> web.Response:
    async with request.app[keys.db_pool].acquire() as conn:
        original = await images.get_original(conn, image_id(request))
    return web.Response(
        body=original.data,
        headers={
            "Content-Type": original.mime,
            "Content-Disposition": _disposition(original.filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


async def replace_file(request: web.Request) -> web.Response:
    """``PUT /images/{id}/file``: multipart with one ``file`` part."""
    settings = request.app[keys.settings]
    target = image_id(request)
    upload: tuple[str, bytes] | None = None
    async for _name, value in read_multipart(request, {"file": settings.max_upload_bytes}):
        if isinstance(value, FilePart):
            value.check_name()
            upload = value.filename, await value.read()
    if upload is None:
        raise no_files("file")
    async with request.app[keys.db_pool].acquire() as conn:
        row = await images.replace_file(
            conn, request[keys.user], target, upload[1], upload[0], settings,
            request.app[keys.vips_executor], events=events.of(request.app))
    return record_response(request, row)
