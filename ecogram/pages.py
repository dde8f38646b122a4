"""Every HTML page is rendered here: in the request's language, with the page security headers.

The template context gets the localizer (gettext, dates, numbers) and the page's own address
(the language switch comes back to it); the response says its language and carries the
Content-Security-Policy and framing rules. Pages only: JSON and images need none of this, so
/img pays nothing for it.

An error page shows the signed-in user's menu when the auth guard has already checked the
session for this request (a 404 of a record, a 403 of a role): no query of its own. Where it did
not run (an address no route answers), the page offers the way home.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ecogram import keys, page_texts
from ecogram.auth.guard import csrf_token_for
from ecogram.auth.roles import allows
from ecogram.errors import AppError
from ecogram.i18n import Localizer, localizer_for

CSP = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
    "style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # The client hints /img honours (docs/delivery.md#client-hints): browsers send them with
    # this origin's image requests once a page asks.
    "Accept-CH": "Sec-CH-DPR, Sec-CH-Width",
}


class Texts:
    """The page's sentences for things the service names by code (``texts`` in templates)."""

    def __init__(self, i18n: Localizer) -> None:
        self.i18n = i18n

    def warning(self, warning: Mapping[str, Any], qc: Mapping[str, Any] | None = None) -> str:
        return page_texts.warning_text(self.i18n, warning, qc)

    def warning_name(self, code: str) -> str:
        return page_texts.warning_name(self.i18n, code)

    def actor(self, name: str | None, actor_id: int | None = None) -> str:
        return page_texts.actor_name(self.i18n, name, actor_id)

    def field(self, name: str) -> str:
        return page_texts.field_name(self.i18n, name)

    def value(self, name: str, value: str) -> str:
        return page_texts.value_name(self.i18n, name, value)

    def js_errors(self) -> dict[str, str]:
        return page_texts.js_errors(self.i18n)

    def js_warnings(self) -> dict[str, str]:
        return page_texts.js_warnings(self.i18n)


def signed_in(request: web.Request) -> dict[str, Any]:
    """The menu's context for the user the guard verified on this request, if any."""
    user = request.get(keys.user)
    if user is None:
        return {}
    return {
        "user": user,
        "csrf_token": csrf_token_for(request),
        "can_import": allows(user.role, "importer"),
        "can_review": allows(user.role, "reviewer"),
        "is_admin": allows(user.role, "admin"),
    }


def render_page(template: str, request: web.Request, context: Mapping[str, Any],
                status: int = 200) -> web.Response:
    """Render ``template`` in the request's language.

    An ``error`` in the context (an ``AppError``: the error page, a refused form) reaches the
    template as a ``page_texts.PageError``, its sentence in the page's language.
    """
    localizer = localizer_for(request)
    extra: dict[str, Any] = {"i18n": localizer, "page_path_qs": request.path_qs,
                             "texts": Texts(localizer)}
    error = context.get("error")
    if isinstance(error, AppError):
        extra["error"] = page_texts.page_error(localizer, error)
        if "user" not in context:
            extra.update(signed_in(request))
    response = aiohttp_jinja2.render_template(
        template, request, {**context, **extra}, status=status,
    )
    response.headers["Content-Language"] = localizer.html_lang
    response.headers.update(PAGE_HEADERS)
    return response
