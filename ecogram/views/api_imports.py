"""Import endpoints: ``POST /api/v1/images``, ``POST /api/v1/imports``, ``GET .../imports/{id}``.

Uploads are read by ``ecogram.inputs.read_multipart`` (the one multipart reader, its errors the
same on every upload route) and streamed part by part to temporary files, with the size limit
enforced while the bytes arrive: memory stays bounded whatever is sent, and a file over the
limit or with an unreadable name becomes that file's 413 or 422 while the others of the request
go on.

Status of ``POST /images``: ``201`` with the batch report. A request with a single file that is
rejected answers that file's status (413, 415, 422...) in the JSON error shape, with the whole
report in ``details.report``; with several files the answer is always ``201`` and each file's
line says what happened to it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aiohttp import web

from ecogram import jobs, keys, models
from ecogram.catalog import import_jobs, imports
from ecogram.catalog.sources import ImportItem, file_item, parse_fields
from ecogram.contract import Media, operation, parse_query
from ecogram.errors import AppError
from ecogram.inputs import FilePart, no_files, read_multipart

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
        async for name, value in read_multipart(request, {"file": limit},
                                                max_files=settings.zip_max_members):
            if isinstance(value, FilePart):
                items.append(await _upload_item(value, Path(tmp) / f"{len(items):06d}", limit))
            else:
                raw[name] = value
        parse_query(raw, models.UploadFields)  # the document's rules: 422 naming the field
        fields = parse_fields(raw)
        if not items:
            raise no_files("file")
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


async def _upload_item(upload: FilePart, path: Path, limit: int) -> ImportItem:
    """One uploaded file as an import item; a refused name or size is that file's line, and
    the other files of the request go on."""
    try:
        upload.check_name()
        await upload.save(path)
    except AppError as error:
        if error.code not in ("invalid_filename", "file_too_large"):
            raise
        path.unlink(missing_ok=True)  # noqa: ASYNC240 - one unlink of a local temporary file
        return ImportItem(filename=upload.filename, error=error)
    return file_item(path, limit, upload.filename)


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
    parts = {"archive": settings.max_request_mb * 1024 * 1024,
             "manifest": settings.max_upload_bytes}
    with tempfile.TemporaryDirectory(prefix="ecogram-import-") as tmp:
        archive: Path | None = None
        manifest: bytes | None = None
        async for name, value in read_multipart(request, parts):
            if not isinstance(value, FilePart):
                continue
            value.check_name()
            if name == "archive":
                archive = Path(tmp) / "archive.zip"
                await value.save(archive)
            else:
                manifest = await value.read()
        if archive is None and manifest is None:
            raise no_files("archive", "manifest")
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
