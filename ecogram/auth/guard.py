"""The one guard: every declared route's ``access`` is enforced here, before its handler runs
(the route table registers each handler through ``guarded``).

Credentials are the ``Authorization: Bearer`` header or the session cookie the sign-in page sets
(the same JWT). A cookie-authenticated request with an unsafe method must carry the CSRF token
(header ``X-CSRF-Token``, or the ``csrf_token`` field of a page's form). A token is accepted only
when it verifies, its user exists and is enabled, its ``ver`` equals the user's token_version
and its jti is not revoked — one database round trip.

Public routes run for everyone; a valid session is attached when there is one. Paths not in
the table (unknown paths, static files) never reach a handler of ours: aiohttp answers them.
"""

from __future__ import annotations

import functools
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable

from aiohttp import web

from ecogram import db, inputs, keys
from ecogram.auth import csrf, tokens
from ecogram.auth.identity import Credentials, Identity
from ecogram.auth.roles import PUBLIC, allows
from ecogram.errors import AppError
from ecogram.request_ids import request_id

log = logging.getLogger("ecogram.auth")

SESSION_COOKIE = "ecogram_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_PAGE = "/login"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SESSIONLESS_PREFIXES = ("/api/", "/img/", "/healthz", "/readyz", "/metrics", "/static/")


class AuthFailure(Exception):
    """Credentials were given but are not (or no longer) good. Text for logs only."""


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def unauthorized(invalid_token: bool = False) -> AppError:
    challenge = 'Bearer realm="ecogram"'
    if invalid_token:
        challenge += ', error="invalid_token"'
    return AppError(
        401,
        "unauthorized",
        "Sign in first: this needs a valid access token.",
        headers={"WWW-Authenticate": challenge},
    )


def forbidden(required: str) -> AppError:
    return AppError(403, "forbidden", "Your role does not allow this.", {"required": required})


def csrf_failed() -> AppError:
    return AppError(
        403, "csrf_failed",
        "The form or request is missing its security token; reload the page and try again.",
    )


def cross_site() -> AppError:
    return AppError(403, "cross_site", "Requests from other sites are not accepted here.")


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    # A header that is not a Bearer token still counts as (bad) credentials: never anonymous.
    return value.strip() if scheme.lower() == "bearer" else ""


def credentials_of(request: web.Request) -> tuple[str | None, str]:
    """(token, "bearer" | "cookie"), the header winning over the cookie; (None, "") if none."""
    bearer = _bearer(request)
    if bearer is not None:
        return bearer, "bearer"
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, "cookie"
    return None, ""


async def authenticate(
    request: web.Request, token: str, via: str
) -> tuple[Identity, Credentials]:
    settings = request.app[keys.settings]
    try:
        claims = tokens.decode(settings.secret_key, token)
    except tokens.TokenError as exc:
        raise AuthFailure(str(exc)) from None
    async with request.app[keys.db_pool].acquire() as conn:
        row = await db.queries.get_user_for_token(conn, id=claims.user_id, jti=claims.jti)
    if row is None:
        raise AuthFailure("no such user")
    if row["disabled"]:
        raise AuthFailure("user disabled")
    if row["token_version"] != claims.version:
        raise AuthFailure("token version outdated")
    if row["revoked"]:
        raise AuthFailure("token revoked")
    identity = Identity(id=row["id"], email=row["email"], name=row["name"], role=row["role"])
    return identity, Credentials(jti=claims.jti, expires_at=claims.expires_at, via=via)


async def _csrf_candidate(request: web.Request) -> str | None:
    header = request.headers.get(csrf.HEADER)
    if header is not None or is_api(request):
        return header
    # A page's form: read the field (the form is read once, within its limits, and kept for
    # the handler).
    if request.content_type in inputs.FORM_TYPES:
        form = await inputs.read_form(request)
        value = form.get(csrf.FORM_FIELD)
        return value if isinstance(value, str) else None
    return None


def check_same_origin(request: web.Request) -> None:
    """Refuse unsafe page requests sent from another site (login CSRF, forged forms).

    Browsers send ``Sec-Fetch-Site`` and ``Origin`` with form posts; clients that send neither
    (scripts, tests) are not browsers and are not at risk.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise cross_site()
    origin = request.headers.get("Origin")
    if origin is None:
        return
    netloc = urllib.parse.urlsplit(origin).netloc if origin != "null" else ""
    if not netloc or netloc.lower() != request.host.lower():
        raise cross_site()


def _login_redirect(request: web.Request) -> web.Response:
    target = LOGIN_PAGE + "?" + urllib.parse.urlencode({"next": request.path_qs})
    return web.Response(status=303, headers={"Location": target, "Cache-Control": "no-store"})


def guarded(access: str, path: str, handler: Handler) -> Handler:
    """``handler`` behind the check of ``access`` (``public`` or the weakest role allowed).

    The route table wraps every declared handler here when it registers it, so the check runs
    exactly for the routes that need it. Public machine routes (image delivery, health, login
    itself) never read a session and are registered as they are: /img, the hottest path,
    pays nothing for the guard.
    """
    if access == PUBLIC and path.startswith(_SESSIONLESS_PREFIXES):
        return handler

    @functools.wraps(handler)
    async def check_then_handle(request: web.Request) -> web.StreamResponse:
        api = is_api(request)
        unsafe = request.method in UNSAFE_METHODS
        if unsafe and not api:
            check_same_origin(request)
        token, via = credentials_of(request)
        session: tuple[Identity, Credentials] | None = None
        failure: str | None = None
        if token is not None:
            try:
                session = await authenticate(request, token, via)
            except AuthFailure as exc:
                failure = str(exc)
                log.info(json.dumps({"event": "auth_refused", "via": via, "reason": failure,
                                     "path": request.path,
                                     "request_id": request_id(request)}))
        if session is not None and via == "cookie" and unsafe:
            secret = request.app[keys.settings].secret_key
            if not csrf.is_valid(secret, session[1].jti, await _csrf_candidate(request)):
                raise csrf_failed()
        if session is not None:
            request[keys.user], request[keys.credentials] = session
        if access == PUBLIC:  # a public page: the session, when there is one, is attached
            return await handler(request)
        if session is None:
            if not api and request.method in ("GET", "HEAD"):
                return _login_redirect(request)
            raise unauthorized(invalid_token=failure is not None)
        if not allows(session[0].role, access):
            raise forbidden(access)
        return await handler(request)

    check_then_handle.access = access  # type: ignore[attr-defined]  # for the route tests
    return check_then_handle


def cookie_secure(request: web.Request) -> bool:
    """The Secure flag per ECOGRAM_COOKIE_SECURE (``auto``: when the request came over HTTPS)."""
    setting = request.app[keys.settings].cookie_secure
    if setting != "auto":
        return setting == "true"
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str,
                       max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="Strict",
        secure=cookie_secure(request),
    )


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="Strict",
                        secure=cookie_secure(request))


def csrf_token_for(request: web.Request) -> str | None:
    """The CSRF token a page puts in its forms (and the admin JS in X-CSRF-Token)."""
    credentials = request.get(keys.credentials)
    if credentials is None:
        return None
    return csrf.token_for(request.app[keys.settings].secret_key, credentials.jti)
