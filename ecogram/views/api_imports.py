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

import contextlib
import tempfile
from pathlib import Path

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from ecogram import keys
from ecogram.catalog import imports
from ecogram.catalog.sources import (
    CHUNK,
    ImportItem,
    file_item,
    parse_fields,
    too_large,
)
from ecogram.errors import AppError

FIELD_NAMES = ("code", "product", "position", "alt")
MAX_FIELD_BYTES = 16 * 1024


async def _multipart(request: web.Request) -> MultipartReader:
    if not request.content_type.startswith("multipart/form-data"):
        raise AppError(415, "unsupported_type", "Send the files as multipart/form-data.")
    with _multipart_errors():
        return await request.multipart()


@contextlib.contextmanager
def _multipart_errors():
    """A malformed multipart body (bad headers, boundary, encoding) is the client's 400."""
    try:
        yield
    except (HttpProcessingError, ValueError, LookupError, RuntimeError):
        raise AppError(400, "invalid_multipart", "The multipart body could not be read.") \
            from None


async def _parts(reader: MultipartReader):
    while True:
        with _multipart_errors():
            part = await reader.next()
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise AppError(422, "invalid_fields", "Nested multipart bodies are not accepted.")
        yield part


async def _chunk(part: BodyPartReader) -> bytes:
    with _multipart_errors():
        return await part.read_chunk(CHUNK)


async def _release(part: BodyPartReader) -> None:
    with _multipart_errors():
        await part.release()


async def _stream_to_file(part: BodyPartReader, path: Path, limit: int) -> int | None:
    """Write the part to ``path`` in chunks; its size, or None when it passed ``limit``.

    Past the limit nothing more is written: the rest of the part is read and dropped so the
    next parts of the request can still be read.
    """
    size = 0
    # Small sequential writes land in the page cache: quick enough for the event loop.
    with path.open("wb") as handle:
        while chunk := await _chunk(part):
            size += len(chunk)
            if size > limit:
                break
            handle.write(chunk)
    if size > limit:
        while await _chunk(part):
            pass
        path.unlink(missing_ok=True)  # noqa: ASYNC240 - one unlink of a local temporary file
        return None
    return size


async def _read_small(part: BodyPartReader, limit: int, what: str) -> bytes:
    data = bytearray()
    while chunk := await _chunk(part):
        data += chunk
        if len(data) > limit:
            raise too_large(len(data), limit, what=what)
    return bytes(data)


async def _field_text(part: BodyPartReader) -> str:
    data = await _read_small(part, MAX_FIELD_BYTES, f"field '{part.name}'")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise AppError(422, "invalid_fields", f"The field '{part.name}' is not UTF-8 text.",
                       {"field": part.name}) from None


async def post_images(request: web.Request) -> web.Response:
    """One or many ``file`` parts, with optional ``code``, ``product``, ``position``, ``alt``."""
    app = request.app
    settings = app[keys.settings]
    limit = settings.max_upload_bytes
    reader = await _multipart(request)
    with tempfile.TemporaryDirectory(prefix="ecogram-upload-") as tmp:
        items: list[ImportItem] = []
        raw: dict[str, str | None] = {}
        async for part in _parts(reader):
            if part.name == "file":
                if len(items) >= settings.zip_max_members:
                    raise AppError(413, "too_many_files", f"A request may carry at most "
                                   f"{settings.zip_max_members} files.")
                filename = part.filename or f"file-{len(items) + 1}"
                path = Path(tmp) / f"{len(items):06d}"
                size = await _stream_to_file(part, path, limit)
                if size is None:
                    items.append(ImportItem(filename=filename, error=too_large(limit + 1, limit)))
                else:
                    items.append(file_item(path, limit, filename))
            elif part.name in FIELD_NAMES:
                raw[part.name] = await _field_text(part)
            else:
                await _release(part)  # unknown parts are ignored, but read past
        fields = parse_fields(raw)
        if not items:
            raise AppError(422, "no_files", "Send at least one file in a part named 'file'.")
        report = await imports.import_files(
            app[keys.db_pool], settings, app[keys.vips_executor], request[keys.user], items,
            fields,
        )
    if len(items) == 1 and report["rejected"] == 1:
        line = report["items"][0]
        raise AppError(line["status"] or 422, line["code"], line["message"],
                       {**(line["details"] or {}), "report": report})
    return web.json_response(report, status=201)


async def post_imports(request: web.Request) -> web.Response:
    """A ZIP (``archive``) and/or a CSV manifest (``manifest``)."""
    app = request.app
    settings = app[keys.settings]
    reader = await _multipart(request)
    with tempfile.TemporaryDirectory(prefix="ecogram-import-") as tmp:
        archive: Path | None = None
        manifest: bytes | None = None
        async for part in _parts(reader):
            if part.name == "archive" and archive is None:
                path = Path(tmp) / "archive.zip"
                request_limit = settings.max_request_mb * 1024 * 1024
                if await _stream_to_file(part, path, request_limit) is None:
                    raise too_large(request_limit + 1, request_limit, "archive_too_large",
                                    "archive")
                archive = path
            elif part.name == "manifest" and manifest is None:
                manifest = await _read_small(part, settings.max_upload_bytes, "manifest")
            else:
                await _release(part)
        if archive is None and manifest is None:
            raise AppError(422, "no_files", "Send a ZIP in a part named 'archive' and/or a CSV "
                           "in a part named 'manifest'.")
        report = await imports.import_archive(
            app[keys.db_pool], settings, app[keys.vips_executor], request[keys.user], archive,
            manifest,
        )
    return web.json_response(report, status=201)


async def get_import(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    if not raw.isdecimal() or len(raw) > 18:
        raise AppError(404, "not_found", "There is no import with this id.")
    report = await imports.get_batch_report(
        request.app[keys.db_pool], int(raw), request.app[keys.settings].public_url
    )
    return web.json_response(report)
