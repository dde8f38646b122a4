"""The request frame middleware: request id, error rendering, security headers, metrics, log."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import secrets
import time

from aiohttp import hdrs, web
from multidict import istr

from ecogram import keys
from ecogram.errors import AppError
from ecogram.i18n import render_page

log = logging.getLogger("ecogram.http")

# istr: multidict looks these up without case-folding them on every request.
REQUEST_ID_HEADER = istr("X-Request-Id")
NOSNIFF_HEADER = istr("X-Content-Type-Options")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
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


class _RequestIds:
    """Request ids: a random prefix per process and a counter — unique, and far cheaper than
    a uuid4 on every /img hit. Forked workers draw a prefix of their own."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):08x}"


_request_ids = _RequestIds()
_clock = time.perf_counter

_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
    "style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)


def wants_json(request: web.Request) -> bool:
    return request.path.startswith(_MACHINE_PREFIXES) or request.path == "/api"


@web.middleware
async def request_context(request: web.Request, handler):
    """The frame of every request: an id, the answer — errors rendered in the one JSON shape
    (API, /img) or as a page (browser paths) — the security headers, and the request's count,
    time and one JSON log line.

    One middleware, not one per concern: each layer costs every /img hit a few microseconds,
    and a warm hit is worth about 70 (bench/README.md, "Delivery").
    """
    incoming = request.headers.get(REQUEST_ID_HEADER)
    if incoming is not None and _SAFE_REQUEST_ID.match(incoming):
        request_id = incoming
    else:
        request_id = _request_ids.next()
    request[keys.request_id] = request_id
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
            response = render_error(
                request, AppError(exc.status, code, _http_message(exc), headers=_kept_headers(exc))
            )
        except Exception:
            log.exception(json.dumps({"event": "unhandled_error", "request_id": request_id}))
            response = render_error(request, AppError(
                500,
                "internal_error",
                "Something went wrong on our side. Quote the request id when reporting it.",
                {"request_id": request_id},
            ))
        status = response.status
        add_security_headers(response)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        elapsed = _clock() - started
        route = request.match_info.route.name or (
            "unmatched" if request.match_info.http_exception else "unnamed"
        )
        request.app[keys.metrics].observe_request(route, request.method, status, elapsed)
        if log.isEnabledFor(logging.INFO):
            log.info(
                json.dumps(
                    {
                        "event": "request",
                        "request_id": request_id,
                        "method": request.method,
                        "path": request.path,
                        "route": route,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                    }
                )
            )


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
    if keys.request_id in request and error.status >= 500:
        error.details.setdefault("request_id", request[keys.request_id])
    if wants_json(request):
        response = web.json_response(error.as_dict(), status=error.status, headers=headers)
    else:
        response = render_page(
            "errors/error.html",
            request,
            {"error": error, "request_id": request.get(keys.request_id)},
            status=error.status,
        )
        response.headers.update(headers)
    return response


def add_security_headers(response: web.StreamResponse) -> None:
    headers = response.headers
    if NOSNIFF_HEADER not in headers:
        headers[NOSNIFF_HEADER] = "nosniff"
    # The header, not ``response.content_type``: that property parses it, on every /img hit.
    if headers.get(hdrs.CONTENT_TYPE, "").startswith("text/html"):
        headers.setdefault("Content-Security-Policy", _CSP)
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
