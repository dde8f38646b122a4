"""What a client sends, read within bounds: request bodies and the text inside them.

Bodies: every handler reads its body through here, never with ``request.post()``,
``request.json()`` or bare multipart reads. Each read has

- a size limit, checked on ``Content-Length`` before anything is read and again while the bytes
  arrive (a chunked body has no length): page forms and JSON bodies get the small
  ``ECOGRAM_MAX_FORM_KB``; only upload routes take large bodies (the app-wide
  ``client_max_size`` is sized for ZIPs, far too much for a login form);
- an idle timeout: when no byte arrives for ``ECOGRAM_BODY_TIMEOUT`` seconds the request is
  answered ``408 request_timeout`` and its connection closed, so a client that declares a body
  and never sends it cannot hold a socket and a handler.

A body refused before its end (413, 408) leaves bytes unread on the connection: the answer says
``Connection: close`` and the connection is closed after it (aiohttp first drains what arrives
within its lingering time, discarding it).

Text: PostgreSQL text cannot hold NUL, and no code, e-mail, name, filter or note needs a control
character. ``check_text`` is the one rule; JSON bodies and forms are checked whole when read, and
the query-parameter helpers of the views call it, so such text is refused with 422 before any
SQL runs.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict, MultiDictProxy

from ecogram import keys
from ecogram.errors import AppError

T = TypeVar("T")
FormValue = str | web.FileField
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
JSON_TYPES = ("application/json", "application/octet-stream", "")
# Room a multipart upload form needs around its file: boundaries, part headers, the CSRF field.
_UPLOAD_FORM_SLACK = 64 * 1024
MAX_FILENAME = 255

# The parsed form of a request, read once (the guard reads it for the CSRF field, then the
# handler for its fields).
_FORM: web.RequestKey[MultiDictProxy[FormValue]] = web.RequestKey("form", MultiDictProxy)

# Control characters: none at all in one-line text (codes, e-mails, filters, file names);
# tab, line feed and carriage return are allowed in texts a person may type over several lines.
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Lone surrogates: bytes that were not UTF-8 (aiohttp keeps them as surrogate escapes).
_SURROGATE = re.compile(r"[\ud800-\udfff]")


# --- errors ----------------------------------------------------------------------------------

def _close_after(request: web.Request) -> None:
    """The rest of this body will not be read: no further request on this connection."""
    if request.protocol is not None:
        request.protocol.close()


def request_timeout(request: web.Request) -> AppError:
    _close_after(request)
    seconds = request.app[keys.settings].body_timeout
    return AppError(408, "request_timeout",
                    f"The request body stopped arriving (nothing for {seconds:g} seconds).",
                    {"idle_seconds": seconds}, headers={"Connection": "close"})


def body_too_large(request: web.Request, limit: int) -> AppError:
    _close_after(request)
    return AppError(413, "too_large", "The request body is too large.", {"limit": limit},
                    headers={"Connection": "close"})


def control_characters(name: str) -> AppError:
    name = name[:100]  # a client's key can be long: the message need not repeat all of it
    return AppError(422, "invalid_fields", f"{name} contains a NUL or control character.",
                    {"field": name, "fields": {name: "no NUL or control characters"}})


# --- text ------------------------------------------------------------------------------------

def check_text(value: str, name: str, *, multiline: bool = False) -> str:
    """``value`` unchanged, or 422 when it holds NUL or a control character (and, in
    ``multiline`` texts, anything but tab and line breaks) or bytes that were not UTF-8."""
    pattern = _CONTROL_TEXT if multiline else _CONTROL_LINE
    if pattern.search(value) or _SURROGATE.search(value):
        raise control_characters(name)
    return value


def _check_json(body: dict[str, Any]) -> None:
    """Every key and string of a parsed JSON body (walked without recursion: depth is free)."""
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            check_text(value, path or "body", multiline=True)
        elif isinstance(value, dict):
            for key, item in value.items():
                check_text(key, path or "body")
                stack.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))


def display_name(raw: str) -> str:
    """A client's file name made safe to show and store: bad bytes and controls become U+FFFD."""
    text = raw.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return _CONTROL_LINE.sub("\ufffd", text)[:MAX_FILENAME]


def upload_filename(raw: str | None, default: str) -> str:
    """The base name of an uploaded file as the client named it; 422 ``invalid_filename`` when
    the name is not UTF-8 text or holds control characters."""
    if raw is None or not raw.strip():
        return default
    if _CONTROL_LINE.search(raw) or _SURROGATE.search(raw):
        raise AppError(422, "invalid_filename",
                       "The file name is not valid UTF-8 text or holds control characters.",
                       {"filename": display_name(raw)})
    return raw.replace("\\", "/").rsplit("/", 1)[-1][:MAX_FILENAME] or default


# --- reading with an idle timeout -----------------------------------------------------------

async def idle(request: web.Request, step: Awaitable[T]) -> T:
    """Await one read of the body; 408 when it brings nothing for ECOGRAM_BODY_TIMEOUT."""
    try:
        async with asyncio.timeout(request.app[keys.settings].body_timeout):
            return await step
    except TimeoutError:
        raise request_timeout(request) from None


def form_limit(request: web.Request) -> int:
    return request.app[keys.settings].max_form_kb * 1024


def _check_declared(request: web.Request, limit: int) -> None:
    length = request.content_length
    if length is not None and length > limit:
        raise body_too_large(request, limit)


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes (413 past it), each read bounded by the idle
    timeout."""
    _check_declared(request, limit)
    data = bytearray()
    while chunk := await idle(request, request.content.readany()):
        data += chunk
        if len(data) > limit:
            raise body_too_large(request, limit)
    return bytes(data)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (small bodies only); 400/408/413/415/422 otherwise."""
    raw = await read_body(request, form_limit(request))
    if not raw.strip():
        return {}
    if request.content_type not in JSON_TYPES:
        raise AppError(415, "unsupported_type", "Send the body as application/json.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise AppError(400, "invalid_json", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise AppError(400, "invalid_json", "The body must be a JSON object.")
    _check_json(body)
    return body


# --- multipart ---------------------------------------------------------------------------------

def _bad_multipart() -> AppError:
    return AppError(400, "invalid_multipart", "The multipart body could not be read.")


async def multipart(request: web.Request, what: str = "files") -> MultipartReader:
    """The reader of a multipart/form-data body (415 for anything else)."""
    if not request.content_type.startswith("multipart/form-data"):
        raise AppError(415, "unsupported_type", f"Send the {what} as multipart/form-data.")
    try:
        return await request.multipart()
    except (HttpProcessingError, ValueError, LookupError, RuntimeError):
        raise _bad_multipart() from None


async def next_part(request: web.Request, reader: MultipartReader) -> BodyPartReader | None:
    """The next part (None at the end); 400 for a malformed or nested one, 408 when idle."""
    try:
        part = await idle(request, reader.next())
    except (HttpProcessingError, ValueError, LookupError, RuntimeError, UnicodeDecodeError):
        # A malformed part header is the client's mistake, never a 500.
        raise _bad_multipart() from None
    if part is not None and not isinstance(part, BodyPartReader):
        raise AppError(422, "invalid_fields", "Nested multipart bodies are not accepted.")
    return part


async def read_chunk(request: web.Request, part: BodyPartReader, size: int) -> bytes:
    """Up to ``size`` bytes of the part (b"" at its end); 400 when malformed, 408 when idle."""
    try:
        return await idle(request, part.read_chunk(size))
    except (HttpProcessingError, ValueError, LookupError, RuntimeError):
        raise _bad_multipart() from None


async def skip_part(request: web.Request, part: BodyPartReader) -> None:
    """Read past a part, chunk by chunk (each chunk under the idle timeout)."""
    while await read_chunk(request, part, 64 * 1024):
        pass


# --- page forms --------------------------------------------------------------------------------

def takes_files(handler: Handler) -> Handler:
    """Mark a page handler whose multipart form carries a file: its form may be as large as an
    upload (ECOGRAM_MAX_UPLOAD_MB). Every other form gets ECOGRAM_MAX_FORM_KB."""
    handler.takes_files = True  # type: ignore[attr-defined]  # read by read_form
    return handler


def _form_takes_files(request: web.Request) -> bool:
    # The guard's wrapper copies the handler's attributes (functools.wraps).
    return getattr(request.match_info.handler, "takes_files", False)


async def read_form(request: web.Request) -> MultiDictProxy[FormValue]:
    """The page form of this request (urlencoded or multipart), read once and kept.

    Text fields are checked with ``check_text``; file fields (on routes marked ``takes_files``)
    are spooled to temporary files as ``web.FileField``. Not a form: an empty one.
    """
    if _FORM in request:
        return request[_FORM]
    fields: MultiDict[FormValue] = MultiDict()
    if request.content_type == "application/x-www-form-urlencoded":
        await _read_urlencoded(request, fields)
    elif request.content_type == "multipart/form-data":
        await _read_multipart_form(request, fields)
    form = MultiDictProxy(fields)
    request[_FORM] = form
    return form


async def _read_urlencoded(request: web.Request, fields: MultiDict[FormValue]) -> None:
    raw = await read_body(request, form_limit(request))
    try:
        text = raw.decode(request.charset or "utf-8")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True,
                                       encoding=request.charset or "utf-8", errors="strict")
    except (UnicodeDecodeError, LookupError, ValueError):
        raise AppError(400, "invalid_form", "The form is not valid UTF-8 text.") from None
    for name, value in pairs:
        fields.add(check_text(name, "form"), check_text(value, name, multiline=True))


async def _read_multipart_form(request: web.Request, fields: MultiDict[FormValue]) -> None:
    settings = request.app[keys.settings]
    small = form_limit(request)
    files = _form_takes_files(request)
    limit = settings.max_upload_bytes + _UPLOAD_FORM_SLACK if files else small
    _check_declared(request, limit)
    reader = await multipart(request, "form")
    while (part := await next_part(request, reader)) is not None:
        name = check_text(part.name or "", "form")
        if part.filename is not None and files:
            fields.add(name, await _spool_file(request, part, name, limit))
            continue
        data = bytearray()
        while chunk := await read_chunk(request, part, 64 * 1024):
            # Everything that arrived counts, part headers included.
            if request.content.total_bytes > limit:
                raise body_too_large(request, limit)
            if part.filename is None:  # a file sent to a form that takes none is dropped
                data += chunk
                if len(data) > small:
                    raise body_too_large(request, small)
        if part.filename is not None:
            continue
        try:
            value = data.decode(part.get_charset("utf-8"))
        except (UnicodeDecodeError, LookupError):
            raise AppError(400, "invalid_form", "The form is not valid UTF-8 text.") from None
        fields.add(name, check_text(value, name, multiline=True))
    if request.content.total_bytes > limit:
        raise body_too_large(request, limit)


async def _spool_file(request: web.Request, part: BodyPartReader, name: str,
                      limit: int) -> web.FileField:
    filename = upload_filename(part.filename, "upload")
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the FileField, closed with it
    size = 0
    while chunk := await read_chunk(request, part, 1024 * 1024):
        size += len(chunk)
        if size > limit or request.content.total_bytes > limit:
            handle.close()
            raise body_too_large(request, limit)
        handle.write(chunk)
    handle.seek(0)
    return web.FileField(name=name, filename=filename, file=handle,  # type: ignore[arg-type]
                         content_type=part.headers.get("Content-Type", "application/octet-stream"),
                         headers=part.headers)
