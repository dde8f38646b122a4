"""The request frame middleware: request id, error rendering, nosniff, metrics, one log line."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from aiohttp import web
from aiohttp.web import RequestPayloadError
from multidict import istr

from ecogram import db, logqueue, request_ids
from ecogram.errors import AppError
from ecogram.logqueue import JsonLine
from ecogram.metrics import Metrics
from ecogram.pages import render_page
from ecogram.request_ids import request_id

log = logging.getLogger("ecogram.http")

NOSNIFF_HEADER = istr("X-Content-Type-Options")  # istr: no case-folding on each lookup
# Paths answered in JSON; everything else is a page for people and gets HTML errors.
_MACHINE_PREFIXES = ("/api/", "/img/", "/healthz", "/readyz", "/metrics")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_type",
    422: "invalid_fields",
    429: "too_many_requests",
    503: "unavailable",
}
_clock = time.perf_counter
# nginx's status for a client that closed the connection before the answer: never sent, only
# counted and logged.
CLIENT_CLOSED_REQUEST = 499


def wants_json(request: web.Request) -> bool:
    return request.path.startswith(_MACHINE_PREFIXES) or request.path == "/api"


def make_request_context(metrics: Metrics):
    """The one middleware; ``metrics`` is the application's (bound once, not looked up on
    every request)."""
    observe = metrics.observe_request

    @web.middleware
    async def request_context(request: web.Request, handler):
        """The frame of every request: its id (``ecogram.request_ids``), the answer — errors
        rendered in the one JSON shape (API, /img) or as a page (browser paths) — ``nosniff``,
        and the request's count, time and one JSON log line (at level INFO).

        One middleware, not one per concern: each layer costs every /img hit a few microseconds,
        and a whole warm hit takes about 75 (bench/README.md, "The warm path").
        """
        log_request = log.isEnabledFor(logging.INFO)
        # made now when the request is logged, so the response can name its log line (and
        # kept: once made it never changes)
        started_id = request_ids.begin(request, make=log_request)
        started = _clock()
        status = 500
        try:
            try:
                response = await handler(request)
            except AppError as error:
                response = render_error(request, error)
            except web.HTTPException as exc:
                if exc.status < 400:  # a redirect raised by a handler: aiohttp sends it
                    status = exc.status
                    raise
                code = _HTTP_CODES.get(exc.status, "http_error")
                error = AppError(exc.status, code, _http_message(exc),
                                 headers=_kept_headers(exc))
                response = render_error(request, error)
            except asyncio.CancelledError:
                # The handler was cancelled because the client went away (aiohttp does that
                # when handler_cancellation is on): still a client abort, and still cancelled.
                if _client_gone(request):
                    status = CLIENT_CLOSED_REQUEST
                    _log_abort(request, "CancelledError")
                raise
            except Exception as exc:
                response = _unexpected(request, exc)
            status = response.status
            headers = response.headers
            if NOSNIFF_HEADER not in headers:
                headers[NOSNIFF_HEADER] = "nosniff"
            known_id = started_id if started_id is not None else request_ids.known(request)
            if known_id is not None:
                headers[request_ids.HEADER] = known_id
            return response
        finally:
            elapsed = _clock() - started
            route = request.match_info.route.name or (
                "unmatched" if request.match_info.http_exception else "unnamed"
            )
            observe(route, request.method, status, elapsed)
            if log_request:
                # JsonLine: the JSON is made by the handler (off the request path when the
                # server logs through ecogram.logqueue), not here; logqueue.info: log.info,
                # or its shortcut onto the server's queue.
                logqueue.info(log, JsonLine({
                    "event": "request",
                    "request_id": started_id,
                    "method": request.method,
                    "path": request.path,
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                }))

    return request_context


def _unexpected(request: web.Request, exc: Exception) -> web.Response:
    """An exception no handler turned into an answer: the database being away (503), the
    client gone mid-request (499, nobody to answer), or our bug (500, logged with its trace).

    Classified here, once, so every route gets the same answer and one log line without a
    traceback for the first two."""
    if db.is_unavailable(exc):
        log.warning(json.dumps({
            "event": "database_unavailable",
            "request_id": request_id(request),
            "method": request.method,
            "path": request.path,
            "error": type(exc).__name__,
        }))
        return render_error(request, db.unavailable())
    if isinstance(exc, ConnectionResetError | RequestPayloadError):
        if _client_gone(request):
            _log_abort(request, type(exc).__name__)
            # Nobody will read it; it only carries the status to the metrics and the log.
            return web.Response(status=CLIENT_CLOSED_REQUEST, reason="Client Closed Request")
        if isinstance(exc, RequestPayloadError):  # a body that does not parse: the client's
            return render_error(request, AppError(
                400, "bad_request", "The request body could not be read."))
    log.exception(json.dumps({"event": "unhandled_error", "request_id": request_id(request)}))
    return render_error(request, AppError(
        500,
        "internal_error",
        "Something went wrong on our side. Quote the request id when reporting it.",
    ))


def _log_abort(request: web.Request, error: str) -> None:
    log.info(json.dumps({
        "event": "client_abort",
        "request_id": request_id(request),
        "method": request.method,
        "path": request.path,
        "error": error,
    }))


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _http_message(exc: web.HTTPException) -> str:
    if exc.status == 404:
        return "There is nothing at this address."
    if exc.status == 405:
        return "This method is not allowed here."
    if exc.status == 413:
        return "The request body is too large."
    return exc.reason


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}


def render_error(request: web.Request, error: AppError) -> web.Response:
    headers = {"Cache-Control": "no-store", **error.headers}
    if error.status >= 500:  # the id to quote when reporting it
        error.details.setdefault("request_id", request_id(request))
    if wants_json(request):
        response = web.json_response(error.as_dict(), status=error.status, headers=headers)
    else:
        response = render_page(
            "errors/error.html",
            request,
            {"error": error, "request_id": request_ids.known(request)},
            status=error.status,
        )
        response.headers.update(headers)
    return response
