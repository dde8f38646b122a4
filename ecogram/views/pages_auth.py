"""Sign-in, registration and sign-out pages (``/`` itself is the admin dashboard's).

Plain server-rendered forms. The session is the same JWT as the API's, kept in an HttpOnly,
SameSite=Strict cookie; forms of a signed-in user carry the CSRF token the guard checks.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ecogram import keys
from ecogram.auth.guard import clear_session_cookie, csrf_token_for, set_session_cookie
from ecogram.catalog import accounts
from ecogram.errors import AppError
from ecogram.inputs import read_form
from ecogram.pages import render_page
from ecogram.views.api_auth import client_address


def safe_next(value: object) -> str:
    """A local path to go to after signing in; anything else (other sites) becomes ``/``."""
    if (
        isinstance(value, str)
        and value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and value.isprintable()
        and "\\" not in value
        and len(value) <= 2000
    ):
        return value
    return "/"


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


async def _render(request: web.Request, template: str, context: dict[str, Any],
                  status: int = 200) -> web.Response:
    settings = request.app[keys.settings]
    context = {
        "user": request.get(keys.user),
        "csrf_token": csrf_token_for(request),
        "registration_open": settings.registration == "open",
        # A newcomer is told what registering will do (the demo's account is no admin).
        "first_is_admin": await accounts.next_registration_is_admin(
            request.app[keys.db_pool], settings),
        **context,
    }
    response = render_page(template, request, context, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _field(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


async def login_page(request: web.Request) -> web.Response:
    next_path = safe_next(request.query.get("next"))
    if keys.user in request:
        return _redirect(next_path)
    return await _render(request, "auth/login.html", {"next": next_path, "email": ""})


async def login_submit(request: web.Request) -> web.Response:
    form = await read_form(request)
    email, next_path = _field(form, "email"), safe_next(_field(form, "next"))
    try:
        issued, _identity = await accounts.login(
            request.app[keys.db_pool], request.app[keys.settings],
            request.app[keys.login_throttle], email=email, password=_field(form, "password"),
            client=client_address(request),
        )
    except AppError as error:
        if error.status not in (401, 422, 429):
            raise
        response = await _render(request, "auth/login.html",
                           {"next": next_path, "email": email[:254], "error": error},
                           status=error.status)
        response.headers.update(error.headers)
        return response
    response = _redirect(next_path)
    set_session_cookie(request, response, issued.token, issued.expires_in)
    return response


async def register_page(request: web.Request) -> web.Response:
    if keys.user in request:
        return _redirect("/")
    return await _render(request, "auth/register.html", {"email": "", "name": ""})


async def register_submit(request: web.Request) -> web.Response:
    form = await read_form(request)
    email, name, password = _field(form, "email"), _field(form, "name"), _field(form, "password")
    pool, settings = request.app[keys.db_pool], request.app[keys.settings]
    try:
        await accounts.register(pool, settings, email=email, name=name, password=password,
                                client=client_address(request))
        issued, _identity = await accounts.login(
            pool, settings, request.app[keys.login_throttle], email=email, password=password,
            client=client_address(request),
        )
    except AppError as error:
        if error.status not in (403, 409, 422, 429):
            raise
        response = await _render(
            request, "auth/register.html",
            {"email": email[:254], "name": name[:200], "error": error,
             "error_field": error.details.get("field")},
            status=error.status,
        )
        response.headers.update(error.headers)
        return response
    response = _redirect("/")
    set_session_cookie(request, response, issued.token, issued.expires_in)
    return response


async def logout(request: web.Request) -> web.Response:
    # The guard has checked the CSRF token of a signed-in user's form before we get here.
    if keys.user in request:
        await accounts.logout(request.app[keys.db_pool], request[keys.user],
                              request[keys.credentials], client=client_address(request))
    response = _redirect("/login")
    clear_session_cookie(request, response)
    return response
