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
import io
import json
import re
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import IO, Any, TypeVar

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict, MultiDictProxy

from ecogram import keys
from ecogram.catalog.sources.limits import CHUNK, too_large
from ecogram.errors import AppError

T = TypeVar("T")
FormValue = str | web.FileField
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
JSON_TYPES = ("application/json", "application/octet-stream", "")
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


def _number(text: str) -> int | float:
    """A JSON number with a fraction: JSON Schema's integers include 1.0, so it is the integer 1
    (the typed models' ints take no float)."""
    value = float(text)
    return int(value) if value.is_integer() else value


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (small bodies only); 400/408/413/415/422 otherwise."""
    raw = await read_body(request, form_limit(request))
    if not raw.strip():
        return {}
    if request.content_type not in JSON_TYPES:
        raise AppError(415, "unsupported_type", "Send the body as application/json.")
    try:
        body = json.loads(raw, parse_float=_number)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise AppError(400, "invalid_json", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise AppError(400, "invalid_json", "The body must be a JSON object.")
    _check_json(body)
    return body


# --- multipart ---------------------------------------------------------------------------------
#
# One reader for every multipart body: the upload routes (the import API, the photo replacement,
# the channel ids CSV) and the page forms. One fault, one answer wherever it is sent:
#
# - not ``multipart/form-data``: 415 ``unsupported_type``;
# - not readable as one (no or bad boundary, truncated, a part without a name, a nested
#   multipart part, a part header over 8 KB): 400 ``invalid_multipart``;
# - a declared or arrived body over the route's limit, or its text (fields, part headers, files
#   sent under a name the route does not take) over ``ECOGRAM_MAX_FORM_KB``: 413 ``too_large``;
# - a file over its limit: 413 ``file_too_large``; more files than the route takes: 413
#   ``too_many_files``; a file's name not UTF-8 text or holding controls: 422
#   ``invalid_filename``; a text field not UTF-8 or holding controls: 422 ``invalid_fields``;
#   the route's file missing: 422 ``no_files`` naming the parts (``details.fields``);
# - nothing arriving for ``ECOGRAM_BODY_TIMEOUT``: 408 ``request_timeout``.

_PART_CHUNK = CHUNK  # 1 MB at a time at most: what has arrived
# Boundaries, part headers and the like around a request's files and fields.
_UPLOAD_SLACK = 64 * 1024
# Bytes counted for a part's boundary and header line breaks (its headers are counted as sent).
_PART_OVERHEAD = 64


def invalid_multipart(message: str = "The multipart body could not be read.") -> AppError:
    return AppError(400, "invalid_multipart", message)


def no_files(*names: str) -> AppError:
    """422: the route's file part is missing (``details.fields`` names the parts it takes)."""
    wanted = " and/or ".join(f"'{name}'" for name in names)
    return AppError(422, "no_files", f"Send the file in a part named {wanted}.",
                    {"fields": dict.fromkeys(names, "required")})


class FilePart:
    """A file part of a multipart body, as :func:`read_multipart` yields it.

    ``filename`` is the client's base name (``upload_filename``) or, when that name is refused,
    a displayable one with ``filename_error`` set (422 ``invalid_filename``): a route taking one
    file raises it (``check_name``), the import API reports it on that file's line. The bytes
    are read by one of ``save``/``read``/``spool``, at most ``limit`` of them (413
    ``file_too_large``, raised once the rest of the part is read past, so the next parts can
    still be read); a part left unread is read past by the reader.
    """

    def __init__(self, request: web.Request, part: BodyPartReader, name: str, limit: int,
                 default: str) -> None:
        self._request = request
        self._part = part
        self.name = name
        self.limit = limit
        self.headers = part.headers
        self.content_type = part.headers.get("Content-Type", "application/octet-stream")
        self.filename_error: AppError | None = None
        try:
            self.filename = upload_filename(part.filename, default)
        except AppError as error:
            self.filename = display_name(part.filename or default)
            self.filename_error = error

    def check_name(self) -> None:
        if self.filename_error is not None:
            raise self.filename_error

    async def write_to(self, handle: IO[bytes]) -> int:
        """The part's bytes written to ``handle``; their number."""
        size = 0
        while chunk := await read_chunk(self._request, self._part, _PART_CHUNK):
            size += len(chunk)
            if size > self.limit:
                await skip_part(self._request, self._part)
                raise too_large(size, self.limit)
            handle.write(chunk)  # small sequential writes land in the page cache
        return size

    async def save(self, path: Path) -> int:
        with path.open("wb") as handle:
            return await self.write_to(handle)

    async def read(self) -> bytes:
        buffer = io.BytesIO()
        await self.write_to(buffer)
        return buffer.getvalue()

    async def spool(self) -> IO[bytes]:
        """The bytes in an anonymous temporary file (on disk past 1 MB), at its start."""
        handle = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
        try:
            await self.write_to(handle)
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        return handle  # type: ignore[return-value]


def upload_limit(request: web.Request, files: Mapping[str, int], max_files: int) -> int:
    """The body limit of a form taking ``files`` (name → limit of each file, ``max_files`` of
    each name): its files, its text (``ECOGRAM_MAX_FORM_KB``) and room around them, never over
    ``ECOGRAM_MAX_REQUEST_MB``."""
    settings = request.app[keys.settings]
    if not files:
        return form_limit(request)
    most = sum(files.values()) * max_files + form_limit(request) + _UPLOAD_SLACK
    return min(most, settings.max_request_mb * 1024 * 1024)


async def read_multipart(
    request: web.Request, files: Mapping[str, int] | None = None, *, max_files: int = 1,
) -> AsyncIterator[tuple[str, str | FilePart]]:
    """The parts of a ``multipart/form-data`` body, in order: ``(name, text)`` for a field
    (UTF-8, checked with ``check_text``), ``(name, FilePart)`` for a part named in ``files``
    (name → its size limit), at most ``max_files`` under each name. A file sent under another
    name is read past, counted as the form's text. Errors: see the comment above.
    """
    files = files or {}
    if request.content_type != "multipart/form-data":
        raise AppError(415, "unsupported_type", "Send the body as multipart/form-data.")
    limit = upload_limit(request, files, max_files)
    text_limit = form_limit(request)
    _check_declared(request, limit)
    try:
        reader = MultipartReader(request.headers, request.content,
                                 max_size_error_cls=HttpProcessingError)
    except (ValueError, LookupError, AssertionError):
        raise invalid_multipart("The multipart body has no valid boundary.") from None
    text = 0  # bytes of the form that are not its files
    counts: dict[str, int] = {}
    while (part := await next_part(request, reader)) is not None:
        name = part.name
        if not name:
            raise invalid_multipart("Every part needs a name (Content-Disposition: form-data; "
                                    "name=...).")
        text += _PART_OVERHEAD + sum(len(k) + len(v) for k, v in part.headers.items())
        if text > text_limit:
            raise body_too_large(request, text_limit)
        if name in files:
            count = counts[name] = counts.get(name, 0) + 1
            if count > max_files:
                raise AppError(413, "too_many_files", f"A request may carry at most "
                               f"{max_files} files in the part '{name}'.",
                               {"max_files": max_files, "field": name})
            yield name, FilePart(request, part, name, files[name], f"file-{count}")
            await skip_part(request, part, limit)  # what the caller left unread
        else:
            data = bytearray()
            while chunk := await read_chunk(request, part, _PART_CHUNK):
                text += len(chunk)
                if text > text_limit:
                    raise body_too_large(request, text_limit)
                if part.filename is None:  # a file under a name the route does not take:
                    data += chunk          # read past
            if part.filename is None:
                yield check_text(name, "form"), _field_text(name, bytes(data))
        if request.content.total_bytes > limit:
            raise body_too_large(request, limit)


def _field_text(name: str, data: bytes) -> str:
    try:
        value = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AppError(422, "invalid_fields", f"The field '{name[:100]}' is not UTF-8 text.",
                       {"field": name[:100], "fields": {name[:100]: "UTF-8 text"}}) from None
    return check_text(value, name, multiline=True)


async def next_part(request: web.Request, reader: MultipartReader) -> BodyPartReader | None:
    """The next part (None at the end); 400 for a malformed or nested one, 408 when idle."""
    try:
        part = await idle(request, reader.next())
    except (HttpProcessingError, ValueError, LookupError, RuntimeError, AssertionError):
        # A malformed part header is the client's mistake, never a 500.
        raise invalid_multipart() from None
    if part is not None and not isinstance(part, BodyPartReader):
        raise invalid_multipart("Nested multipart bodies are not accepted.")
    return part


async def read_chunk(request: web.Request, part: BodyPartReader, size: int) -> bytes:
    """Up to ``size`` bytes of the part (b"" at its end); 400 when malformed, 408 when idle."""
    try:
        return await idle(request, part.read_chunk(size))
    except (HttpProcessingError, ValueError, LookupError, RuntimeError, AssertionError):
        raise invalid_multipart() from None


async def skip_part(request: web.Request, part: BodyPartReader, limit: int | None = None) -> None:
    """Read past a part, chunk by chunk (each chunk under the idle timeout); 413 ``too_large``
    once the body is over ``limit``."""
    while await read_chunk(request, part, _PART_CHUNK):
        if limit is not None and request.content.total_bytes > limit:
            raise body_too_large(request, limit)


# --- page forms --------------------------------------------------------------------------------

def takes_files(*names: str) -> Callable[[Handler], Handler]:
    """Mark a page handler whose multipart form carries files in the parts ``names``: they may
    be as large as an upload (ECOGRAM_MAX_UPLOAD_MB) and reach the handler as
    ``web.FileField``. Every other form gets ECOGRAM_MAX_FORM_KB."""
    def mark(handler: Handler) -> Handler:
        handler.takes_files = names  # type: ignore[attr-defined]  # read by read_form
        return handler
    return mark


def _form_files(request: web.Request) -> tuple[str, ...]:
    # The guard's wrapper copies the handler's attributes (functools.wraps).
    return getattr(request.match_info.handler, "takes_files", ())


async def read_form(request: web.Request) -> MultiDictProxy[FormValue]:
    """The page form of this request (urlencoded or multipart), read once and kept.

    Text fields are checked with ``check_text``; file fields (on routes marked ``takes_files``)
    are spooled to temporary files as ``web.FileField``. Not a form: an empty one, except on a
    route taking files, which takes nothing but multipart (``read_multipart``).
    """
    if _FORM in request:
        return request[_FORM]
    fields: MultiDict[FormValue] = MultiDict()
    if _form_files(request) or request.content_type.startswith("multipart/"):
        await _read_multipart_form(request, fields)  # a page taking files takes multipart only
    elif request.content_type == "application/x-www-form-urlencoded":
        await _read_urlencoded(request, fields)
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
    limit = request.app[keys.settings].max_upload_bytes
    async for name, value in read_multipart(request, dict.fromkeys(_form_files(request), limit)):
        if isinstance(value, FilePart):
            value.check_name()
            fields.add(name, web.FileField(
                name=name, filename=value.filename, file=await value.spool(),  # type: ignore[arg-type]
                content_type=value.content_type, headers=value.headers))
        else:
            fields.add(name, value)
