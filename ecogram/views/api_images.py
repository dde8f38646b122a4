"""``/api/v1/images``: list, read, edit, delete, purge, the original bytes, replace the photo.

Thin handlers: parse the request, call ``ecogram.catalog.images``, render records with
``ecogram.catalog.records``.
"""

from __future__ import annotations

import re
import urllib.parse

import msgspec
from aiohttp import web

from ecogram import keys, models
from ecogram.catalog import events, images
from ecogram.catalog.records import image_record
from ecogram.contract import BINARY, NO_CONTENT, Media, operation
from ecogram.errors import not_found
from ecogram.inputs import FilePart, no_files, read_multipart

MAX_ID = 10**18  # fits PostgreSQL's bigint
IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
            "description": "The ETag of GET: refuse (409) unless the photo is still that one."}


def image_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    # The route admits digits only; past bigint there is nothing to find.
    if len(raw) > 18 or int(raw) == 0:
        raise not_found("There is no image with this id.")
    return int(raw)


def render(request: web.Request, row) -> dict:
    return image_record(row, request.app[keys.settings].public_url)


def record_response(request: web.Request, row, status: int = 200) -> web.Response:
    return web.json_response(render(request, row), status=status,
                             headers={"ETag": images.etag(row), "Cache-Control": "no-store"})


@operation("List image records", query=models.ImageQuery, responses={200: models.ImageList})
async def list_images(request: web.Request, query: models.ImageQuery) -> web.Response:
    listing = images.ListQuery(
        status=query.status, codes=tuple(query.code) or None, q=query.q.strip() or None,
        importer=query.importer.strip() or None, since=query.since, until=query.until,
        sort=query.sort, page=query.page, per_page=query.per_page,
    )
    async with request.app[keys.db_pool].acquire() as conn:
        rows, total = await images.list_images(conn, listing)
    return web.json_response({
        "items": [render(request, row) for row in rows],
        "total": total,
        "page": listing.page,
        "per_page": listing.per_page,
    })


@operation("One image record", responses={200: models.Image})
async def get_image(request: web.Request) -> web.Response:
    async with request.app[keys.db_pool].acquire() as conn:
        row = await images.get_image(conn, image_id(request))
    return record_response(request, row)


@operation(
    "Edit code, product, position or alt", body=models.ImageEdit,
    description="Positions of a code stay 1..n: moving a photo shifts the others; moving it to "
    "another code inserts it there and closes the gap. Send If-Match (the ETag of GET) or "
    "`version` for optimistic concurrency (409 on mismatch).",
    responses={200: models.Image}, errors=(409,), headers=(IF_MATCH,))
async def patch_image(request: web.Request, body: models.ImageEdit) -> web.Response:
    changes = {name: getattr(body, name) for name in body.changes
               if getattr(body, name) is not msgspec.UNSET}
    version = None if body.version is msgspec.UNSET else body.version
    async with request.app[keys.db_pool].acquire() as conn:
        row = await images.edit_image(
            conn, request[keys.user], image_id(request), changes, version=version,
            if_match=request.headers.get("If-Match"), events=events.of(request.app))
    return record_response(request, row)


@operation("Delete (soft) an image; ?purge=true removes it for good (admin)",
           query=models.DeleteQuery, responses={204: NO_CONTENT})
async def delete_image(request: web.Request, query: models.DeleteQuery) -> web.Response:
    if query.purge:
        return await purge_image(request)
    async with request.app[keys.db_pool].acquire() as conn:
        await images.delete_image(conn, request[keys.user], image_id(request),
                                  events=events.of(request.app))
    return web.Response(status=204)


@operation("Remove an image and its original for good", responses={204: NO_CONTENT})
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


@operation("The original bytes as uploaded", responses={200: Media(
    {"image/*": BINARY}, "The original file")})
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


@operation("Replace the photo of a record",
           description="Same checks as import; new version; back to pending.",
           form={"multipart/form-data": models.ReplaceForm}, responses={200: models.Image},
           errors=(409,))
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
