"""Request ids: the one a proxy sent, or one made on first use.

An id names a request in the logs. It is made when something is about to be written about the
request — its log line (level INFO), an error, a refused token — and echoed in ``X-Request-Id``;
a request that leaves no trace (a warm /img hit with request logging off) spends nothing on
one. A well-formed incoming ``X-Request-Id`` (from the proxy or CDN in front) is kept, so one
id follows a request through every hop.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets

from aiohttp import web
from multidict import istr

from ecogram import keys

HEADER = istr("X-Request-Id")  # istr: multidict looks it up without case-folding it each time
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class _Ids:
    """A random prefix per process and a counter: unique, and far cheaper than a uuid4.
    Forked workers draw a prefix of their own."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):08x}"


_ids = _Ids()


def begin(request: web.Request, *, make: bool = False) -> str | None:
    """Start the request with the id the client or proxy sent, when it is safe to echo and to
    log, else with a new one if ``make`` (a request that will be logged), else with none yet;
    return it. (Always set, so reading it never raises: ``request.get`` of a missing key raises
    and catches a KeyError, a cost every /img hit would pay.)"""
    incoming = request.headers.get(HEADER)
    if incoming is not None and _SAFE.match(incoming):
        found: str | None = incoming
    else:
        found = _ids.next() if make else None
    request[keys.request_id] = found
    return found


def known(request: web.Request) -> str | None:
    """The id, if the request has one by now (``begin`` must have run)."""
    return request[keys.request_id]


def request_id(request: web.Request) -> str:
    """This request's id, made now if it has none yet."""
    try:
        found = request[keys.request_id]
    except KeyError:  # a request that did not go through the middleware
        found = None
    if found is None:
        found = request[keys.request_id] = _ids.next()
    return found
