"""One source for the API contract: each operation's typed models validate its requests and
generate its part of the OpenAPI document (``ecogram.openapi``).

A view declares what it takes and answers with ``@operation(...)``: a query model, a JSON body
model, the form it reads (multipart uploads), the responses. The decorator parses the query and
the body through the models before the view runs and hands them to it as ``query=`` and
``body=``; a value the model refuses is ``422 invalid_fields`` naming the field (a body that is
not JSON at all stays ``400 invalid_json``, from ``ecogram.inputs``). The document is built from
the same declarations, so what it promises and what the server accepts cannot drift.

Models are ``msgspec.Struct`` classes (``ecogram.models``): msgspec validates a decoded request
in a few microseconds, an order of magnitude under pydantic's model construction, and writes
JSON Schema 2020-12 — what OpenAPI 3.1 embeds — from the same annotations. ``/img`` is the
exception: its hand-written parser (``ecogram.imaging.options``) is on the hot path, and a test
compares it with its model in the document.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from ecogram.errors import AppError
from ecogram.inputs import check_text, read_json

Handler = Callable[..., Awaitable[web.StreamResponse]]


class Instant(dt.datetime):
    """An RFC 3339 date (midnight UTC) or date-time in a query."""


# RFC 3339, as the document's formats say: a full date, or a date-time with its offset.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
# The first and last days PostgreSQL and Python both hold in any zone: beyond is "ever".
_EARLIEST = dt.datetime(1, 2, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)


def _instant(value: str) -> Instant:
    # A "+" of an offset arrives as a space when the client did not encode it.
    text = value.replace(" ", "+", 1) if "T" in value.upper() else value
    if not (_DATE.fullmatch(text) or _DATE_TIME.fullmatch(text)):
        raise ValueError("an RFC 3339 date or date-time, e.g. 2025-01-31 or "
                         "2025-01-31T12:00:00Z")
    try:
        parsed = dt.datetime.fromisoformat(text.upper())
    except ValueError:
        raise ValueError("a real date, e.g. 2025-01-31 or 2025-01-31T12:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    if parsed.year <= 1:
        parsed = _EARLIEST
    elif parsed.year >= 9999:
        parsed = _LATEST
    return Instant.combine(parsed.date(), parsed.timetz())


def _decode(kind: type, value: Any) -> Any:
    if kind is Instant and isinstance(value, str):
        return _instant(value)
    raise NotImplementedError(kind)


def schema_hook(kind: type) -> dict[str, Any]:
    """The JSON Schema of the types msgspec does not know."""
    if kind is Instant:
        return {"type": "string", "anyOf": [{"format": "date-time"}, {"format": "date"}]}
    if kind is Upload:
        return {"type": "string", "format": "binary"}
    raise NotImplementedError(kind)


class Upload:
    """A file part of a multipart form (documentation only: uploads are read in parts)."""


@dataclass(frozen=True)
class Media:
    """A response that is not a JSON model: its media types (each a JSON Schema)."""

    content: Mapping[str, Mapping[str, Any]]
    description: str = "OK"
    headers: Mapping[str, str] = field(default_factory=dict)


BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
NO_CONTENT = Media({}, "No content")


@dataclass(frozen=True)
class Operation:
    summary: str
    description: str = ""
    query: type | None = None
    body: type | None = None  # a JSON body, parsed and handed to the view
    body_required: bool = True
    form: Mapping[str, type] = field(default_factory=dict)  # media type -> model (documented)
    responses: Mapping[int, type | Media] = field(default_factory=dict)
    errors: tuple[int, ...] = ()  # statuses beyond those every operation of its kind has
    # A query the view parses itself (``/img``: hand-written on the hot path), documented from
    # this model; ``tests/contract`` compares the two.
    described_query: type | None = None
    headers: tuple[dict[str, Any], ...] = ()  # request header parameters


def operation(summary: str, **declared: Any) -> Callable[[Handler], Handler]:
    """Declare a view's contract; the view gets ``query=`` and ``body=`` already validated."""
    op = Operation(summary, **declared)

    def wrap(view: Handler) -> Handler:
        if op.query is None and op.body is None:  # nothing to parse: the view as it is
            view.operation = op  # type: ignore[attr-defined]
            return view

        @functools.wraps(view)
        async def handler(request: web.Request) -> web.StreamResponse:
            given: dict[str, Any] = {}
            if op.query is not None:
                given["query"] = parse_query(request.query, op.query)
            if op.body is not None:
                given["body"] = await parse_body(request, op.body)
            return await view(request, **given)

        handler.operation = op  # type: ignore[attr-defined]
        return handler

    return wrap


def operation_of(handler: Any) -> Operation | None:
    return getattr(handler, "operation", None)


# --- validation ------------------------------------------------------------------------------

def _kinds(kind: Any) -> tuple[Any, ...]:
    """What a field may hold (msgspec's type info), constraints and unions unwrapped."""
    info = msgspec.inspect.type_info(kind)
    found = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    return tuple(k.type if isinstance(k, msgspec.inspect.Metadata) else k for k in found)


@functools.cache
def _list_fields(model: type) -> frozenset[str]:
    return frozenset(f.encode_name for f in msgspec.structs.fields(model)
                     if any(isinstance(k, msgspec.inspect.ListType) for k in _kinds(f.type)))


@functools.cache
def _json_fields(model: type) -> frozenset[str]:
    """Fields whose query text is a JSON scalar: numbers and booleans (``true``, ``false``)."""
    scalars = (msgspec.inspect.IntType, msgspec.inspect.FloatType, msgspec.inspect.BoolType)
    return frozenset(f.encode_name for f in msgspec.structs.fields(model)
                     if any(isinstance(k, scalars) for k in _kinds(f.type)))


def parse_query(query: Mapping[str, str], model: type[msgspec.Struct]) -> Any:
    """Text fields through ``model`` — a query string, or a multipart form's text parts
    (``views.api_imports``): repeated or comma-separated values for list fields,
    one value otherwise. Text is checked for control characters first (``check_text``);
    numbers and booleans are read as JSON scalars, so ``1.0`` is no integer and ``1`` no
    boolean — exactly what the document's types say."""
    lists, scalars = _list_fields(model), _json_fields(model)
    getall = getattr(query, "getall", None)
    values: dict[str, Any] = {}
    for name in dict.fromkeys(query):
        raw = getall(name) if getall else [query[name]]
        if name in lists:
            values[name] = [check_text(item.strip(), name) for value in raw
                            for item in value.split(",") if item.strip()]
            continue
        if len(raw) > 1:
            raise AppError(422, "invalid_fields", f"{name[:100]} is given more than once.",
                           {"field": name[:100], "fields": {name[:100]: "once"}})
        value = check_text(raw[0], name)
        if name in scalars:
            try:
                decoded = msgspec.json.decode(value)
            except msgspec.DecodeError:
                decoded = None  # the model's message says what was expected
            if decoded is not None:  # "null" is no value: a query cannot send one
                value = decoded
        values[name] = value
    return convert(values, model)


async def parse_body(request: web.Request, model: type[msgspec.Struct]) -> Any:
    body = convert(await read_json(request), model)
    if (names := changed_fields(model)) and all(getattr(body, n) is msgspec.UNSET
                                                 for n in names):
        raise AppError(422, "invalid_fields", f"Nothing to change: give {', '.join(names)}.",
                       {"fields": {"body": f"at least one of {', '.join(names)}"}})
    return body


def changed_fields(model: type) -> tuple[str, ...]:
    """A partial update's fields of which one at least must be given (``models.Changes``)."""
    if not hasattr(model, "changes"):
        return ()
    return model.changes or model.__struct_fields__


def convert(values: Any, model: Any, *, strict: bool = True) -> Any:
    """``values`` as ``model``, or ``422 invalid_fields`` naming every field that is not
    acceptable and what it must be."""
    try:
        return msgspec.convert(values, model, strict=strict, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        problems = _problems(values, model, strict) if isinstance(values, dict) else {}
        raise invalid_fields(str(exc), problems) from None


def _problems(values: dict[str, Any], model: Any, strict: bool) -> dict[str, str]:
    """Each field checked on its own (msgspec stops at the first problem)."""
    if not isinstance(model, type) or not issubclass(model, msgspec.Struct):
        return {}
    problems: dict[str, str] = {}
    known = {f.encode_name: f for f in msgspec.structs.fields(model)}
    for name, value in values.items():
        field = known.get(name)
        if field is None:
            problems[str(name)[:100]] = "not a field of this request"
            continue
        try:
            msgspec.convert(value, field.type, strict=strict, dec_hook=_decode)
        except msgspec.ValidationError as exc:
            problems[name] = _rule(str(exc))
    for name, field in known.items():
        if field.required and name not in values:
            problems[name] = "required"
    return problems


_AT = re.compile(r"^(?P<rule>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_MISSING = re.compile(r"missing required field `(?P<name>[^`]+)`")
_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")
_REGEX = re.compile(r"matching regex '.*'", re.S)


def _rule(text: str) -> str:
    rule = _AT.match(text)["rule"]  # type: ignore[index]
    return _REGEX.sub("of the documented form (no control characters)", rule).replace("`", "")


def invalid_fields(text: str, problems: dict[str, str] | None = None) -> AppError:
    """msgspec's message as our error shape: ``fields`` maps each field to what it must be."""
    match = _AT.match(text)
    path = (match["path"] or "") if match else ""
    name = path.lstrip(".").split("[")[0].split(".")[0] or "body"
    rule = _rule(text)
    if found := _MISSING.search(rule):
        name, rule = found["name"], "required"
    elif found := _UNKNOWN.search(rule):
        name, rule = found["name"], "not a field of this request"
    fields = problems or {name[:100]: rule}
    first = next(iter(fields))
    return AppError(422, "invalid_fields", f"{first}: {fields[first]}",
                    {"field": first, "fields": fields})
