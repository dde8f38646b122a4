"""Import endpoints: ``POST /api/v1/images``, ``POST /api/v1/imports``, ``GET .../imports/{id}``.

Uploads are streamed part by part to temporary files, with the size limit enforced while the
bytes arrive: memory stays bounded whatever is sent, and a file over the limit becomes that
file's 413 while the others of the request go on.

Status of ``POST /images``: ``201`` with the batch report. A request with a single file that is
rejected answers that file's status (413, 415, 422...) in the JSON error shape, with the whole
report in ``details.report``; with several files the answer is always ``201`` and each file's
line says what happened to it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aiohttp import BodyPartReader, web

from ecogram import jobs, keys, models
from ecogram.catalog import import_jobs, imports
from ecogram.catalog.sources import (
    CHUNK,
    ImportItem,
    file_item,
    parse_fields,
    too_large,
)
from ecogram.contract import Media, operation
from ecogram.errors import AppError
from ecogram.inputs import (
    display_name,
    multipart,
    next_part,
    read_chunk,
    skip_part,
    upload_filename,
)

FIELD_NAMES = ("code", "product", "position", "alt")
MAX_FIELD_BYTES = 16 * 1024


async def _parts(request: web.Request):
    reader = await multipart(request)
    while (part := await next_part(request, reader)) is not None:
        yield part


async def _stream_to_file(request: web.Request, part: BodyPartReader, path: Path,
                          limit: int) -> int | None:
    """Write the part to ``path`` in chunks; its size, or None when it passed ``limit``.

    Past the limit nothing more is written: the rest of the part is read and dropped so the
    next parts of the request can still be read.
    """
    size = 0
    # Small sequential writes land in the page cache: quick enough for the event loop.
    with path.open("wb") as handle:
        while chunk := await read_chunk(request, part, CHUNK):
            size += len(chunk)
            if size > limit:
                break
            handle.write(chunk)
    if size > limit:
        await skip_part(request, part)
        path.unlink(missing_ok=True)  # noqa: ASYNC240 - one unlink of a local temporary file
        return None
    return size


async def _read_small(request: web.Request, part: BodyPartReader, limit: int,
                      what: str) -> bytes:
    data = bytearray()
    while chunk := await read_chunk(request, part, CHUNK):
        data += chunk
        if len(data) > limit:
            raise too_large(len(data), limit, what=what)
    return bytes(data)


async def _field_text(request: web.Request, part: BodyPartReader) -> str:
    data = await _read_small(request, part, MAX_FIELD_BYTES, f"field '{part.name}'")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AppError(422, "invalid_fields", f"The field '{part.name}' is not UTF-8 text.",
                       {"field": part.name}) from None


PREFER = {"name": "Prefer", "in": "header", "required": False, "schema": {"type": "string"},
          "description": "respond-async: run the import as a job (202)."}


@operation("Upload one or more photos",
           description="Each file is checked (a decodable image, sizes, duplicates); the report "
           "has a line per file. A single file that is refused is answered with its error.",
           form={"multipart/form-data": models.UploadForm},
           responses={201: models.ImportReport}, errors=(409,))
async def post_images(request: web.Request) -> web.Response:
    """One or many ``file`` parts, with optional ``code``, ``product``, ``position``, ``alt``."""
    app = request.app
    settings = app[keys.settings]
    limit = settings.max_upload_bytes
    with tempfile.TemporaryDirectory(prefix="ecogram-upload-") as tmp:
        items: list[ImportItem] = []
        raw: dict[str, str | None] = {}
        async for part in _parts(request):
            if part.name == "file":
                if len(items) >= settings.zip_max_members:
                    raise AppError(413, "too_many_files", f"A request may carry at most "
                                   f"{settings.zip_max_members} files.")
                default = f"file-{len(items) + 1}"
                try:
                    filename = upload_filename(part.filename, default)
                except AppError as error:  # that file's line says so; the others go on
                    await skip_part(request, part)
                    items.append(ImportItem(filename=display_name(part.filename or default),
                                            error=error))
                    continue
                path = Path(tmp) / f"{len(items):06d}"
                size = await _stream_to_file(request, part, path, limit)
                if size is None:
                    items.append(ImportItem(filename=filename, error=too_large(limit + 1, limit)))
                else:
                    items.append(file_item(path, limit, filename))
            elif part.name in FIELD_NAMES:
                raw[part.name] = await _field_text(request, part)
            else:
                await skip_part(request, part)  # unknown parts are ignored, but read past
        fields = parse_fields(raw)
        if not items:
            raise AppError(422, "no_files", "Send at least one file in a part named 'file'.")
        report = await imports.import_files(
            app[keys.db_pool], settings, app[keys.vips_executor], request[keys.user], items,
            fields,
        )
    if len(items) == 1 and report["rejected"] == 1:
        line = report["items"][0]
        details = line["details"] or {}
        # A store that is away (503) says when to come back, as a header too.
        retry = {"Retry-After": str(details["retry_after"])} if "retry_after" in details else {}
        raise AppError(line["status"] or 422, line["code"], line["message"],
                       {**details, "report": report}, headers=retry)
    return web.json_response(report, status=201)


@operation("Import a ZIP and/or a CSV manifest",
           form={"multipart/form-data": models.ImportForm}, headers=(PREFER,),
           responses={201: models.ImportReport, 202: Media(
               {"application/json": {"$ref": "#/components/schemas/ImportReport"}},
               "Queued as an import job (status queued)",
               {"Location": "/api/v1/imports/{id}"})})
async def post_imports(request: web.Request) -> web.Response:
    """A ZIP (``archive``) and/or a CSV manifest (``manifest``)."""
    app = request.app
    settings = app[keys.settings]
    with tempfile.TemporaryDirectory(prefix="ecogram-import-") as tmp:
        archive: Path | None = None
        manifest: bytes | None = None
        async for part in _parts(request):
            if part.name == "archive" and archive is None:
                path = Path(tmp) / "archive.zip"
                request_limit = settings.max_request_mb * 1024 * 1024
                if await _stream_to_file(request, part, path, request_limit) is None:
                    raise too_large(request_limit + 1, request_limit, "archive_too_large",
                                    "archive")
                archive = path
            elif part.name == "manifest" and manifest is None:
                manifest = await _read_small(request, part, settings.max_upload_bytes,
                                             "manifest")
            else:
                await skip_part(request, part)
        if archive is None and manifest is None:
            raise AppError(422, "no_files", "Send a ZIP in a part named 'archive' and/or a CSV "
                           "in a part named 'manifest'.")
        prefer_async = _prefers_async(request)
        report, queued = await import_jobs.submit(
            app[keys.db_pool], settings, app[keys.vips_executor], request[keys.user], archive,
            manifest, prefer_async=prefer_async, enqueue=jobs.enqueue_import,
        )
    if not queued:
        return web.json_response(report, status=201)
    # Queued: the upload is stored, a worker runs the import; the report's URL shows its
    # progress (queued, running, then done or interrupted, with counts that grow).
    headers = {"Location": str(app.router["imports_get"].url_for(id=str(report["id"])))}
    if prefer_async:
        headers["Preference-Applied"] = "respond-async"
    return web.json_response(report, status=202, headers=headers)


def _prefers_async(request: web.Request) -> bool:
    """``Prefer: respond-async`` (RFC 7240: comma-separated preferences, parameters after
    ``;``, case-insensitive names), in any of the request's Prefer headers."""
    for header in request.headers.getall("Prefer", ()):
        for preference in header.split(","):
            if preference.split(";", 1)[0].split("=", 1)[0].strip().lower() == "respond-async":
                return True
    return False


@operation("An import batch report", responses={200: models.ImportReport})
async def get_import(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    if not raw.isdecimal() or len(raw) > 18:
        raise AppError(404, "not_found", "There is no import with this id.")
    report = await imports.get_batch_report(
        request.app[keys.db_pool], int(raw), request.app[keys.settings].public_url
    )
    return web.json_response(report)
